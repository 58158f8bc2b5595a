import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { startWebSocketEcho } from './helpers/websocket.ts';

let portico: Portico;
let backend: EchoBackend;
let ws: Awaited<ReturnType<typeof startWebSocketEcho>>;

beforeAll(async () => {
  backend = await startEchoBackend('app', '127.0.0.2', 0);
  ws = await startWebSocketEcho('127.0.0.3');
  portico = await startPortico({
    workers: 2,
    files: {
      'all.yaml': toYaml(
        ingressClass(),
        service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]),
        service('ws'), endpointSlice('ws', [`127.0.0.3:${ws.port}`]),
        ingress('app', 'app.test', [{ path: '/', service: 'app' }]),
        // Browsers' WebSocket cannot set Host: the socket route is on the catch-all host.
        ingress('sockets', undefined, [{ path: '/ws', service: 'ws' }]),
        // A TLS Ingress whose socket route must redirect plain HTTP (no Secret: default certificate).
        { ...ingress('secure-ws', 'secure-ws.test', [{ path: '/ws', service: 'ws' }]), spec: { ...(ingress('secure-ws', 'secure-ws.test', [{ path: '/ws', service: 'ws' }]).spec as object), tls: [{ hosts: ['secure-ws.test'] }] } },
      ),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
  ws?.server.closeAllConnections();
  ws?.server.close();
});

function h2cRequest(port: number, path: string, authority: string, opts: { method?: string; body?: string } = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': path, ':authority': authority, ':method': opts.method ?? 'GET' });
    let body = '';
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('HTTP/2 with prior knowledge (h2c) on the plain listener', () => {
  it('routes, forwards headers and bodies like HTTP/1.1', async () => {
    const r = await h2cRequest(portico.httpPort, '/h2?x=1', 'app.test', { method: 'POST', body: 'hello' });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body);
    expect(seen).toMatchObject({ backend: 'app', method: 'POST', url: '/h2?x=1', bodyBytes: 5 });
    expect(seen.headers.host).toBe('app.test');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
  });

  it('answers errors the same way', async () => {
    expect((await h2cRequest(portico.httpPort, '/', 'nowhere.test')).status).toBe(404);
  });

  it('HTTP/1.1 still works on the same port', async () => {
    expect((await request(portico.httpPort, '/', { host: 'app.test' })).status).toBe(200);
  });
});

describe('WebSocket', () => {
  it('tunnels a real WebSocket both ways, and a table swap does not close it', async () => {
    const sock = new WebSocket(`ws://127.0.0.1:${portico.httpPort}/ws/chat`);
    const messages: string[] = [];
    let closed = false;
    sock.addEventListener('message', (e) => messages.push(String(e.data)));
    sock.addEventListener('close', () => (closed = true));
    await waitFor('open', () => sock.readyState === WebSocket.OPEN, 5000, 10);
    sock.send('one');
    await waitFor('echo one', () => messages.includes('echo: one'), 5000, 10);

    const version = (await portico.json('/debug/routes')).version;
    portico.write('more.yaml', toYaml(ingress('more', 'more.test', [{ path: '/', service: 'app' }])));
    await portico.waitVersion(version + 1);
    portico.remove('more.yaml');
    await portico.waitVersion(version + 2);

    sock.send('two');
    await waitFor('echo two', () => messages.includes('echo: two'), 5000, 10);
    expect(closed).toBe(false);
    sock.close();
    await waitFor('closed', () => closed, 5000, 10);
    const h = ws.headers.at(-1)!;
    expect(h.host).toBe(`127.0.0.1:${portico.httpPort}`);
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('the upgrade request goes upstream with the same header rules as any request', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const before = ws.headers.length;
    const r = await rawExchange(portico.httpPort, 'GET /ws/x HTTP/1.1\r\nHost: any.test\r\nConnection: Upgrade, X-Hop\r\nX-Hop: secret\r\nUpgrade: websocket\r\nX-Forwarded-For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nExpect: 100-continue\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', { waitMs: 500 });
    expect(r.text).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor('upgrade seen', () => ws.headers.length > before);
    const h = ws.headers.at(-1)!;
    expect(h.connection).toBe('Upgrade');
    expect(h.upgrade).toBe('websocket');
    expect(h['x-hop']).toBeUndefined();
    expect(h['x_real_ip']).toBeUndefined();
    expect(h.expect).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['sec-websocket-key']).toBe('dGhlIHNhbXBsZSBub25jZQ==');
  });

  it('an upgrade on plain HTTP to a TLS-only route is redirected with 308; two Host headers get 400', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    const r = await rawExchange(portico.httpPort, `GET /ws/x HTTP/1.1\r\nHost: secure-ws.test\r\n${upgrade}`);
    expect(r.text).toMatch(/^HTTP\/1\.1 308 /);
    expect(r.text).toContain(`Location: https://secure-ws.test:${portico.httpsPort}/ws/x`);
    const two = await rawExchange(portico.httpPort, `GET /ws/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n${upgrade}`);
    expect(two.text).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('an upgrade with no route gets 404', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const r = await rawExchange(portico.httpPort, 'GET /nope HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 404/);
  });
});
