// Header and query conditions read through each engine's request view (the fast HTTP/1.1 engine,
// node:http, HTTP/2 over h2c): header names in any case, query values decoded as URLSearchParams
// decodes them. The conditioned rule's backendRef is unresolvable, so a match answers 500 and no
// match 404: no backend process is needed to tell them apart.

import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange } from './helpers/http.ts';
import { toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';

const GW = 'gateway.networking.k8s.io/v1';
const objects = (port: number): string =>
  toYaml(
    { apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'portico.dev/gateway-controller' } },
    { apiVersion: GW, kind: 'Gateway', metadata: { name: 'web', namespace: 'default' }, spec: { gatewayClassName: 'portico', listeners: [{ name: 'http', port, protocol: 'HTTP' }] } },
    {
      apiVersion: GW,
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'default' },
      spec: {
        parentRefs: [{ name: 'web' }],
        hostnames: ['c.test'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' }, headers: [{ name: 'X-Tenant', type: 'RegularExpression', value: 't-[0-9]+' }, { name: 'x-canary', value: 'yes' }], queryParams: [{ name: 'v', value: 'a b' }] }], backendRefs: [{ name: 'missing', port: 80 }] }],
      },
    },
  );

async function h2status(port: number, path: string, headers: Record<string, string>): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, ':authority': 'c.test', ...headers });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
  } finally {
    session.close();
  }
}

describe.each(['fast', 'node'])('route conditions through the %s HTTP/1.1 engine and HTTP/2', (engine) => {
  let portico: Portico;
  const status = async (target: string, headers: string): Promise<number> => {
    const r = await rawExchange(portico.httpPort, `GET ${target} HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n${headers}\r\n`, { waitMs: 2000 });
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    portico = await startPortico({ files: {}, workers: 1, ready: false, args: ['--http1-engine', engine] });
    portico.write('gateway.yaml', objects(portico.httpPort));
    await waitFor('the HTTPRoute to be served', async () => (await status('/x?v=a+b', 'X-Tenant: t-1\r\nX-Canary: yes\r\n').catch(() => 0)) === 500);
  });
  afterAll(async () => {
    await portico?.stop();
  });

  it('header names in any case, query values decoded', async () => {
    expect(await status('/x/y?v=a%20b', 'X-TENANT: t-42\r\nx-Canary: yes\r\n')).toBe(500);
    expect(await status('/x?w=1&v=a+b&v=other', 'x-tenant: t-7\r\nX-CANARY: yes\r\n')).toBe(500);
    expect(await status('/x?%76=a%20b', 'X-Tenant: t-7\r\nX-Canary: yes\r\n')).toBe(500);
  });

  it('a failing or missing condition is no match', async () => {
    expect(await status('/x?v=a%20b', 'X-Tenant: t-x\r\nX-Canary: yes\r\n')).toBe(404);
    expect(await status('/x?v=a%20b', 'X-Tenant: t-1\r\n')).toBe(404);
    expect(await status('/x?V=a%20b', 'X-Tenant: t-1\r\nX-Canary: yes\r\n')).toBe(404);
    expect(await status('/x?v=a', 'X-Tenant: t-1\r\nX-Canary: yes\r\n')).toBe(404);
    // Two X-Tenant fields are read as one value joined with ', ': not a t-N.
    expect(await status('/x?v=a+b', 'X-Tenant: t-1\r\nX-Tenant: t-2\r\nX-Canary: yes\r\n')).toBe(404);
  });

  it('HTTP/2 (h2c) reads the same conditions', async () => {
    expect(await h2status(portico.httpPort, '/x?v=a%20b', { 'x-tenant': 't-42', 'x-canary': 'yes' })).toBe(500);
    expect(await h2status(portico.httpPort, '/x?v=a%20b', { 'x-tenant': 'nope', 'x-canary': 'yes' })).toBe(404);
  });
});
