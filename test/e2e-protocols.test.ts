import http2 from 'node:http2';
import net from 'node:net';
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

function h2cRequest(port: number, path: string, authority: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': path, ':authority': authority, ':method': opts.method ?? 'GET', ...opts.headers });
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

  it('a Host header that differs from :authority is a malformed request (RFC 9113 8.3.1)', async () => {
    expect((await h2cRequest(portico.httpPort, '/', 'app.test', { headers: { host: 'other.test' } })).status).toBe(400);
    expect((await h2cRequest(portico.httpPort, '/', 'app.test', { headers: { host: 'APP.test' } })).status).toBe(200);
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

  it('an upgrade the upstream refuses stays HTTP: the refusal reaches the client, nothing more goes upstream, the connection closes', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const received: string[] = [];
    const refuser = net.createServer((s) => {
      let seen = '';
      s.on('data', (c) => {
        seen += c.toString('latin1');
        received.push(c.toString('latin1'));
        if (seen.includes('\r\n\r\n') && !seen.includes('answered')) {
          seen += 'answered';
          const chunked = seen.startsWith('GET /chunked');
          s.write(chunked ? 'HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nno ws\r\n0\r\n\r\n' : 'HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\ndenied\n');
        }
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => refuser.listen(0, '127.0.0.4', r));
    const port = (refuser.address() as net.AddressInfo).port;
    try {
      portico.write('refuser.yaml', toYaml(service('refuser'), endpointSlice('refuser', [`127.0.0.4:${port}`]), ingress('refuser', 'refuse.test', [{ path: '/', service: 'refuser' }])));
      await waitFor('route', async () => (await portico.json('/debug/routes')).virtualHosts.some((v: { hostname: string }) => v.hostname === 'refuse.test'));
      const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
      // A second request smuggled behind the refused upgrade must never reach the upstream.
      const smuggled = 'GET /internal HTTP/1.1\r\nHost: refuse.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n';
      const r = await rawExchange(portico.httpPort, `GET /ws HTTP/1.1\r\nHost: refuse.test\r\n${upgrade}${smuggled}`);
      expect(r.text).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(r.text).toMatch(/\r\nConnection: close\r\n/);
      expect(r.text.endsWith('\r\n\r\ndenied\n')).toBe(true);
      expect(r.closed).toBe(true);
      const chunked = await rawExchange(portico.httpPort, `GET /chunked HTTP/1.1\r\nHost: refuse.test\r\n${upgrade}`);
      expect(chunked.text).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
      // Its chunked body is passed on delimited by the close (the connection ends with it).
      expect(chunked.text).not.toMatch(/transfer-encoding/i);
      expect(chunked.text.endsWith('\r\n\r\nno ws')).toBe(true);
      expect(chunked.closed).toBe(true);
      expect(received.join('')).not.toContain('/internal');
    } finally {
      portico.remove('refuser.yaml');
      refuser.close();
    }
  });

  it('interim responses: 103 Early Hints reach the client before the final response; a 204 with a Content-Length is served over HTTP/2', async () => {
    const raw = net.createServer((s) => {
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, end);
          buf = buf.slice(end + 4);
          if (head.startsWith('GET /103')) s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
          else if (head.startsWith('GET /h2s')) s.write('HTTP/1.1 200 OK\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\nok');
          else s.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
        }
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.4', r));
    const port = (raw.address() as net.AddressInfo).port;
    try {
      portico.write('raw.yaml', toYaml(service('raw'), endpointSlice('raw', [`127.0.0.4:${port}`]), ingress('raw', 'raw.test', [{ path: '/', service: 'raw' }])));
      await waitFor('route', async () => (await portico.json('/debug/routes')).virtualHosts.some((v: { hostname: string }) => v.hostname === 'raw.test'));
      const { rawExchange } = await import('./helpers/http.ts');
      const r = await rawExchange(portico.httpPort, 'GET /103 HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n');
      expect(r.text).toMatch(/^HTTP\/1\.1 103 Early Hints\r\n[Ll]ink: <\/style\.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      expect(r.text.endsWith('final')).toBe(true);
      expect(r.text).not.toContain('102');
      const h2 = await h2cRequest(portico.httpPort, '/103', 'raw.test');
      expect(h2).toMatchObject({ status: 200, body: 'final' });
      const noContent = await h2cRequest(portico.httpPort, '/204', 'raw.test');
      expect(noContent.status).toBe(204);
      expect(noContent.headers['content-length']).toBeUndefined();
      // A connection-specific header HTTP/2 forbids is dropped, not a hung stream.
      expect(await h2cRequest(portico.httpPort, '/h2s', 'raw.test')).toMatchObject({ status: 200, body: 'ok' });
    } finally {
      portico.remove('raw.yaml');
      raw.close();
    }
  });

  it('TRACE gets 405 from Portico; a transfer-coding other than chunked gets 501', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const trace = await rawExchange(portico.httpPort, 'TRACE / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
    expect(trace.text).toMatch(/^HTTP\/1\.1 405 /);
    const gzip = await rawExchange(portico.httpPort, 'POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(gzip.text).toMatch(/^HTTP\/1\.1 501 /);
    expect(gzip.closed).toBe(true);
  });

  it('an upgrade the upstream never answers gets 504 after the route timeout', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const silent = net.createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.4', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      portico.write('silent.yaml', toYaml(service('silent'), endpointSlice('silent', [`127.0.0.4:${port}`]), ingress('silent', 'silent.test', [{ path: '/', service: 'silent' }], { annotations: { 'portico.dev/proxy-read-timeout': '1' } })));
      await waitFor('route', async () => (await portico.json('/debug/routes')).virtualHosts.some((v: { hostname: string }) => v.hostname === 'silent.test'));
      const started = Date.now();
      const r = await rawExchange(portico.httpPort, 'GET /ws HTTP/1.1\r\nHost: silent.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', { waitMs: 8000 });
      expect(r.text).toMatch(/^HTTP\/1\.1 504 /);
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      portico.remove('silent.yaml');
      silent.close();
    }
  });

  it('RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored (served plain, no Upgrade upstream); a 101 without Upgrade is a 502', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const received: string[] = [];
    const raw = net.createServer((s) => {
      let seen = '';
      s.on('data', (c) => {
        seen += c.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        received.push(seen);
        s.end(seen.startsWith('GET /bad101') ? 'HTTP/1.1 101 Switching Protocols\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain');
        seen = '';
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.4', r));
    const port = (raw.address() as net.AddressInfo).port;
    try {
      portico.write('raw101.yaml', toYaml(service('raw101'), endpointSlice('raw101', [`127.0.0.4:${port}`]), ingress('raw101', 'raw101.test', [{ path: '/', service: 'raw101' }])));
      await waitFor('route', async () => (await portico.json('/debug/routes')).virtualHosts.some((v: { hostname: string }) => v.hostname === 'raw101.test'));
      const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
      const old = await rawExchange(portico.httpPort, `GET /old HTTP/1.0\r\nHost: raw101.test\r\n${upgrade}`);
      expect(old.text).toMatch(/^HTTP\/1\.1 200 /);
      expect(old.text.endsWith('plain')).toBe(true);
      const sent = received.find((r) => r.startsWith('GET /old'));
      expect(sent).toBeDefined();
      expect(sent).not.toMatch(/\r\nupgrade:/i);
      const bad = await rawExchange(portico.httpPort, `GET /bad101 HTTP/1.1\r\nHost: raw101.test\r\n${upgrade}`);
      expect(bad.text).toMatch(/^HTTP\/1\.1 502 /);
    } finally {
      portico.remove('raw101.yaml');
      raw.close();
    }
  });

  it('an upgrade with no route gets 404', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const r = await rawExchange(portico.httpPort, 'GET /nope HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 404/);
  });
});
