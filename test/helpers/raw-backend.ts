// A backend on raw sockets that records the exact bytes of every request it receives, parses
// them strictly (RFC 9112) into requests, and answers each with a body naming the request it
// saw, so a test can check that the proxy forwarded only what the client sent and relayed every
// answer. Used by the smuggling tests.
import net from 'node:net';

export interface SeenRequest {
  /** Order of arrival over the backend's lifetime (or since the last clear()). */
  id: number;
  conn: number;
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body: Buffer;
  /** The bytes of this request exactly as they arrived. */
  raw: Buffer;
  /** What is not byte-sane about it (empty when it is a clean HTTP/1.1 request). */
  problems: string[];
}

export interface RawBackend {
  readonly port: number;
  readonly host: string;
  /** Complete requests received, in order of arrival. */
  readonly requests: SeenRequest[];
  /** Every connection's raw bytes, including anything left that never formed a request. */
  readonly connections: { id: number; bytes: Buffer[]; leftover: () => Buffer }[];
  clear(): void;
  close(): Promise<void>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: VCHAR, obs-text, SP and HTAB only (RFC 9110 5.5).
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

export const answerBody = (r: Pick<SeenRequest, 'id' | 'method' | 'target'>) => `seen #${r.id} ${r.method} ${r.target}\n`;

type Parsed = { kind: 'need-more' } | { kind: 'bad'; why: string } | { kind: 'request'; length: number; req: Omit<SeenRequest, 'id' | 'conn' | 'raw'> };

/** Parses one request at the start of buf, strictly: CRLF only, token names, one framing. */
export function parseRequest(buf: Buffer): Parsed {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > 65536 ? { kind: 'bad', why: 'head over 64 KiB' } : { kind: 'need-more' };
  const head = buf.subarray(0, end).toString('latin1');
  const problems: string[] = [];
  if (/\r(?!\n)|(?<!\r)\n/.test(head)) problems.push('bare CR or LF in head');
  const lines = head.split('\r\n');
  const rl = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/\d\.\d)$/.exec(lines[0]!);
  if (!rl) return { kind: 'bad', why: `bad request line ${JSON.stringify(lines[0])}` };
  if (rl[3] !== 'HTTP/1.1' && rl[3] !== 'HTTP/1.0') problems.push(`version ${rl[3]}`);
  if (!rl[2]!.startsWith('/') && rl[2] !== '*') problems.push(`target not in origin-form: ${rl[2]}`);
  if (/[\x00-\x20\x7f-\xff]/.test(rl[2]!)) problems.push('CTL, space or non-ASCII in target');
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'bad', why: `bad header line ${JSON.stringify(line)}` };
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(name)) problems.push(`header name not a token: ${JSON.stringify(name)}`);
    if (BAD_VALUE.test(value)) problems.push(`control byte in ${name}`);
    headers.push([name.toLowerCase(), value]);
  }
  const all = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const hosts = all('host');
  if (hosts.length !== 1) problems.push(`${hosts.length} Host headers`);
  const te = all('transfer-encoding');
  const cl = all('content-length');
  if (te.length && cl.length) problems.push('both Transfer-Encoding and Content-Length');
  if (te.length > 1 || (te.length === 1 && te[0]!.toLowerCase() !== 'chunked')) problems.push(`Transfer-Encoding ${JSON.stringify(te)}`);
  if (cl.length > 1 || (cl.length === 1 && !/^\d+$/.test(cl[0]!))) problems.push(`Content-Length ${JSON.stringify(cl)}`);
  if (te.length && rl[3] === 'HTTP/1.0') problems.push('Transfer-Encoding in HTTP/1.0');
  let at = end + 4;
  let body = Buffer.alloc(0);
  if (te.length) {
    // Chunked: sizes in hex, optional extensions, CRLF after each chunk, trailers, empty line.
    const parts: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return { kind: 'need-more' };
      const sizeLine = buf.subarray(at, eol).toString('latin1');
      const m = /^([0-9A-Fa-f]{1,15})(;.*)?$/.exec(sizeLine);
      if (!m) return { kind: 'bad', why: `bad chunk size line ${JSON.stringify(sizeLine)}` };
      const size = parseInt(m[1]!, 16);
      at = eol + 2;
      if (size === 0) {
        for (;;) {
          const t = buf.indexOf('\r\n', at);
          if (t < 0) return { kind: 'need-more' };
          const trailer = buf.subarray(at, t).toString('latin1');
          at = t + 2;
          if (trailer === '') break;
          if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(trailer)) return { kind: 'bad', why: `bad trailer ${JSON.stringify(trailer)}` };
        }
        break;
      }
      if (buf.length < at + size + 2) return { kind: 'need-more' };
      parts.push(buf.subarray(at, at + size));
      if (buf[at + size] !== 0x0d || buf[at + size + 1] !== 0x0a) return { kind: 'bad', why: 'chunk not followed by CRLF' };
      at += size + 2;
    }
    body = Buffer.concat(parts);
  } else if (cl.length) {
    const n = Number(cl[0]);
    if (!Number.isSafeInteger(n)) return { kind: 'bad', why: `unusable Content-Length ${cl[0]}` };
    if (buf.length < at + n) return { kind: 'need-more' };
    body = Buffer.from(buf.subarray(at, at + n));
    at += n;
  }
  return { kind: 'request', length: at, req: { method: rl[1]!, target: rl[2]!, version: rl[3]!, headers, body, problems } };
}

export async function startRawBackend(host = '127.0.0.1'): Promise<RawBackend> {
  const requests: SeenRequest[] = [];
  const connections: RawBackend['connections'] = [];
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  let nextConn = 1;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const conn = { id: nextConn++, bytes: [] as Buffer[], leftover: () => pending };
    connections.push(conn);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      conn.bytes.push(chunk);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const p = parseRequest(pending);
        if (p.kind === 'need-more') return;
        if (p.kind === 'bad') {
          // Recorded as a request with a problem, so a test sees that garbage reached the backend.
          requests.push({ id: nextId++, conn: conn.id, method: '?', target: '?', version: '?', headers: [], body: Buffer.alloc(0), raw: pending, problems: [`unparseable: ${p.why}`] });
          pending = Buffer.alloc(0);
          socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          return;
        }
        const seen: SeenRequest = { ...p.req, id: nextId++, conn: conn.id, raw: Buffer.from(pending.subarray(0, p.length)) };
        requests.push(seen);
        pending = pending.subarray(p.length);
        const body = answerBody(seen);
        // Never 101: an upgrade the backend does not take is answered as a plain response.
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Seen-Id: ${seen.id}\r\n\r\n${body}`);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    host,
    requests,
    connections,
    clear: () => {
      // Pooled connections outlive a clear(): keep them, forget what they carried so far.
      requests.length = 0;
      for (const c of connections) c.bytes.length = 0;
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

export interface ClientResponse {
  status: number;
  /** The status line as received. */
  line: string;
  headers: [string, string][];
  body: string;
}

/**
 * Splits what a client received into HTTP/1.x responses (1xx have no body). Stops at the first
 * thing that is not a well-formed response and reports it as `rest`.
 */
export function parseResponses(text: string, requestMethods: string[] = []): { responses: ClientResponse[]; rest: string } {
  const responses: ClientResponse[] = [];
  let at = 0;
  let finals = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) [^\r\n]*$/.exec(lines[0]!);
    if (!m) break;
    const headers = lines.slice(1).map((l): [string, string] => {
      const c = l.indexOf(':');
      return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
    });
    const status = Number(m[1]);
    let next = end + 4;
    let body = '';
    const get = (n: string) => headers.find(([k]) => k === n)?.[1];
    const isHead = requestMethods[finals] === 'HEAD';
    if (status >= 200 && status !== 204 && status !== 304 && !isHead) {
      if (get('transfer-encoding')?.toLowerCase() === 'chunked') {
        const parts: string[] = [];
        for (;;) {
          const eol = text.indexOf('\r\n', next);
          if (eol < 0) return { responses, rest: text.slice(at) };
          const size = parseInt(text.slice(next, eol), 16);
          next = eol + 2;
          if (!(size >= 0)) return { responses, rest: text.slice(at) };
          if (size === 0) {
            const t = text.indexOf('\r\n\r\n', next - 2);
            next = t < 0 ? text.length : t + 4;
            break;
          }
          parts.push(text.slice(next, next + size));
          next += size + 2;
        }
        body = parts.join('');
      } else if (get('content-length') !== undefined) {
        const n = Number(get('content-length'));
        body = text.slice(next, next + n);
        next += n;
      } else {
        body = text.slice(next);
        next = text.length;
      }
    }
    if (status >= 200) finals++;
    responses.push({ status, line: lines[0]!, headers, body });
    at = next;
  }
  return { responses, rest: text.slice(at) };
}
