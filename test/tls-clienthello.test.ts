import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientHelloParser, parseClientHello, peekClientHello, type ClientHelloResult } from '../tls/clienthello.ts';
import {
  alpnExtension,
  buildClientHello,
  captureClientHello,
  clientHelloBody,
  extension,
  handshakeMessage,
  sniExtension,
  toRecords,
} from '../tls/testing/clienthello-builder.ts';

let tls13: Buffer; // SNI + ALPN, TLS 1.3 capable
let tls12NoSni: Buffer;

beforeAll(async () => {
  tls13 = await captureClientHello({ servername: 'Foo.Example.COM', ALPNProtocols: ['h2', 'http/1.1'] });
  tls12NoSni = await captureClientHello({ servername: '', maxVersion: 'TLSv1.2' });
});

/** The handshake bytes inside a buffer of records (for re-fragmenting captured hellos). */
function handshakeOf(records: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < records.length; ) {
    const len = records.readUInt16BE(at + 3);
    out.push(records.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return Buffer.concat(out);
}

function byteAtATime(data: Buffer, parser = new ClientHelloParser()): { result: ClientHelloResult; at: number } {
  for (let i = 0; i < data.length; i++) {
    const r = parser.push(data.subarray(i, i + 1));
    if (r !== 'need-more') return { result: r, at: i + 1 };
  }
  return { result: 'need-more', at: data.length };
}

function errorOf(r: ClientHelloResult): string {
  if (r === 'need-more') return 'need-more';
  return r.ok ? 'ok' : r.error;
}

describe('ClientHello parser: real hellos from node:tls', () => {
  it('reads SNI (lowercased) and ALPN from a TLS 1.3 ClientHello', () => {
    const r = parseClientHello(tls13);
    expect(r).toMatchObject({ ok: true, serverName: 'foo.example.com', alpn: ['h2', 'http/1.1'], consumedBytes: tls13.length, offersTls13: true });
  });

  it('reports no SNI and no ALPN when the client sends none', () => {
    const r = parseClientHello(tls12NoSni);
    expect(r).toMatchObject({ ok: true, alpn: [], offersTls13: false });
    expect(r !== 'need-more' && r.ok && 'serverName' in r).toBe(false);
  });

  it('decides only on the last byte when fed one byte at a time', () => {
    const { result, at } = byteAtATime(tls13);
    expect(at).toBe(tls13.length);
    expect(result).toEqual(parseClientHello(tls13));
  });

  it('copes with the handshake fragmented over many records, down to 1-byte records', () => {
    const hs = handshakeOf(tls13);
    for (const sizes of [[1], [2, 3, 5], [100], [7, 1000]]) {
      const records = toRecords(hs, sizes);
      const whole = parseClientHello(records);
      expect(whole).toMatchObject({ ok: true, serverName: 'foo.example.com', alpn: ['h2', 'http/1.1'], consumedBytes: records.length });
      expect(byteAtATime(records).result).toEqual(whole);
    }
  });

  it('stops at the ClientHello: bytes after it stay buffered for replay and are not parsed', () => {
    const ccs = Buffer.from([20, 3, 3, 0, 1, 1]);
    const junk = Buffer.from('whatever follows');
    const parser = new ClientHelloParser();
    const r = parser.push(Buffer.concat([tls13, ccs]));
    expect(r).toMatchObject({ ok: true, consumedBytes: tls13.length });
    expect(parser.push(junk)).toBe(r);
    expect(parser.buffered()).toEqual(Buffer.concat([tls13, ccs, junk]));
  });
});

describe('ClientHello parser: built hellos', () => {
  it('accepts a ClientHello without extensions (legal before TLS 1.3)', () => {
    expect(parseClientHello(buildClientHello({ noExtensions: true }))).toMatchObject({ ok: true, alpn: [] });
  });

  it('accepts underscores and keeps other extensions out of the way', () => {
    const r = parseClientHello(buildClientHello({ serverName: 'My_Host.example.com', alpn: ['http/1.1'], extensions: [[21, Buffer.alloc(300)], [43, Buffer.from([4, 3, 4, 3, 3])]] }));
    expect(r).toMatchObject({ ok: true, serverName: 'my_host.example.com', alpn: ['http/1.1'], offersTls13: true });
  });

  it('keeps ALPN names as raw bytes', () => {
    expect(parseClientHello(buildClientHello({ alpn: ['h2', 'x\u00ff'] }))).toMatchObject({ ok: true, alpn: ['h2', 'x\u00ff'] });
  });

  const invalidSni: [string, string | Buffer][] = [
    ['a trailing dot', 'example.com.'],
    ['an IPv4 literal', '127.0.0.1'],
    ['an IPv6 literal', '::1'],
    ['non-ASCII bytes', Buffer.from('exämple.com', 'utf8')],
    ['an empty label', 'a..example.com'],
    ['a leading dot', '.example.com'],
    ['a space', 'a b.example.com'],
    ['a NUL byte', Buffer.from('a\0.example.com', 'latin1')],
    ['a wildcard', '*.example.com'],
    ['a label over 63 bytes', `${'a'.repeat(64)}.example.com`],
    ['more than 253 bytes', `${'abcdefghi.'.repeat(26)}com`],
    ['a label starting with -', '-a.example.com'],
  ];
  for (const [what, name] of invalidSni) {
    it(`refuses an SNI host name with ${what}`, () => {
      const r = parseClientHello(buildClientHello({ serverName: name }));
      expect(errorOf(r)).toBe('invalid-sni');
    });
  }

  const body = (spec = {}): Buffer => clientHelloBody({ serverName: 'a.test', ...spec });
  const malformed: [string, () => Buffer, string][] = [
    ['a zero-length record', () => Buffer.from([22, 3, 1, 0, 0]), 'malformed'],
    ['a record over 2^14', () => Buffer.from([22, 3, 1, 0x40, 0x01]), 'malformed'],
    ['a ServerHello', () => toRecords(handshakeMessage(body(), 2)), 'not-tls'],
    ['a ClientHello shorter than its fixed fields', () => toRecords(handshakeMessage(Buffer.alloc(40, 3))), 'malformed'],
    ['a non-TLS legacy_version', () => toRecords(handshakeMessage(clientHelloBody({ legacyVersion: 0x0200 }))), 'not-tls'],
    ['a session id over 32 bytes', () => toRecords(handshakeMessage(clientHelloBody({ sessionIdLength: 33 }))), 'malformed'],
    ['no cipher suites', () => toRecords(handshakeMessage(clientHelloBody({ cipherSuites: 0 }))), 'malformed'],
    [
      'an odd cipher_suites length',
      () => {
        const b = body();
        b.writeUInt16BE(5, 2 + 32 + 1 + 32);
        return toRecords(handshakeMessage(b));
      },
      'malformed',
    ],
    [
      'an extensions length that disagrees with the message length',
      () => toRecords(handshakeMessage(Buffer.concat([clientHelloBody({ noExtensions: true }), Buffer.from([0, 9]), sniExtension('a.test')]))),
      'malformed',
    ],
    ['a duplicated extension', () => buildClientHello({ extensions: [[10, Buffer.from([0, 2, 0, 29])], [10, Buffer.from([0, 2, 0, 29])]] }), 'malformed'],
    ['an empty server_name extension', () => buildClientHello({ extensions: [[0, Buffer.alloc(0)]] }), 'malformed'],
    ['a server_name of unknown type', () => buildClientHello({ extensions: [[0, Buffer.from([0, 4, 1, 0, 1, 0x61])]] }), 'malformed'],
    ['two host names', () => buildClientHello({ extensions: [[0, Buffer.from([0, 8, 0, 0, 1, 0x61, 0, 0, 1, 0x62])]] }), 'malformed'],
    ['a zero-length host name', () => buildClientHello({ extensions: [[0, Buffer.from([0, 3, 0, 0, 0])]] }), 'malformed'],
    ['a server_name list longer than its extension', () => buildClientHello({ extensions: [[0, Buffer.from([0, 9, 0, 0, 1, 0x61])]] }), 'malformed'],
    ['an empty ALPN list', () => buildClientHello({ extensions: [[16, Buffer.from([0, 0])]] }), 'malformed'],
    ['a zero-length ALPN name', () => buildClientHello({ extensions: [[16, Buffer.from([0, 3, 0, 1, 0x61])]] }), 'malformed'],
    ['an ALPN name running past its list', () => buildClientHello({ extensions: [[16, Buffer.from([0, 2, 5, 0x61])]] }), 'malformed'],
    [
      'an extension running past the extensions block',
      () => toRecords(handshakeMessage(Buffer.concat([clientHelloBody({ noExtensions: true }), Buffer.from([0, 6, 0, 5, 0, 10, 1, 2])]))),
      'malformed',
    ],
    [
      'an application_data record in the middle of the ClientHello',
      () => {
        const full = toRecords(handshakeMessage(body()), 20);
        return Buffer.concat([full.subarray(0, 25), Buffer.from([23, 3, 3, 0, 1, 0]), full.subarray(25)]);
      },
      'malformed',
    ],
    ['a bad supported_versions', () => buildClientHello({ extensions: [[43, Buffer.from([3, 3, 4, 3])]] }), 'malformed'],
  ];
  for (const [what, make, expected] of malformed) {
    it(`answers ${expected} for ${what}`, () => {
      const data = make();
      expect(errorOf(parseClientHello(data))).toBe(expected);
      if (data.length > 0) expect(errorOf(byteAtATime(data).result)).toBe(expected);
    });
  }

  it('refuses non-TLS traffic on its first byte', () => {
    for (const first of ['G', 'P', '\x80', '\x00']) {
      const parser = new ClientHelloParser();
      expect(errorOf(parser.push(Buffer.from(first, 'latin1')))).toBe('not-tls');
    }
    const p = new ClientHelloParser();
    p.push(Buffer.from([22]));
    expect(errorOf(p.push(Buffer.from([2])))).toBe('not-tls'); // record version major 2
  });

  it('refuses as soon as a length contradicts the message, before the rest arrives', () => {
    const data = toRecords(handshakeMessage(clientHelloBody({ sessionIdLength: 33, extensions: [[21, Buffer.alloc(2000)]] })), 100);
    const { result, at } = byteAtATime(data);
    expect(errorOf(result)).toBe('malformed');
    expect(at).toBeLessThan(200);
  });

  it('answers need-more for every proper prefix, never an error', () => {
    const data = buildClientHello({ serverName: 'a.test', alpn: ['h2'] }, [3, 50]);
    for (let n = 0; n < data.length; n++) expect(parseClientHello(data.subarray(0, n))).toBe('need-more');
    expect(parseClientHello(data)).toMatchObject({ ok: true });
  });

  it('caps buffering: a handshake length over the cap is refused from its header', () => {
    const parser = new ClientHelloParser(20_000);
    expect(errorOf(parser.push(Buffer.from([22, 3, 1, 0x40, 0, 1, 0x00, 0x80, 0x00])))).toBe('too-large');
  });

  it('caps buffering: record overhead counts, so a hello dribbled in 1-byte records hits the cap', () => {
    const data = toRecords(handshakeMessage(clientHelloBody({ serverName: 'a.test', extensions: [[21, Buffer.alloc(6000)]] })), 1);
    expect(data.length).toBeGreaterThan(32 * 1024);
    expect(errorOf(parseClientHello(data))).toBe('too-large');
    expect(errorOf(parseClientHello(data, 64 * 1024))).toBe('ok');
    const parser = new ClientHelloParser();
    const { result, at } = byteAtATime(data, parser);
    expect(errorOf(result)).toBe('too-large');
    expect(at).toBe(32 * 1024);
  });

  it('never goes below one full record for the cap', () => {
    const big = buildClientHello({ serverName: 'a.test', extensions: [[21, Buffer.alloc(16000)]] });
    expect(errorOf(parseClientHello(big, 10))).toBe('ok');
  });

  it('a decision is final', () => {
    const parser = new ClientHelloParser();
    const r = parser.push(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(errorOf(r)).toBe('not-tls');
    expect(parser.push(tls13)).toBe(r);
    expect(parser.result()).toBe(r);
  });

  it('extension helpers build what the parser reads', () => {
    const hello = toRecords(handshakeMessage(Buffer.concat([clientHelloBody({ noExtensions: true }), (() => {
      const exts = Buffer.concat([alpnExtension(['a']), sniExtension('b.test'), extension(65281, Buffer.from([0]))]);
      return Buffer.concat([Buffer.from([exts.length >> 8, exts.length & 255]), exts]);
    })()])));
    expect(parseClientHello(hello)).toMatchObject({ ok: true, serverName: 'b.test', alpn: ['a'] });
  });
});

describe('peekClientHello on a socket', () => {
  let server: net.Server;
  let port: number;
  const accepted: net.Socket[] = [];
  let waiting: ((s: net.Socket) => void) | undefined;

  beforeAll(async () => {
    server = net.createServer({ allowHalfOpen: true }, (s) => {
      accepted.push(s);
      waiting?.(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });

  async function connect(): Promise<{ client: net.Socket; peer: net.Socket }> {
    const peer = new Promise<net.Socket>((r) => (waiting = r));
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    client.setNoDelay(true);
    client.on('error', () => {});
    await new Promise((r) => client.once('connect', r));
    return { client, peer: await peer };
  }
  const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('resolves once the ClientHello is complete, leaves the socket paused with later bytes unread', async () => {
    const { client, peer } = await connect();
    const peeked = peekClientHello(peer, { timeoutMs: 5000 });
    for (const part of [tls13.subarray(0, 1), tls13.subarray(1, 7), tls13.subarray(7, 600), tls13.subarray(600)]) {
      client.write(part);
      await tick();
    }
    const r = await peeked;
    expect(r).toMatchObject({ ok: true, serverName: 'foo.example.com' });
    expect(r.buffered).toEqual(tls13);
    expect(peer.isPaused()).toBe(true);
    expect(peer.listenerCount('data')).toBe(0);
    client.end('after');
    await tick(30);
    const rest: Buffer[] = [];
    peer.on('data', (d: Buffer) => rest.push(d));
    peer.resume(); // a paused socket stays paused when a 'data' listener is added
    await new Promise((r) => peer.once('end', r));
    expect(Buffer.concat(rest).toString()).toBe('after');
    client.destroy();
  });

  it('times out with what it buffered', async () => {
    const { client, peer } = await connect();
    client.write(tls13.subarray(0, 100));
    const r = await peekClientHello(peer, { timeoutMs: 150 });
    expect(r).toMatchObject({ ok: false, error: 'timeout' });
    expect(r.buffered.length).toBe(100);
    client.destroy();
  });

  it('reports truncated when the peer closes mid-hello, no-data when it sent nothing', async () => {
    const a = await connect();
    a.client.end(tls13.subarray(0, 50));
    expect(await peekClientHello(a.peer, { timeoutMs: 5000 })).toMatchObject({ ok: false, error: 'truncated' });
    const b = await connect();
    b.client.end();
    expect(await peekClientHello(b.peer, { timeoutMs: 5000 })).toMatchObject({ ok: false, error: 'no-data' });
  });

  it('refuses plain HTTP at once', async () => {
    const { client, peer } = await connect();
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await peekClientHello(peer, { timeoutMs: 5000 });
    expect(r).toMatchObject({ ok: false, error: 'not-tls' });
    client.destroy();
  });

  it('reports a socket already destroyed', async () => {
    const { client, peer } = await connect();
    peer.destroy();
    expect(await peekClientHello(peer)).toMatchObject({ ok: false, error: 'socket-error' });
    client.destroy();
  });
});
