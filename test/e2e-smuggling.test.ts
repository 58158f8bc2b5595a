// Request smuggling and desync corpus, end to end: raw bytes into `portico serve`, a backend that
// records the raw bytes it receives. For every case: the backend never sees a request the client
// did not send, every request it sees is byte-sane, and the client gets the answer of every
// request the backend saw, in order. Where nginx's answer is known, the status is asserted too.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, type Portico } from './helpers/portico.ts';
import { answerBody, parseResponses, startRawBackend, type RawBackend } from './helpers/raw-backend.ts';

let portico: Portico;
let backend: RawBackend;

beforeAll(async () => {
  backend = await startRawBackend('127.0.0.7');
  portico = await startPortico({
    workers: 2,
    args: ['--headers-timeout', '5', '--request-timeout', '10'],
    files: {
      'all.yaml': toYaml(ingressClass(), service('raw'), endpointSlice('raw', [`127.0.0.7:${backend.port}`]), ingress('app', 'app.test', [{ path: '/', service: 'raw' }]), ingress('other', 'other.test', [{ path: '/', service: 'raw' }])),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

/**
 * Sends bytes on one connection and reads until the server closes, or until it has been quiet
 * for a while after answering (a kept-alive connection), or a hard bound.
 */
function exchange(port: number, data: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let closed = false;
    let quiet: NodeJS.Timeout | undefined;
    const hard = setTimeout(() => finish(), 8000);
    const finish = () => {
      clearTimeout(hard);
      clearTimeout(quiet);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.on('data', (c) => {
      chunks.push(c);
      clearTimeout(quiet);
      quiet = setTimeout(finish, 1000);
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => undefined);
    socket.write(Buffer.from(data, 'latin1'));
  });
}

interface Case {
  name: string;
  send: string;
  /** Targets (origin-form) of the requests the client means to send, in order. */
  sent: string[];
  /** Final statuses the client must get, in order, where nginx's (or RFC 9112's) answer is known; a list allows either. */
  status?: (number | number[])[];
  /** The connection must be closed after the answers. */
  closed?: boolean;
  /** Extra checks on what the backend saw. */
  check?: (seen: RawBackend['requests']) => void;
}

const H = 'Host: app.test\r\n';
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\n${H}${extra}\r\n`;
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n';

const cases: Case[] = [
  // CL.TE / TE.CL: both framings at once are refused (nginx >= 1.21.1: 400).
  { name: 'CL.TE', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE.CL', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  // TE.TE obfuscations: any coding other than exactly chunked is not understood (nginx 501).
  { name: 'TE xchunked', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE xchunked alone', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [[400, 501]], closed: true },
  { name: 'TE chunked, identity', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE twice (chunked, then identity)', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], closed: true },
  { name: 'TE with leading whitespace (OWS: still chunked)', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding:   chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, sent: ['/a'], status: [200], check: (s) => expect(s[0]?.body.toString()).toBe('abc') },
  { name: 'TE: space before colon', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE obs-fold', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE vertical tab', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'TE in HTTP/1.0', send: `POST /a HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  // Content-Length variants: one value of 1*DIGIT only (nginx 400 for anything else).
  { name: 'duplicate CL, different', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'duplicate CL, same', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL list', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL with plus sign', send: `POST /a HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL negative', send: `POST /a HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL with inner space', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 1 0\r\n\r\n0123456789${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL hex', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 0x3\r\n\r\nabc${SMUGGLED}`, sent: ['/a'], status: [400], closed: true },
  { name: 'CL overflow', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n${SMUGGLED}`, sent: ['/a'], closed: true },
  { name: 'CL leading zeros (valid)', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 0003\r\nConnection: close\r\n\r\nabc`, sent: ['/a'], status: [200], check: (s) => expect(s[0]?.body.toString()).toBe('abc') },
  // Line endings and control bytes.
  { name: 'bare LF line endings', send: `GET /a HTTP/1.1\n${H.replace('\r\n', '\n')}Connection: close\n\n`, sent: ['/a'] },
  { name: 'bare CR in a header value', send: `GET /a HTTP/1.1\r\n${H}X-A: 1\rTransfer-Encoding: chunked\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'bare LF inside the head hiding a header', send: `POST /a HTTP/1.1\r\n${H}X-A: 1\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, sent: ['/a'], closed: true },
  { name: 'NUL in a header value', send: `GET /a HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'NUL in a header name', send: `GET /a HTTP/1.1\r\n${H}X\x00A: b\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'header name with space before colon', send: `GET /a HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'header line without colon', send: `GET /a HTTP/1.1\r\n${H}garbage\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'obs-fold on an ordinary header', send: `GET /a HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  // Chunked framing.
  { name: 'chunk size overflow', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff1\r\nabc\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'chunk size not hex', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'chunk size with sign', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'chunk extension (valid)', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n`, sent: ['/a'], status: [200], check: (s) => expect(s[0]?.body.toString()).toBe('abc') },
  { name: 'trailers (valid)', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n`, sent: ['/a'], status: [200], check: (s) => expect(s[0]?.body.toString()).toBe('abc') },
  { name: 'chunk data longer than its size', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'chunk with bare LF after data', send: `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n${SMUGGLED}`, sent: ['/a'], closed: true },
  // Request targets and authority.
  { name: 'absolute-form with userinfo', send: `GET http://other.test@app.test/admin/x HTTP/1.1\r\n${H}\r\n`, sent: ['/admin/x'], status: [400], closed: true },
  { name: 'Host with userinfo', send: `GET /a HTTP/1.1\r\nHost: other.test@app.test\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  {
    name: 'absolute-form authority wins over Host',
    send: `GET http://app.test/a HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n`,
    sent: ['/a'],
    status: [200],
    check: (s) => expect(s[0]?.headers.filter(([k]) => k === 'host').map(([, v]) => v)).toEqual(['app.test']),
  },
  { name: 'two Host headers', send: `GET /a HTTP/1.1\r\nHost: app.test\r\nHost: other.test\r\n\r\n`, sent: ['/a'], status: [400], closed: true },
  { name: 'GET * ', send: `GET * HTTP/1.1\r\n${H}\r\n`, sent: [], status: [400], closed: true },
  // Versions.
  { name: 'HTTP/2.0 request line', send: `GET /a HTTP/2.0\r\n${H}\r\n`, sent: [], status: [505], closed: true },
  { name: 'HTTP/3.0 request line', send: `GET /a HTTP/3.0\r\n${H}\r\n`, sent: [], status: [505], closed: true },
  { name: 'HTTP/2.0 after a good request', send: get('/a') + `GET /b HTTP/2.0\r\n${H}\r\n`, sent: ['/a'], status: [200, 505], closed: true },
  // Pipelining and connection state.
  { name: 'pipelined GETs then a malformed request (issue 8 item 2)', send: get('/a') + get('/b') + 'GET /c HTTP/1.1\r\nHost: app.test\r\nBad Header: x\r\n\r\n', sent: ['/a', '/b'], status: [200, 200, 400], closed: true },
  { name: 'pipelined GETs then garbage', send: get('/a') + get('/b') + '\x16\x03\x01garbage\r\n\r\n', sent: ['/a', '/b'], status: [200, 200, 400], closed: true },
  { name: 'pipelined GETs then TE in HTTP/1.0', send: get('/a') + get('/b') + `POST /c HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, sent: ['/a', '/b'], status: [200, 200, 400], closed: true },
  { name: 'pipelined GETs then an underscore header name', send: get('/a') + get('/b') + get('/c', 'Content_Length: 5\r\n'), sent: ['/a', '/b', '/c'], check: (s) => {
    // nginx drops names with an underscore (underscores_in_headers off): a backend that maps _ to - must not get a second length.
    for (const r of s) expect(r.headers.some(([k]) => k === 'content_length'), 'Content_Length forwarded').toBe(false);
  } },
  { name: 'request after Connection: close is never forwarded', send: get('/a', 'Connection: close\r\n') + SMUGGLED, sent: ['/a'], status: [200], closed: true },
  { name: 'HTTP/1.0 without keep-alive, then another request', send: `GET /a HTTP/1.0\r\n${H}\r\n` + SMUGGLED, sent: ['/a'], status: [200], closed: true },
  { name: 'five pipelined GETs, answered in order', send: ['/1', '/2', '/3', '/4'].map((p) => get(p)).join('') + get('/5', 'Connection: close\r\n'), sent: ['/1', '/2', '/3', '/4', '/5'], status: [200, 200, 200, 200, 200], closed: true },
  { name: 'pipelined POST with body then GET', send: `POST /a HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` + get('/b', 'Connection: close\r\n'), sent: ['/a', '/b'], status: [200, 200], closed: true, check: (s) => expect(s[0]?.body.toString()).toBe('hello') },
  // Upgrades and Expect.
  {
    name: 'h2c upgrade with HTTP2-Settings',
    send: `GET /a HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${SMUGGLED}`,
    sent: ['/a'],
    check: (s) => {
      for (const r of s) expect(r.headers.some(([k, v]) => k === 'upgrade' && /h2c/i.test(v)), 'h2c upgrade forwarded').toBe(false);
    },
  },
  { name: 'h2c upgrade on a POST with a body', send: `POST /a HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, sent: ['/a'] },
  { name: 'websocket upgrade refused upstream, smuggled request behind it', send: `GET /a HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n${SMUGGLED}`, sent: ['/a'], status: [200], closed: true },
  { name: 'Upgrade without Connection: upgrade', send: `GET /a HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: close\r\n\r\n`, sent: ['/a'], status: [200] },
  { name: 'Expect: 100-continue with the body already sent', send: `POST /a HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`, sent: ['/a'], status: [200], check: (s) => expect(s[0]?.body.toString()).toBe('hello') },
  { name: 'Expect: 100-continue then a pipelined GET', send: `POST /a HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello` + get('/b', 'Connection: close\r\n'), sent: ['/a', '/b'], status: [200, 200] },
  { name: 'Expect: unknown', send: `GET /a HTTP/1.1\r\n${H}Expect: 200-ok\r\nConnection: close\r\n\r\n`, sent: ['/a'] },
];

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * What the backend saw must be requests the client sent, each at most once, byte-sane. Returns
 * them in the client's order. Pipelined requests may run in parallel only when all are safe
 * (RFC 9112 9.3.2); otherwise the backend must see them in the client's order.
 */
function assertOnlySent(c: Case, seen: RawBackend['requests']): RawBackend['requests'] {
  const index = seen.map((r) => {
    expect(r.problems, `${c.name}: backend got a request that is not byte-sane: ${JSON.stringify(r.raw.toString('latin1'))}`).toEqual([]);
    const k = c.sent.indexOf(r.target);
    expect(k >= 0, `${c.name}: backend got ${r.method} ${r.target}, which the client did not send: ${JSON.stringify(r.raw.toString('latin1'))}`).toBe(true);
    return k;
  });
  expect(new Set(index).size, `${c.name}: backend got a request twice: ${seen.map((r) => r.target).join(' ')}`).toBe(index.length);
  if (!seen.every((r) => SAFE.has(r.method))) {
    expect(seen.map((r) => r.target), `${c.name}: backend order (a non-safe method was pipelined, RFC 9112 9.3.2)`).toEqual([...seen].sort((a, b) => c.sent.indexOf(a.target) - c.sent.indexOf(b.target)).map((r) => r.target));
  }
  return [...seen].sort((a, b) => c.sent.indexOf(a.target) - c.sent.indexOf(b.target));
}

describe('request smuggling and desync corpus', () => {
  for (const c of cases) {
    it(c.name, async () => {
      backend.clear();
      const got = await exchange(portico.httpPort, c.send);
      await sleep(50);
      const seen = [...backend.requests];
      const detail = `\nsent: ${JSON.stringify(c.send)}\ngot: ${JSON.stringify(got.text)}${got.closed ? ' (closed)' : ' (still open)'}\nbackend connections got: ${JSON.stringify(backend.connections.filter((k) => k.bytes.length).map((k) => Buffer.concat(k.bytes).toString('latin1')))}`;
      const methods = c.send.split(/\r?\n\r?\n/).map((h) => /^([A-Z]+) /.exec(h)?.[1] ?? '');
      const { responses, rest } = parseResponses(got.text, methods);
      // Every byte the client got is a well-formed response; it got an answer or a close.
      expect(rest, `${c.name}: bytes that are not a response${detail}`).toBe('');
      expect(responses.length > 0 || got.closed, `${c.name}: neither an answer nor a close${detail}`).toBe(true);
      const inClientOrder = assertOnlySent(c, seen);
      // Every request the backend saw was answered to the client, in the client's order.
      const finals = responses.filter((r) => r.status >= 200);
      const relayed = finals.filter((r) => r.body.startsWith('seen #')).map((r) => r.body);
      expect(relayed, `${c.name}: answers relayed${detail}`).toEqual(inClientOrder.map(answerBody));
      if (c.status) {
        const want = c.status.map((w, i) => (Array.isArray(w) && w.includes(finals[i]?.status ?? -1) ? finals[i]!.status : w));
        expect(finals.map((r) => r.status), `${c.name}: statuses${detail}`).toEqual(want);
      }
      if (c.closed) expect(got.closed, `${c.name}: connection closed${detail}`).toBe(true);
      expect(responses.some((r) => r.status === 101), `${c.name}: 101${detail}`).toBe(false);
      c.check?.(seen);
    }, 20_000);
  }

  it('no worker restarted, and a normal request is still served', async () => {
    expect(await portico.metric('portico_worker_restarts_total')).toBe(0);
    backend.clear();
    const got = await exchange(portico.httpPort, get('/final', 'Connection: close\r\n'));
    expect(got.text).toMatch(/^HTTP\/1\.1 200 /);
  });
});
