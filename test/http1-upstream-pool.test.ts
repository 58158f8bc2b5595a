// The fast path's upstream side: pooled raw connections against real loopback servers, and the
// response-head parser and body framing the relay relies on.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyFramer } from '../src/http1/body.ts';
import { parseResponseHead, responseFraming, type ResponseHead } from '../src/http1/response-head.ts';
import { CONNECT_TIMEOUT, UpstreamSocketPool, isConnectError, type UpstreamConnection, type UpstreamTarget } from '../src/http1/upstream-pool.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A loopback server that counts connections and lets each test script what sockets do. */
async function server(onSocket: (s: net.Socket) => void): Promise<{ port: number; connections: () => number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, connections: () => sockets.length, sockets };
}

/** Answers every request head (no bodies) with a fixed response. */
function answering(response: string): (s: net.Socket) => void {
  return (s) => {
    let buf = '';
    s.on('data', (c) => {
      buf += c.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(i + 4);
        s.write(response);
      }
    });
  };
}

function pool(o: Partial<{ maxPerEndpoint: number; idleTimeoutMs: number; connectTimeoutMs: number }> = {}): UpstreamSocketPool {
  const p = new UpstreamSocketPool({ maxPerEndpoint: o.maxPerEndpoint ?? 8, idleTimeoutMs: o.idleTimeoutMs ?? 5000, connectTimeoutMs: o.connectTimeoutMs ?? 2000 });
  cleanups.push(() => p.closeAll());
  return p;
}

function acquire(p: UpstreamSocketPool, t: UpstreamTarget): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => p.acquire(t, { onConnection: resolve, onConnectError: reject }));
}

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sends one request on a pooled connection and reads the response as the relay frames it. */
function exchange(conn: UpstreamConnection, method: string): Promise<{ head: ResponseHead; body: Buffer; leftover: number; closed: boolean }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let head: ResponseHead | undefined;
    let framer: BodyFramer | undefined;
    const body: Buffer[] = [];
    const finish = (closed: boolean, leftover: number) => resolve({ head: head!, body: Buffer.concat(body), leftover, closed });
    const consume = (): void => {
      for (;;) {
        if (head === undefined) {
          const r = parseResponseHead(buf, 0, 16384);
          if (r.kind === 'incomplete') return;
          if (r.kind === 'error') return reject(new Error(r.reason));
          buf = buf.subarray(r.head.headLength);
          if (r.head.status < 200) continue; // interim
          head = r.head;
          framer = new BodyFramer(responseFraming(head, method), head.contentLength);
        }
        const f = framer!;
        const prog = f.feed(buf, 0);
        if (prog.error !== undefined) return reject(new Error(prog.error));
        body.push(buf.subarray(0, prog.consumed));
        buf = buf.subarray(prog.consumed);
        if (f.done) return finish(false, buf.length);
        return;
      }
    };
    conn.user = {
      onUpstreamData: (c) => {
        buf = Buffer.concat([buf, c]);
        consume();
      },
      onUpstreamClose: () => {
        if (framer?.endOfInput() === true) finish(true, 0);
        else reject(new Error('closed before the response ended'));
      },
      onUpstreamDrain: () => undefined,
    };
    conn.write(`${method} / HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

describe('upstream pool', () => {
  it('reuses a kept-alive connection: one TCP connection for sequential requests', async () => {
    const srv = await server(answering('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const p = pool();
    const t = { address: '127.0.0.1', port: srv.port };
    for (let i = 0; i < 5; i++) {
      const conn = await acquire(p, t);
      const r = await exchange(conn, 'GET');
      expect(r.body.toString()).toBe('ok');
      p.release(conn, true);
    }
    expect(srv.connections()).toBe(1);
    expect(p.stats(t)).toMatchObject({ open: 1, idle: 1 });
  });

  it('caps connections per endpoint; a request over the cap waits for a released one', async () => {
    const srv = await server(answering('HTTP/1.1 204 No Content\r\n\r\n'));
    const p = pool({ maxPerEndpoint: 2 });
    const t = { address: '127.0.0.1', port: srv.port };
    const a = await acquire(p, t);
    const b = await acquire(p, t);
    let third: UpstreamConnection | undefined;
    p.acquire(t, { onConnection: (c) => (third = c), onConnectError: () => undefined });
    await new Promise((r) => setTimeout(r, 50));
    expect(third).toBeUndefined();
    expect(p.stats(t)).toMatchObject({ open: 2, waiting: 1 });
    p.release(a, true);
    expect(third).toBe(a);
    p.release(b, true);
    p.release(third!, true);
    expect(srv.connections()).toBe(2);
  });

  it('a waiter over the cap gets a new connection when one is closed instead of released', async () => {
    const srv = await server(answering('HTTP/1.1 204 No Content\r\n\r\n'));
    const p = pool({ maxPerEndpoint: 1 });
    const t = { address: '127.0.0.1', port: srv.port };
    const a = await acquire(p, t);
    const next = acquire(p, t);
    p.release(a, false);
    const b = await next;
    expect(b).not.toBe(a);
    expect((await exchange(b, 'GET')).head.status).toBe(204);
  });

  it('closes connections idle longer than the idle timeout', async () => {
    const srv = await server(answering('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const p = pool({ idleTimeoutMs: 100 });
    const t = { address: '127.0.0.1', port: srv.port };
    const conn = await acquire(p, t);
    await exchange(conn, 'GET');
    p.release(conn, true);
    expect(p.stats(t).idle).toBe(1);
    await until('idle eviction', () => p.stats(t).open === 0);
    expect(conn.socket.destroyed).toBe(true);
  });

  it('evicts an idle connection the upstream closed, and opens a new one for the next request', async () => {
    const srv = await server(answering('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const p = pool();
    const t = { address: '127.0.0.1', port: srv.port };
    const conn = await acquire(p, t);
    await exchange(conn, 'GET');
    p.release(conn, true);
    srv.sockets[0].end();
    await until('eviction', () => p.stats(t).open === 0);
    const again = await acquire(p, t);
    expect(again).not.toBe(conn);
    expect((await exchange(again, 'GET')).head.status).toBe(200);
    expect(srv.connections()).toBe(2);
  });

  it('evicts an idle connection on which the upstream sent unrequested bytes', async () => {
    const srv = await server(answering('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const p = pool();
    const t = { address: '127.0.0.1', port: srv.port };
    const conn = await acquire(p, t);
    await exchange(conn, 'GET');
    p.release(conn, true);
    srv.sockets[0].write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    await until('eviction', () => p.stats(t).open === 0);
    expect(conn.socket.destroyed).toBe(true);
  });

  it('a response followed by extra bytes is seen as such (the relay then does not reuse the connection)', async () => {
    const srv = await server(answering('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'));
    const p = pool();
    const conn = await acquire(p, { address: '127.0.0.1', port: srv.port });
    const r = await exchange(conn, 'GET');
    expect(r.body.toString()).toBe('ok');
    expect(r.leftover).toBe(5);
    void srv;
  });

  it('a refused connection is a connect error', async () => {
    const srv = await server(() => undefined);
    const port = srv.port;
    cleanups.shift()!(); // close the server: the port refuses
    await new Promise((r) => setTimeout(r, 20));
    const p = pool();
    const err = await acquire(p, { address: '127.0.0.1', port }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('ECONNREFUSED');
    expect(isConnectError(err)).toBe(true);
    expect(p.stats({ address: '127.0.0.1', port }).open).toBe(0);
  });

  it('a connect that does not finish in time fails with a connect timeout (TLS to a server that never answers the hello)', async () => {
    const srv = await server(() => undefined);
    const p = pool({ connectTimeoutMs: 150 });
    const t = { address: '127.0.0.1', port: srv.port, tls: true };
    const err = await acquire(p, t).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe(CONNECT_TIMEOUT);
    expect(isConnectError(err)).toBe(true);
    expect(p.stats(t).open).toBe(0);
  });
});

describe('response framing', () => {
  const parse = (s: string) => parseResponseHead(Buffer.from(s, 'latin1'), 0, 16384);
  const ok = (s: string): ResponseHead => {
    const r = parse(s);
    if (r.kind !== 'ok') throw new Error(`expected a head: ${JSON.stringify(r)}`);
    return r.head;
  };

  it('derives the framing RFC 9112 6.3 gives each response', () => {
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 'GET')).toBe('length');
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 'GET')).toBe('none');
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), 'GET')).toBe('chunked');
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\n\r\n'), 'GET')).toBe('close');
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 'HEAD')).toBe('none');
    expect(responseFraming(ok('HTTP/1.1 204 No Content\r\n\r\n'), 'GET')).toBe('none');
    expect(responseFraming(ok('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'), 'GET')).toBe('none');
    expect(responseFraming(ok('HTTP/1.1 100 Continue\r\n\r\n'), 'POST')).toBe('none');
    expect(responseFraming(ok('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'), 'GET')).toBe('none');
    // Transfer-Encoding wins over Content-Length.
    expect(responseFraming(ok('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), 'GET')).toBe('chunked');
  });

  it('reads status, reason, version and keep-alive', () => {
    const h = ok('HTTP/1.1 404 Not Found\r\nConnection: close\r\nX-A: b\r\n\r\n');
    expect(h).toMatchObject({ status: 404, reason: 'Not Found', versionMinor: 1, keepAlive: false, rawHeaders: ['Connection', 'close', 'X-A', 'b'] });
    expect(ok('HTTP/1.0 200 OK\r\n\r\n').keepAlive).toBe(false);
    expect(ok('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n').keepAlive).toBe(true);
    expect(ok('HTTP/1.1 200\r\n\r\n')).toMatchObject({ status: 200, reason: '' });
    expect(parse('HTTP/1.1 200 OK\r\nX: y').kind).toBe('incomplete');
    expect(parse('HTTP/1.').kind).toBe('incomplete');
  });

  it('refuses what two readers could frame differently', () => {
    for (const bad of [
      'HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n',
      'HTTP/2.0 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'SSH-2.0-OpenSSH\r\n',
    ]) {
      expect(parse(bad).kind, JSON.stringify(bad)).toBe('error');
    }
    // The same length twice is one length.
    expect(ok('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n').contentLength).toBe(2);
    expect(parse(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20000)}\r\n\r\n`).kind).toBe('error');
  });

  it('over real connections: chunked with trailers, close-delimited, HEAD, and interim responses before the final one', async () => {
    const responses: Record<string, string> = {
      chunked: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n',
      head: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
      interim: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx',
      close: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-the-end',
    };
    let which = 'chunked';
    const srv = await server((s) => {
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString('latin1');
        for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
          buf = buf.slice(i + 4);
          s.write(responses[which]);
          if (which === 'close') s.end();
        }
      });
    });
    const p = pool();
    const t = { address: '127.0.0.1', port: srv.port };
    let conn = await acquire(p, t);
    const chunked = await exchange(conn, 'GET');
    expect(chunked.body.toString('latin1')).toBe('3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n');
    expect(chunked.leftover).toBe(0);
    p.release(conn, true);
    which = 'head';
    conn = await acquire(p, t);
    const head = await exchange(conn, 'HEAD');
    expect(head.head.contentLength).toBe(100);
    expect(head.body.length).toBe(0);
    p.release(conn, true);
    which = 'interim';
    conn = await acquire(p, t);
    const interim = await exchange(conn, 'POST');
    expect(interim.head.status).toBe(201);
    expect(interim.body.toString()).toBe('x');
    p.release(conn, true);
    which = 'close';
    conn = await acquire(p, t);
    const closed = await exchange(conn, 'GET');
    expect(closed).toMatchObject({ closed: true });
    expect(closed.body.toString()).toBe('until-the-end');
    expect(srv.connections()).toBe(1);
  });

  it('de-chunks for a reader that cannot take chunked (an HTTP/1.0 client)', () => {
    const f = new BodyFramer('chunked', -1);
    const out: string[] = [];
    f.chunked!.onData = (b, s, e) => out.push(Buffer.from(b.subarray(s, e)).toString());
    const body = Buffer.from('3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    // Fed a byte at a time, as a slow upstream would deliver it.
    for (let i = 0; i < body.length; i++) expect(f.feed(body.subarray(i, i + 1), 0).error).toBeUndefined();
    expect(f.done).toBe(true);
    expect(out.join('')).toBe('abcde');
  });
});
