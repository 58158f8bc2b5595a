// HTTPRoute backend protocols through a real `portico serve`: an h2c backend (appProtocol
// kubernetes.io/h2c) reached by a client speaking HTTP/2 with prior knowledge, and a WebSocket
// backend (appProtocol kubernetes.io/ws) through an upgrade, with the route's request filters
// applied to the upgrade request too.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebSocketEcho } from './helpers/websocket.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { gateway, gatewayClass, httpRoute, namespace, toYaml, type Obj } from './gateway-helpers.ts';

let portico: Portico;
let h2c: http2.Http2Server;
let ws: Awaited<ReturnType<typeof startWebSocketEcho>>;

const svc = (name: string, port: number, appProtocol: string): Obj[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'infra' }, spec: { ports: [{ name: 'p', port: 8081, targetPort: 3001, appProtocol }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'infra', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'p', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
];

/** One HTTP/2 request with prior knowledge (no upgrade) to Portico's HTTP port. */
async function h2get(authority: string, path: string): Promise<{ status: number; body: string }> {
  const session = http2.connect(`http://127.0.0.1:${portico.httpPort}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, ':authority': authority });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c) => (body += c));
      req.on('end', () => resolve({ status, body }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

beforeAll(async () => {
  // Refuses HTTP/1.1 (as the conformance echo's h2c port does): only HTTP/2 gets through.
  h2c = http2.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ proto: `HTTP/${req.httpVersion}`, path: req.url, host: req.headers[':authority'] ?? req.headers.host }));
  });
  await new Promise<void>((r) => h2c.listen(0, '127.0.0.1', r));
  ws = await startWebSocketEcho('127.0.0.1');
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [{ name: 'http', port: portico.httpPort, protocol: 'HTTP' }]),
    ...svc('h2c-backend', (h2c.address() as AddressInfo).port, 'kubernetes.io/h2c'),
    ...svc('ws-backend', ws.port, 'kubernetes.io/ws'),
    httpRoute('h2c', { parentRefs: [{ name: 'gw' }], hostnames: ['h2c.test'], rules: [{ backendRefs: [{ name: 'h2c-backend', port: 8081 }] }] }),
    // HTTPRouteNamedRule: a rule's name is accepted and changes nothing else.
    httpRoute('named', { parentRefs: [{ name: 'gw' }], hostnames: ['h2c.test'], rules: [{ name: 'named-rule', matches: [{ path: { type: 'PathPrefix', value: '/named' } }], backendRefs: [{ name: 'h2c-backend', port: 8081 }] }] }),
    // Browsers' WebSocket cannot set Host: no hostnames.
    httpRoute('ws', { parentRefs: [{ name: 'gw' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/ws' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Via', value: 'portico' }] } }], backendRefs: [{ name: 'ws-backend', port: 8081 }] }] }),
  ));
  await waitFor('routes served', async () => (await h2get('h2c.test', '/')).status === 200, 20_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  h2c?.close();
  ws?.server.closeAllConnections();
  ws?.server.close();
});

describe('HTTPRoute backend protocols', () => {
  it('h2c: HTTP/2 with prior knowledge in, h2c to the backend (HTTPRouteBackendProtocolH2C)', async () => {
    const r = await h2get('h2c.test', '/x?y=1');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ proto: 'HTTP/2.0', path: '/x?y=1' });
  });

  it('a named rule is served like any other (HTTPRouteNamedRouteRule)', async () => {
    expect(JSON.parse((await h2get('h2c.test', '/named')).body)).toMatchObject({ path: '/named' });
  });

  it('WebSocket: text and binary frames echoed through the upgrade, the route filter applied (HTTPRouteBackendProtocolWebSocket)', async () => {
    const sock = new WebSocket(`ws://127.0.0.1:${portico.httpPort}/ws`);
    sock.binaryType = 'arraybuffer';
    const messages: unknown[] = [];
    sock.addEventListener('message', (e) => messages.push(e.data));
    await waitFor('open', () => sock.readyState === WebSocket.OPEN, 5000, 10);
    sock.send('Websocket Support!');
    sock.send(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    await waitFor('two echoes', () => messages.length >= 2, 5000, 10);
    expect(messages[0]).toBe('echo: Websocket Support!');
    expect([...new Uint8Array(messages[1] as ArrayBuffer)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(ws.headers.at(-1)?.['x-via']).toBe('portico');
    sock.close();
  });
});
