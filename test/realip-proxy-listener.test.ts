// The PROXY protocol glue in front of a real http.Server (and https/h2c servers), over loopback.
// Distinct loopback addresses (127.0.0.2, 127.0.0.3, ...) act as distinct peers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createH2cServer, createHttp1Server, createTrafficListener, plainHttpServe, type ListenerLimits } from '../src/listeners.ts';
import type { Logger } from '../src/log.ts';
import { CidrSet } from '../src/realip/cidr.ts';
import type { RealIpConfig } from '../src/realip/client-ip.ts';
import { defaultRealIpConfig } from '../src/realip/config.ts';
import { V2_SIGNATURE, crc32c } from '../src/realip/proxy-protocol.ts';
import {
  MISSING_HEADER_BODY,
  PROXY_HEADER_TIMEOUT_MS,
  PeerLogLimiter,
  UNEXPECTED_HEADER_BODY,
  createProxyProtocolAccept,
  getProxyInfo,
  peerWarningKey,
  proxyHeaderTimeoutMs,
  realIpForRequest,
  type ProxyProtocolAcceptOptions,
} from '../src/realip/proxy-listener.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Front {
  port: number;
  logs: { obj: Record<string, unknown>; msg: string }[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function describeRequest(config: RealIpConfig): Handler {
  return (req, res) => {
    const r = realIpForRequest(req, config);
    const info = getProxyInfo(req.socket);
    const body = JSON.stringify({
      client: r.clientIp,
      port: r.port,
      proto: r.proto,
      xff: r.forwardedFor,
      drop: r.drop,
      peer: req.socket.remoteAddress,
      proxy: info === undefined ? null : { ...info, tlvs: info.tlvs.length },
      url: req.url,
    });
    res.setHeader('content-type', 'application/json');
    res.end(body);
  };
}

async function startFront(o: Omit<ProxyProtocolAcceptOptions, 'log'> & { config?: RealIpConfig; serve?: (s: net.Socket) => void }): Promise<Front> {
  const logs: Front['logs'] = [];
  const config = o.config ?? defaultRealIpConfig();
  const httpServer = http.createServer(describeRequest(config));
  const accept = createProxyProtocolAccept({ ...o, log: { warn: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, msg }) } });
  const serve =
    o.serve ??
    ((s: net.Socket) => {
      httpServer.emit('connection', s);
      s.resume();
    });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    accept(socket, serve);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return {
    port: (front.address() as net.AddressInfo).port,
    logs,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        httpServer.closeAllConnections();
        front.close(() => r());
      }),
  };
}

interface Exchange {
  text: string;
  closed: boolean;
  status?: number;
  body?: string;
}

/** Connects from `from`, writes each chunk (with a pause between them), reads until close. */
function exchange(port: number, chunks: (string | Buffer)[], opts: { from?: string; gapMs?: number; waitMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: opts.from ?? '127.0.0.2', noDelay: true });
    const got: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => finish(), opts.waitMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(got).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ text, closed, status: m ? Number(m[1]) : undefined, body: split >= 0 ? text.slice(split + 4) : undefined });
    };
    socket.on('data', (c) => got.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed) return;
        socket.write(c);
        if (opts.gapMs !== undefined) await sleep(opts.gapMs);
      }
    });
  });
}

const REQ = (path = '/', extra = '') => `GET ${path} HTTP/1.1\r\nHost: app.example\r\n${extra}Connection: close\r\n\r\n`;

function v2Header(o: { command?: number; fam?: number; src?: number[]; dst?: number[]; sport?: number; dport?: number; tlvs?: Buffer[]; crc?: boolean } = {}): Buffer {
  const fam = o.fam ?? 0x11;
  const addr = fam === 0x11 ? Buffer.from([...(o.src ?? [203, 0, 113, 7]), ...(o.dst ?? [10, 0, 0, 1]), 0, 0, 0, 0]) : Buffer.alloc(0);
  if (fam === 0x11) {
    addr.writeUInt16BE(o.sport ?? 40000, 8);
    addr.writeUInt16BE(o.dport ?? 443, 10);
  }
  const tlvs = [...(o.tlvs ?? [])];
  if (o.crc) tlvs.push(tlv(0x03, Buffer.alloc(4)));
  const body = Buffer.concat([addr, ...tlvs]);
  const h = Buffer.alloc(16);
  V2_SIGNATURE.copy(h);
  h[12] = 0x20 | (o.command ?? 1);
  h[13] = fam;
  h.writeUInt16BE(body.length, 14);
  const out = Buffer.concat([h, body]);
  if (o.crc) out.writeUInt32BE(crc32c(out), out.length - 4);
  return out;
}

function tlv(type: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(v.length, 1);
  return Buffer.concat([b, v]);
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = client.register.getSingleMetric(name);
  if (m === undefined) return 0;
  const data = await m.get();
  let sum = 0;
  for (const v of data.values) if (Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x)) sum += v.value;
  return sum;
}

const json = (e: Exchange) => JSON.parse(e.body ?? 'null') as Record<string, unknown> & { proxy: Record<string, unknown> | null };

describe('PROXY required (use-proxy-protocol: true)', () => {
  let front: Front;
  beforeAll(async () => {
    front = await startFront({ mode: 'on', trustedCidrs: CidrSet.from(['127.0.0.2/32', '127.0.0.4/32']), config: defaultRealIpConfig() });
  });
  afterAll(() => front.close());

  it('v1: the PROXY source is the client, the destination port is X-Forwarded-Port', async () => {
    const e = await exchange(front.port, [`PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n${REQ('/v1', 'X-Forwarded-For: 6.6.6.6\r\n')}`]);
    expect(e.status).toBe(200);
    const b = json(e);
    expect(b).toMatchObject({ client: '203.0.113.7', xff: '203.0.113.7', port: '443', url: '/v1' });
    expect(b.peer).toMatch(/127\.0\.0\.2$/);
    expect(b.drop).toEqual(['x-forwarded-for']);
  });

  it('v1 over IPv6 addresses', async () => {
    const e = await exchange(front.port, [`PROXY TCP6 2001:db8::7 2001:db8::1 5555 80\r\n${REQ()}`]);
    expect(json(e)).toMatchObject({ client: '2001:db8::7', port: '80' });
  });

  it('v2 with TLVs (ALPN, authority, AWS VPC endpoint, CRC32C)', async () => {
    const h = v2Header({ tlvs: [tlv(0x01, 'http/1.1'), tlv(0x02, 'shop.example'), tlv(0xea, '\x01vpce-0abc123')], crc: true });
    const e = await exchange(front.port, [Buffer.concat([h, Buffer.from(REQ('/v2'))])]);
    expect(e.status).toBe(200);
    expect(json(e)).toMatchObject({ client: '203.0.113.7', port: '443', proxy: { version: 2, command: 'PROXY', protocol: 'TCP4', alpn: 'http/1.1', authority: 'shop.example', awsVpceId: 'vpce-0abc123', tlvs: 4 } });
  });

  it('v2 LOCAL (load balancer health check): the socket address is the client', async () => {
    const e = await exchange(front.port, [Buffer.concat([v2Header({ command: 0, fam: 0x00 }), Buffer.from(REQ('/health'))])]);
    expect(e.status).toBe(200);
    const b = json(e);
    expect(b.client).toBe('127.0.0.2');
    expect(b.proxy).toMatchObject({ command: 'LOCAL' });
  });

  it('headers split one byte at a time', async () => {
    const whole = Buffer.concat([v2Header({ src: [198, 51, 100, 9] }), Buffer.from(REQ('/bytes'))]);
    const chunks = [...whole.subarray(0, 40)].map((b) => Buffer.from([b]));
    chunks.push(whole.subarray(40));
    const e = await exchange(front.port, chunks, { gapMs: 2 });
    expect(json(e)).toMatchObject({ client: '198.51.100.9', url: '/bytes' });
    const v1 = Buffer.from(`PROXY TCP4 198.51.100.10 10.0.0.1 1 80\r\n${REQ('/v1bytes')}`);
    const e1 = await exchange(front.port, [...v1].map((b) => Buffer.from([b])), { gapMs: 1 });
    expect(json(e1)).toMatchObject({ client: '198.51.100.10', url: '/v1bytes' });
  });

  it('the header holds for every request on a keep-alive connection', async () => {
    const two = `GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`;
    const e = await exchange(front.port, [`PROXY TCP4 203.0.113.8 10.0.0.1 5555 443\r\n`, two], { gapMs: 5 });
    const bodies = e.text.split('\r\n\r\n').filter((s) => s.startsWith('{'));
    expect(bodies.map((s) => (JSON.parse(s.slice(0, s.lastIndexOf('}') + 1)) as { client: string }).client)).toEqual(['203.0.113.8', '203.0.113.8']);
  });

  it('untrusted peers: closed and counted', async () => {
    const before = await metric('portico_proxy_protocol_untrusted_total');
    const e = await exchange(front.port, [`PROXY TCP4 6.6.6.6 10.0.0.1 5555 443\r\n${REQ()}`], { from: '127.0.0.3' });
    expect(e.closed).toBe(true);
    expect(e.text).toBe('');
    const e2 = await exchange(front.port, [Buffer.concat([v2Header(), Buffer.from(REQ())])], { from: '127.0.0.3' });
    expect(e2.text).toBe('');
    expect(await metric('portico_proxy_protocol_untrusted_total')).toBe(before + 2);
    expect(front.logs.some((l) => l.obj.kind === 'untrusted_peer' && l.obj.peer === '127.0.0.3')).toBe(true);
  });

  it('mismatch: plain HTTP gets 400 with an explicit body, counted', async () => {
    const before = await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' });
    const e = await exchange(front.port, [REQ()]);
    expect(e.status).toBe(400);
    expect(e.body).toBe(MISSING_HEADER_BODY);
    expect(MISSING_HEADER_BODY).toBe('PROXY protocol header expected; check that the load balancer sends it');
    expect(e.closed).toBe(true);
    expect(await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' })).toBe(before + 1);
  });

  it('mismatch: a TLS ClientHello is closed and counted', async () => {
    const before = await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' });
    const hello = Buffer.from('160301005a010000560303', 'hex');
    const e = await exchange(front.port, [Buffer.concat([hello, Buffer.alloc(80)])], { from: '127.0.0.4' });
    expect(e.closed).toBe(true);
    expect(e.text).toBe('');
    expect(await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' })).toBe(before + 1);
    expect(front.logs.some((l) => l.obj.kind === 'missing_header_tls' && l.obj.peer === '127.0.0.4')).toBe(true);
  });

  it('malformed headers are closed and counted', async () => {
    const before = await metric('portico_proxy_protocol_malformed_total', { reason: 'invalid' });
    const e = await exchange(front.port, [`PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n${REQ()}`]);
    expect(e.text).toBe('');
    const bad = v2Header({ tlvs: [tlv(0x03, Buffer.from([1, 2, 3, 4]))] }); // wrong CRC32C
    expect((await exchange(front.port, [Buffer.concat([bad, Buffer.from(REQ())])])).text).toBe('');
    expect(await metric('portico_proxy_protocol_malformed_total', { reason: 'invalid' })).toBe(before + 2);
  });

  it('a peer that connects and closes without a byte (TCP health check) is not an error', async () => {
    const before = (await metric('portico_proxy_protocol_malformed_total')) + (await metric('portico_proxy_protocol_mismatch_total'));
    const e = await exchange(front.port, [], { waitMs: 100 });
    expect(e.text).toBe('');
    expect((await metric('portico_proxy_protocol_malformed_total')) + (await metric('portico_proxy_protocol_mismatch_total'))).toBe(before);
  });
});

describe('mismatch logs: at most once a minute per peer and kind', () => {
  it('logs the first mismatch per peer and counts them all', async () => {
    const front = await startFront({ mode: 'on' });
    try {
      const before = await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' });
      for (const from of ['127.0.0.5', '127.0.0.5', '127.0.0.5', '127.0.0.6']) expect((await exchange(front.port, [REQ()], { from })).status).toBe(400);
      expect(front.logs.map((l) => l.obj.peer)).toEqual(['127.0.0.5', '127.0.0.6']);
      expect(front.logs[0].obj).toMatchObject({ kind: 'missing_header_http' });
      expect(await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' })).toBe(before + 4);
    } finally {
      await front.close();
    }
  });

  it('each kind from one peer has its own budget: HTTP, then TLS, then a malformed header are all logged once', async () => {
    const front = await startFront({ mode: 'on' });
    const hello = Buffer.concat([Buffer.from('160301005a010000560303', 'hex'), Buffer.alloc(80)]);
    try {
      for (let i = 0; i < 2; i++) {
        expect((await exchange(front.port, [REQ()], { from: '127.0.0.7' })).status).toBe(400);
        expect((await exchange(front.port, [hello], { from: '127.0.0.7' })).text).toBe('');
        expect((await exchange(front.port, [`PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n${REQ()}`], { from: '127.0.0.7' })).text).toBe('');
      }
      expect(front.logs.map((l) => [l.obj.peer, l.obj.kind])).toEqual([
        ['127.0.0.7', 'missing_header_http'],
        ['127.0.0.7', 'missing_header_tls'],
        ['127.0.0.7', 'malformed'],
      ]);
    } finally {
      await front.close();
    }
  });

  it('PeerLogLimiter: once per key per interval; keys are peer and kind', () => {
    const limiter = new PeerLogLimiter(60_000);
    const http = peerWarningKey('10.0.0.1', 'missing_header_http');
    const tls = peerWarningKey('10.0.0.1', 'missing_header_tls');
    expect(http).not.toBe(tls);
    expect(limiter.allow(http, 1_000)).toBe(true);
    expect(limiter.allow(tls, 1_001)).toBe(true);
    expect(limiter.allow(http, 30_000)).toBe(false);
    expect(limiter.allow(tls, 60_000)).toBe(false);
    expect(limiter.allow(peerWarningKey('10.0.0.2', 'missing_header_http'), 30_000)).toBe(true);
    expect(limiter.allow(http, 61_000)).toBe(true);
    // Bounded: past 10,000 keys the stale ones are swept.
    for (let i = 0; i < 10_050; i++) limiter.allow(peerWarningKey(`10.1.${i >> 8}.${i & 255}`, 'x'), 200_000 + i);
    expect(limiter.allow(http, 200_000 + 20_000)).toBe(true);
  });
});

describe('PROXY header timeout', () => {
  it('is 5 s, or --headers-timeout when that is shorter', () => {
    expect(PROXY_HEADER_TIMEOUT_MS).toBe(5000);
    expect(proxyHeaderTimeoutMs(20_000)).toBe(5000);
    expect(proxyHeaderTimeoutMs(5000)).toBe(5000);
    expect(proxyHeaderTimeoutMs(1500)).toBe(1500);
    expect(proxyHeaderTimeoutMs(Number.NaN)).toBe(5000);
    expect(proxyHeaderTimeoutMs(0)).toBe(5000);
  });

  it('PROXY required: a connection that sends nothing, or half a header, is closed after the timeout', async () => {
    const front = await startFront({ mode: 'on', headerTimeoutMs: 300 });
    try {
      const before = await metric('portico_proxy_protocol_malformed_total', { reason: 'truncated' });
      let started = performance.now();
      const idle = await exchange(front.port, [], { waitMs: 4000 });
      expect(idle.closed).toBe(true);
      expect(idle.text).toBe('');
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect(performance.now() - started).toBeLessThan(3000);
      started = performance.now();
      const half = await exchange(front.port, ['PROXY TCP4 203.0.113.7 '], { waitMs: 4000 });
      expect(half.closed).toBe(true);
      expect(performance.now() - started).toBeLessThan(3000);
      expect(await metric('portico_proxy_protocol_malformed_total', { reason: 'truncated' })).toBe(before + 1);
      expect(front.logs.some((l) => l.obj.kind === 'truncated')).toBe(true);
    } finally {
      await front.close();
    }
  });

  it('PROXY optional: a quiet connection is handed on after the timeout, not closed', async () => {
    const front = await startFront({ mode: 'optional', headerTimeoutMs: 200 });
    try {
      const e = await exchange(front.port, [Buffer.alloc(0), REQ('/late')], { gapMs: 500 });
      expect(json(e)).toMatchObject({ url: '/late', proxy: null });
    } finally {
      await front.close();
    }
  });
});

describe('PROXY optional', () => {
  let front: Front;
  beforeAll(async () => {
    front = await startFront({ mode: 'optional', trustedCidrs: CidrSet.from(['127.0.0.2']) });
  });
  afterAll(() => front.close());

  it('accepts a connection with a header', async () => {
    expect(json(await exchange(front.port, [`PROXY TCP4 203.0.113.9 10.0.0.1 5555 443\r\n${REQ()}`]))).toMatchObject({ client: '203.0.113.9' });
  });
  it('and without one', async () => {
    expect(json(await exchange(front.port, [REQ()]))).toMatchObject({ client: '127.0.0.2', proxy: null });
    expect(json(await exchange(front.port, [REQ()], { from: '127.0.0.3' }))).toMatchObject({ client: '127.0.0.3' });
  });
  it('but not a header from an untrusted peer', async () => {
    expect((await exchange(front.port, [`PROXY TCP4 6.6.6.6 10.0.0.1 5555 443\r\n${REQ()}`], { from: '127.0.0.3' })).text).toBe('');
  });
});

describe('PROXY off', () => {
  let front: Front;
  beforeAll(async () => {
    front = await startFront({ mode: 'off' });
  });
  afterAll(() => front.close());

  it('plain HTTP passes through untouched', async () => {
    const e = await exchange(front.port, [REQ('/plain')], { from: '127.0.0.3' });
    expect(json(e)).toMatchObject({ client: '127.0.0.3', url: '/plain', proxy: null });
  });

  it('HTTP sent a byte at a time still passes', async () => {
    const e = await exchange(front.port, [...Buffer.from(REQ('/slow'))].map((b) => Buffer.from([b])), { gapMs: 1 });
    expect(json(e)).toMatchObject({ url: '/slow' });
  });

  it('reverse mismatch: a v1 header gets 400 with an explicit body, counted', async () => {
    const before = await metric('portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' });
    const e = await exchange(front.port, [`PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n${REQ()}`]);
    expect(e.status).toBe(400);
    expect(e.body).toBe(UNEXPECTED_HEADER_BODY);
    expect(e.closed).toBe(true);
    // Split signatures are caught too.
    const e2 = await exchange(front.port, [V2_SIGNATURE.subarray(0, 5), Buffer.concat([V2_SIGNATURE.subarray(5), v2Header().subarray(12), Buffer.from(REQ())])], { from: '127.0.0.3', gapMs: 5 });
    expect(e2.status).toBe(400);
    expect(e2.body).toBe(UNEXPECTED_HEADER_BODY);
    expect(await metric('portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' })).toBe(before + 2);
  });
});

// --- TLS and HTTP/2: the header must be found from the TLS socket and from h2's socket proxies.

let certDir: string | undefined;
let key: Buffer | undefined;
let cert: Buffer | undefined;
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!haveOpenssl)('TLS listener behind the glue', () => {
  beforeAll(() => {
    certDir = mkdtempSync(join(tmpdir(), 'portico-realip-tls-'));
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(certDir, 'k.pem'), '-out', join(certDir, 'c.pem')], { stdio: 'ignore' });
    if (r.status !== 0) throw new Error('openssl could not make a test certificate');
    key = readFileSync(join(certDir, 'k.pem'));
    cert = readFileSync(join(certDir, 'c.pem'));
  });
  afterAll(() => {
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  /**
   * HTTPS request over a raw connection that first carries `header`. With `sameSegment`, the
   * header and the ClientHello go out in one write, so the glue must put the ClientHello back.
   */
  function tlsRequest(port: number, header: Buffer | string | undefined, from = '127.0.0.2', sameSegment = false): Promise<{ status?: number; body: string; error?: string }> {
    return new Promise((resolve) => {
      const raw = net.connect({ port, host: '127.0.0.1', localAddress: from, noDelay: true });
      raw.on('error', () => undefined);
      raw.once('connect', () => {
        let transport: Duplex = raw;
        if (header !== undefined && sameSegment) {
          let first = true;
          transport = new Duplex({
            allowHalfOpen: false,
            write(chunk: Buffer, _enc, cb) {
              raw.write(first ? Buffer.concat([Buffer.from(header), chunk]) : chunk, cb);
              first = false;
            },
            read() {},
            final(cb) {
              raw.end(cb);
            },
          });
          raw.on('data', (c) => transport.push(c));
          raw.on('end', () => transport.push(null));
        } else if (header !== undefined) {
          raw.write(header);
        }
        const s = tls.connect({ socket: transport, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
        const got: Buffer[] = [];
        s.on('secureConnect', () => s.write(REQ('/tls')));
        s.on('data', (c) => got.push(c));
        s.on('error', (err) => resolve({ body: '', error: err.message }));
        s.on('end', () => s.destroy());
        s.on('close', () => {
          const text = Buffer.concat(got).toString();
          const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
          resolve({ status: m ? Number(m[1]) : undefined, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
        });
      });
    });
  }

  it('PROXY then TLS: the handler sees the PROXY source and https', async () => {
    const config = defaultRealIpConfig();
    const server = https.createServer({ key, cert }, describeRequest(config));
    const front = await startFront({ mode: 'on', serve: (s) => server.emit('connection', s) });
    try {
      const r = await tlsRequest(front.port, 'PROXY TCP4 203.0.113.44 10.0.0.1 5555 443\r\n');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ client: '203.0.113.44', proto: 'https', proxy: { protocol: 'TCP4' } });
      const same = await tlsRequest(front.port, 'PROXY TCP4 203.0.113.45 10.0.0.1 5555 443\r\n', '127.0.0.2', true);
      expect(JSON.parse(same.body)).toMatchObject({ client: '203.0.113.45', proto: 'https' });
      const v2 = await tlsRequest(front.port, v2Header({ src: [198, 51, 100, 44], tlvs: [tlv(0x02, 'localhost')] }), '127.0.0.2', true);
      expect(JSON.parse(v2.body)).toMatchObject({ client: '198.51.100.44', proxy: { authority: 'localhost' } });
      // No header on a PROXY listener: a ClientHello is a mismatch, closed.
      const before = await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' });
      const bare = await tlsRequest(front.port, undefined, '127.0.0.7');
      expect(bare.status).toBeUndefined();
      expect(await metric('portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' })).toBe(before + 1);
    } finally {
      await front.close();
      server.close();
    }
  });

  it('PROXY off: TLS passes through untouched', async () => {
    const server = https.createServer({ key, cert }, describeRequest(defaultRealIpConfig()));
    const front = await startFront({ mode: 'off', serve: (s) => server.emit('connection', s) });
    try {
      const r = await tlsRequest(front.port, undefined, '127.0.0.3');
      expect(JSON.parse(r.body)).toMatchObject({ client: '127.0.0.3', proto: 'https', proxy: null });
    } finally {
      await front.close();
      server.close();
    }
  });
});

describe('HTTP/2 (h2c) behind the glue', () => {
  it('getProxyInfo works through the h2 compat socket proxy', async () => {
    const config = defaultRealIpConfig();
    const h2 = http2.createServer((req, res) => {
      const r = realIpForRequest(req as unknown as http.IncomingMessage, config);
      res.end(JSON.stringify({ client: r.clientIp, host: r.host }));
    });
    const front = await startFront({ mode: 'on', serve: (s) => h2.emit('connection', s) });
    try {
      const raw = net.connect({ port: front.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      await new Promise((r) => raw.once('connect', r));
      raw.write('PROXY TCP4 203.0.113.66 10.0.0.1 5555 80\r\n');
      const session = http2.connect(`http://h2.example:${front.port}`, { createConnection: () => raw });
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (data += c));
        req.on('end', () => resolve(data));
        req.on('error', reject);
      });
      session.close();
      expect(JSON.parse(body)).toMatchObject({ client: '203.0.113.66', host: `h2.example:${front.port}` });
    } finally {
      await front.close();
      h2.close();
    }
  });
});

// --- Interoperability with a real PROXY sender: HAProxy's send-proxy and send-proxy-v2.

const haveHaproxy = spawnSync('haproxy', ['-v']).status === 0;

describe.skipIf(!haveHaproxy)('HAProxy as the load balancer', () => {
  let front: Front;
  let haproxy: ChildProcess | undefined;
  let dir: string;
  const ports: Record<string, number> = {};

  async function freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return p;
  }

  beforeAll(async () => {
    front = await startFront({ mode: 'on', trustedCidrs: CidrSet.from(['127.0.0.1/32']) });
    dir = mkdtempSync(join(tmpdir(), 'portico-realip-haproxy-'));
    ports.v1 = await freePort();
    ports.v2 = await freePort();
    const cfg = `
defaults
  mode tcp
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend v1
  bind 127.0.0.1:${ports.v1}
  default_backend v1
frontend v2
  bind 127.0.0.1:${ports.v2}
  default_backend v2
backend v1
  server s 127.0.0.1:${front.port} send-proxy
backend v2
  server s 127.0.0.1:${front.port} send-proxy-v2 proxy-v2-options crc32c,unique-id
`;
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    haproxy = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
    // Ready when it accepts connections.
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(ports.v2, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (ok) break;
      await sleep(50);
    }
  });
  afterAll(async () => {
    haproxy?.kill('SIGTERM');
    await front.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('send-proxy (v1): the client address behind HAProxy', async () => {
    const e = await exchange(ports.v1, [REQ('/hv1')], { from: '127.0.0.9' });
    expect(json(e)).toMatchObject({ client: '127.0.0.9', url: '/hv1', proxy: { version: 1, protocol: 'TCP4' } });
  });

  it('send-proxy-v2 with CRC32C: the client address behind HAProxy', async () => {
    const e = await exchange(ports.v2, [REQ('/hv2')], { from: '127.0.0.10' });
    expect(json(e)).toMatchObject({ client: '127.0.0.10', url: '/hv2', proxy: { version: 2, protocol: 'TCP4' } });
  });
});

// --- The glue as the `accept` hook of Portico's own listener (src/listeners.ts).

describe('as the accept hook of createTrafficListener', () => {
  const limits: ListenerLimits = { maxHeaderSize: 16384, headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 1000, maxConnections: 100 };
  const quiet = { debug: () => undefined, warn: () => undefined, info: () => undefined } as unknown as Logger;

  async function withListener(mode: 'on' | 'off', body: (port: number, logs: unknown[]) => Promise<void>): Promise<void> {
    const config = defaultRealIpConfig();
    const handler = describeRequest(config);
    const http1 = createHttp1Server(limits, quiet, handler, (_req, socket) => socket.destroy());
    const h2c = createH2cServer(limits, handler);
    const logs: unknown[] = [];
    const listener = createTrafficListener({
      name: `realip-${mode}`,
      port: 0,
      host: '127.0.0.1',
      limits,
      log: quiet,
      serve: plainHttpServe(http1, h2c, limits.headersTimeoutMs),
      accept: createProxyProtocolAccept({ mode, trustedCidrs: CidrSet.from(['127.0.0.2']), log: { warn: (o) => logs.push(o) }, listener: `realip-${mode}` }),
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    try {
      await body((listener.address() as net.AddressInfo).port, logs);
    } finally {
      http1.closeAllConnections();
      h2c.close();
      await new Promise((r) => listener.close(r));
    }
  }

  function h2cGet(port: number, header: string | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const raw = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      raw.once('connect', () => {
        if (header !== undefined) raw.write(header);
        const session = http2.connect(`http://h2.example:${port}`, { createConnection: () => raw });
        session.on('error', reject);
        const req = session.request({ ':path': '/h2' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (data += c));
        req.on('end', () => {
          session.close();
          resolve(data);
        });
        req.on('error', reject);
      });
    });
  }

  it('PROXY required: header, then HTTP/1.1 or h2c as the listener decides', async () => {
    await withListener('on', async (port, logs) => {
      const e = await exchange(port, [`PROXY TCP4 203.0.113.99 10.0.0.1 5555 443\r\n${REQ('/listener')}`]);
      expect(json(e)).toMatchObject({ client: '203.0.113.99', url: '/listener' });
      expect(JSON.parse(await h2cGet(port, 'PROXY TCP4 203.0.113.98 10.0.0.1 5555 80\r\n'))).toMatchObject({ client: '203.0.113.98', url: '/h2' });
      const miss = await exchange(port, [REQ()]);
      expect(miss.body).toBe(MISSING_HEADER_BODY);
      expect(logs).toHaveLength(1);
    });
  });

  it('PROXY off: HTTP/1.1 and h2c untouched, a header refused', async () => {
    await withListener('off', async (port) => {
      expect(json(await exchange(port, [REQ('/plain')]))).toMatchObject({ client: '127.0.0.2', url: '/plain' });
      expect(JSON.parse(await h2cGet(port, undefined))).toMatchObject({ client: '127.0.0.2', url: '/h2' });
      expect((await exchange(port, [`PROXY TCP4 203.0.113.99 10.0.0.1 5555 443\r\n${REQ()}`])).body).toBe(UNEXPECTED_HEADER_BODY);
    });
  });
});
