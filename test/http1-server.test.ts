// The fast path's failure handling, against the server itself (src/http1/server.ts) with a
// compiled table and scripted loopback backends: a client that leaves mid-response, an upstream
// that dies mid-body or goes silent, and a request waiting for a connection at the endpoint's cap.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTable, type RoutingIR } from '../router/index.ts';
import { FastHttp1Server } from '../src/http1/server.ts';
import { UpstreamSocketPool } from '../src/http1/upstream-pool.ts';
import { createLogger } from '../src/log.ts';
import { parseRealIpSettings } from '../src/realip/config.ts';
import { rawExchange } from './helpers/http.ts';

/** Upstream sockets by the path of the request they carry, and how each one behaves. */
let upstreamSockets: net.Socket[] = [];
let upstreamPort = 0;
let upstream: net.Server;
let port = 0;
let listener: net.Server;
let pool: UpstreamSocketPool;

const behaviours: Record<string, (s: net.Socket) => void> = {
  // Half the declared body, then the connection dies.
  '/dies': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(50));
    setTimeout(() => s.destroy(), 50);
  },
  // A head, then nothing.
  '/stalls': (s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'),
  // Nothing at all.
  '/silent': () => undefined,
  // A large body, slowly enough for a client to leave in the middle.
  '/large': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n');
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(Buffer.alloc(65536, 120))), 5);
  },
  '/ok': (s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
};

beforeAll(async () => {
  upstream = net.createServer((s) => {
    upstreamSockets.push(s);
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (c) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const path = buf.split(' ')[1];
      buf = buf.slice(end + 4);
      behaviours[path]?.(s);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as net.AddressInfo).port;
  const ir = {
    virtualHosts: [{ hostname: 's.test', routes: [{ id: 'r', pathType: 'Prefix', path: '/', backends: [{ backend: 'b', weight: 1 }], timeoutMs: 400, source: { kind: 'Ingress', namespace: 'default', name: 'r' } }] }],
    backends: { b: { name: 'default/b:80', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] } },
  } as unknown as RoutingIR;
  const table = compileTable(ir, 1);
  pool = new UpstreamSocketPool({ maxPerEndpoint: 1, idleTimeoutMs: 2000, connectTimeoutMs: 1000 });
  const server = new FastHttp1Server({
    limits: { maxHeaderSize: 16384, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, maxConnections: 100 },
    log: createLogger('silent', {}),
    accessLog: false,
    table: () => table,
    decision: { httpsPort: 443 },
    realIp: parseRealIpSettings({}).config,
    pool,
    upstreamTimeoutMs: 5000,
    handOff: (s) => s.destroy(),
  });
  listener = net.createServer((s) => server.handle(s));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  port = (listener.address() as net.AddressInfo).port;
}, 30_000);

afterAll(() => {
  listener?.close();
  for (const s of upstreamSockets) s.destroy();
  upstream?.close();
  pool?.closeAll();
});

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const target = () => ({ address: '127.0.0.1', port: upstreamPort });
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: s.test\r\n\r\n`;

describe('fast path failures', () => {
  it('an upstream that dies mid-body: the client connection is cut (its response cannot end well), the upstream one dropped', async () => {
    const r = await rawExchange(port, get('/dies'), { waitMs: 3000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text.endsWith('x'.repeat(50))).toBe(true);
    expect(r.closed).toBe(true);
    expect(pool.stats(target()).open).toBe(0);
  });

  it('an upstream that stops in the middle of a body: cut after the route timeout (between reads)', async () => {
    // rawExchange gives up after 4 s: closed means Portico cut it.
    const r = await rawExchange(port, get('/stalls'), { waitMs: 4000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.closed).toBe(true);
    await until('the upstream connection dropped', () => pool.stats(target()).open === 0);
  });

  it('an upstream that never answers: 504 after the route timeout, the connection dropped', async () => {
    const r = await rawExchange(port, `GET /silent HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n`, { waitMs: 4000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 504 /);
    expect(r.text).toContain('upstream timed out');
    await until('the upstream connection dropped', () => pool.stats(target()).open === 0);
  });

  it('a client that leaves mid-response: the upstream connection is dropped, not returned with unread bytes', async () => {
    const before = upstreamSockets.length;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      let got = 0;
      client.on('data', (c) => {
        got += c.length;
        if (got > 200_000) {
          client.destroy();
          resolve();
        }
      });
      client.write(get('/large'));
    });
    await until('the upstream connection closed', () => upstreamSockets.slice(before).every((s) => s.destroyed) && pool.stats(target()).open === 0);
    // The next request gets a fresh connection and a whole answer.
    const r = await rawExchange(port, `GET /ok HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nok$/);
  });

  it('at the endpoint cap, a request waits for the connection, and one whose client left is forgotten', async () => {
    // The cap is 1: /silent holds the connection until its timeout; the GET behind it waits.
    pool.retainOnly(new Set()); // no idle connection left from the tests before
    await until('no connection', () => pool.stats(target()).open === 0);
    const holder = rawExchange(port, `GET /silent HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n`, { waitMs: 4000 });
    await until('the held connection', () => pool.stats(target()).open === 1 && pool.stats(target()).idle === 0);
    const leaver = net.connect(port, '127.0.0.1');
    leaver.on('error', () => undefined);
    leaver.write(get('/ok'));
    await until('a waiter', () => pool.stats(target()).waiting === 1);
    leaver.destroy();
    await until('the waiter forgotten', () => pool.stats(target()).waiting === 0);
    const waiting = rawExchange(port, `GET /ok HTTP/1.1\r\nHost: s.test\r\nConnection: close\r\n\r\n`, { waitMs: 4000 });
    const [held, served] = await Promise.all([holder, waiting]);
    expect(held.text).toMatch(/^HTTP\/1\.1 504 /);
    expect(served.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*ok$/);
  });
});
