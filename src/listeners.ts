// Client-facing listeners and their limits. Each worker binds its own socket with SO_REUSEPORT
// (Linux), so the kernel spreads connections and the primary stays off the data path.
//
// A listener is a plain `net.Server` in front: it accepts, applies the connection limit, lets a
// per-connection step run first (PROXY protocol, TLS passthrough), then hands the socket to the
// HTTP server that speaks its protocol: HTTP/1.1, or HTTP/2 with prior knowledge (h2c).

import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import client from 'prom-client';
import type { Logger } from './log.ts';
import { openConnectionCounts } from './metrics.ts';
import type { RequestHandler } from './proxy.ts';
import type { FirstBytesCheck } from './realip/proxy-listener.ts';
import { shouldUpgrade } from './upgrade.ts';
import { SERVER_HEADER } from './forwarding.ts';

export interface ListenerLimits {
  readonly maxHeaderSize: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 414: 'URI Too Long', 431: 'Request Header Fields Too Large', 505: 'HTTP Version Not Supported' };

/**
 * Node counts the request line into --max-header-size. When the bytes the parser failed on start
 * a request whose first line alone is that long (or has not ended), the target is what is too
 * long: 414 (RFC 9110 15.5.15), not 431.
 */
function requestLineTooLong(err: Error & { rawPacket?: unknown }): boolean {
  const raw = err.rawPacket;
  if (!Buffer.isBuffer(raw) || !/^[A-Z]+ /.test(raw.subarray(0, 24).toString('latin1'))) return false;
  const nl = raw.indexOf(10);
  return nl < 0 || nl > 4096;
}

/**
 * Responses a connection still owes: requests the parser accepted whose answers have not been
 * written yet (pipelining). A parse error behind them is answered only after them, in order.
 */
interface OwingSocket extends Duplex {
  [kOwed]?: number;
  /** The newest request: those before it were read whole, this one may still be arriving. */
  [kLast]?: http.IncomingMessage;
  [kLastResponse]?: http.ServerResponse;
  [kRejection]?: () => void;
  [kRejected]?: boolean;
  /** A response that ends the connection was sent: nothing the client sent after it is read. */
  [kClosing]?: boolean;
  /** Pipelined requests waiting for the one before them to be answered (RFC 9112 9.3.2). */
  [kWaiting]?: (() => void)[];
}
const kOwed = Symbol('portico.owed');
const kLast = Symbol('portico.last');
const kRejection = Symbol('portico.rejection');
const kRejected = Symbol('portico.rejected');
const kClosing = Symbol('portico.closing');
const kLastResponse = Symbol('portico.last-response');
const kWaiting = Symbol('portico.waiting');

function onOwedResponseDone(this: http.ServerResponse): void {
  // Node detaches the socket from a finished response before this runs: use the one noted.
  const socket = this[kCounted];
  if (socket === undefined) return;
  this[kCounted] = undefined;
  const owed = (socket[kOwed] ?? 1) - 1;
  socket[kOwed] = owed;
  if (this.getHeader('connection') === 'close' || !this.shouldKeepAlive) socket[kClosing] = true;
  // The next pipelined request goes upstream only now that this one is answered.
  const next = socket[kWaiting]?.shift();
  if (next !== undefined && socket[kClosing] !== true) next();
  if (owed === 0 && socket[kRejection] !== undefined) {
    const answer = socket[kRejection];
    socket[kRejection] = undefined;
    answer();
  }
}
const kCounted = Symbol('portico.counted');
declare module 'node:http' {
  interface ServerResponse {
    [kCounted]?: OwingSocket;
  }
}

/**
 * Counts a request's response as owed on its connection until it is finished or abandoned, and
 * handles the request now, or, when pipelined behind one not yet answered, once that one is: a
 * proxy that sent pipelined requests upstream in parallel would run a POST and the GET behind it
 * out of order (RFC 9112 9.3.2 allows parallel processing for safe methods only; serving each in
 * turn, as nginx does, is simpler and always right).
 */
function oweResponse(req: http.IncomingMessage, res: http.ServerResponse, handle: () => void): void {
  // A pipelined response gets its socket only when the ones before it are done: use the request's.
  const socket = req.socket as OwingSocket | null;
  if (socket === null) return handle();
  const busy = (socket[kOwed] ?? 0) > 0;
  socket[kOwed] = (socket[kOwed] ?? 0) + 1;
  socket[kLast] = req;
  socket[kLastResponse] = res;
  res[kCounted] = socket;
  res.once('finish', onOwedResponseDone);
  res.once('close', onOwedResponseDone);
  if (!busy) return handle();
  (socket[kWaiting] ??= []).push(handle);
}

/**
 * Answers a connection whose request cannot be parsed, then closes it: after the responses still
 * owed to the requests before it (as nginx does), never ahead of them.
 */
export function rejectClient(err: Error & { code?: string }, socket: Duplex, log: Logger): void {
  const s = socket as OwingSocket;
  // The parser reports the same error again for every later chunk: answer once.
  if (s[kRejected] === true) return;
  s[kRejected] = true;
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  // The last answer closed the connection: what follows it is not read, let alone answered.
  if (s[kClosing] === true) {
    socket.end();
    return;
  }
  // The request still being read was answered already (its bad framing was refused before the
  // parser reached it): that answer is the last one, a 400 behind it would be read as another.
  if (s[kLast]?.complete === false && s[kLastResponse]?.headersSent === true) {
    if ((s[kOwed] ?? 0) === 0) socket.end();
    else s[kRejection] = () => void socket.end();
    return;
  }
  // Held back only behind requests read whole: an error in the request still being read (its
  // body, or a timeout) means that one can never be answered, so the answer goes now.
  if ((s[kOwed] ?? 0) > 0 && s[kLast]?.complete === true) {
    // Bytes after a request that said `Connection: close` are not a request at all: the owed
    // response ends the connection, and nothing follows it.
    if (err.code === 'HPE_CLOSED_CONNECTION') return;
    s[kRejection] = () => {
      if (s[kClosing] === true) return void socket.end();
      if (!socket.destroyed && socket.writable && !socket.writableEnded) answerMalformed(err, socket, log);
    };
    return;
  }
  if (err.code === 'HPE_CLOSED_CONNECTION') {
    socket.end();
    return;
  }
  answerMalformed(err, socket, log);
}

function answerMalformed(err: Error & { code?: string }, socket: Duplex, log: Logger): void {
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? (requestLineTooLong(err) ? 414 : 431)
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408
    : err.code === 'HPE_INVALID_VERSION' ? 505
    : 400;
  const body = `${REASONS[status]}\n`;
  log.debug({ code: err.code }, 'rejected malformed request');
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nServer: ${SERVER_HEADER}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

/** The HTTP/1.1 server behind a listener: it never listens itself, sockets are handed to it. */
export function createHttp1Server(limits: ListenerLimits, log: Logger, handler: RequestHandler, onUpgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void): http.Server {
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node 24 keeps idle connections open 1 s past keepAliveTimeout by default; --keepalive-timeout
      // is the time they are kept.
      keepAliveTimeoutBuffer: 0,
      // Checked in the request handler instead, to answer with the same short body as other 400s.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
      highWaterMark: 64 * 1024,
      // Which Upgrade requests become tunnels; the others are served as plain requests.
      // Not while an earlier response on the connection is owed: node:http would hand the socket
      // over at once and the 101 (or the refusal) would overtake it (RFC 9112 9.3.2). Such an
      // Upgrade is served as a plain request, in order, with the Upgrade dropped.
      shouldUpgradeCallback: (req: http.IncomingMessage) => shouldUpgrade(req) && ((req.socket as OwingSocket | null)?.[kOwed] ?? 0) === 0,
    },
    ((req: http.IncomingMessage, res: http.ServerResponse) => {
      // An Upgrade request served as a plain one (shouldUpgradeCallback said no) leaves node's
      // parser in upgrade mode: nothing after it on the connection is read. Its answer says so
      // and closes, rather than promise a keep-alive that would hang the client's next request.
      if (req.headers.upgrade !== undefined && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(req.headers.connection ?? '')) res.setHeader('connection', 'close');
      oweResponse(req, res, () => handler(req, res));
    }) as http.RequestListener,
  );
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => rejectClient(err, socket, log));
  server.on('upgrade', onUpgrade);
  // A reverse proxy does not tunnel CONNECT (RFC 9110 9.3.6): say so, then close.
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    const body = 'CONNECT is not supported\n';
    socket.on('error', () => socket.destroy());
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nServer: ${SERVER_HEADER}\r\nAllow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  // Node starts its headers/request timeout checks when a server starts listening; this one never
  // listens (sockets are handed to it), so start them the same way.
  server.emit('listening');
  return server;
}

export const H2_SETTINGS: http2.Settings = { maxConcurrentStreams: 250, initialWindowSize: 1 << 20, maxHeaderListSize: 65536 };

/** HTTP/2 with prior knowledge on the plain listener (h2c), for gRPC and h2 clients. */
export function createH2cServer(limits: ListenerLimits, handler: RequestHandler): http2.Http2Server {
  const server = http2.createServer({ settings: { ...H2_SETTINGS, maxHeaderListSize: limits.maxHeaderSize }, maxSessionMemory: 32 }, handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  closeIdleSessions(server, limits.keepAliveTimeoutMs);
  return server;
}

/** HTTP/2 sessions idle longer than the keep-alive timeout are closed (GOAWAY), as HTTP/1.1 ones are. */
export function closeIdleSessions(server: http2.Http2Server | http2.Http2SecureServer, ms: number): void {
  server.on('session', (session: http2.ServerHttp2Session) => session.setTimeout(ms, () => session.close()));
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Reads until the connection either starts with the HTTP/2 preface or cannot, then puts the bytes
 * back. Most connections decide on their first byte ('P' starts only PRI, POST, PUT, PATCH).
 */
export function sniffH2Preface(socket: net.Socket, timeoutMs: number): Promise<boolean | 'timeout'> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    const done = (isH2: boolean | 'timeout') => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (buffered.length > 0) socket.unshift(buffered);
      resolve(isH2);
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, H2_PREFACE.length);
      if (buffered.compare(H2_PREFACE, 0, n, 0, n) !== 0) return done(false);
      if (n === H2_PREFACE.length) return done(true);
    };
    const onEnd = () => done(false);
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

export interface TrafficListenerOptions {
  readonly name: string;
  readonly port: number;
  readonly host: string;
  readonly limits: ListenerLimits;
  readonly log: Logger;
  /** Hands an accepted (and possibly pre-processed) socket to the protocol servers. */
  readonly serve: (socket: net.Socket) => void;
  /**
   * Keep the socket writable after the client's FIN. Needed where connections are spliced (TLS
   * passthrough: the backend's reply must still reach a client that half-closed); whatever the
   * socket is handed to must then close it itself.
   */
  readonly allowHalfOpen?: boolean;
  /** Runs first on every accepted socket; calls `next` to continue, or closes the socket. */
  readonly accept?: (socket: net.Socket, next: (socket: net.Socket) => void) => void;
  /** Where the listener keeps its open sockets (ListenerStack.destroyAll). */
  readonly sockets?: Set<net.Socket>;
}

function noop(): void {}

/** The front `net.Server` of a listener: connection limits, gauges, then `accept` and `serve`. */
export function createTrafficListener(o: TrafficListenerOptions): net.Server {
  let open = openConnectionCounts.get(o.name);
  if (open === undefined) openConnectionCounts.set(o.name, (open = { n: 0 }));
  const count = open;
  const sockets = o.sockets;
  // One close handler per listener, not a closure per connection ('close' fires once).
  function onClose(this: net.Socket): void {
    count.n--;
    sockets?.delete(this);
  }
  const accept = o.accept;
  const serve = o.serve;
  const server = net.createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: o.allowHalfOpen === true }, (socket) => {
    count.n++;
    sockets?.add(socket);
    socket.on('close', onClose);
    socket.on('error', noop);
    if (accept !== undefined) {
      acceptedAt.set(socket, performance.now());
      accept(socket, serve);
    } else serve(socket);
  });
  server.maxConnections = o.limits.maxConnections;
  let lastDropLog = 0;
  server.on('drop', () => {
    const now = Date.now();
    if (now - lastDropLog > 10_000) {
      lastDropLog = now;
      o.log.warn({ listener: o.name, max: o.limits.maxConnections }, 'connection limit reached; dropping connections');
    }
  });
  return server;
}

/** When each connection was accepted: the steps before the HTTP server share one headers timeout. */
const acceptedAt = new WeakMap<net.Socket, number>();

/** Takes accepted connections: node:http's server, or the fast path (src/http1/server.ts). */
export interface ConnectionSink {
  emit(event: 'connection', socket: net.Socket): boolean;
  /**
   * Serves a plain connection that may open with the HTTP/2 preface, handing it to `h2c` if so,
   * within `headersTimeoutMs` (the fast path tells from its first read, with no sniffing step).
   */
  servePlain?(socket: net.Socket, h2c: ConnectionSink, headersTimeoutMs: number, firstBytes?: FirstBytesCheck): void;
}

/**
 * Plain HTTP: HTTP/1.1, or h2c when the client opens with the HTTP/2 preface. `firstBytes`, for
 * a sink with servePlain, is checked on the connection's first bytes (a PROXY header where none
 * is expected) in place of an accept step.
 */
export function plainHttpServe(http1: ConnectionSink, h2c: http2.Http2Server, headersTimeoutMs: number, firstBytes?: FirstBytesCheck): (socket: net.Socket) => void {
  return (socket) => {
    // Time spent in the accept step (waiting for a possible PROXY header) counts against the
    // headers timeout; a floor leaves bytes already read the time to be seen.
    const since = acceptedAt.get(socket);
    const left = since === undefined ? headersTimeoutMs : Math.max(50, headersTimeoutMs - (performance.now() - since));
    if (http1.servePlain !== undefined) return http1.servePlain(socket, h2c, left, firstBytes);
    void sniffH2Preface(socket, left).then((isH2) => {
      if (socket.destroyed) return;
      // Nothing (or too little to tell) within the headers timeout: that timeout is over, so
      // close now rather than start the HTTP server's own.
      if (isH2 === 'timeout') return void socket.destroy();
      (isH2 ? h2c : http1).emit('connection', socket);
      socket.resume();
    });
  };
}

/**
 * How a worker's listeners accept: `reuseport`, each worker binds its own socket with
 * SO_REUSEPORT (exclusive, so the cluster primary never accepts) and the kernel spreads
 * connections; `round-robin`, where the platform lacks SO_REUSEPORT, the primary accepts and
 * hands connections to workers over IPC (cluster's default scheduling).
 */
export type ListenMode = 'reuseport' | 'round-robin';

// Decided by the first listener of the process and kept for the others.
let chosenMode: ListenMode | undefined;

const listenModeGauge = new client.Gauge({
  name: 'portico_listen_mode',
  help: 'Listeners bound in each mode: reuseport (each worker its own SO_REUSEPORT socket) or round-robin (the primary accepts and hands connections over)',
  labelNames: ['mode'] as const,
});

function chose(mode: ListenMode, server: net.Server): ListenMode {
  chosenMode ??= mode;
  listenModeGauge.labels(mode).inc();
  server.once('close', () => listenModeGauge.labels(mode).dec());
  return mode;
}

/** Errors by which listen() says the platform has no SO_REUSEPORT (Node raises them at bind). */
function reusePortUnsupported(err: Error & { code?: string }): boolean {
  return err.code === 'ENOTSUP' || err.code === 'EOPNOTSUPP' || err.code === 'ENOPROTOOPT' || err.code === 'ERR_INVALID_ARG_VALUE' || (err.code === 'EINVAL' && /reuse/i.test(err.message));
}

function listenOnce(server: net.Server, o: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(o, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Binds a listener, with SO_REUSEPORT where the platform has it, else through the cluster
 * primary; returns the mode used. `prefer` forces a mode (tests, and PORTICO_LISTEN_MODE).
 */
export async function listen(server: net.Server, port: number, host: string, prefer: ListenMode | undefined = envMode()): Promise<ListenMode> {
  const mode = prefer ?? chosenMode ?? 'reuseport';
  if (mode === 'reuseport') {
    try {
      await listenOnce(server, { port, host, exclusive: true, reusePort: true, backlog: 4096 });
      noDelayOnListeningSocket(server);
      return chose('reuseport', server);
    } catch (err) {
      if (!reusePortUnsupported(err as Error) || prefer === 'reuseport') throw err;
    }
  }
  await listenOnce(server, { port, host, exclusive: false, backlog: 4096 });
  return chose('round-robin', server);
}

interface NoDelayServer {
  /** node:net's per-connection TCP_NODELAY switch (the createServer option). */
  noDelay?: boolean;
  _handle?: { setNoDelay?: (on: boolean) => number } | null;
}

/**
 * Linux gives accepted sockets the listening socket's TCP_NODELAY: set it once on a socket this
 * worker bound itself, instead of a setsockopt() per accepted connection. Where that does not
 * hold (other platforms, the round-robin fallback's shared handle) each connection keeps its own.
 */
function noDelayOnListeningSocket(server: net.Server): void {
  const s = server as unknown as NoDelayServer;
  if (process.platform !== 'linux' || s.noDelay !== true || typeof s._handle?.setNoDelay !== 'function') return;
  if (s._handle.setNoDelay(true) === 0) s.noDelay = false;
}

/**
 * Fails when something already listens on the port. With SO_REUSEPORT a second process of the
 * same user binding the port would join the listening group and silently take a share of its
 * connections (two Porticos, or any server started with reusePort, answering for each other).
 * The primary calls this before its workers bind, so a port in use fails loudly, as it does in
 * round-robin mode.
 */
export async function checkPortFree(port: number, host: string): Promise<void> {
  const probe = net.createServer();
  try {
    await listenOnce(probe, { port, host, exclusive: true });
  } finally {
    await new Promise<void>((resolve) => (probe.listening ? probe.close(() => resolve()) : resolve()));
  }
}

function envMode(): ListenMode | undefined {
  const v = process.env.PORTICO_LISTEN_MODE;
  return v === 'reuseport' || v === 'round-robin' ? v : undefined;
}

/** A bind error as status and logs say it: what the errno means, with the code. */
export function bindMessage(e: Error & { code?: string }): string {
  const what: Record<string, string> = { EADDRINUSE: 'the port is in use by another process', EADDRNOTAVAIL: 'the address is not on this host', EACCES: 'permission denied (a privileged port)' };
  return e.code !== undefined && what[e.code] !== undefined ? `${what[e.code]} (${e.code})` : e.message;
}

export interface GatedListener {
  readonly key: string;
  /** '' for the bind address. */
  readonly address: string;
  readonly port: number;
}

/**
 * The primary's check that a Gateway listener's socket is free before its workers bind it, as
 * checkPortFree is for the main ports: with SO_REUSEPORT a worker binding a port that another
 * process of the same user holds with SO_REUSEPORT too would join its group and silently take a
 * share of its connections. A listener new to the table is held (its workers do not bind it)
 * until a plain exclusive bind of the primary succeeds; while it fails, the failure is reported
 * (as a worker's would be) and the probe retried, 0.5 s doubling to 5 s. A listener stays
 * cleared for `forgetMs` after it leaves the table, so a quick re-add does not probe a socket
 * the workers are still closing.
 */
export class ListenerGate {
  /** Cleared keys: 0 while in the table, else when they left it. */
  private readonly cleared = new Map<string, number>();
  private readonly held = new Map<string, { port: number; host: string; delayMs: number; timer?: NodeJS.Timeout }>();
  private readonly o: { bindAddress: string; forgetMs?: number; onHeld: (keys: string[]) => void; onFailure: (key: string, err: { code: string; message: string } | undefined) => void };

  constructor(o: ListenerGate['o']) {
    this.o = o;
  }

  /** A new table's listeners: starts probing those not cleared; returns the keys held. */
  update(listeners: readonly GatedListener[]): string[] {
    const now = Date.now();
    const keys = new Set(listeners.map((l) => l.key));
    for (const [key, since] of this.cleared) {
      // Out of the table for long enough: checked again, even if it is back now.
      if (since !== 0 && now - since > (this.o.forgetMs ?? 10_000)) this.cleared.delete(key);
      else if (keys.has(key)) this.cleared.set(key, 0);
      else if (since === 0) this.cleared.set(key, now);
    }
    for (const [key, h] of this.held) {
      if (keys.has(key)) continue;
      clearTimeout(h.timer);
      this.held.delete(key);
      this.o.onFailure(key, undefined);
    }
    for (const l of listeners) {
      if (this.cleared.has(l.key) || this.held.has(l.key)) continue;
      this.held.set(l.key, { port: l.port, host: l.address === '' ? this.o.bindAddress : l.address, delayMs: 500 });
      void this.probe(l.key);
    }
    return this.heldKeys();
  }

  heldKeys(): string[] {
    return [...this.held.keys()];
  }

  stop(): void {
    for (const h of this.held.values()) clearTimeout(h.timer);
  }

  private async probe(key: string): Promise<void> {
    const h = this.held.get(key);
    if (h === undefined) return;
    try {
      await checkPortFree(h.port, h.host);
    } catch (err) {
      if (this.held.get(key) !== h) return;
      const e = err as Error & { code?: string };
      this.o.onFailure(key, { code: e.code ?? 'ERROR', message: bindMessage(e) });
      h.timer = setTimeout(() => void this.probe(key), h.delayMs);
      h.timer.unref();
      h.delayMs = Math.min(h.delayMs * 2, 5000);
      return;
    }
    if (this.held.get(key) !== h) return;
    this.held.delete(key);
    this.cleared.set(key, 0);
    this.o.onFailure(key, undefined);
    this.o.onHeld(this.heldKeys());
  }
}
