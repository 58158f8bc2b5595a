// One route decision for every kind of request: an upgrade (WebSocket) takes the same route as a
// plain request with the same method, headers and query, and an unresolvable Gateway API
// backend answers 500 on both.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { startWebSocketEcho } from './helpers/websocket.ts';

let portico: Portico;
let stable: Awaited<ReturnType<typeof startWebSocketEcho>>;
let canary: Awaited<ReturnType<typeof startWebSocketEcho>>;

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

function gatewayObjects(port: number): string {
  const route = (name: string, rules: unknown[]) => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: 'default' }, spec: { parentRefs: [{ name: 'web' }], hostnames: ['ws.test'], rules } });
  return toYaml(
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'portico.dev/gateway-controller' } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'web', namespace: 'default' }, spec: { gatewayClassName: 'portico', listeners: [{ name: 'http', port, protocol: 'HTTP' }] } },
    route('ws', [
      { matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'x-track', value: 'canary' }] }], backendRefs: [{ name: 'canary', port: 80 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/' }, queryParams: [{ name: 'track', value: 'canary' }] }], backendRefs: [{ name: 'canary', port: 80 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/broken' } }], backendRefs: [{ name: 'no-such-service', port: 80 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'stable', port: 80 }] },
    ]),
    service('stable'),
    service('canary'),
    endpointSlice('stable', [`127.0.0.1:${stable.port}`]),
    endpointSlice('canary', [`127.0.0.1:${canary.port}`]),
  );
}

beforeAll(async () => {
  stable = await startWebSocketEcho('127.0.0.1', 'stable: ');
  canary = await startWebSocketEcho('127.0.0.1', 'canary: ');
  portico = await startPortico({ files: {}, workers: 1, ready: false });
  portico.write('gateway.yaml', gatewayObjects(portico.httpPort));
  await waitFor('the HTTPRoute to be served', async () => (await request(portico.httpPort, '/', { host: 'ws.test' }).catch(() => undefined))?.status === 200);
});

afterAll(async () => {
  await portico?.stop();
  stable?.server.close();
  canary?.server.close();
});

describe('one route decision for plain and upgrade requests', () => {
  it('a header-conditioned route takes upgrades as it takes plain requests', async () => {
    const before = canary.headers.length;
    const r = await rawExchange(portico.httpPort, `GET /chat HTTP/1.1\r\nHost: ws.test\r\nX-Track: canary\r\n${UPGRADE}`, { waitMs: 500 });
    expect(r.text).toMatch(/^HTTP\/1\.1 101/);
    expect(canary.headers.length).toBe(before + 1);
    const s = await rawExchange(portico.httpPort, `GET /chat HTTP/1.1\r\nHost: ws.test\r\n${UPGRADE}`, { waitMs: 500 });
    expect(s.text).toMatch(/^HTTP\/1\.1 101/);
    expect(canary.headers.length).toBe(before + 1);
  });

  it('a query-conditioned route takes upgrades too', async () => {
    const before = canary.headers.length;
    const r = await rawExchange(portico.httpPort, `GET /chat?track=canary HTTP/1.1\r\nHost: ws.test\r\n${UPGRADE}`, { waitMs: 500 });
    expect(r.text).toMatch(/^HTTP\/1\.1 101/);
    expect(canary.headers.length).toBe(before + 1);
  });

  it('an unresolvable backendRef answers 500, to plain and upgrade requests alike', async () => {
    expect((await request(portico.httpPort, '/broken', { host: 'ws.test' })).status).toBe(500);
    const r = await rawExchange(portico.httpPort, `GET /broken HTTP/1.1\r\nHost: ws.test\r\n${UPGRADE}`);
    expect(r.text).toMatch(/^HTTP\/1\.1 500/);
    expect(r.closed).toBe(true);
  });
});
