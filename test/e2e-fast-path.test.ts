// The HTTP/1.1 fast path (--http1-engine fast) through a real portico serve, against a raw
// backend that records what reaches it: pipelining strictly in order, upstream keep-alive,
// response framing (chunked with trailers, de-chunking for HTTP/1.0, close-delimited, HEAD,
// 204, 1xx), request bodies, an upstream that breaks the protocol, and hand-off of upgrades.
// The rest of the e2e suite runs against this engine with PORTICO_HTTP1_ENGINE=fast.

import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';

interface Seen { path: string; head: string; body: string; connection: number }

/**
 * A backend that answers by path with scripted raw bytes, records each request (head and body)
 * with the connection it came on, and an event trail to tell when requests arrived.
 */
async function rawBackend(): Promise<{ port: number; seen: Seen[]; events: string[]; connections: () => number; close: () => void }> {
  const seen: Seen[] = [];
  const events: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    const id = ++connections;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let busy = false;
    const next = (): void => {
      if (busy) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
      let bodyEnd = end + 4 + (cl ? Number(cl[1]) : 0);
      if (chunked) {
        const term = buf.indexOf('0\r\n\r\n', end + 4);
        if (term < 0) return;
        bodyEnd = term + 5;
      }
      if (buf.length < bodyEnd) return;
      const body = buf.subarray(end + 4, bodyEnd).toString('latin1');
      buf = buf.subarray(bodyEnd);
      const path = head.split(' ')[1];
      seen.push({ path, head, body, connection: id });
      events.push(`recv ${path}`);
      busy = true;
      const done = (): void => {
        events.push(`sent ${path}`);
        busy = false;
        next();
      };
      answer(s, path, body, done);
    };
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      next();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.2', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    events,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

function answer(s: net.Socket, path: string, body: string, done: () => void): void {
  const send = (raw: string, end = false) => {
    s.write(raw, 'latin1');
    if (end) s.end();
    done();
  };
  switch (path.split('?')[0]) {
    case '/slow':
      setTimeout(() => send('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow'), 300);
      return;
    case '/chunked':
      return send('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n');
    case '/close':
      return send('HTTP/1.1 200 OK\r\n\r\nuntil the end', true);
    case '/nocontent':
      return send('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n');
    case '/hints':
      return send('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    case '/head':
      return send('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    case '/both':
      return send('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    case '/reason':
      return send('HTTP/1.1 299 Fine By Me\r\nX-One: 1\r\nContent-Length: 2\r\n\r\nok');
    case '/no-reason':
      return send('HTTP/1.1 404 \r\nContent-Length: 2\r\n\r\nno');
    case '/http10':
      return send('HTTP/1.0 200 Okay Then\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
    case '/no-fields':
      return send('HTTP/1.1 204 Nothing Here\r\n\r\n');
    case '/conn-cl':
      return send('HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 4\r\n\r\nfour');
    case '/fields':
      return send('HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: keep-alive\r\nX-B:two\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nX-C: caf\xe9\r\nContent-Length: 2\r\nServer: raw\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\nok');
    case '/broken':
      return send('HTTP/1.1 200 OK\r\nX-Bad: a\nContent-Length: 2\r\n\r\nok');
    case '/echo': {
      const b = `got ${body.length}:${body}`;
      return send(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
    }
    default:
      return send(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
  }
}

let backend: Awaited<ReturnType<typeof rawBackend>>;
let portico: Portico;
const H = 'Host: fast.test\r\n';
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

beforeAll(async () => {
  backend = await rawBackend();
  portico = await startPortico({
    workers: 1,
    args: ['--http1-engine', 'fast'],
    files: { 'all.yaml': toYaml(ingressClass(), service('raw'), endpointSlice('raw', [`127.0.0.2:${backend.port}`]), ingress('raw', 'fast.test', [{ path: '/', service: 'raw' }])) },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  backend?.close();
});

describe('HTTP/1.1 fast path', () => {
  it('is the engine serving plain HTTP/1.1 (said at start)', async () => {
    // Worker logs are buffered (flushed every 250 ms).
    // On the sockets' handles, unless told to use Node's streams (e2e-fast-path-stream.test.ts).
    const io = process.env.PORTICO_SOCKET_IO === 'stream' ? 'stream' : 'handle';
    await waitFor('the listeners line', () => portico.logs.some((l) => l.includes('listeners ready') && l.includes('"http1Engine":"fast"') && l.includes(`"socketIo":"${io}"`)));
  });

  it('pipelined requests go upstream one at a time: the second only after the first response is complete', async () => {
    backend.events.length = 0;
    const r = await rawExchange(portico.httpPort, `GET /slow HTTP/1.1\r\n${H}\r\nGET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 200]);
    expect(r.text.indexOf('slow')).toBeLessThan(r.text.indexOf('/after'));
    expect(backend.events).toEqual(['recv /slow', 'sent /slow', 'recv /after', 'sent /after']);
  });

  it('keeps upstream connections alive: many requests, one upstream connection', async () => {
    const before = backend.connections();
    for (let i = 0; i < 10; i++) expect((await request(portico.httpPort, `/n${i}`, { host: 'fast.test' })).status).toBe(200);
    expect(backend.connections() - before).toBeLessThanOrEqual(1);
  });

  it('relays a chunked response with its trailers to an HTTP/1.1 client, and de-chunks it for HTTP/1.0', async () => {
    const r11 = await rawExchange(portico.httpPort, `GET /chunked HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(r11.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r11.text).toMatch(/\r\nTransfer-Encoding: chunked\r\n/i);
    expect(r11.text.endsWith('3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n')).toBe(true);
    const r10 = await rawExchange(portico.httpPort, `GET /chunked HTTP/1.0\r\n${H}\r\n`);
    expect(r10.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r10.text).not.toMatch(/transfer-encoding/i);
    expect(r10.text.endsWith('\r\n\r\nabcde')).toBe(true);
    expect(r10.closed).toBe(true);
  });

  it('a close-delimited upstream body reaches the client whole, and ends its connection', async () => {
    const r = await rawExchange(portico.httpPort, `GET /close HTTP/1.1\r\n${H}\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(r.text.endsWith('\r\n\r\nuntil the end')).toBe(true);
    expect(r.closed).toBe(true);
  });

  it('HEAD, 204 and 103: no body where there is none, interim hints passed on, the connection stays usable', async () => {
    const r = await rawExchange(portico.httpPort, `HEAD /head HTTP/1.1\r\n${H}\r\nGET /nocontent HTTP/1.1\r\n${H}\r\nGET /hints HTTP/1.1\r\n${H}\r\nGET /last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 204, 103, 200, 200]);
    expect(r.text).toMatch(/Content-Length: 1000\r\n/);
    expect(r.text).toMatch(/HTTP\/1\.1 103 Early Hints\r\nLink: <\/style.css>; rel=preload\r\n\r\n/);
    // The 204's Content-Length is dropped (RFC 9110 8.6).
    const noContent = r.text.slice(r.text.indexOf('HTTP/1.1 204'), r.text.indexOf('HTTP/1.1 103'));
    expect(noContent).not.toMatch(/content-length/i);
    expect(r.text.endsWith('/last')).toBe(true);
  });

  it('relays request bodies (Content-Length and chunked) and answers Expect: 100-continue', async () => {
    const r = await rawExchange(portico.httpPort, `POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloPOST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nwiki\r\n0\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 200]);
    expect(r.text).toContain('got 5:hello');
    expect(r.text).toContain('got 14:4\r\nwiki\r\n0\r\n\r\n');
    const chunkedSeen = backend.seen.filter((s) => s.path === '/echo').at(-1)!;
    expect(chunkedSeen.head).toMatch(/\r\nTransfer-Encoding: chunked/i);
    const cont = await rawExchange(portico.httpPort, `POST /echo HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`);
    expect(statuses(cont.text)).toEqual([100, 200]);
    expect(backend.seen.at(-1)!.head).not.toMatch(/\r\nexpect:/i);
    // Any other expectation is refused, as node:http refuses it.
    const other = await rawExchange(portico.httpPort, `GET /expect HTTP/1.1\r\n${H}Expect: teapot\r\nConnection: close\r\n\r\n`);
    expect(statuses(other.text)).toEqual([417]);
    expect(backend.seen.some((x) => x.path === '/expect')).toBe(false);
  });

  it('an upstream response with both Content-Length and chunked is framed by the chunking, and its connection not reused', async () => {
    const r = await rawExchange(portico.httpPort, `GET /both HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200]);
    expect(r.text).not.toMatch(/content-length/i);
    expect(r.text.endsWith('5\r\nhello\r\n0\r\n\r\n')).toBe(true);
    expect((await request(portico.httpPort, '/after-both', { host: 'fast.test' })).status).toBe(200);
    const on = (path: string) => backend.seen.find((x) => x.path === path)!.connection;
    expect(on('/after-both')).not.toBe(on('/both'));
  });

  it('a client listing Content-Length in Connection does not strip the framing: the body stays the body upstream', async () => {
    const before = backend.seen.length;
    const r = await rawExchange(portico.httpPort, `POST /echo HTTP/1.1\r\n${H}Connection: Content-Length\r\nContent-Length: 43\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: fast.test\r\n\r\nGET /last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 200]);
    expect(r.text).toContain('got 43:GET /smuggled');
    const paths = backend.seen.slice(before).map((x) => x.path);
    expect(paths).toEqual(['/echo', '/last']);
    expect(backend.seen[before].head).toMatch(/\r\nContent-Length: 43/i);
  });

  it('an upstream listing Content-Length in Connection does not leave the client without the framing', async () => {
    const r = await rawExchange(portico.httpPort, `GET /conn-cl HTTP/1.1\r\n${H}\r\nGET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200, 200]);
    expect(r.text).toMatch(/\r\nContent-Length: 4\r\n[\s\S]*\r\n\r\nfourHTTP\/1\.1 200/);
  });

  it('an upstream response two readers could frame differently is a 502, and not passed on', async () => {
    const r = await rawExchange(portico.httpPort, `GET /broken HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([502]);
    expect(r.text).not.toContain('X-Bad');
  });

  it('forwards the X-Forwarded-* set and drops hop-by-hop headers, as the node path does', async () => {
    await rawExchange(portico.httpPort, `GET /hdr HTTP/1.1\r\n${H}Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\nX-Keep: yes\r\n\r\n`);
    const h = backend.seen.find((s) => s.path === '/hdr')!.head.toLowerCase();
    expect(h).toContain('\r\nhost: fast.test');
    expect(h).toContain('\r\nx-keep: yes');
    expect(h).toContain('\r\nx-forwarded-for: 127.0.0.1');
    expect(h).toContain('\r\nx-real-ip: 127.0.0.1');
    expect(h).toContain('\r\nx-forwarded-proto: http');
    expect(h).not.toContain('x-hop');
    expect(h).not.toContain('keep-alive');
    expect(h).not.toContain('6.6.6.6');
  });

  it('relays the response fields it keeps byte for byte, between the hop-by-hop ones it drops', async () => {
    const r = await rawExchange(portico.httpPort, `GET /fields HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    const [head, body] = r.text.split('\r\n\r\n');
    expect(body).toBe('ok');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 200 OK');
    // The upstream's own fields, in its order and spelling, a latin1 byte kept as one byte.
    expect(lines.filter((l) => /^(X-|Server|Date)/.test(l))).toEqual(['X-A: 1', 'X-B:two', 'X-C: caf\xe9', 'Server: raw', 'Date: Thu, 01 Jan 2026 00:00:00 GMT']);
    expect(lines.filter((l) => /^content-length:/i.test(l))).toEqual(['Content-Length: 2']);
    expect(head).not.toMatch(/proxy-connection|timeout=5|keep-alive/i);
    expect(lines).toContain('Connection: close');
  });

  it('passes obs-text bytes in header values through unchanged, both ways', async () => {
    const r = await rawExchange(portico.httpPort, Buffer.from(`GET /bytes HTTP/1.1\r\n${H}X-Latin: caf\xe9\r\nConnection: close\r\n\r\n`, 'latin1'));
    expect(statuses(r.text)).toEqual([200]);
    const seen = backend.seen.find((x) => x.path === '/bytes')!;
    // Recorded as latin1: one byte 0xE9, not the two of its UTF-8 encoding.
    expect(seen.head).toContain('X-Latin: caf\xe9\r\n');
  });

  it('serves TLS-terminated HTTP/1.1 too: pipelined in order, X-Forwarded-Proto https, a Date added', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: portico.httpsPort, host: '127.0.0.1', servername: 'fast.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        s.write(`GET /slow HTTP/1.1\r\n${H}\r\nGET /tls HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      });
      let out = '';
      s.on('data', (c) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(statuses(text)).toEqual([200, 200]);
    expect(text.indexOf('slow')).toBeLessThan(text.indexOf('/tls'));
    expect(text).toMatch(/\r\nDate: [A-Z][a-z]{2}, \d{2} /);
    expect(backend.seen.find((x) => x.path === '/tls')!.head.toLowerCase()).toContain('\r\nx-forwarded-proto: https');
  });

  it('over TLS, an Upgrade pipelined behind a request goes to node:http after that answer is written, both in order', async () => {
    // A TLS answer is still being written when the next request is read; node:http must only get
    // the socket once it is written (TLS takes one write at a time).
    const text = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port: portico.httpsPort, host: '127.0.0.1', servername: 'fast.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
        // Then an upgrade node:http answers at once (no route has this path's host), and one it relays.
        s.write(`GET /first HTTP/1.1\r\n${H}\r\nGET /ws HTTP/1.1\r\nHost: nowhere.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      let out = '';
      s.on('data', (c) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
      setTimeout(() => s.destroy(), 2000);
    });
    expect(statuses(text).length).toBeGreaterThanOrEqual(2);
    expect(text.indexOf('/first')).toBeGreaterThan(0);
    expect(text.indexOf('/first')).toBeLessThan(text.lastIndexOf('HTTP/1.1 '));
    // The worker is still there.
    const r = await rawExchange(portico.httpPort, `GET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    expect(statuses(r.text)).toEqual([200]);
  });

  it('a client that ends its side in the middle of a request body gets 400 and a close at once, not a wait for the request timeout', async () => {
    const halfClose = (data: string): Promise<{ text: string; ms: number }> =>
      new Promise((resolve) => {
        const started = Date.now();
        const s = net.connect(portico.httpPort, '127.0.0.1', () => s.end(data));
        let out = '';
        const done = (): void => {
          clearTimeout(timer);
          s.destroy();
          resolve({ text: out, ms: Date.now() - started });
        };
        const timer = setTimeout(done, 5000);
        s.on('data', (c: Buffer) => (out += c.toString('latin1')));
        s.on('close', done);
        s.on('error', () => undefined);
      });
    for (const req of [
      `POST /echo HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\nfive!`,
      `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nfive!\r\n`,
      `POST /echo HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n`,
    ]) {
      const r = await halfClose(req);
      expect(statuses(r.text)).toEqual([400]);
      expect(r.text).toContain('the client closed its side before the body was complete');
      expect(r.ms).toBeLessThan(4000);
    }
    // A body that is complete when the client ends its side is served as usual.
    const ok = await halfClose(`POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nfive!`);
    expect(statuses(ok.text)).toEqual([200]);
    expect(ok.text).toContain('got 5:five!');
  });

  it('the status line: an HTTP/1.1 one with a reason as it came, else made as HTTP/1.1 with the standard reason', async () => {
    const one = async (path: string): Promise<string> => (await rawExchange(portico.httpPort, `GET ${path} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`)).text;
    expect(await one('/reason')).toMatch(/^HTTP\/1\.1 299 Fine By Me\r\nX-One: 1\r\nContent-Length: 2\r\n/);
    expect(await one('/no-reason')).toMatch(/^HTTP\/1\.1 404 Not Found\r\nContent-Length: 2\r\n/);
    expect(await one('/http10')).toMatch(/^HTTP\/1\.1 200 Okay Then\r\nContent-Length: 2\r\n/);
    const nf = await one('/no-fields');
    expect(nf).toMatch(/^HTTP\/1\.1 204 Nothing Here\r\nDate: /);
    expect(nf.endsWith('\r\n\r\n')).toBe(true);
  });

  it('an Upgrade request is handed to node:http with the bytes already read (and answered there)', async () => {
    const r = await rawExchange(portico.httpPort, `GET /ws HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`, { waitMs: 1500 });
    // The raw backend does not speak WebSocket: it answers 200, which node's upgrade handler relays.
    expect(statuses(r.text).length).toBeGreaterThan(0);
    expect(backend.seen.some((s) => s.path === '/ws' && /\r\nupgrade: websocket/i.test(s.head))).toBe(true);
  });
});
