// The fast path's socket I/O on the libuv handle (src/http1/socket-io.ts), against real loopback
// sockets: what is read arrives whole and in order, writes keep their order under backpressure,
// end of stream and errors still reach the socket's own events, and a detached socket is Node's
// stream again with nothing lost.

import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { rawIoUnavailable, socketIo, type IoSink, type SocketIo } from '../src/http1/socket-io.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A connected pair: `server` is the accepted socket (what the fast path gets), `client` the peer. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket }> {
  let accepted!: (s: net.Socket) => void;
  const got = new Promise<net.Socket>((r) => (accepted = r));
  const srv = net.createServer((s) => accepted(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  const server = await got;
  server.on('error', () => undefined);
  cleanups.push(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return { server, client };
}

/** The same over TLS, once the server side's handshake is done. */
async function tlsPair(): Promise<{ server: tls.TLSSocket; client: tls.TLSSocket }> {
  const { certPem: cert, keyPem: key } = generateSelfSigned({ dnsNames: ['io.test'] });
  let accepted!: (s: tls.TLSSocket) => void;
  const got = new Promise<tls.TLSSocket>((r) => (accepted = r));
  const srv = tls.createServer({ cert, key }, (s) => accepted(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
  client.on('error', () => undefined);
  const server = await got;
  server.on('error', () => undefined);
  cleanups.push(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return { server, client };
}

class Recorder implements IoSink {
  chunks: Buffer[] = [];
  drains = 0;
  onIoData(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk));
  }
  onIoDrain(): void {
    this.drains++;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function readAll(s: net.Socket): { text: () => string; bytes: () => number } {
  const parts: Buffer[] = [];
  let n = 0;
  s.on('data', (b: Buffer) => {
    parts.push(b);
    n += b.length;
  });
  return { text: () => Buffer.concat(parts).toString('latin1'), bytes: () => n };
}

describe('socket I/O on the handle', () => {
  it('is available on this Node (the bench and the fast path rely on it)', () => {
    expect(rawIoUnavailable).toBeUndefined();
  });

  it('takes a plain TCP socket: reads arrive in order, whole, without the stream emitting data', async () => {
    const { server, client } = await pair();
    const sink = new Recorder();
    let streamData = 0;
    const io = socketIo(server, sink);
    server.on('data', () => streamData++);
    expect(io.raw).toBe(true);
    const sent: string[] = [];
    for (let i = 0; i < 50; i++) {
      const part = `part ${i};`.repeat(1 + (i % 7));
      sent.push(part);
      client.write(part);
    }
    await until('all bytes', () => sink.text.length === sent.join('').length);
    expect(sink.text).toBe(sent.join(''));
    expect(streamData).toBe(0);
  });

  it('writes strings as latin1 and buffers in order; a large write asks to wait and drains once sent', async () => {
    const { server, client } = await pair();
    const sink = new Recorder();
    const io = socketIo(server, sink);
    const got = readAll(client);
    client.pause();
    expect(io.write('caf\xe9 ')).toBe(true);
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    let accepted = true;
    for (let i = 0; i < 4 && accepted; i++) accepted = io.write(big);
    // The peer does not read: the kernel's buffers fill and the handle holds the rest.
    expect(accepted).toBe(false);
    expect(io.pendingBytes()).toBeGreaterThan(0);
    io.write(' end');
    client.resume();
    await until('the drain', () => sink.drains === 1, 20_000);
    await until('every byte', () => got.bytes() >= 5 + big.length + 4, 20_000);
    const text = got.text();
    expect(text.startsWith('caf\xe9 a')).toBe(true);
    expect(text.endsWith('a end')).toBe(true);
    expect(io.pendingBytes()).toBe(0);
  });

  it('over TLS too: large writes to a peer that does not read wait for each other and drain, in order', async () => {
    const { server: s, client: c } = await tlsPair();
    const sink = new Recorder();
    const io = socketIo(s, sink);
    expect(io.raw).toBe(true);
    const back = readAll(c);
    c.pause();
    const parts = [Buffer.alloc(3 * 1024 * 1024, 0x61), 'middle', Buffer.alloc(3 * 1024 * 1024, 0x62), 'last'];
    const answers = parts.map((p) => io.write(p));
    expect(answers.includes(false)).toBe(true);
    expect(io.pendingBytes()).toBeGreaterThan(0);
    c.resume();
    const total = parts.reduce((n, p) => n + p.length, 0);
    await until('the drain', () => sink.drains === 1, 20_000);
    await until('every byte', () => back.bytes() === total, 20_000);
    const text = back.text();
    expect(text.indexOf('middle')).toBe(3 * 1024 * 1024);
    expect(text.endsWith('blast')).toBe(true);
  });

  it('cork() and uncork() send what was written between them in one piece, in order', async () => {
    const { server, client } = await pair();
    const io = socketIo(server, new Recorder());
    const got = readAll(client);
    io.cork();
    io.write('HEAD ');
    io.write(Buffer.from('body'));
    expect(got.bytes()).toBe(0);
    io.uncork();
    await until('the bytes', () => got.bytes() === 9);
    expect(got.text()).toBe('HEAD body');
  });

  it("the peer's end of stream is the socket's 'end', and a half-open socket can still write", async () => {
    const { server, client } = await pair();
    server.allowHalfOpen = true;
    const sink = new Recorder();
    const io = socketIo(server, sink);
    let ended = false;
    server.on('end', () => (ended = true));
    const got = readAll(client);
    client.end('last');
    await until("'end'", () => ended);
    expect(sink.text).toBe('last');
    io.write('answer');
    server.end();
    await until('the answer', () => got.text() === 'answer');
  });

  it("a reset peer is the socket's 'close' (and writes after it are dropped, not thrown)", async () => {
    const { server, client } = await pair();
    const io = socketIo(server, new Recorder());
    let closed = false;
    server.on('close', () => (closed = true));
    client.resetAndDestroy();
    await until("'close'", () => closed);
    expect(io.write('late')).toBe(false);
    expect(io.pendingBytes()).toBe(0);
  });

  it('pause() stops reading at the handle, resume() goes on with nothing lost', async () => {
    const { server, client } = await pair();
    const sink = new Recorder();
    const io = socketIo(server, sink);
    client.write('one;');
    await until('one', () => sink.text === 'one;');
    io.pause();
    expect(io.isPaused()).toBe(true);
    client.write('two;');
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.text).toBe('one;');
    io.resume();
    await until('two', () => sink.text === 'one;two;');
  });

  it("detach() gives the socket back to Node's stream: later bytes are its 'data' again", async () => {
    const { server, client } = await pair();
    const sink = new Recorder();
    const io = socketIo(server, sink);
    client.write('mine;');
    await until('mine', () => sink.text === 'mine;');
    io.pause();
    io.detach();
    const theirs = readAll(server);
    client.write('theirs;');
    server.resume();
    await until('theirs', () => theirs.text() === 'theirs;');
    expect(sink.text).toBe('mine;');
  });

  it('a socket with bytes already buffered in its stream is served through the stream; a TLS socket after its handshake on its handle', async () => {
    const { server, client } = await pair();
    server.pause();
    server.unshift(Buffer.from('put back;'));
    const sink = new Recorder();
    const io = socketIo(server, sink);
    expect(io.raw).toBe(false);
    server.resume();
    client.write('next;');
    await until('both', () => sink.text === 'put back;next;');

    const { server: s, client: c } = await tlsPair();
    const tlsSink = new Recorder();
    const tio: SocketIo = socketIo(s, tlsSink);
    expect(tio.raw).toBe(true);
    const back = readAll(c);
    c.write('over tls');
    await until('tls bytes', () => tlsSink.text === 'over tls');
    // Every TLS write is asynchronous (TLSWrap encrypts, then writes below), and TLSWrap takes one
    // at a time: these wait for each other, in order; the end comes after the last.
    for (let i = 0; i < 20; i++) tio.write(i % 2 === 0 ? `s${i};` : Buffer.from(`b${i};`));
    let clientEnded = false;
    c.on('end', () => (clientEnded = true));
    tio.end('bye');
    await until("the client's 'end'", () => clientEnded);
    expect(back.text()).toBe(`${Array.from({ length: 20 }, (_, i) => `${i % 2 === 0 ? 's' : 'b'}${i};`).join('')}bye`);
    let flushed = false;
    tio.whenFlushed(() => (flushed = true));
    expect(flushed).toBe(true);
  });
});
