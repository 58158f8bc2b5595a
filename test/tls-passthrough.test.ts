import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  handlePassthrough,
  passthroughRejected,
  type PassthroughBackend,
  type PassthroughOptions,
  type PassthroughOutcome,
} from '../tls/passthrough.ts';
import { generateSelfSigned, type SelfSigned } from '../tls/selfsigned.ts';
import { captureClientHello } from '../tls/testing/clienthello-builder.ts';

const BIG = 8 * 1024 * 1024;
const bigPayload = Buffer.alloc(BIG, 'abcdefghijklmnopqrstuvwxyz0123456789');
const bigHash = createHash('sha256').update(bigPayload).digest('hex');

interface TlsBackend {
  server: tls.Server;
  port: number;
  cert: SelfSigned;
  /** TLS handshakes completed. */
  accepted: number;
  /** TCP connections accepted. */
  tcp: number;
  open: Set<tls.TLSSocket>;
}

async function tlsBackend(name: string): Promise<TlsBackend> {
  const cert = generateSelfSigned({ commonName: name, dnsNames: [name] });
  const b: TlsBackend = { server: undefined as unknown as tls.Server, port: 0, cert, accepted: 0, tcp: 0, open: new Set() };
  b.server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    b.accepted++;
    b.open.add(s);
    s.on('close', () => b.open.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (d.toString() === 'big') s.end(bigPayload);
      else s.write(`${name}:${d}`);
    });
  });
  b.server.on('connection', () => b.tcp++);
  b.server.listen(0, '127.0.0.1');
  await once(b.server, 'listening');
  b.port = (b.server.address() as net.AddressInfo).port;
  return b;
}

interface Front {
  server: net.Server;
  port: number;
  outcomes: Promise<PassthroughOutcome>[];
  selected: (string | undefined)[];
}

let a: TlsBackend;
let b: TlsBackend;
let half: net.Server;
let halfPort: number;
let closedPort: number;
const fronts: Front[] = [];

async function front(options: Partial<PassthroughOptions> = {}): Promise<Front> {
  const f: Front = { server: undefined as unknown as net.Server, port: 0, outcomes: [], selected: [] };
  const backends: Record<string, PassthroughBackend> = {
    'a.test': { host: '127.0.0.1', port: a.port },
    'b.test': { host: '127.0.0.1', port: b.port },
    'half.test': { host: '127.0.0.1', port: halfPort },
    'down.test': { host: '127.0.0.1', port: closedPort },
  };
  f.server = net.createServer({ allowHalfOpen: true }, (socket) => {
    f.outcomes.push(
      handlePassthrough(socket, {
        selectBackend: (sni) => {
          f.selected.push(sni);
          return sni === undefined ? undefined : backends[sni];
        },
        listener: 'test',
        ...options,
      }),
    );
  });
  f.server.listen(0, '127.0.0.1');
  await once(f.server, 'listening');
  f.port = (f.server.address() as net.AddressInfo).port;
  fronts.push(f);
  return f;
}

async function rejected(reason: string): Promise<number> {
  const m = await passthroughRejected.get();
  return m.values.find((v) => v.labels.reason === reason && v.labels.listener === 'test')?.value ?? 0;
}

function tlsClient(port: number, servername: string, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Raw TCP client: sends `chunks` (one write each, awaiting a macrotask between), collects replies. */
async function rawClient(port: number, chunks: Buffer[], opts: { end?: boolean; gapMs?: number } = {}) {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.setNoDelay(true);
  const received: Buffer[] = [];
  s.on('data', (d: Buffer) => received.push(d));
  s.on('end', () => s.end()); // the peer hung up: finish our side too
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.on('error', () => {});
  await once(s, 'connect');
  for (const c of chunks) {
    if (s.destroyed) break;
    s.write(c);
    await new Promise((r) => (opts.gapMs ? setTimeout(r, opts.gapMs) : setImmediate(r)));
  }
  if (opts.end) s.end();
  return { socket: s, received, closed, data: () => Buffer.concat(received) };
}

let helloB: Buffer;
let helloHalf: Buffer;

beforeAll(async () => {
  a = await tlsBackend('a.test');
  b = await tlsBackend('b.test');
  half = net.createServer({ allowHalfOpen: true }, (s) => {
    // Answers only after the client's FIN: needs the passthrough to forward a half-close.
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`got ${n} bytes after your FIN`));
    s.on('error', () => {});
  });
  half.listen(0, '127.0.0.1');
  await once(half, 'listening');
  halfPort = (half.address() as net.AddressInfo).port;
  const tmp = net.createServer().listen(0, '127.0.0.1');
  await once(tmp, 'listening');
  closedPort = (tmp.address() as net.AddressInfo).port;
  tmp.close();
  helloB = await captureClientHello({ servername: 'b.test' });
  helloHalf = await captureClientHello({ servername: 'half.test' });
});

afterAll(() => {
  for (const f of fronts) f.server.close();
  for (const s of [...a.open, ...b.open]) s.destroy();
  a?.server.close();
  b?.server.close();
  half?.close();
});

describe('TLS passthrough', () => {
  it('routes by SNI to a backend that terminates TLS itself: the client sees and verifies the backend certificate', async () => {
    const f = await front();
    for (const [name, backend] of [['a.test', a], ['b.test', b]] as const) {
      const s = await tlsClient(f.port, name, backend.cert.certPem);
      expect(s.authorized).toBe(true);
      expect(s.getPeerCertificate().serialNumber).toBe(new X509Certificate(backend.cert.certPem).serialNumber);
      s.write('ping');
      const [reply] = (await once(s, 'data')) as [Buffer];
      expect(reply.toString()).toBe(`${name}:ping`);
      s.end();
      await once(s, 'close');
    }
    const outcomes = await Promise.all(f.outcomes);
    expect(outcomes.map((o) => [o.result, o.serverName, o.backend?.port])).toEqual([
      ['proxied', 'a.test', a.port],
      ['proxied', 'b.test', b.port],
    ]);
    expect(outcomes[0].bytesToBackend).toBeGreaterThan(100);
    expect(outcomes[0].bytesToClient).toBeGreaterThan(100);
  });

  it('a captured ClientHello replayed one byte per write still reaches the right backend', async () => {
    const f = await front();
    const before = b.accepted;
    const bytes = [...helloB].map((x) => Buffer.from([x]));
    const c = await rawClient(f.port, bytes);
    // The backend answers the replayed hello with its ServerHello: a TLS handshake record.
    const deadline = Date.now() + 5000;
    while (c.data().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect([...c.data().subarray(0, 2)]).toEqual([22, 3]);
    expect(f.selected).toEqual(['b.test']);
    c.socket.destroy();
    await c.closed;
    expect(b.accepted).toBe(before); // the replay never completes a handshake
  });

  it('a full handshake dribbled a few bytes at a time through a slow link works end to end', async () => {
    const f = await front();
    // A relay that forwards client->front in 7-byte writes, a macrotask apart.
    const relay = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: f.port });
      up.setNoDelay(true);
      let chain = Promise.resolve();
      down.on('data', (d: Buffer) => {
        down.pause();
        chain = chain.then(async () => {
          for (let i = 0; i < d.length; i += 7) {
            up.write(d.subarray(i, i + 7));
            await new Promise((r) => setImmediate(r));
          }
          down.resume();
        });
      });
      up.pipe(down);
      down.on('end', () => void chain.then(() => up.end()));
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    try {
      const s = await tlsClient((relay.address() as net.AddressInfo).port, 'a.test', a.cert.certPem);
      expect(s.authorized).toBe(true);
      s.write('slow');
      const [reply] = (await once(s, 'data')) as [Buffer];
      expect(reply.toString()).toBe('a.test:slow');
      s.destroy();
    } finally {
      relay.close();
    }
  });

  it('carries a large response intact (backpressure both ways)', async () => {
    const f = await front();
    const s = await tlsClient(f.port, 'a.test', a.cert.certPem);
    const hash = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      hash.update(d);
      n += d.length;
    });
    s.write('big');
    await once(s, 'end');
    expect(n).toBe(BIG);
    expect(hash.digest('hex')).toBe(bigHash);
    s.destroy();
    const [outcome] = await Promise.all(f.outcomes);
    expect(outcome.bytesToClient).toBeGreaterThan(BIG);
  });

  it('forwards a half-close: the backend answers after the client FIN and the client still gets it', async () => {
    const f = await front();
    const c = await rawClient(f.port, [helloHalf, Buffer.from('payload')], { end: true });
    await c.closed;
    expect(c.data().toString()).toBe(`got ${helloHalf.length + 7} bytes after your FIN`);
    const [outcome] = await Promise.all(f.outcomes);
    expect(outcome).toMatchObject({ result: 'proxied', serverName: 'half.test', reason: undefined });
  });

  it('closing the client closes the backend connection', async () => {
    const f = await front();
    const s = await tlsClient(f.port, 'a.test', a.cert.certPem);
    s.write('x');
    await once(s, 'data');
    expect(a.open.size).toBeGreaterThan(0);
    s.destroy();
    const deadline = Date.now() + 3000;
    while (a.open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.open.size).toBe(0);
    await Promise.all(f.outcomes);
  });

  it('closes idle connections after the idle timeout', async () => {
    const f = await front({ idleTimeoutMs: 300 });
    const s = await tlsClient(f.port, 'a.test', a.cert.certPem);
    s.on('error', () => {});
    const t = Date.now();
    await once(s, 'close');
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    const [outcome] = await Promise.all(f.outcomes);
    expect(outcome).toMatchObject({ result: 'proxied', reason: 'idle-timeout' });
  });
});

describe('TLS passthrough refusals (closed and counted, never a crash)', () => {
  it('garbage: plain HTTP on the TLS port', async () => {
    const f = await front();
    const before = await rejected('not-tls');
    const c = await rawClient(f.port, [Buffer.from('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n')]);
    await c.closed;
    expect(c.data().length).toBe(0);
    expect(await rejected('not-tls')).toBe(before + 1);
    expect((await f.outcomes[0]).reason).toBe('not-tls');
  });

  it('garbage: random bytes that look like a record header', async () => {
    const f = await front();
    const c = await rawClient(f.port, [Buffer.from([22, 3, 1, 0, 60, 2, 0, 0, 56, ...Array(56).fill(9)])]);
    await c.closed;
    expect((await f.outcomes[0]).result).toBe('rejected');
  });

  it('a truncated ClientHello followed by FIN', async () => {
    const f = await front();
    const before = await rejected('truncated');
    const c = await rawClient(f.port, [helloB.subarray(0, 100)], { end: true });
    await c.closed;
    expect(await rejected('truncated')).toBe(before + 1);
    expect(b.open.size).toBe(0);
  });

  it('a ClientHello that never completes times out', async () => {
    const f = await front({ helloTimeoutMs: 200 });
    const before = await rejected('timeout');
    const c = await rawClient(f.port, [helloB.subarray(0, 10)]);
    await c.closed;
    expect(await rejected('timeout')).toBe(before + 1);
  });

  it('an SNI with no backend, and a client with no SNI at all', async () => {
    const f = await front();
    const before = await rejected('no-backend');
    await expect(tlsClient(f.port, 'unknown.test', a.cert.certPem)).rejects.toThrow();
    const noSni = tls.connect({ host: '127.0.0.1', port: f.port, rejectUnauthorized: false });
    await expect(once(noSni, 'secureConnect')).rejects.toThrow();
    expect(await rejected('no-backend')).toBe(before + 2);
    expect(f.selected).toEqual(['unknown.test', undefined]);
  });

  it('a backend that refuses the connection', async () => {
    const f = await front();
    const before = await rejected('connect-failed');
    await expect(tlsClient(f.port, 'down.test', a.cert.certPem)).rejects.toThrow();
    expect(await rejected('connect-failed')).toBe(before + 1);
    expect((await f.outcomes[0]).detail).toMatch(/ECONNREFUSED/);
  });

  it('a client that leaves while the backend is being chosen', async () => {
    const f = await front({
      selectBackend: () => new Promise((r) => setTimeout(() => r({ host: '127.0.0.1', port: a.port }), 100)),
    });
    const before = a.tcp;
    const c = await rawClient(f.port, [helloB]);
    // A reset is noticed even on the paused socket (a FIN is not: it may be a legitimate
    // half-close, and the splice forwards it).
    c.socket.resetAndDestroy();
    expect(await f.outcomes[0]).toMatchObject({ result: 'rejected', reason: 'client-closed', serverName: 'b.test' });
    await new Promise((r) => setTimeout(r, 50));
    expect(a.tcp).toBe(before); // the backend was never dialled
  });

  it('selectBackend throwing is a refusal too', async () => {
    const f = await front({
      selectBackend: () => {
        throw new Error('table not ready');
      },
    });
    await expect(tlsClient(f.port, 'a.test', a.cert.certPem)).rejects.toThrow();
    expect(await f.outcomes[0]).toMatchObject({ result: 'rejected', reason: 'select-failed', detail: 'table not ready' });
  });
});
