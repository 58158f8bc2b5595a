// HTTPRoute RequestMirror through a real `portico serve`, on both HTTP/1.1 engines and HTTP/2:
// the conformance suite's HTTPRouteRequestMirror, HTTPRouteRequestMultipleMirrors and
// HTTPRouteRequestPercentageMirror rewritten as our own scenarios (mirror backends that record
// what they received instead of pod logs), plus what the spec leaves to us: bodies, a dead,
// silent or stuck mirror backend changing nothing for the client (a copy that falls behind is
// cut), references that do not resolve, and retries not mirrored twice.
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { startWebSocketEcho } from './helpers/websocket.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, referenceGrant, send, serviceFor, startEchoPod, statusOf, toYaml, type EchoPod, type Obj } from './gateway-helpers.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface Recorder {
  readonly port: number;
  readonly seen: Seen[];
  /** Requests that arrived and are held unanswered (silent backend). */
  held: number;
  /** Answers the held requests (before Portico stops: its copies would hold its pools). */
  release(): void;
  close(): Promise<void>;
}

/** A mirror backend that records each request with its body; `silent` ones never answer. */
async function recorder(silent = false): Promise<Recorder> {
  const seen: Seen[] = [];
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      if (silent) held.push(res);
      else res.end('mirror answer\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    get held() {
      return held.length;
    },
    release: () => {
      for (const res of held.splice(0)) res.end();
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A Service whose one endpoint is `port` on loopback. */
function serviceAt(name: string, port: number, ns = 'infra'): Obj[] {
  return serviceFor([{ namespace: ns, service: name, pod: `${name}-0`, address: '127.0.0.1', port } as EchoPod]);
}

const prefix = (value: string): Obj[] => [{ path: { type: 'PathPrefix', value } }];
const mirrorTo = (name: string, extra: Obj = {}, backendRef: Obj = {}): Obj => ({ type: 'RequestMirror', requestMirror: { backendRef: { name, port: 8080, ...backendRef }, ...extra } });
const MODIFY = { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }], add: [{ name: 'X-Header-Add', value: 'header-val-1' }], remove: ['X-Header-Remove'] } };

async function until(what: string, check: () => boolean): Promise<void> {
  await waitFor(what, async () => check(), 10_000);
}

let v1: EchoPod;
let m2: Recorder;
let m3: Recorder;
let percent: Recorder;
let fraction: Recorder;
let silent: Recorder;
let other: Recorder;
let deadPort: number;
/** Accepts connections and never reads from them. */
let stuck: net.Server;
const stuckSockets: net.Socket[] = [];
/** h2c servers standing for gRPC backends: the GRPCRoute's backend and its mirror. */
let ws: Awaited<ReturnType<typeof startWebSocketEcho>>;
let grpcPrimary: http2.Http2Server;
let grpcMirror: http2.Http2Server;
const grpcSeen: { path: string; body: Buffer }[] = [];

async function h2cServer(onStream: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, body: Buffer) => void): Promise<http2.Http2Server> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => onStream(stream, headers, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return server;
}

beforeAll(async () => {
  v1 = await startEchoPod('infra', 'v1', 'v1-pod-0');
  [m2, m3, percent, fraction, silent, other] = await Promise.all([recorder(), recorder(), recorder(), recorder(), recorder(true), recorder()]);
  const dead = await recorder();
  deadPort = dead.port;
  await dead.close();
  stuck = net.createServer((s) => {
    stuckSockets.push(s);
    s.pause();
  });
  await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', () => r()));
  const answer = (who: string) => (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-who': who }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  };
  ws = await startWebSocketEcho('127.0.0.1');
  grpcPrimary = await h2cServer(answer('primary'));
  grpcMirror = await h2cServer((stream, h, body) => {
    grpcSeen.push({ path: String(h[':path']), body });
    answer('mirror')(stream);
  });
});

afterAll(async () => {
  await v1?.close();
  for (const r of [m2, m3, percent, fraction, silent, other]) await r?.close();
  for (const s of stuckSockets) s.destroy();
  stuck?.close();
  grpcPrimary?.close();
  grpcMirror?.close();
  ws?.server.closeAllConnections();
  ws?.server.close();
});

/**
 * A WebSocket handshake to Portico with this Host, one masked text frame, and the echoed frame's
 * text back (or the first line of a refusal).
 */
function webSocketEcho(port: number, host: string, path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => socket.destroy(new Error('no WebSocket echo in time')), 5000);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buf.subarray(0, buf.indexOf('\r\n')).toString();
        if (!status.startsWith('HTTP/1.1 101')) {
          clearTimeout(timer);
          socket.destroy();
          return resolve(status);
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        const payload = Buffer.from(text);
        const mask = Buffer.from([1, 2, 3, 4]);
        socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i & 3])]));
      }
      // An unmasked server frame with a short payload.
      if (buf.length < 2 || buf.length < 2 + (buf[1] & 0x7f)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(buf.subarray(2, 2 + (buf[1] & 0x7f)).toString());
    });
  });
}

function manifests(port: number): string {
  const onGw = (hostnames: string[], rules: Obj[]): Obj => ({ parentRefs: [{ name: 'gw' }], hostnames, rules });
  const v1ref = [ref('v1')];
  return toYaml(
    namespace('infra'),
    namespace('other'),
    gatewayClass(),
    gateway('gw', [{ name: 'http', port, protocol: 'HTTP' }]),
    ...serviceFor([v1]),
    ...serviceAt('m2', m2.port),
    ...serviceAt('m3', m3.port),
    ...serviceAt('percent', percent.port),
    ...serviceAt('fraction', fraction.port),
    ...serviceAt('silent', silent.port),
    ...serviceAt('dead', deadPort),
    ...serviceAt('stuck', (stuck.address() as AddressInfo).port),
    // Two endpoints, one refusing connections: requests to it are retried on the other.
    ...serviceFor([{ namespace: 'infra', service: 'flaky', pod: 'flaky-0', address: '127.0.0.1', port: deadPort } as EchoPod, { namespace: 'infra', service: 'flaky', pod: 'flaky-1', address: '127.0.0.1', port: v1.port } as EchoPod]),
    ...serviceAt('granted', other.port, 'other'),
    ...serviceAt('refused', other.port, 'other'),
    ...serviceAt('ws', ws.port),
    ...serviceAt('grpc-primary', (grpcPrimary.address() as AddressInfo).port),
    ...serviceAt('grpc-mirror', (grpcMirror.address() as AddressInfo).port),
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'grpc', namespace: 'infra' }, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['grpc.test'], rules: [
      { matches: [{ method: { service: 'mirror.Svc' } }], filters: [mirrorTo('grpc-mirror')], backendRefs: [ref('grpc-primary')] },
    ] } },
    referenceGrant('mirror-grant', 'other', [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'infra' }], [{ group: '', kind: 'Service', name: 'granted' }]),
    httpRoute('mirror', onGw(['mirror.test'], [
      { matches: prefix('/mirror'), filters: [mirrorTo('m2')], backendRefs: v1ref },
      { matches: prefix('/mirror-and-modify-headers'), filters: [MODIFY, mirrorTo('m2')], backendRefs: v1ref },
      { matches: prefix('/multi-mirror'), filters: [mirrorTo('m2'), mirrorTo('m3')], backendRefs: v1ref },
      { matches: prefix('/percent-mirror'), filters: [mirrorTo('percent', { percent: 20 })], backendRefs: v1ref },
      { matches: prefix('/percent-mirror-fraction'), filters: [mirrorTo('fraction', { fraction: { numerator: 25, denominator: 50 } })], backendRefs: v1ref },
      { matches: prefix('/never'), filters: [mirrorTo('m3', { percent: 0 })], backendRefs: v1ref },
      { matches: prefix('/silent'), filters: [mirrorTo('silent')], backendRefs: v1ref },
      { matches: prefix('/dead'), filters: [mirrorTo('dead')], backendRefs: v1ref },
      { matches: prefix('/granted'), filters: [mirrorTo('granted', {}, { namespace: 'other' })], backendRefs: v1ref },
      { matches: prefix('/stuck'), filters: [mirrorTo('stuck')], backendRefs: v1ref },
      // A backendRef's own mirror: only the requests that backend gets (weight 0 gets none).
      { matches: prefix('/backend-mirror'), backendRefs: [ref('v1', { filters: [mirrorTo('m3')] }), ref('flaky', { weight: 0, filters: [mirrorTo('m2')] })] },
      { matches: prefix('/retried'), filters: [mirrorTo('m3')], backendRefs: [ref('flaky')] },
      { matches: prefix('/ws'), filters: [mirrorTo('m2')], backendRefs: [ref('ws')] },
    ])),
    // Mirrors that do not resolve: not configured, ResolvedRefs says why, the rule still serves.
    httpRoute('unresolved', onGw(['unresolved.test'], [
      { matches: prefix('/missing'), filters: [mirrorTo('no-such-service')], backendRefs: v1ref },
      { matches: prefix('/refused'), filters: [mirrorTo('refused', {}, { namespace: 'other' })], backendRefs: v1ref },
    ])),
  );
}

describe.each(['node', 'fast'])('RequestMirror, --http1-engine %s', (engine) => {
  let portico: Portico;
  let port: number;

  beforeAll(async () => {
    portico = await startPortico({ files: {}, workers: 1, args: ['--http1-engine', engine] });
    port = portico.httpPort;
    portico.write('all.yaml', manifests(port));
    await waitFor('mirror routes', async () => (await send(port, 'mirror.test', '/mirror')).status === 200 && (await send(port, 'unresolved.test', '/missing')).status === 200, 20_000);
  });
  afterAll(async () => {
    silent.release();
    for (const s of stuckSockets.splice(0)) s.destroy();
    await portico?.stop();
  });

  const clear = (): void => {
    for (const r of [m2, m3, percent, fraction, silent, other]) r.seen.length = 0;
  };

  it('HTTPRouteRequestMirror: v1 answers, the mirror gets the same method, path with query, Host and headers', async () => {
    clear();
    const id = `req-${engine}-${Date.now()}`;
    const a = await send(port, 'mirror.test', `/mirror?gateway-api-conformance-request-id=${id}`, { headers: { 'X-Custom': 'one' } });
    expect(a.echo?.service).toBe('v1');
    await until('the mirror copy', () => m2.seen.some((s) => s.url.includes(id)));
    const copy = m2.seen.find((s) => s.url.includes(id))!;
    expect([copy.method, copy.url, copy.headers.host, copy.headers['x-custom']]).toEqual(['GET', `/mirror?gateway-api-conformance-request-id=${id}`, 'mirror.test', 'one']);
    // Forwarding headers as the primary gets them.
    expect(copy.headers['x-forwarded-for']).toBe(a.echo!.headers['x-forwarded-for']);
  });

  it('mirror-and-modify-headers: the route header edits reach v1 and the mirror alike', async () => {
    clear();
    const a = await send(port, 'mirror.test', '/mirror-and-modify-headers', { headers: { 'X-Header-Remove': 'gone', 'X-Header-Set': 'old' } });
    expect([a.echo?.headers['x-header-set'], a.echo?.headers['x-header-add'], a.echo?.headers['x-header-remove']]).toEqual(['set-overwrites-values', 'header-val-1', undefined]);
    await until('the mirror copy', () => m2.seen.some((s) => s.url === '/mirror-and-modify-headers'));
    const copy = m2.seen.find((s) => s.url === '/mirror-and-modify-headers')!;
    expect([copy.headers['x-header-set'], copy.headers['x-header-add'], copy.headers['x-header-remove']]).toEqual(['set-overwrites-values', 'header-val-1', undefined]);
  });

  it('a WebSocket upgrade on a mirrored rule is not mirrored: the tunnel works, the copy is counted as upgrade', async () => {
    clear();
    const before = (await portico.metric('portico_mirror_requests_total', { result: 'upgrade' })) ?? 0;
    expect(await webSocketEcho(port, 'mirror.test', '/ws/chat', 'hi')).toBe('echo: hi');
    expect((await portico.metric('portico_mirror_requests_total', { result: 'upgrade' })) ?? 0).toBe(before + 1);
    // A plain request on the same rule is mirrored; by the time its copy arrives, an upgrade copy would have too.
    expect((await send(port, 'mirror.test', '/ws/plain')).status).toBe(200);
    await until('the plain copy', () => m2.seen.some((s) => s.url === '/ws/plain'));
    expect(m2.seen.map((s) => s.url)).toEqual(['/ws/plain']);
  });

  it('HTTPRouteRequestMultipleMirrors: both mirrors get each request, once', async () => {
    clear();
    for (let i = 0; i < 3; i++) expect((await send(port, 'mirror.test', `/multi-mirror?n=${i}`)).echo?.service).toBe('v1');
    await until('both copies', () => m2.seen.length === 3 && m3.seen.length === 3);
    expect(m2.seen.map((s) => s.url).sort()).toEqual(['/multi-mirror?n=0', '/multi-mirror?n=1', '/multi-mirror?n=2']);
    expect(m3.seen.map((s) => s.url).sort()).toEqual(['/multi-mirror?n=0', '/multi-mirror?n=1', '/multi-mirror?n=2']);
  });

  it('mirrors request bodies, Content-Length and chunked alike, whole', async () => {
    clear();
    const big = Buffer.alloc(200_000, 'x');
    const a = await request(port, '/mirror/upload', { host: 'mirror.test', method: 'POST', body: big });
    expect(a.status).toBe(200);
    // Chunked: node:http sends a body without a length in chunks.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/mirror/chunked', method: 'PUT', headers: { host: 'mirror.test' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('first part, ');
      setTimeout(() => req.end('second part'), 50);
    });
    expect(chunked).toBe(200);
    await until('the copies', () => m2.seen.length === 2);
    const upload = m2.seen.find((s) => s.url === '/mirror/upload')!;
    expect([upload.method, upload.body.length, upload.body.equals(big)]).toEqual(['POST', big.length, true]);
    const put = m2.seen.find((s) => s.url === '/mirror/chunked')!;
    expect([put.method, put.body.toString()]).toEqual(['PUT', 'first part, second part']);
  });

  it('cuts the copy to a mirror that stops reading, counted, while the primary gets the whole body', async () => {
    const before = (await portico.metric('portico_mirror_requests_total', { result: 'cut' })) ?? 0;
    // More than the copy may lag (1 MiB) plus what the kernel buffers on loopback.
    const huge = Buffer.alloc(24 * 1024 * 1024, 'y');
    const a = await request(port, '/stuck/upload', { host: 'mirror.test', method: 'POST', body: huge, timeoutMs: 20_000 });
    expect([a.status, (JSON.parse(a.body) as { service: string }).service]).toEqual([200, 'v1']);
    await waitFor('the cut counted', async () => ((await portico.metric('portico_mirror_requests_total', { result: 'cut' })) ?? 0) === before + 1, 10_000);
  });

  it('a mirror backend that never answers or is down changes nothing for the client', async () => {
    clear();
    const before = (await portico.metric('portico_mirror_requests_total', { result: 'failed' })) ?? 0;
    expect((await portico.metric('portico_mirror_requests_total', { result: 'answered' })) ?? 0).toBeGreaterThan(0);
    const heldBefore = silent.held;
    for (let i = 0; i < 3; i++) {
      const a = await send(port, 'mirror.test', `/silent?i=${i}`);
      expect(a.echo?.service).toBe('v1');
    }
    // The silent backend holds its copies unanswered while every client request was answered.
    await until('the held copies', () => silent.held === heldBefore + 3);
    for (let i = 0; i < 3; i++) expect((await send(port, 'mirror.test', `/dead?i=${i}`)).echo?.service).toBe('v1');
    await waitFor('failed copies counted', async () => ((await portico.metric('portico_mirror_requests_total', { result: 'failed' })) ?? 0) >= before + 3, 10_000);
  });

  it('HTTPRouteRequestPercentageMirror: percent and fraction within 3 standard deviations; 0 never', async () => {
    clear();
    const n = 400;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    try {
      const run = async (path: string): Promise<void> => {
        let next = 0;
        await Promise.all(Array.from({ length: 10 }, async () => {
          while (next < n) {
            const i = next++;
            const r = await request(port, `${path}?i=${i}`, { host: 'mirror.test', agent });
            expect(r.status).toBe(200);
          }
        }));
      };
      await run('/percent-mirror');
      await run('/percent-mirror-fraction');
      await run('/never');
    } finally {
      agent.destroy();
    }
    const check = async (r: Recorder, p: number): Promise<void> => {
      const sd = Math.sqrt(n * p * (1 - p));
      // Wait until the count settles inside the window (copies are sent after the answers).
      await until(`mirrored share near ${p}`, () => r.seen.length >= n * p - 3 * sd);
      expect(r.seen.length).toBeLessThanOrEqual(n * p + 3 * sd);
    };
    await check(percent, 0.2);
    await check(fraction, 0.5);
    // PathPrefix is element-wise: /percent-mirror never takes /percent-mirror-fraction's requests.
    expect(percent.seen.every((s) => s.url.startsWith('/percent-mirror?'))).toBe(true);
    expect(m3.seen.filter((s) => s.url.startsWith('/never'))).toEqual([]);
  });

  it('a mirror in another namespace is used with a ReferenceGrant; one on a backendRef mirrors that share only', async () => {
    clear();
    await send(port, 'mirror.test', '/granted/x');
    for (let i = 0; i < 3; i++) expect((await send(port, 'mirror.test', `/backend-mirror/${i}`)).echo?.service).toBe('v1');
    await send(port, 'mirror.test', '/mirror/marker2');
    await until('the copies', () => other.seen.some((s) => s.url === '/granted/x') && m3.seen.filter((s) => s.url.startsWith('/backend-mirror/')).length === 3 && m2.seen.some((s) => s.url === '/mirror/marker2'));
    expect(m2.seen.filter((s) => s.url.startsWith('/backend-mirror/'))).toEqual([]);
  });

  it('a request retried on another endpoint is mirrored once', async () => {
    clear();
    for (let i = 0; i < 6; i++) expect((await send(port, 'mirror.test', `/retried?i=${i}`)).status).toBe(200);
    await send(port, 'mirror.test', '/multi-mirror?marker');
    await until('the copies', () => m3.seen.some((s) => s.url === '/multi-mirror?marker'));
    expect(m3.seen.filter((s) => s.url.startsWith('/retried')).map((s) => s.url).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `/retried?i=${i}`));
  });

  it('unresolvable mirrors: ResolvedRefs False (BackendNotFound, RefNotPermitted), the rule serves, nothing mirrored', async () => {
    clear();
    expect((await send(port, 'unresolved.test', '/missing')).echo?.service).toBe('v1');
    expect((await send(port, 'unresolved.test', '/refused')).echo?.service).toBe('v1');
    const { items } = await portico.json<{ items: any[] }>('/status');
    const conds = statusOf(items, 'HTTPRoute', 'infra', 'unresolved').parents[0].conditions;
    expect(condition(conds, 'Accepted')?.status).toBe('True');
    expect(condition(conds, 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(condition(conds, 'ResolvedRefs')?.message).toMatch(/RequestMirror Service infra\/no-such-service not found.*RequestMirror Service other\/refused:8080 is in another namespace/s);
    expect(condition(statusOf(items, 'HTTPRoute', 'infra', 'mirror').parents[0].conditions, 'ResolvedRefs')?.status).toBe('True');
    await send(port, 'mirror.test', '/mirror/marker');
    await until('a later copy', () => m2.seen.some((s) => s.url === '/mirror/marker'));
    expect(other.seen).toEqual([]);
  });

  it('a GRPCRoute mirror gets the call over h2c, as its backends do', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const frame = Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]);
    const before = grpcSeen.length;
    try {
      const who = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/mirror.Svc/Call', ':authority': 'grpc.test', 'content-type': 'application/grpc', te: 'trailers' });
        let w = '';
        s.on('response', (h) => (w = String(h['x-who'])));
        s.on('error', reject);
        s.resume();
        s.on('end', () => resolve(w));
        s.end(frame);
      });
      expect(who).toBe('primary');
    } finally {
      session.close();
    }
    await until('the mirrored call', () => grpcSeen.length === before + 1);
    expect([grpcSeen[before].path, grpcSeen[before].body.equals(frame)]).toEqual(['/mirror.Svc/Call', true]);
  });

  it('over HTTP/2 (h2c) the mirror gets the request and its body', async () => {
    clear();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/mirror/h2?x=1', ':authority': 'mirror.test', 'content-type': 'text/plain' });
        let code = 0;
        s.on('response', (h) => (code = Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.on('end', () => resolve(code));
        s.end('h2 body');
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
    await until('the copy', () => m2.seen.some((s) => s.url === '/mirror/h2?x=1'));
    const copy = m2.seen.find((s) => s.url === '/mirror/h2?x=1')!;
    expect([copy.method, copy.headers.host, copy.body.toString()]).toEqual(['POST', 'mirror.test', 'h2 body']);
  });
});
