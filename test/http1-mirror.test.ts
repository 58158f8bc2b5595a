// RequestMirror on the HTTP/1.1 fast path, against the server itself (src/http1/server.ts) with a
// compiled table and loopback backends: the mirror gets the forwarded head (after the header
// filters) and the whole body, its answer is dropped, a mirror that never answers delays
// nothing, and the worker's caps on copies in flight and bytes held drop or cut copies, never
// the request.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTable, type RoutingIR } from '../router/index.ts';
import { FastHttp1Server } from '../src/http1/server.ts';
import { configureMirrors, mirrorBudget, mirrorRequests } from '../src/mirror.ts';
import { UpstreamSocketPool } from '../src/http1/upstream-pool.ts';
import { createLogger } from '../src/log.ts';
import { parseRealIpSettings } from '../src/realip/config.ts';
import { rawExchange } from './helpers/http.ts';

interface Backend { port: number; requests: { head: string; body: string }[]; close(): void }

/** Records each request (head, Content-Length body); answers `answer` unless it is undefined (never answers). */
async function backend(answer: string | undefined): Promise<Backend> {
  const requests: { head: string; body: string }[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const cl = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + cl) return;
        requests.push({ head, body: buf.subarray(end + 4, end + 4 + cl).toString('latin1') });
        buf = buf.subarray(end + 4 + cl);
        if (answer !== undefined) s.write(answer);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    requests,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

let main: Backend;
let mirror: Backend;
let silent: Backend;
/** Accepts connections and never reads from them. */
let stuck: net.Server;
const stuckSockets: net.Socket[] = [];
let port = 0;
let listener: net.Server;

beforeAll(async () => {
  main = await backend('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmain');
  mirror = await backend('HTTP/1.1 500 Oops\r\nContent-Length: 6\r\n\r\nmirror');
  silent = await backend(undefined);
  stuck = net.createServer((s) => {
    stuckSockets.push(s);
    s.pause();
  });
  await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
  const route = (id: string, path: string, mirrors: string[]) => ({
    id, pathType: 'Prefix' as const, path, backends: [{ backend: 'main', weight: 1 }],
    filters: { requestHeaders: { set: [{ name: 'X-Filtered', value: 'yes' }] }, mirrors: mirrors.map((b) => ({ backend: b, fraction: 1 })) },
    source: { kind: 'HTTPRoute', namespace: 'default', name: id },
  });
  const ir = {
    virtualHosts: [{ hostname: 'm.test', routes: [route('silent', '/silent', ['silent']), route('stuck', '/stuck', ['stuck']), route('both', '/', ['mirror'])] }],
    backends: {
      main: { name: 'default/main:80', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: main.port }] },
      mirror: { name: 'default/mirror:80', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: mirror.port }] },
      silent: { name: 'default/silent:80', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: silent.port }] },
      stuck: { name: 'default/stuck:80', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: (stuck.address() as net.AddressInfo).port }] },
    },
  } as unknown as RoutingIR;
  const table = compileTable(ir, 1);
  const server = new FastHttp1Server({
    limits: { maxHeaderSize: 16384, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, maxConnections: 100 },
    log: createLogger('silent', {}),
    accessLog: false,
    table: () => table,
    decision: { httpsPort: 443 },
    realIp: parseRealIpSettings({}).config,
    pool: new UpstreamSocketPool({ maxPerEndpoint: 8, idleTimeoutMs: 2000, connectTimeoutMs: 1000 }),
    upstreamTimeoutMs: 5000,
    handOff: (s) => s.destroy(),
  });
  listener = net.createServer((s) => server.handle(s));
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  port = (listener.address() as net.AddressInfo).port;
}, 30_000);

afterAll(() => {
  listener?.close();
  for (const b of [main, mirror, silent]) b?.close();
  for (const s of stuckSockets) s.destroy();
  stuck?.close();
});

/** The count of portico_mirror_requests_total{result} (this process is the worker here). */
async function counted(result: string): Promise<number> {
  return (await mirrorRequests.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('RequestMirror on the fast path', () => {
  it('the mirror gets the filtered head and the whole body; the client gets the main answer only', async () => {
    const body = 'x'.repeat(300_000);
    const r = await rawExchange(port, `POST /upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text.endsWith('main')).toBe(true);
    expect(r.text).not.toContain('mirror');
    await until('the mirror copy', () => mirror.requests.length === 1);
    const [seen] = mirror.requests;
    expect(seen.head).toMatch(/^POST \/upload HTTP\/1\.1\r\n/);
    expect(seen.head).toMatch(/\r\nX-Filtered: yes/i);
    expect(seen.head).toMatch(/\r\nx-forwarded-for: 127\.0\.0\.1/i);
    expect(seen.body.length).toBe(body.length);
    expect(main.requests.at(-1)!.body.length).toBe(body.length);
  });

  it('past the worker cap on copies in flight, a copy is dropped (busy), and the request is served as usual', async () => {
    try {
      const seen = silent.requests.length;
      configureMirrors({ connectTimeoutMs: 1000, maxInFlight: mirrorBudget.inFlight + 1 });
      // The silent mirror keeps its copy in flight (it never answers): the cap is reached.
      expect((await rawExchange(port, 'GET /silent HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n')).text).toMatch(/^HTTP\/1\.1 200 /);
      await until('the silent copy', () => silent.requests.length === seen + 1);
      const busy = await counted('busy');
      const mirrored = mirror.requests.length;
      const r = await rawExchange(port, 'GET /capped HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n');
      expect(r.text).toMatch(/^HTTP\/1\.1 200 [^]*main$/);
      expect(await counted('busy')).toBe(busy + 1);
      expect(main.requests.at(-1)!.head).toMatch(/^GET \/capped /);
      // Nothing was queued for later either.
      await new Promise((r) => setTimeout(r, 100));
      expect(mirror.requests.length).toBe(mirrored);
    } finally {
      configureMirrors({ connectTimeoutMs: 1000, maxInFlight: 512 });
    }
  });

  it('a copy that would pass the bytes the worker\'s copies may hold is cut; the request and its body go through whole', async () => {
    try {
      // The body comes with the head in one write: its first bytes reach the copy before its
      // connection is up, queued, and those alone pass the bound.
      configureMirrors({ connectTimeoutMs: 1000, totalBuffer: mirrorBudget.held + 1000 });
      const cut = await counted('cut');
      const inFlight = mirrorBudget.inFlight;
      const body = 'y'.repeat(200_000);
      const r = await rawExchange(port, `POST /stuck HTTP/1.1\r\nHost: m.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      expect(r.text).toMatch(/^HTTP\/1\.1 200 [^]*main$/);
      expect(main.requests.at(-1)!.body.length).toBe(body.length);
      await until('the cut counted', () => mirrorBudget.inFlight === inFlight);
      expect(await counted('cut')).toBe(cut + 1);
    } finally {
      configureMirrors({ connectTimeoutMs: 1000, totalBuffer: 64 << 20 });
    }
  });

  it('a mirror that never answers does not hold the answer', async () => {
    const seen = silent.requests.length;
    const r = await rawExchange(port, 'GET /silent HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n', { waitMs: 3000 });
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.closed).toBe(true);
    await until('the silent mirror copy', () => silent.requests.length === seen + 1);
  });
});
