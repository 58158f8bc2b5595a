// End-to-end fuzz of the HTTP/1 edge: seeded, mutated request heads (request line, versions,
// header names and values, framing, pipelining, upgrades, truncation) sent over loopback into a
// running `portico serve`, plain and through the TLS listener. Every connection must get a
// well-formed status line or a close within a bound, no worker may restart, and the process must
// still serve a normal request afterwards. PORTICO_FUZZ_CASES sets the count (npm run fuzz runs
// many), PORTICO_FUZZ_SEED the seed; a failure prints the seed and the exact bytes of the case.
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';
import { prng } from './helpers/prng.ts';

const CASES = Number(process.env.PORTICO_FUZZ_CASES ?? 2000);
const SEED = Number(process.env.PORTICO_FUZZ_SEED ?? 0x9e3779b9) >>> 0;
const CONCURRENCY = 48;
// Longer than --headers-timeout and --request-timeout below: by then an answer or close is owed.
const BOUND_MS = 15_000;

let portico: Portico;
let backend: EchoBackend;

beforeAll(async () => {
  const cert = makeCert('secure.test');
  backend = await startEchoBackend('app', '127.0.0.2', 0);
  portico = await startPortico({
    workers: 2,
    args: ['--headers-timeout', '3', '--request-timeout', '6'],
    logLevel: 'warn',
    files: {
      'base.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), tlsSecret('secure-tls', cert)),
      'routes.yaml': toYaml(
        ingress('app', 'app.test', [{ path: '/', service: 'app' }, { path: '/exact', pathType: 'Exact', service: 'app' }]),
        ingress('any', undefined, [{ path: '/any', service: 'app' }]),
        { ...ingress('secure', 'secure.test', [{ path: '/', service: 'app' }]), spec: { ingressClassName: 'portico', tls: [{ hosts: ['secure.test'], secretName: 'secure-tls' }], rules: [{ host: 'secure.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'app', port: { number: 80 } } } }] } }] } },
      ),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

// ---- the generator -------------------------------------------------------------------------

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rand, p: number) => r() < p;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PRI', 'get', 'G ET', '', 'GET\x00', 'X-CUSTOM', 'M'.repeat(300)];
const TARGETS = [
  '/', '/a/b?q=1', '/exact', '/any/x', '*', 'http://app.test/x', 'http://app.test:80/x?y', 'https://secure.test/', 'http://other.test@app.test/admin', 'http://u:p@app.test/',
  'http://@app.test/', 'http://app.test', 'http://[::1]/', 'http://app.test:99999/', 'app.test:443', '//app.test/x', '/..', '/a/../..', '/a/./b/../c', '/%2e%2e/x', '/%2E%2e%2fadmin', '/%2fadmin',
  '/%zz', '/%4', '/%00', '/%', '/a b', '/a\tb', '/\x00', '/\x7f', '/\xff\xfe', '/a\\b', '/a#frag', '/?', '/;x=1', '', 'x', '/' + 'a'.repeat(9000),
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/2', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/3.0', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', 'HTTP/1.', 'HTTP/1.1\x00', 'HTTPS/1.1', ''];
const HOSTS = ['app.test', 'app.test', 'secure.test', 'app.test:80', 'APP.TEST', 'other.test', '', ' app.test', 'app.test ', 'u@app.test', 'app.test/evil', '[::1]', '127.0.0.1', 'a..test', 'app.test:', 'app.test:x', 'h\x00st', 'app_test'];
const NAMES = ['X-A', 'Accept', 'User-Agent', 'Cookie', 'X_Under_Score', 'X Space', 'X-A ', ' X-A', 'X\x00A', 'X\x01A', 'X:A', '', 'Content_Length', 'Transfer_Encoding', 'X-' + 'n'.repeat(200), 'X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Proxy-Connection', 'Keep-Alive', 'TE', 'Trailer', 'HTTP2-Settings', '\xe9t\xe9'];
const VALUES = ['1', 'a b c', '', ' ', 'x\x00y', 'x\x01y', 'x\ry', 'x\ny', 'x\x7fy', '\xe9\xff', 'v'.repeat(5000), '1.2.3.4', 'for=1.2.3.4;proto=https', 'unknown', '\t tab', 'a,b,,c'];
const SPECIAL: ((r: Rand) => string)[] = [
  (r) => `Content-Length: ${pick(r, ['0', '3', '5', '10', '-1', '+3', '0x3', '3 3', '3,3', '003', '99999999999999999999', '', ' 4 ', '1e3'])}`,
  (r) => `Transfer-Encoding: ${pick(r, ['chunked', 'chunked', 'Chunked', 'xchunked', ' chunked', 'chunked, identity', 'identity', 'gzip, chunked', 'chunked, chunked', 'chunked\x00', '\x0bchunked', 'chunked;q=1', ''])}`,
  (r) => `Transfer-Encoding:\r\n ${pick(r, ['chunked', 'identity'])}`,
  (r) => `Host: ${pick(r, HOSTS)}`,
  (r) => `Connection: ${pick(r, ['close', 'keep-alive', 'Upgrade', 'upgrade, HTTP2-Settings', 'close, keep-alive', 'Host', 'Content-Length', 'Transfer-Encoding', 'X-A', 'te', ''])}`,
  (r) => `Upgrade: ${pick(r, ['websocket', 'h2c', 'h2', 'HTTP/2.0', 'websocket, h2c', 'TLS/1.2', '', 'x'])}`,
  (r) => `Expect: ${pick(r, ['100-continue', '100-Continue', '200-ok', '', '100-continue, foo'])}`,
  () => 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  () => 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
  (r) => `${pick(r, NAMES)}: ${pick(r, VALUES)}`,
  (r) => `${pick(r, NAMES)}:${pick(r, VALUES)}\r\n ${pick(r, VALUES)}`,
  (r) => pick(r, ['no-colon-line', ':empty-name', ' leading-space: x', '\tX: y', 'X-A:: b']),
];
const BODIES: ((r: Rand) => string)[] = [
  () => '',
  () => 'abc',
  () => 'hello',
  () => '3\r\nabc\r\n0\r\n\r\n',
  () => '3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n',
  (r) => `${pick(r, ['ffffffffffffffffffff', 'zz', '-1', '+3', '3 ', ' 3', '0x3', '03'])}\r\nabc\r\n0\r\n\r\n`,
  () => '3\r\nabcX\r\n0\r\n\r\n',
  () => '3\nabc\n0\n\n',
  () => '0\r\n\r\n',
  () => '0\r\nContent-Length: 5\r\n\r\nhello',
  () => 'GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n',
];

function oneRequest(r: Rand): string {
  const method = pick(r, METHODS);
  const target = pick(r, TARGETS);
  const version = pick(r, VERSIONS);
  const sp = chance(r, 0.05) ? pick(r, ['  ', '\t', ' \x00']) : ' ';
  const eol = chance(r, 0.08) ? pick(r, ['\n', '\r', '\r\r\n', '\n\r']) : '\r\n';
  const lines: string[] = [];
  if (!chance(r, 0.05)) lines.push(`Host: ${chance(r, 0.8) ? pick(r, ['app.test', 'secure.test']) : pick(r, HOSTS)}`);
  for (let i = int(r, 0, 6); i > 0; i--) lines.push(pick(r, SPECIAL)(r));
  if (chance(r, 0.1)) lines.push(lines[int(r, 0, Math.max(0, lines.length - 1))] ?? 'X-A: 1'); // a duplicate
  if (chance(r, 0.2)) lines.sort(() => r() - 0.5);
  const body = chance(r, 0.4) ? pick(r, BODIES)(r) : '';
  const requestLine = version === '' ? `${method}${sp}${target}` : `${method}${sp}${target}${sp}${version}`;
  return `${requestLine}${eol}${lines.map((l) => l + eol).join('')}${eol}${body}`;
}

interface FuzzCase {
  index: number;
  seed: number;
  tls: boolean;
  servername: string;
  halfClose: boolean;
  bytes: Buffer;
}

function makeCase(index: number): FuzzCase {
  const seed = (SEED + index) >>> 0;
  const r = prng(seed);
  const parts: string[] = [];
  for (let n = chance(r, 0.3) ? int(r, 2, 4) : 1; n > 0; n--) parts.push(chance(r, 0.5) ? `GET /a/${n} HTTP/1.1\r\nHost: app.test\r\n\r\n` : oneRequest(r));
  let bytes = Buffer.from(parts.join(''), 'latin1');
  // Byte-level mutations on top of the structured ones.
  for (let m = chance(r, 0.25) ? int(r, 1, 3) : 0; m > 0 && bytes.length > 0; m--) {
    const at = int(r, 0, bytes.length - 1);
    const op = int(r, 0, 2);
    if (op === 0) bytes[at] = int(r, 0, 255);
    else if (op === 1) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([pick(r, [0x00, 0x0a, 0x0d, 0x20, 0x3a, 0x09, 0x7f, 0xff])]), bytes.subarray(at)]);
    else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
  }
  if (chance(r, 0.2)) bytes = bytes.subarray(0, int(r, 0, bytes.length)); // truncation
  const useTls = chance(r, 0.3);
  return { index, seed, tls: useTls, servername: pick(r, ['secure.test', 'app.test', 'unknown.test']), halfClose: chance(r, 0.3), bytes };
}

// ---- the runner ----------------------------------------------------------------------------

interface Outcome {
  c: FuzzCase;
  text: string;
  closed: boolean;
  timedOut: boolean;
}

function run(c: FuzzCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: net.Socket = c.tls
      ? tls.connect({ host: '127.0.0.1', port: portico.httpsPort, servername: c.servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host: '127.0.0.1', port: portico.httpPort });
    const chunks: Buffer[] = [];
    let closed = false;
    let timedOut = false;
    let quiet: NodeJS.Timeout | undefined;
    const hard = setTimeout(() => {
      timedOut = true;
      finish();
    }, BOUND_MS);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(hard);
      clearTimeout(quiet);
      socket.destroy();
      resolve({ c, text: Buffer.concat(chunks).toString('latin1'), closed, timedOut });
    };
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // Answered: a kept-alive connection has done its part once the server goes quiet.
      clearTimeout(quiet);
      quiet = setTimeout(finish, 1500);
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => undefined);
    socket.once(c.tls ? 'secureConnect' : 'connect', () => {
      if (c.bytes.length) socket.write(c.bytes);
      if (c.halfClose) socket.end();
    });
  });
}

const STATUS_LINE = /^HTTP\/1\.[01] [1-5]\d\d [^\r\n]*\r\n/;

function problem(o: Outcome): string | undefined {
  if (o.timedOut && o.text === '') return `no answer and no close within ${BOUND_MS} ms`;
  if (o.text !== '' && !STATUS_LINE.test(o.text)) return 'answer does not start with a well-formed status line';
  return undefined;
}

const describeCase = (o: Outcome, why: string) =>
  `case #${o.c.index} (PORTICO_FUZZ_SEED=${SEED}, case seed ${o.c.seed}) over ${o.c.tls ? `TLS (SNI ${o.c.servername})` : 'plain'}${o.c.halfClose ? ', client half-closed' : ''}: ${why}\n` +
  `  bytes (JSON): ${JSON.stringify(o.c.bytes.toString('latin1'))}\n  bytes (hex):  ${o.c.bytes.toString('hex')}\n  got: ${JSON.stringify(o.text.slice(0, 300))}${o.closed ? ' (closed)' : ''}`;

describe('end-to-end fuzz of request heads', () => {
  it(`${CASES} seeded mutated request heads (seed ${SEED}): every connection answered or closed, no worker restarts`, async () => {
    const pidsBefore = (await portico.workerPids()).sort();
    expect(pidsBefore.length).toBe(2);
    const failures: string[] = [];
    const answerless: Outcome[] = [];
    let next = 0;
    const worker = async () => {
      while (next < CASES) {
        const o = await run(makeCase(next++));
        const why = problem(o);
        if (why) failures.push(describeCase(o, why));
        else if (o.text === '') answerless.push(o);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const restarts = await portico.metric('portico_worker_restarts_total');
    const pidsAfter = (await portico.workerPids()).sort();
    if (restarts !== 0 || pidsAfter.join() !== pidsBefore.join()) {
      // A worker died: the culprit is among the connections closed without an answer. Replay
      // them one at a time (those the client did not half-close first) to name it.
      const candidates = [...answerless.filter((o) => !o.c.halfClose), ...answerless.filter((o) => o.c.halfClose)].slice(0, 150);
      const culprits: string[] = [];
      let before = (await portico.metric('portico_worker_restarts_total')) ?? 0;
      for (const o of candidates) {
        if (culprits.length >= 3) break;
        await portico.waitReady();
        const again = await run(o.c);
        const now = (await portico.metric('portico_worker_restarts_total')) ?? 0;
        if (now > before) culprits.push(describeCase(again, 'a worker restarted right after this case, replayed alone'));
        before = now;
      }
      failures.push(`worker restarts: ${restarts}, worker pids ${pidsBefore.join(',')} -> ${pidsAfter.join(',')}; ` +
        (culprits.length ? `replayed alone, these cases restart a worker:\n${culprits.join('\n')}` : `no single case reproduced it; cases closed without an answer (first 10 of ${answerless.length}):\n${candidates.slice(0, 10).map((o) => describeCase(o, 'closed without an answer')).join('\n')}`));
    }
    if (failures.length) console.error(`e2e fuzz: ${failures.length} failure(s)\n${failures.slice(0, 20).join('\n')}`);
    expect(failures.slice(0, 5), failures.slice(0, 5).join('\n')).toEqual([]);
    // Still serving, on both listeners.
    expect((await request(portico.httpPort, '/any/ok', { host: 'app.test' })).status).toBe(200);
    const https = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: portico.httpsPort, servername: 'secure.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => s.write('GET /ok HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n'));
      let t = '';
      s.on('data', (d) => (t += d.toString('latin1')));
      s.on('close', () => resolve(t));
      s.on('error', () => resolve(t));
    });
    expect(https).toMatch(/^HTTP\/1\.1 200 /);
  }, Math.max(120_000, CASES * 60));
});
