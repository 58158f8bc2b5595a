// The HTTP/1.1 fast path: requests served on the client socket itself. The strict head parser
// (head-parser.ts) reads each request, the same checks and route decision as the node:http path
// decide it, the head goes to a pooled upstream connection (upstream-pool.ts), and bodies are
// relayed as bytes both ways with backpressure, parsed only as far as framing needs.
//
// One request at a time per connection: a pipelined request is not read, let alone sent upstream,
// before the response to the one ahead of it is complete (RFC 9112 9.3.2), so responses can
// never be reordered and a malformed request is answered after those before it.
//
// Upgrade requests (WebSocket, h2c) and routes to h2c backends keep Node's path: the connection,
// with the bytes already read, is handed to the node:http server, and stays there.

import { STATUS_CODES } from 'node:http';
import pino from 'pino';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CompiledBackend, CompiledEndpoint, CompiledFilters, CompiledRoute, RoutingTable } from '../../router/index.ts';
import { pickOtherEndpoint, queryParam } from '../../router/index.ts';
import { addCorsHeaders, applyRequestFilters, applyResponseFilters, corsResponseHeaders, type HeaderRecord } from '../../router/filters.ts';
import { SERVER_HEADER, connectionTokens, isHopByHop, upstreamHeaders, type ForwardedValues } from '../forwarding.ts';
import type { ConnectionSink, ListenerLimits } from '../listeners.ts';
import type { Logger } from '../log.ts';
import { observeRequest, observeUpstreamLatency, requestHeadBytes, upstreamErrors } from '../metrics.ts';
import { drain, proxyLogFields, type DownstreamRequest } from '../proxy.ts';
import type { RealIpConfig } from '../realip/client-ip.ts';
import { resolveRealIp } from '../realip/client-ip.ts';
import { getProxyInfo, type FirstBytesCheck } from '../realip/proxy-listener.ts';
import { pathProblem } from '../request-checks.ts';
import { decideRoute, type DecisionContext, type RouteRequest } from '../route-decision.ts';
import { BodyFramer } from './body.ts';
import { Mirrors } from './mirror.ts';
import { lowerName, parseRequestHead, type RequestHead } from './head-parser.ts';
import { FIELD_STRIDE, parseResponseHead, responseFraming, type BodyFraming, type ResponseHead } from './response-head.ts';
import { socketIo, type IoSink, type SocketIo } from './socket-io.ts';
import { UpstreamSocketPool, isConnectError, type UpstreamConnection, type UpstreamTarget, type UpstreamUser, type UpstreamWaiter } from './upstream-pool.ts';

export interface FastHttp1Options {
  readonly limits: ListenerLimits;
  readonly log: Logger;
  /** Whether access logs are written (log level info or lower). */
  readonly accessLog: boolean;
  readonly table: () => RoutingTable | undefined;
  readonly decision: DecisionContext;
  readonly realIp: RealIpConfig;
  readonly pool: UpstreamSocketPool;
  readonly upstreamTimeoutMs: number;
  /** Serves a connection the fast path hands over (upgrades, h2c backends): node:http's server. */
  readonly handOff: (socket: net.Socket) => void;
}

const MAX_ATTEMPTS = 3;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
// Bytes read ahead of the request being served (its body before the upstream is ready, or
// pipelined requests) beyond which the client socket stops being read.
const READ_AHEAD = 64 * 1024;
const ALLOW = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
// A response head and a first body part up to this size are copied into one buffer for one write.
const COALESCE_MAX = 16 * 1024;

// RFC 9110 6.6.1: a response forwarded without a Date gets one (as node:http adds it).
let dateLine = '';
let dateSecond = 0;
function dateHeader(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

const SERVER_LINE = `Server: ${SERVER_HEADER}\r\n`;

/** The first value of a header (lower-case name) in a flat list. */
function headerValue(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === lower.length && raw[i].toLowerCase() === lower) return raw[i + 1];
  return undefined;
}

function reasonOf(status: number): string {
  return STATUS_CODES[status] ?? '';
}

/** Route conditions read the request through this view; one per server, set for each decision. */
class HeadView implements RouteRequest {
  head: RequestHead | undefined;
  rawHeaders: string[] = [];
  serverName: string | undefined;
  localPort: number | undefined;

  get method(): string {
    return this.head?.method ?? 'GET';
  }

  get host(): string | undefined {
    return this.head?.host;
  }

  get target(): string {
    return this.head?.target ?? '/';
  }

  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    let out: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i];
      if (!sameLowerCase(n, name)) continue;
      out = out === undefined ? raw[i + 1] : `${out}, ${raw[i + 1]}`;
    }
    return out;
  }

  queryParam(name: string): string | undefined {
    // Read in place from the target: no URLSearchParams per request.
    return queryParam(this.head?.target ?? '', name);
  }
}

/** `n` lower-cased equals `lower`, without allocating a lower-cased copy (header names are ASCII). */
function sameLowerCase(n: string, lower: string): boolean {
  if (n.length !== lower.length) return false;
  for (let i = 0; i < n.length; i++) {
    let c = n.charCodeAt(i);
    if (c >= 128) return n.toLowerCase() === lower;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

export class FastHttp1Server {
  readonly options: FastHttp1Options;
  readonly connections = new Set<Connection>();
  readonly view = new HeadView();
  /** Buffered bytes beyond which the client is not read (a whole head always fits). */
  readonly readAhead: number;
  /** How long an idle connection is kept, told to clients as node:http tells them (RFC 9112 9.3). */
  readonly keepAliveLine: string;
  private sweeper: NodeJS.Timeout | undefined;
  /**
   * The port the listener in front is bound to (set by ListenerStack once bound): every
   * connection's local port, known without a getsockname() per connection.
   */
  localPort: number | undefined;

  constructor(options: FastHttp1Options) {
    this.options = options;
    this.readAhead = Math.max(READ_AHEAD, options.limits.maxHeaderSize + 1);
    this.keepAliveLine = `Keep-Alive: timeout=${Math.floor(options.limits.keepAliveTimeoutMs / 1000)}\r\n`;
  }

  /** Serves an accepted socket (the drop-in for `http.Server.emit('connection', socket)`). */
  emit(event: 'connection', socket: net.Socket): boolean {
    if (event !== 'connection') return false;
    this.handle(socket);
    return true;
  }

  handle(socket: net.Socket, h2c?: ConnectionSink, headersTimeoutMs?: number, firstBytes?: FirstBytesCheck): void {
    const conn = new Connection(this, socket, h2c, headersTimeoutMs, firstBytes);
    this.connections.add(conn);
    this.startSweeper();
  }

  /** A plain connection: HTTP/1.1 here, or, when it opens with the HTTP/2 preface, h2c's. */
  servePlain(socket: net.Socket, h2c: ConnectionSink, headersTimeoutMs: number, firstBytes?: FirstBytesCheck): void {
    this.handle(socket, h2c, headersTimeoutMs, firstBytes);
  }

  /**
   * Shutdown: connections between requests close now, busy ones after their response; idle
   * upstream connections close now, busy ones when released.
   */
  closeIdleConnections(): void {
    for (const c of this.connections) c.closeIfIdle();
    this.options.pool.closeAll();
  }

  /**
   * The same fast path (options, upstream pool) for another listener, handing off elsewhere and
   * routing on its own table (a Gateway listener with a port of its own) when given one.
   */
  sibling(handOff: (socket: net.Socket) => void, table: () => RoutingTable | undefined = this.options.table): FastHttp1Server {
    return new FastHttp1Server({ ...this.options, handOff, table });
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    const l = this.options.limits;
    const shortest = Math.min(l.headersTimeoutMs, l.keepAliveTimeoutMs, l.requestTimeoutMs > 0 ? l.requestTimeoutMs : Infinity);
    // Deadlines are checked in a sweep (as node:http's connectionsCheckingInterval), so a
    // request costs a number assignment, not a timer.
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const c of this.connections) c.checkDeadlines(now);
      if (this.connections.size === 0 && this.sweeper !== undefined) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, Math.max(20, Math.min(250, Math.floor(shortest / 4))));
    this.sweeper.unref();
  }
}

const Deadline = { None: 0, Idle: 1, Headers: 2, Request: 3 } as const;
type Deadline = (typeof Deadline)[keyof typeof Deadline];

class Connection implements IoSink {
  readonly server: FastHttp1Server;
  readonly socket: net.Socket;
  /** Reads and writes (on the handle where possible: socket-io.ts). */
  readonly io: SocketIo;
  buf: Buffer | undefined;
  ex: Exchange | undefined;
  /** The client deadline: idle (keep-alive), headers or request timeout. */
  deadline = 0;
  deadlineKind: Deadline = Deadline.None;
  requests = 0;
  closed = false;
  clientEnded = false;
  handedOff = false;
  /** The socket was ended (a last response written): nothing more is read or answered. */
  ending = false;
  linger: NodeJS.Timeout | undefined;
  readPaused = false;
  /** Until the first bytes rule it out: where a connection opening with the HTTP/2 preface goes. */
  h2c: ConnectionSink | undefined;
  /** Until the first bytes rule it out: a PROXY header where none is expected (src/realip/proxy-listener.ts). */
  firstBytes: FirstBytesCheck | undefined;
  private pumping = false;
  private again = false;

  constructor(server: FastHttp1Server, socket: net.Socket, h2c?: ConnectionSink, headersTimeoutMs = server.options.limits.headersTimeoutMs, firstBytes?: FirstBytesCheck) {
    this.server = server;
    this.socket = socket;
    this.h2c = h2c;
    this.firstBytes = firstBytes;
    // The client may half-close after its last request; its answers still go out.
    socket.allowHalfOpen = true;
    this.setDeadline(Deadline.Headers, headersTimeoutMs);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', noop);
    this.io = socketIo(socket, this);
  }

  setDeadline(kind: Deadline, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = performance.now() + ms;
  }

  clearDeadline(): void {
    this.deadlineKind = Deadline.None;
  }

  checkDeadlines(now: number): void {
    if (this.closed) return;
    const ex = this.ex;
    if (ex !== undefined && ex.upstreamDeadline > 0 && now >= ex.upstreamDeadline) ex.upstreamTimedOut();
    if (ex !== undefined && ex.routeDeadline > 0 && now >= ex.routeDeadline) ex.routeTimedOut();
    if (this.deadlineKind === Deadline.None || now < this.deadline) return;
    const kind = this.deadlineKind;
    this.deadlineKind = Deadline.None;
    if (kind === Deadline.Idle) return this.destroy();
    if (kind === Deadline.Headers) {
      // Nothing at all: just close. Part of a head: 408 (as node:http).
      if (this.buf === undefined || this.buf.length === 0) return this.destroy();
      return this.fail(408, 'Request Timeout\n');
    }
    // The request body did not arrive in time.
    ex?.clientTimedOut();
  }

  onIoData(chunk: Buffer): void {
    if (this.closed || this.ending || this.handedOff) return;
    if (this.buf === undefined || this.buf.length === 0) {
      this.buf = chunk;
      // The first byte of a head starts its headers timeout (a kept-alive connection was idle).
      if (this.ex === undefined && this.deadlineKind === Deadline.Idle) this.setDeadline(Deadline.Headers, this.server.options.limits.headersTimeoutMs);
    } else {
      this.buf = Buffer.concat([this.buf, chunk]);
    }
    this.pump();
  }

  readonly onEnd = (): void => {
    this.clientEnded = true;
    // With an exchange under way: it finishes, then the connection closes (see next()), unless
    // its request body can now never be complete (relayRequestBody).
    this.pump();
  };

  readonly onClose = (): void => {
    this.closed = true;
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.server.connections.delete(this);
    this.ex?.clientGone();
  };

  onIoDrain(): void {
    this.ex?.clientDrained();
  }

  /** Stops or restarts reading the client as buffered bytes and upstream backpressure demand. */
  updateReading(): void {
    const ex = this.ex;
    const stop = (ex !== undefined && ex.upstreamBlocked) || (this.buf !== undefined && this.buf.length > this.server.readAhead);
    if (stop && !this.readPaused) {
      this.readPaused = true;
      this.io.pause();
    } else if (!stop && this.readPaused) {
      this.readPaused = false;
      this.io.resume();
    }
  }

  /** Reads whatever the buffered bytes allow: the next head, or the body of the current request. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.step();
      } while (this.again && !this.closed && !this.handedOff);
    } finally {
      this.pumping = false;
    }
    if (!this.closed && !this.handedOff) this.updateReading();
  }

  private step(): void {
    if (this.closed || this.handedOff || this.ending) return;
    const current = this.ex;
    if (current !== undefined) {
      current.relayRequestBody();
      return;
    }
    const buf = this.buf;
    if (buf === undefined || buf.length === 0) {
      this.buf = undefined;
      if (this.clientEnded) return this.close();
      return;
    }
    const o = this.server.options;
    if (this.firstBytes !== undefined) {
      const seen = this.firstBytes(this.socket, buf);
      if (seen === 'wait') {
        if (this.clientEnded) return this.close();
        return;
      }
      this.firstBytes = undefined;
      // Answered and closed by the check: the socket is no longer this connection's.
      if (seen === 'refused') return this.release();
    }
    if (this.h2c !== undefined) {
      // 'P' starts PRI (the HTTP/2 preface) but also POST, PUT and PATCH: read on until it tells.
      const n = Math.min(buf.length, H2_PREFACE.length);
      // Most requests rule it out on the first byte, without a comparison call.
      if (buf[0] === 0x50 && buf.compare(H2_PREFACE, 0, n, 0, n) === 0) {
        if (n === H2_PREFACE.length) return this.handOff(this.h2c);
        if (this.clientEnded) return this.close();
        return;
      }
      this.h2c = undefined;
    }
    const r = parseRequestHead(buf, 0, o.limits.maxHeaderSize);
    if (r.kind === 'incomplete') {
      if (this.clientEnded) return this.close();
      if (this.deadlineKind !== Deadline.Headers) this.setDeadline(Deadline.Headers, o.limits.headersTimeoutMs);
      return;
    }
    if (r.kind === 'error') return this.refuse(r.status, r.reason);
    const head = r.head;
    // Upgrades (WebSocket, h2c) are Node's: it decides which become tunnels (src/upgrade.ts).
    if (head.upgrade) return this.handOff();
    this.clearDeadline();
    this.requests++;
    // The head is consumed before the request starts: its body may be relayed at once.
    this.buf = buf.length === head.headLength ? undefined : buf.subarray(head.headLength);
    const ex = new Exchange(this, head);
    if (!ex.start()) {
      // Handed to node:http after all (an h2c backend): with the head, as it came.
      this.buf = buf;
      this.ex = undefined;
      this.handOff();
      return;
    }
    this.again = true;
  }

  /** A request the parser refused: answered (after every earlier one, by construction), then closed. */
  private refuse(status: number, reason: string): void {
    this.server.options.log.debug({ reason, status }, 'rejected malformed request');
    if (status === 405) {
      const body = 'CONNECT is not supported\n';
      return this.endWith(`HTTP/1.1 405 Method Not Allowed\r\n${SERVER_LINE}Allow: ${ALLOW}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }
    const body = status === 400 ? `bad request: ${reason}\n`
      : status === 501 ? 'not implemented: only the chunked transfer-coding is supported\n'
      : status === 505 ? 'HTTP version not supported\n'
      : `${reasonOf(status)}\n`;
    this.fail(status, body);
  }

  fail(status: number, body: string): void {
    this.endWith(`HTTP/1.1 ${status} ${reasonOf(status)}\r\n${SERVER_LINE}Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n\r\n${body}`);
  }

  /** Writes a last response and closes; nothing after it is read. */
  endWith(data: string): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.buf = undefined;
    this.clearDeadline();
    this.stopReading();
    this.io.end(data);
    this.lingerUntilClosed();
  }

  /** Nothing more is served: what the client still sends is read and dropped, up to its end. */
  private stopReading(): void {
    this.io.detach();
    // On the handle nothing was flowing through the stream: let it flow (to no listener) now.
    if (this.io.raw) this.socket.resume();
  }

  /** Ends the connection after what was written; nothing more is read. */
  close(): void {
    // Once only: ending an ended socket makes (and drops) an error, at a cost per connection.
    if (this.closed || this.ending) return;
    this.ending = true;
    this.buf = undefined;
    this.clearDeadline();
    this.stopReading();
    this.io.end();
    this.lingerUntilClosed();
  }

  /**
   * The client asked to close (Connection: close, or HTTP/1.0) and its request was read whole:
   * when nothing more came from it and the answer is with the kernel, close at once, as nginx
   * does, instead of a half-close, an EOF read and a linger timer per connection. Otherwise (bytes
   * after the request, unflushed output, TLS and its close_notify) as close().
   */
  private closeNow(): void {
    const s = this.socket;
    if ((this.buf !== undefined && this.buf.length > 0) || s.readableLength > 0 || this.io.pendingBytes() > 0 || (s as TLSSocket).encrypted === true) return this.close();
    this.ending = true;
    this.buf = undefined;
    this.clearDeadline();
    this.destroy();
  }

  /** A client that keeps its side open after ours ended is not waited for long. */
  private lingerUntilClosed(): void {
    this.linger = setTimeout(destroySocket, 2000, this.socket);
    this.linger.unref();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }

  closeIfIdle(): void {
    if (this.ex === undefined && (this.buf === undefined || this.buf.length === 0)) this.destroy();
  }

  /** Stops serving the socket: someone else has it now (the unread bytes in buf stay for them). */
  private detach(): void {
    this.handedOff = true;
    this.clearDeadline();
    this.server.connections.delete(this);
    const s = this.socket;
    this.io.detach();
    s.off('end', this.onEnd);
    s.off('close', this.onClose);
  }

  /** Stops serving the socket and drops what was read: someone else has it now. */
  private release(): void {
    this.detach();
    this.buf = undefined;
  }

  /** Gives the connection, with the bytes read and not yet served, to node:http (or h2c's server). */
  handOff(to?: ConnectionSink): void {
    this.detach();
    const s = this.socket;
    s.pause();
    if (this.buf !== undefined && this.buf.length > 0) s.unshift(this.buf);
    this.buf = undefined;
    s.allowHalfOpen = false;
    // The bytes go back at once, the socket to its new server only after this read is over:
    // node:http2 takes the socket's handle, and misses bytes put back later or handed over from
    // inside the 'data' event (node:http's own sniffing step does the same). And only once what
    // was written here has gone down: its server writes through the stream, which knows nothing
    // of a write still under way on the handle (socket-io.ts).
    this.io.whenFlushed(() => {
      process.nextTick(() => {
        if (s.destroyed) return;
        if (to !== undefined) to.emit('connection', s);
        else this.server.options.handOff(s);
        s.resume();
      });
    });
  }

  /** The current exchange is complete: the next request may be read. */
  next(closeAfter: boolean): void {
    const ex = this.ex;
    this.ex = undefined;
    if (this.closed) return;
    if (closeAfter) return ex !== undefined && !ex.head.keepAlive && ex.reqBodyDone ? this.closeNow() : this.close();
    if (this.buf === undefined || this.buf.length === 0) {
      if (this.clientEnded) return this.close();
      this.setDeadline(Deadline.Idle, this.server.options.limits.keepAliveTimeoutMs);
    } else {
      this.setDeadline(Deadline.Headers, this.server.options.limits.headersTimeoutMs);
    }
    this.pump();
  }
}

function noop(): void {}

// An endpoint's pool target with its key, made once per endpoint (of a table or an endpoint
// update) instead of an object and a key string per request.
const plainTargets = new WeakMap<CompiledEndpoint, UpstreamTarget>();
const tlsTargets = new WeakMap<CompiledEndpoint, UpstreamTarget>();
function targetOf(ep: CompiledEndpoint, tls: boolean): UpstreamTarget {
  const cache = tls ? tlsTargets : plainTargets;
  let t = cache.get(ep);
  if (t === undefined) {
    const base = { address: ep.address, port: ep.port, tls };
    t = { ...base, key: UpstreamSocketPool.key(base) };
    cache.set(ep, t);
  }
  return t;
}

const writers = new WeakMap<Logger, ((fields: string) => void) | null>();

/**
 * Writes an info line to the logger's destination as pino would, given its fields as JSON text
 * (each starting with a comma), for a logger whose lines nothing else shapes (no formatter,
 * mixin, hook, serializer or metadata-wanting stream; the worker's is such a one); undefined for
 * any other, whose lines go through logger.info.
 */
export function accessWriter(log: Logger): ((fields: string) => void) | undefined {
  let w = writers.get(log);
  if (w === undefined) {
    const l = log as unknown as Record<symbol, unknown>;
    const sym = pino.symbols;
    const formatters = l[sym.formattersSym] as { log?: unknown } | undefined;
    const hooks = l[sym.hooksSym] as { streamWrite?: unknown } | undefined;
    const serializers = l[sym.serializersSym] as Record<string, unknown> | undefined;
    const stream = l[sym.streamSym] as ({ write(s: string): unknown } & Record<symbol, unknown>) | undefined;
    const lsCache = l[sym.lsCacheSym] as Record<number, string> | undefined;
    const time = l[sym.timeSym] as (() => string) | undefined;
    const chindings = l[sym.chindingsSym];
    const end = l[sym.endSym];
    const level = log.levels.values.info;
    const plain = formatters?.log === undefined && l[sym.mixinSym] === undefined && hooks?.streamWrite === undefined &&
      Object.keys(serializers ?? {}).every((k) => k === 'err') && stream !== undefined && typeof stream.write === 'function' &&
      stream[sym.needsMetadataGsym] !== true && typeof lsCache?.[level] === 'string' && typeof time === 'function' &&
      typeof chindings === 'string' && typeof end === 'string';
    w = plain ? (fields: string) => void stream.write(`${lsCache[level]}${time.call(log)}${chindings}${fields}${end}`) : null;
    writers.set(log, w);
  }
  return w ?? undefined;
}

/**
 * `s` as a JSON string: quoted as it is when nothing in it needs an escape (what JSON.stringify
 * gives, for less), else JSON.stringify's answer.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

function destroySocket(s: net.Socket): void {
  s.destroy();
}

/** One request on a connection, from its head to the end of its response. */
class Exchange implements UpstreamWaiter, UpstreamUser {
  readonly conn: Connection;
  readonly head: RequestHead;
  readonly startedAt = performance.now();
  rawHeaders: string[];
  fwd!: ForwardedValues;
  route: CompiledRoute | undefined;
  backend: CompiledBackend | undefined;
  endpoint: CompiledEndpoint | undefined;
  target: UpstreamTarget | undefined;
  upstream: UpstreamConnection | undefined;
  attempts = 1;
  /** Framing of the request body; undefined when there is none. */
  reqBody: BodyFramer | undefined;
  reqBodyDone: boolean;
  /** The upstream did not take the last body write: the client is not read until it drains. */
  upstreamBlocked = false;
  upstreamHead = '';
  sentAt = 0;
  upstreamDeadline = 0;
  /** The route's timeouts.request (Gateway API): the whole exchange, from the head's arrival. */
  routeDeadline = 0;
  /** Upstream response timeout (headers, and between body reads); 0: none. */
  timeoutMs = 0;
  backendFilters: CompiledFilters | undefined;
  mirrors: Mirrors | undefined;
  // Response side.
  rbuf: Buffer | undefined;
  resHead: ResponseHead | undefined;
  resBody: BodyFramer | undefined;
  resFraming: BodyFraming = 'none';
  /** The upstream sent response bytes: the request can no longer be retried. */
  responseBegun = false;
  /** A head (final) went to the client, or is about to (pendingHead). */
  headSent = false;
  /**
   * The final response head, until the first body bytes (or flushHead) take it out: its text up
   * to the relayed fields, their byte ranges in resHead.buf, the text after them, the size.
   */
  pendingHead: string | undefined;
  pendingRuns: number[] | undefined;
  pendingTail = '';
  pendingSize = 0;
  status = 0;
  responseBytes = 0;
  closeAfter = false;
  dechunk = false;
  error: string | undefined;
  done = false;

  constructor(conn: Connection, head: RequestHead) {
    this.conn = conn;
    this.head = head;
    this.rawHeaders = head.rawHeaders;
    const hasBody = head.chunked || head.contentLength > 0;
    this.reqBody = hasBody ? new BodyFramer(head.chunked ? 'chunked' : 'length', head.contentLength) : undefined;
    this.reqBodyDone = !hasBody;
    this.closeAfter = !head.keepAlive;
  }

  private get o(): FastHttp1Options {
    return this.conn.server.options;
  }

  /** Decides and starts the request. False when the connection was handed to node:http instead. */
  start(): boolean {
    const conn = this.conn;
    const head = this.head;
    conn.ex = this;
    const o = this.o;
    if (head.rawTarget !== head.target) {
      // Absolute form: its authority is the Host (RFC 9112 3.2.2), for routing and upstream alike.
      const rest: string[] = [];
      const raw = head.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() !== 'host') rest.push(raw[i], raw[i + 1]);
      rest.push('Host', head.host ?? '');
      this.rawHeaders = rest;
    }
    const socket = conn.socket as net.Socket & { encrypted?: boolean };
    const localPort = conn.server.localPort ?? socket.localPort;
    const r = resolveRealIp(socket.remoteAddress, getProxyInfo(socket), socket.encrypted === true, localPort ?? 0, this.rawHeaders, o.realIp);
    this.fwd = r.host === '' ? { ...r, host: head.host ?? '' } : r;
    if (this.reqBody !== undefined) {
      const rt = o.limits.requestTimeoutMs;
      if (rt > 0) conn.setDeadline(Deadline.Request, rt);
    }
    const target = head.target;
    if (target.includes('%') || target.includes('..') || target.includes('\\')) {
      const problem = pathProblem(target);
      if (problem !== undefined) {
        this.closeAfter = true;
        this.error = problem;
        return this.local(400, `bad request: ${problem}`), true;
      }
    }
    if (head.expect !== undefined && !head.expectContinue && head.versionMinor === 1) {
      // An expectation Portico cannot meet (RFC 9110 10.1.1), answered as node:http answers it.
      this.error = `unsupported expectation ${head.expect}`;
      return this.writeLocal(417, 'Content-Length: 0\r\n', ''), true;
    }
    if (head.method === 'TRACE') {
      this.error = 'TRACE is not allowed';
      return this.local(405, 'method not allowed', `Allow: ${ALLOW}\r\n`), true;
    }
    if (target === '*') {
      // OPTIONS * asks about the server itself: Portico answers it, no backend does.
      return this.writeLocal(200, `Allow: ${ALLOW}\r\nContent-Length: 0\r\n`, ''), true;
    }
    const view = conn.server.view;
    view.head = head;
    view.rawHeaders = this.rawHeaders;
    const tlsSocket = socket as TLSSocket;
    view.serverName = tlsSocket.encrypted === true && typeof tlsSocket.servername === 'string' && tlsSocket.servername !== '' ? tlsSocket.servername : undefined;
    view.localPort = localPort;
    const d = decideRoute(o.table(), view, this.fwd, o.decision);
    view.head = undefined;
    view.rawHeaders = [];
    if (d.action === 'respond') {
      this.route = d.route;
      this.backend = d.backend;
      this.error = d.error;
      // A CORS preflight's answer: its headers and no body.
      if (d.status === 204) return this.writeLocal(204, (d.headers ?? []).map(([n, v]) => `${n}: ${v}\r\n`).join(''), ''), true;
      return this.local(d.status, d.message, d.location !== undefined ? `Location: ${d.location}\r\n` : ''), true;
    }
    // HTTP/2 cleartext upstreams (mirrors included) are undici's (src/proxy.ts): this
    // connection moves there.
    const mirrors = d.mirrors;
    if (d.backend.protocol === 'h2c' || (mirrors !== undefined && mirrors.some((m) => m.backend.protocol === 'h2c'))) return false;
    this.route = d.route;
    this.backend = d.backend;
    this.endpoint = d.endpoint;
    this.backendFilters = d.backendFilters;
    this.timeoutMs = d.route.ir.timeoutMs ?? o.upstreamTimeoutMs;
    const limit = d.route.ir.requestTimeoutMs;
    if (limit !== undefined && limit > 0) this.routeDeadline = this.startedAt + limit;
    this.upstreamHead = this.buildUpstreamHead();
    // Gateway API RequestMirror: copies of the head and body go out beside the request.
    if (mirrors !== undefined) this.mirrors = Mirrors.start(mirrors, head.method, this.upstreamHead, this.reqBody !== undefined, this.timeoutMs);
    if (head.expectContinue && this.reqBody !== undefined && head.versionMinor === 1) conn.io.write(CONTINUE);
    this.acquire();
    return true;
  }

  private buildUpstreamHead(): string {
    const head = this.head;
    let h = upstreamHeaders(this.rawHeaders, head.connectionTokens.length === 0 ? undefined : head.connectionTokens.join(','), this.fwd);
    let target = head.target;
    // Gateway API filters (header edits, URLRewrite), compiled with the table.
    const rf = this.route!.filters;
    if (rf !== undefined || this.backendFilters !== undefined) ({ headers: h, target } = applyRequestFilters(h, target, rf, this.backendFilters));
    let s = `${head.method} ${target} HTTP/1.1\r\n`;
    let hasHost = false;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i];
      if (!hasHost && n.length === 4 && n.toLowerCase() === 'host') hasHost = true;
      // The body's framing is the relay's own, written below from what the parser read: a client
      // listing Content-Length in Connection (hop-by-hop, so dropped) must not leave the upstream
      // reading the body as the next request.
      if (n.length === 14 && n.toLowerCase() === 'content-length') continue;
      s += `${n}: ${h[i + 1]}\r\n`;
    }
    // An HTTP/1.0 request may come without Host; HTTP/1.1 upstream requests need one (RFC 9112
    // 3.2): the endpoint's authority, as the node engine's undici sends.
    if (!hasHost) {
      const ep = this.endpoint!;
      s += `Host: ${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}\r\n`;
    }
    // The chunked framing is relayed as it came (upstreamHeaders drops the hop-by-hop TE).
    if (head.chunked) s += 'Transfer-Encoding: chunked\r\n';
    else if (head.contentLength >= 0) s += `Content-Length: ${head.contentLength}\r\n`;
    return `${s}\r\n`;
  }

  private acquire(): void {
    this.target = targetOf(this.endpoint!, this.backend!.protocol === 'https');
    this.o.pool.acquire(this.target, this);
  }

  // UpstreamWaiter
  onConnection(up: UpstreamConnection): void {
    if (this.done || this.conn.closed) {
      up.pool.release(up, true);
      return;
    }
    this.upstream = up;
    up.user = this;
    this.sentAt = performance.now();
    // The head and the body bytes already read leave in one write; a request without them needs
    // no corking (which costs a buffered write and its replay on every request).
    const withBody = this.reqBody !== undefined && this.conn.buf !== undefined;
    if (withBody) up.io.cork();
    up.write(this.upstreamHead);
    if (withBody) {
      this.relayRequestBody();
      up.io.uncork();
    }
    // The response timeout starts once the request is sent (nginx's proxy_read_timeout): an
    // upload slower than it is still in progress, bounded by the client's request timeout and,
    // while the upstream does not read, by the send timeout armed in relayRequestBody.
    if (this.reqBody === undefined || this.reqBodyDone) this.armResponseTimeout(this.sentAt);
    this.conn.updateReading();
  }

  onConnectError(err: Error & { code?: string }): void {
    if (this.done) return;
    if (!this.conn.closed && this.attempts < MAX_ATTEMPTS) {
      // As nginx's proxy_next_upstream: a request not yet sent can try another endpoint, with its
      // body too, since no byte of the body is read from the client before a connection exists.
      const other = this.otherEndpoint();
      if (other !== undefined) {
        this.attempts++;
        this.endpoint = other;
        this.acquire();
        return;
      }
    }
    this.upstreamFailed('connect', err);
  }

  /** Relays the buffered request body bytes to the upstream, as far as they belong to this request. */
  relayRequestBody(): void {
    const body = this.reqBody;
    const conn = this.conn;
    if (body === undefined || this.reqBodyDone) return;
    if (conn.buf === undefined) {
      if (conn.clientEnded) this.clientBodyCut();
      return;
    }
    // Until the upstream is ready the body waits in the buffer (and, past READ_AHEAD, in the socket).
    if (this.upstream === undefined && !this.headSent) return;
    const buf = conn.buf;
    const r = body.feed(buf, 0);
    if (r.error !== undefined) return this.clientBodyError(r.error);
    if (r.consumed > 0) {
      const part = r.consumed === buf.length ? buf : buf.subarray(0, r.consumed);
      conn.buf = r.consumed === buf.length ? undefined : buf.subarray(r.consumed);
      // After an early response the upstream connection is gone: the rest is read and dropped.
      if (this.upstream !== undefined && !this.upstream.write(part)) {
        this.upstreamBlocked = true;
        // An upstream that stops reading the body (nginx's proxy_send_timeout).
        if (this.resHead === undefined) this.armResponseTimeout();
      }
      this.mirrors?.write(part);
    }
    if (r.done) {
      this.reqBodyDone = true;
      this.mirrors?.endBody();
      conn.clearDeadline();
      if (this.upstream !== undefined && this.resHead === undefined) this.armResponseTimeout();
      if (this.done) this.finish();
    } else if (conn.clientEnded && conn.buf === undefined) {
      this.clientBodyCut();
    }
  }

  /**
   * The client ended its side before the request body was complete: it never will be. Answered
   * 400 (as node:http answers it) and closed, the upstream request dropped; after a complete
   * response (the rest of the body was being read and dropped), just closed.
   */
  private clientBodyCut(): void {
    if (this.done) {
      this.conn.buf = undefined;
      this.conn.close();
      return;
    }
    this.clientBodyError('the client closed its side before the body was complete');
  }

  private clientBodyError(reason: string): void {
    this.error = `request body: ${reason}`;
    this.conn.buf = undefined;
    if (this.upstream !== undefined) {
      this.upstream.pool.evict(this.upstream);
      this.upstream = undefined;
    } else if (this.target !== undefined) {
      this.o.pool.cancel(this.target, this);
    }
    this.upstreamDeadline = 0;
    if (this.headSent) {
      this.status = this.status || 400;
      this.log(true);
      this.done = true;
      this.conn.destroy();
      return;
    }
    // The request cannot be framed: answer now, whatever the upstream would have said.
    this.done = true;
    this.status = 400;
    const body = `bad request: ${reason}\n`;
    this.responseBytes = body.length;
    this.log(false);
    this.conn.fail(400, body);
  }

  // UpstreamUser
  onUpstreamDrain(): void {
    if (!this.upstreamBlocked) return;
    this.upstreamBlocked = false;
    // Reading again: the send timeout is off until it blocks again or the body is sent.
    if (!this.reqBodyDone && this.resHead === undefined) this.upstreamDeadline = 0;
    this.conn.pump();
  }

  clientDrained(): void {
    if (this.upstream !== undefined && this.upstream.io.isPaused()) this.upstream.io.resume();
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.done) return;
    this.responseBegun = true;
    if (this.resHead === undefined) {
      this.rbuf = this.rbuf === undefined ? chunk : Buffer.concat([this.rbuf, chunk]);
      if (!this.readResponseHead()) return;
    } else {
      this.relayResponseBody(chunk);
    }
  }

  /** Parses interim and final heads from rbuf; false while the final head is not complete. */
  private readResponseHead(): boolean {
    for (;;) {
      const buf = this.rbuf!;
      const r = parseResponseHead(buf, 0, 65536);
      if (r.kind === 'incomplete') return false;
      if (r.kind === 'error') {
        this.o.log.warn({ err: r.reason, upstream: this.endpoint?.origin }, 'invalid upstream response');
        this.upstreamFailed('reset', Object.assign(new Error(r.reason), { code: 'HPE_INVALID_RESPONSE' }));
        return false;
      }
      const h = r.head;
      const rest = buf.length === h.headLength ? undefined : buf.subarray(h.headLength);
      this.rbuf = rest;
      if (h.status < 200) {
        if (h.status === 101) {
          this.upstreamFailed('reset', Object.assign(new Error('101 to a request that did not ask to upgrade'), { code: 'HPE_UNEXPECTED_101' }));
          return false;
        }
        // 103 Early Hints are passed on (to HTTP/1.1 clients only: a 1.0 client would take an
        // interim response for the final one, RFC 9110 15.2); 100 was answered here already.
        if (h.status === 103 && this.head.versionMinor === 1) this.writeEarlyHints(h);
        if (rest === undefined) return false;
        continue;
      }
      // The head waits for what came of the body with it: both leave in one write.
      this.startResponse(h);
      this.rbuf = undefined;
      if (rest !== undefined) this.relayResponseBody(rest);
      this.flushHead();
      if (rest === undefined && this.resBody!.done) this.responseComplete();
      return true;
    }
  }

  private writeEarlyHints(h: ResponseHead): void {
    let links = '';
    for (let i = 0; i < h.rawHeaders.length; i += 2) if (h.rawHeaders[i].toLowerCase() === 'link') links += `Link: ${h.rawHeaders[i + 1]}\r\n`;
    if (links !== '') this.conn.io.write(`HTTP/1.1 103 Early Hints\r\n${links}\r\n`);
  }

  private startResponse(h: ResponseHead): void {
    this.resHead = h;
    // From here the timeout is between two reads of the body (also when it answers mid-upload).
    const now = performance.now();
    this.armResponseTimeout(now);
    this.status = h.status;
    const framing = responseFraming(h, this.head.method);
    this.resFraming = framing;
    this.resBody = new BodyFramer(framing, h.contentLength);
    observeUpstreamLatency(this.route!, this.backend!, (now - this.sentAt) / 1000);
    const client11 = this.head.versionMinor === 1;
    if (framing === 'close') this.closeAfter = true;
    if (framing === 'chunked' && !client11) {
      // HTTP/1.0 has no chunked coding: the data is relayed without its framing, close-delimited.
      this.dechunk = true;
      this.closeAfter = true;
      this.resBody.chunked!.onData = (b, s, e) => this.writeClient(Buffer.from(b.buffer, b.byteOffset + s, e - s));
    }
    // A request whose body is still arriving cannot be followed by another on this connection.
    if (!this.reqBodyDone || drain.active) this.closeAfter = true;
    // Names the upstream's Connection lists are hop-by-hop too (keep-alive and close name none).
    const ct = h.connectionTokens;
    const listed = ct.length === 0 || (ct.length === 1 && (ct[0] === 'keep-alive' || ct[0] === 'close')) ? undefined : connectionTokens(ct.join(','));
    let s = `HTTP/1.1 ${h.status} ${h.reason || reasonOf(h.status)}\r\n`;
    let hasDate = false;
    let hasServer = false;
    const rf = this.route!.filters?.responseHeaders;
    const bf = this.backendFilters?.responseHeaders;
    // Gateway API CORS: an allowed Origin's answer carries the CORS headers (a backendRef's own CORS replaces the rule's).
    const cors = this.backendFilters?.cors ?? this.route!.filters?.cors;
    const corsLines = cors === undefined ? undefined : corsResponseHeaders(cors, headerValue(this.rawHeaders, 'origin'));
    let runs: number[] | undefined;
    if (rf === undefined && bf === undefined && (corsLines === undefined || corsLines.length === 0) && listed === undefined) {
      // The fields passed on are copied from the upstream's bytes as they came, in runs between
      // the dropped ones: no string per field.
      const f = h.fields;
      const names = h.names;
      runs = [];
      let from = -1;
      let to = -1;
      // An HTTP/1.1 status line with a reason is copied as it came, with the fields after it.
      if (h.versionMinor === 1 && h.reason !== '') {
        s = '';
        from = 0;
        to = names.length > 0 ? f[0] : h.headLength - 2;
      }
      for (let i = 0; i < names.length; i++) {
        const lower = lowerName(names[i]);
        if (lower === 'date') hasDate = true;
        else if (lower === 'server') hasServer = true;
        if (isHopByHop(lower, undefined) || lower === 'content-length') {
          if (from >= 0) runs.push(from, to);
          from = -1;
          continue;
        }
        if (from < 0) from = f[i * FIELD_STRIDE];
        to = f[i * FIELD_STRIDE + 3];
      }
      if (from >= 0) runs.push(from, to);
    } else if (rf === undefined && bf === undefined && (corsLines === undefined || corsLines.length === 0)) {
      const raw = h.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i];
        const lower = name.toLowerCase();
        if (lower === 'date') hasDate = true;
        else if (lower === 'server') hasServer = true;
        // Content-Length is written below, from the framing the relay follows.
        if (isHopByHop(lower, listed) || lower === 'content-length') continue;
        s += `${name}: ${raw[i + 1]}\r\n`;
      }
    } else {
      // Response header filters edit a record (as on the node path); the framing stays the
      // relay's own, whatever a filter says about Content-Length.
      const record: HeaderRecord = {};
      const raw = h.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const lower = raw[i].toLowerCase();
        if (isHopByHop(lower, listed) || lower === 'content-length') continue;
        const prev = record[lower];
        record[lower] = prev === undefined ? raw[i + 1] : Array.isArray(prev) ? [...prev, raw[i + 1]] : [prev, raw[i + 1]];
      }
      const edited = addCorsHeaders(applyResponseFilters(record, this.route!.filters, this.backendFilters), corsLines ?? []);
      for (const name in edited) {
        const v = edited[name];
        if (v === undefined || name === 'content-length' || name === 'transfer-encoding') continue;
        if (name === 'date') hasDate = true;
        else if (name === 'server') hasServer = true;
        if (Array.isArray(v)) for (const x of v) s += `${name}: ${x}\r\n`;
        else s += `${name}: ${v}\r\n`;
      }
    }
    // The framing the client reads is the one the relay follows, never a copy the upstream could
    // have listed in Connection (hop-by-hop, so dropped) and left the client without. Transfer-
    // Encoding overrides Content-Length, and a 204 has none (RFC 9110 8.6).
    let t = '';
    if (h.contentLength >= 0 && !h.chunked && h.status !== 204) t += `Content-Length: ${h.contentLength}\r\n`;
    if (!hasDate) t += dateHeader();
    if (!hasServer) t += SERVER_LINE;
    if (framing === 'chunked' && client11) t += 'Transfer-Encoding: chunked\r\n';
    if (this.closeAfter) t += 'Connection: close\r\n';
    else t += client11 ? this.conn.server.keepAliveLine : `Connection: keep-alive\r\n${this.conn.server.keepAliveLine}`;
    t += '\r\n';
    this.headSent = true;
    let size = s.length + t.length;
    if (runs !== undefined) for (let i = 0; i < runs.length; i += 2) size += runs[i + 1] - runs[i];
    this.responseBytes += size;
    // Written with the first body bytes (writeClient) or alone (flushHead).
    this.pendingHead = s;
    this.pendingRuns = runs;
    this.pendingTail = t;
    this.pendingSize = size;
  }

  /** The pending response head as bytes, followed by `part` if given. */
  private takeHead(part: Buffer | undefined): Buffer {
    const out = Buffer.allocUnsafe(this.pendingSize + (part === undefined ? 0 : part.length));
    const first = this.pendingHead!;
    let at = first.length === 0 ? 0 : out.write(first, 0, 'latin1');
    const runs = this.pendingRuns;
    if (runs !== undefined) {
      const src = this.resHead!.buf;
      for (let i = 0; i < runs.length; i += 2) at += src.copy(out, at, runs[i], runs[i + 1]);
    }
    at += out.write(this.pendingTail, at, 'latin1');
    if (part !== undefined) part.copy(out, at);
    this.pendingHead = undefined;
    this.pendingRuns = undefined;
    return out;
  }

  /** The response head, if no body bytes took it along. */
  private flushHead(): void {
    if (this.pendingHead === undefined) return;
    if (!this.conn.io.write(this.takeHead(undefined)) && this.upstream !== undefined) this.upstream.io.pause();
  }

  private relayResponseBody(chunk: Buffer): void {
    const body = this.resBody!;
    // Decoding chunks for an HTTP/1.0 client writes a piece per chunk: one write for them all.
    const io = this.conn.io;
    if (this.dechunk) io.cork();
    const r = body.feed(chunk, 0);
    if (this.dechunk) io.uncork();
    if (r.error !== undefined) {
      this.flushHead();
      this.o.log.warn({ err: r.error, upstream: this.endpoint?.origin }, 'invalid upstream response body framing');
      this.upstreamFailed('reset', Object.assign(new Error(r.error), { code: 'HPE_INVALID_CHUNK' }));
      return;
    }
    if (r.consumed > 0 && !this.dechunk) this.writeClient(r.consumed === chunk.length ? chunk : chunk.subarray(0, r.consumed));
    this.flushHead();
    if (r.consumed < chunk.length) {
      // Bytes past the end of the response: the connection is out of step and is not reused.
      this.rbuf = chunk.subarray(r.consumed);
    }
    if (body.done) this.responseComplete();
    // Upstream body timeout: the time allowed between two reads, as undici's bodyTimeout (not
    // armed for a body that ended here, the usual case, to spare a clock reading).
    else if (this.upstream !== undefined) this.armResponseTimeout();
  }

  private writeClient(part: Buffer): void {
    this.responseBytes += part.length;
    let out = part;
    if (this.pendingHead !== undefined) {
      // One buffer, one write: cheaper than a corked string and buffer (writev) for the small
      // bodies most responses start with; a large first part goes after the head.
      if (part.length <= COALESCE_MAX) out = this.takeHead(part);
      else this.conn.io.write(this.takeHead(undefined));
    }
    if (!this.conn.io.write(out) && this.upstream !== undefined) this.upstream.io.pause();
  }

  private responseComplete(): void {
    this.flushHead();
    const up = this.upstream;
    this.upstream = undefined;
    this.upstreamDeadline = 0;
    if (up !== undefined) {
      const h = this.resHead!;
      // Both Content-Length and Transfer-Encoding: framed by the latter, but the connection is not
      // trusted with another request (RFC 9112 6.3 item 3).
      const reusable = h.keepAlive && this.resFraming !== 'close' && this.reqBodyDone && this.rbuf === undefined && !(h.chunked && h.contentLength >= 0);
      if (up.io.isPaused()) up.io.resume();
      up.pool.release(up, reusable);
    }
    this.done = true;
    this.log(false);
    if (this.reqBodyDone || this.closeAfter) this.finish();
    // else: the rest of the body is read and dropped (relayRequestBody), then finish().
  }

  private finish(): void {
    if (this.conn.ex !== this) return;
    this.conn.next(this.closeAfter || !this.reqBodyDone);
  }

  onUpstreamClose(err: (Error & { code?: string }) | undefined): void {
    this.upstream = undefined;
    if (this.done) return;
    if (this.resHead !== undefined && this.resBody!.endOfInput()) {
      // A close-delimited body ends with the connection.
      this.responseComplete();
      return;
    }
    if (!this.responseBegun && this.reqBody === undefined && IDEMPOTENT.has(this.head.method) && this.attempts < MAX_ATTEMPTS && !this.conn.closed) {
      // Closed before any response byte: most often a kept-alive connection the upstream closed
      // just as it was reused. As nginx does for idempotent requests, try again.
      this.attempts++;
      this.upstreamDeadline = 0;
      this.acquire();
      return;
    }
    this.upstreamFailed('reset', err ?? Object.assign(new Error('upstream closed the connection'), { code: 'UND_ERR_SOCKET' }));
  }

  /** The route's timeouts.request ran out: 504 if nothing was answered yet, else the response is cut. */
  routeTimedOut(): void {
    this.routeDeadline = 0;
    if (this.done) return;
    this.error = `timeouts.request (${this.route?.ir.requestTimeoutMs} ms) exceeded`;
    upstreamErrors.labels('timeout').inc();
    const up = this.upstream;
    this.upstream = undefined;
    this.upstreamDeadline = 0;
    if (up !== undefined) up.pool.evict(up);
    else if (this.target !== undefined) this.o.pool.cancel(this.target, this);
    if (this.headSent) {
      this.done = true;
      this.log(true);
      this.conn.destroy();
      return;
    }
    if (!this.reqBodyDone) this.closeAfter = true;
    this.local(504, "gateway timeout: the route's request timeout ran out");
  }

  /** The upstream's next move is due within the timeout (its answer, a body read, taking the body). */
  private armResponseTimeout(now = performance.now()): void {
    if (this.timeoutMs > 0) this.upstreamDeadline = now + this.timeoutMs;
  }

  upstreamTimedOut(): void {
    this.upstreamDeadline = 0;
    if (this.done) return;
    this.upstreamFailed('timeout', Object.assign(new Error('upstream timed out'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
  }

  private upstreamFailed(kind: 'connect' | 'timeout' | 'reset', err: Error & { code?: string }): void {
    if (this.done) return;
    upstreamErrors.labels(kind).inc();
    const up = this.upstream;
    this.upstream = undefined;
    this.upstreamDeadline = 0;
    if (up !== undefined) up.pool.evict(up);
    this.error = `${err.code ?? err.name}: ${err.message}`;
    if (this.headSent) {
      // Part of the response went out: the client can only learn of the failure by the close.
      this.done = true;
      this.log(true);
      this.conn.destroy();
      return;
    }
    if (!this.reqBodyDone) this.closeAfter = true;
    if (kind === 'timeout') this.local(504, 'upstream timed out');
    else this.local(502, kind === 'connect' ? 'upstream connect error' : 'upstream connection error');
  }

  /** The client timed out sending the body. */
  clientTimedOut(): void {
    if (this.done && this.reqBodyDone) return;
    this.error = 'request timeout';
    if (this.upstream !== undefined) this.upstream.pool.evict(this.upstream);
    else if (this.target !== undefined) this.o.pool.cancel(this.target, this);
    this.upstream = undefined;
    this.upstreamDeadline = 0;
    if (this.headSent || this.done) {
      if (!this.done) this.log(true);
      this.done = true;
      return this.conn.destroy();
    }
    this.done = true;
    this.status = 408;
    this.log(false);
    this.conn.fail(408, 'Request Timeout\n');
  }

  /** The client connection closed. */
  clientGone(): void {
    if (this.upstream !== undefined) {
      this.upstream.pool.evict(this.upstream);
      this.upstream = undefined;
    } else if (this.target !== undefined && !this.done) {
      this.o.pool.cancel(this.target, this);
    }
    this.upstreamDeadline = 0;
    if (!this.done) {
      this.done = true;
      this.log(true);
    }
  }

  private otherEndpoint(): CompiledEndpoint | undefined {
    return pickOtherEndpoint(this.route!, this.endpoint);
  }

  /** A response written here (no upstream): a short text body, as sendError writes it. */
  private local(status: number, message: string, extra = ''): void {
    const body = `${message}\n`;
    this.writeLocal(status, `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${extra}`, body);
  }

  private writeLocal(status: number, headers: string, body: string): void {
    // A body the request declared and that is not read yet would be taken for the next request.
    if (drain.active || (!this.reqBodyDone && this.upstream === undefined)) this.closeAfter = true;
    this.status = status;
    const head = `HTTP/1.1 ${status} ${reasonOf(status)}\r\n${dateHeader()}${SERVER_LINE}${headers}${this.closeAfter ? 'Connection: close\r\n' : this.head.versionMinor === 0 ? `Connection: keep-alive\r\n${this.conn.server.keepAliveLine}` : this.conn.server.keepAliveLine}\r\n`;
    const out = this.head.method === 'HEAD' ? head : head + body;
    this.responseBytes = out.length;
    this.headSent = true;
    this.done = true;
    this.conn.io.write(out);
    this.log(false);
    if (this.closeAfter) {
      this.conn.buf = undefined;
      this.conn.next(true);
    } else {
      this.finish();
    }
  }

  private logged = false;

  /** The access log line and metrics, once per request. */
  log(aborted: boolean): void {
    if (this.logged) return;
    this.logged = true;
    // The request ends here with its body unread: mirrors do not get it as if whole.
    if (!this.reqBodyDone) this.mirrors?.abort();
    const head = this.head;
    const seconds = (performance.now() - this.startedAt) / 1000;
    const requestBytes = requestHeadBytes(head.method, head.target, head.rawHeaders) + (head.contentLength > 0 ? head.contentLength : 0);
    observeRequest(this.route, this.backend, head.method, this.status, seconds, requestBytes, this.responseBytes);
    const o = this.o;
    if (!o.accessLog) return;
    const proxy = getProxyInfo(this.conn.socket);
    const write = proxy === undefined ? accessWriter(o.log) : undefined;
    if (write !== undefined) {
      // The line pino would write for the object below, made directly (pino's generic
      // serialisation was about half an access log's cost per request).
      const upstream = this.endpoint?.origin;
      const ua = this.header('user-agent');
      const host = head.host;
      write(`,"type":"access","client":${jsonString(this.fwd.clientIp)},"method":${jsonString(head.method)}${host === undefined ? '' : `,"host":${jsonString(host)}`},"path":${jsonString(head.target)},"proto":"HTTP/1.${head.versionMinor}","status":${this.status},"duration_ms":${Math.round(seconds * 1_000_000) / 1000},"route":${jsonString(this.route?.id ?? '-')}${upstream === undefined ? '' : `,"upstream":${jsonString(upstream)}`}${aborted ? ',"aborted":true' : ''}${this.error === undefined ? '' : `,"error":${JSON.stringify(this.error)}`}${ua === undefined ? '' : `,"user_agent":${jsonString(ua)}`}`);
      return;
    }
    o.log.info({
      type: 'access',
      client: this.fwd.clientIp,
      method: head.method,
      host: head.host,
      path: head.target,
      proto: `HTTP/1.${head.versionMinor}`,
      status: this.status,
      duration_ms: Math.round(seconds * 1_000_000) / 1000,
      route: this.route?.id ?? '-',
      upstream: this.endpoint?.origin,
      aborted: aborted ? true : undefined,
      error: this.error,
      user_agent: this.header('user-agent'),
      // proxyLogFields reads only the request's socket.
      proxy_protocol: proxyLogFields({ socket: this.conn.socket } as unknown as DownstreamRequest),
    });
  }

  private header(name: string): string | undefined {
    const raw = this.head.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (sameLowerCase(raw[i], name)) return raw[i + 1];
    return undefined;
  }
}

/** What the worker has at hand to make the fast path (ServeOptions and the worker's own parts). */
export interface FastHttp1Setup {
  readonly limits: ListenerLimits & { readonly upstreamTimeoutMs: number; readonly upstreamConnectTimeoutMs: number };
  readonly log: Logger;
  readonly accessLog: boolean;
  readonly table: () => RoutingTable | undefined;
  readonly decision: DecisionContext;
  readonly realIp: RealIpConfig;
  readonly handOff: (socket: net.Socket) => void;
}

/**
 * The fast path with its own upstream pool: up to 256 connections per endpoint, idle ones kept
 * 4 s (undici's defaults, which the node path uses), the configured connect timeout.
 */
export function createFastHttp1(s: FastHttp1Setup): FastHttp1Server {
  const pool = new UpstreamSocketPool({ maxPerEndpoint: 256, idleTimeoutMs: 4000, connectTimeoutMs: s.limits.upstreamConnectTimeoutMs });
  return new FastHttp1Server({ limits: s.limits, log: s.log, accessLog: s.accessLog, table: s.table, decision: s.decision, realIp: s.realIp, pool, upstreamTimeoutMs: s.limits.upstreamTimeoutMs, handOff: s.handOff });
}
