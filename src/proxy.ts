// The data path: route a request on the current table and stream it to an endpoint through an
// undici Pool, streaming the response back. Bodies flow both ways with backpressure and are
// never buffered whole. Errors map to 404/503/502/504 with short text bodies.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { CompiledBackend, CompiledEndpoint, CompiledFilters, CompiledMirror, CompiledRoute, RoutingTable } from '../router/index.ts';
import { pickOtherEndpoint, queryParam } from '../router/index.ts';
import { addCorsHeaders, applyRequestFilters, applyResponseFilters, corsResponseHeaders } from '../router/filters.ts';
import { chooseMirrors, configureMirrors, openMirrors, teeBody } from './mirror.ts';
import { SERVER_HEADER, downstreamHeaders, upstreamHeaders, type ForwardedValues } from './forwarding.ts';
import { getProxyInfo } from './realip/proxy-listener.ts';
import type { Logger } from './log.ts';
import { observeRequest, observeUpstreamLatency, requestBytes, responseHeadBytes, upstreamErrors } from './metrics.ts';
import { checkTargetAndHost, isHttp2, unsupportedVersion } from './request-checks.ts';
import { decideRoute, type DecisionContext, type RespondDecision, type RouteRequest } from './route-decision.ts';

/**
 * A client request and response: HTTP/1.1, or HTTP/2 through Node's compatibility API, which
 * offers the same members used here. Typed as the HTTP/1.1 classes; HTTP/2 differences are
 * handled where they matter (isHttp2, responseGone).
 */
export type DownstreamRequest = IncomingMessage;
export type DownstreamResponse = ServerResponse;
export type RequestHandler = (req: DownstreamRequest, res: DownstreamResponse) => void;

/** The request's authority: Host for HTTP/1.1, :authority for HTTP/2. */
export function requestHost(req: DownstreamRequest): string | undefined {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined);
}

function responseGone(res: DownstreamResponse): boolean {
  return 'destroyed' in res ? res.destroyed : (res as unknown as Http2ServerResponse).stream.destroyed;
}

export interface ProxyOptions {
  /** Port HTTPS is served on, for redirects from plain HTTP (omitted from the URL when 443). */
  readonly httpsPort: number;
  readonly upstreamTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
}

/** Per-request facts from the listener and real-IP layers. */
export type ForwardingResolver = (req: DownstreamRequest) => ForwardedValues;

/** Keep-alive connection pools, one per endpoint origin, kept across table swaps. */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private readonly options: ProxyOptions;

  constructor(options: ProxyOptions) {
    this.options = options;
  }

  get(endpoint: CompiledEndpoint, protocol: CompiledBackend['protocol']): Pool {
    const key = protocol === 'h2c' ? `h2c+${endpoint.origin}` : endpoint.origin;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(endpoint.origin, {
        connections: protocol === 'h2c' ? 4 : 256,
        pipelining: protocol === 'h2c' ? 100 : 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        connectTimeout: this.options.upstreamConnectTimeoutMs,
        // Backends behind an Ingress use cluster-internal certificates: like ingress-nginx's
        // backend-protocol HTTPS, the connection is encrypted but the certificate not verified.
        connect: { timeout: this.options.upstreamConnectTimeoutMs, rejectUnauthorized: false },
        allowH2: false,
        useH2c: protocol === 'h2c',
      } as Pool.Options);
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Close pools whose origin the new table no longer uses, once their requests are done. */
  retainOnly(table: RoutingTable): void {
    const live = new Set<string>();
    for (const b of table.backends.values()) for (const e of b.endpoints) live.add(b.protocol === 'h2c' ? `h2c+${e.origin}` : e.origin);
    for (const [key, pool] of this.pools) {
      if (live.has(key)) continue;
      this.pools.delete(key);
      pool.close().catch(() => undefined);
    }
  }

  async closeAll(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const MAX_CONNECT_ATTEMPTS = 3;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Set when the worker starts shutting down: HTTP/1.x responses whose headers are not sent yet
 * close their connections (as nginx does when quitting). One flag read per response.
 */
export const drain = { active: false };

/** Answers with a short text body; returns the body's size in bytes (0 when nothing could be sent). */
export function sendError(res: DownstreamResponse, status: number, message: string, location?: string, extra?: readonly (readonly [string, string])[]): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  if (responseGone(res)) return 0;
  if (drain.active && 'shouldKeepAlive' in res) res.setHeader('connection', 'close');
  if (status === 204) {
    // No content (a CORS preflight's answer): its headers only.
    const h: Record<string, string> = { server: SERVER_HEADER };
    for (const [name, value] of extra ?? []) h[name] = value;
    res.writeHead(204, h);
    res.end();
    return 0;
  }
  const body = `${message}\n`;
  const length = Buffer.byteLength(body);
  const headers: Record<string, string | number> = { server: SERVER_HEADER, 'content-type': 'text/plain; charset=utf-8', 'content-length': length, 'cache-control': 'no-store' };
  if (location !== undefined) headers.location = location;
  res.writeHead(status, headers);
  res.end(body);
  return length;
}

function hasRequestBody(req: DownstreamRequest): boolean {
  if (isHttp2(req)) return !(req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

const kExchange = Symbol('portico.exchange');
type TrackedResponse = DownstreamResponse & { [kExchange]?: Exchange };

// One listener function for every response (EventEmitter calls it with the response as `this`),
// so a request costs no closure for it.
function onResponseClose(this: TrackedResponse): void {
  this[kExchange]?.closed();
}

function onRequestDeadline(ex: Exchange): void {
  ex.requestDeadline();
}

function onResponseDrain(this: TrackedResponse): void {
  this[kExchange]?.controller?.resume();
}

/**
 * One client request, from arrival to close: the undici dispatch handler that writes the
 * upstream response into the client's, and the record the access log and metrics read.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly ctx: ProxyContext;
  readonly req: DownstreamRequest;
  readonly res: TrackedResponse;
  readonly startedAt: number;
  private forwarded: ForwardedValues | undefined;
  route: CompiledRoute | undefined;
  backend: CompiledBackend | undefined;
  endpoint: CompiledEndpoint | undefined;
  headers: string[] = [];
  hasBody = false;
  attempts = 1;
  controller: Dispatcher.DispatchController | undefined;
  sentAt = 0;
  responseStarted = false;
  done = false;
  error: string | undefined;
  trailersOnly: Record<string, string | string[] | number> | undefined;
  /** Content-Length of the upstream response, when it announced one. */
  bodyLeft = -1;
  /** A 103 went to the client: the exchange can no longer be retried from scratch. */
  interimSent = false;
  /** A body chunk held back to be sent with the end of the response. */
  held: Buffer | undefined;
  /** Response body bytes written to the client (for the response size metric). */
  bodyBytes = 0;
  /** The upstream request target (the client's, or a URLRewrite's). */
  target = '/';
  backendFilters: CompiledFilters | undefined;
  /** The route's whole-exchange timer (timeouts.request), if it has one. */
  deadline: NodeJS.Timeout | undefined;
  /** The request body as forwarded, when RequestMirror tees it (else req itself). */
  body: import('node:stream').Readable | undefined;
  timedOut = false;

  constructor(ctx: ProxyContext, req: DownstreamRequest, res: DownstreamResponse) {
    this.ctx = ctx;
    this.req = req;
    this.res = res as TrackedResponse;
    this.startedAt = performance.now();
    this.res[kExchange] = this;
    res.on('close', onResponseClose);
  }

  /**
   * The client IP and forwarding headers, read when first needed: after the request checks,
   * which replace Host by an absolute-form target's authority (RFC 9112 3.2.2), so that
   * X-Forwarded-Host names the host the request is routed by, never a Host it overrode.
   */
  get fwd(): ForwardedValues {
    return (this.forwarded ??= this.ctx.forwarding(this.req));
  }

  /** Reply without going upstream (400, 505...). */
  reply(status: number, message: string): void {
    this.bodyBytes += sendError(this.res, status, message);
  }

  /** Carry out a decision not to proxy (404, 421, 308, 403, 500, 503). */
  respond(d: RespondDecision): void {
    this.route = d.route;
    this.backend = d.backend;
    this.error = d.error;
    this.bodyBytes += sendError(this.res, d.status, d.message, d.location, d.headers);
  }

  proxy(route: CompiledRoute, backend: CompiledBackend, endpoint: CompiledEndpoint, backendFilters?: CompiledFilters, routeMirrors?: readonly CompiledMirror[]): void {
    this.route = route;
    this.backend = backend;
    this.endpoint = endpoint;
    this.backendFilters = backendFilters;
    this.hasBody = hasRequestBody(this.req);
    this.headers = upstreamHeaders(this.req.rawHeaders, this.req.headers.connection, this.fwd);
    this.target = this.req.url ?? '/';
    // Gateway API filters (header edits, URLRewrite), compiled with the table.
    if (route.filters !== undefined || backendFilters !== undefined) ({ headers: this.headers, target: this.target } = applyRequestFilters(this.headers, this.target, route.filters, backendFilters));
    const limit = route.ir.requestTimeoutMs;
    if (limit !== undefined) this.deadline = setTimeout(onRequestDeadline, Math.max(0, limit - (performance.now() - this.startedAt)), this);
    // Gateway API RequestMirror: copies go out beside it; a teed body replaces req upstream.
    const mirrors = chooseMirrors(routeMirrors);
    if (mirrors !== undefined) {
      const copies = openMirrors(mirrors, { method: this.req.method ?? 'GET', target: this.target, headers: this.headers, timeoutMs: route.ir.timeoutMs ?? this.ctx.options.upstreamTimeoutMs }, this.hasBody);
      if (copies !== undefined) this.body = teeBody(this.req, copies);
    }
    this.dispatch();
  }

  /** The route's timeouts.request ran out: 504 if nothing was answered yet, else the response is cut. */
  requestDeadline(): void {
    if (this.done) return;
    this.done = true;
    this.timedOut = true;
    this.error = `timeouts.request (${this.route?.ir.requestTimeoutMs} ms) exceeded`;
    upstreamErrors.labels('timeout').inc();
    this.controller?.abort(new Error(this.error));
    if (this.res.headersSent) this.res.destroy();
    else this.bodyBytes += sendError(this.res, 504, 'gateway timeout: the route\'s request timeout ran out');
  }

  private dispatch(): void {
    this.sentAt = performance.now();
    const timeout = this.route!.ir.timeoutMs ?? this.ctx.options.upstreamTimeoutMs;
    this.ctx.pools.get(this.endpoint!, this.backend!.protocol).dispatch(
      {
        path: this.target,
        method: this.req.method ?? 'GET',
        headers: this.headers,
        body: this.body ?? (this.hasBody ? this.req : null),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        blocking: false,
      },
      this,
    );
  }

  /** The client's response closed: finished, or the client went away mid-way. */
  closed(): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    if (!this.done && this.controller !== undefined && !this.controller.aborted) {
      this.done = true;
      this.controller.abort(new Error('client closed the connection'));
    }
    const res = this.res;
    const req = this.req;
    const seconds = (performance.now() - this.startedAt) / 1000;
    observeRequest(this.route, this.backend, req.method, res.statusCode, seconds, requestBytes(req), res.headersSent ? responseHeadBytes(res.statusMessage, res.getHeaders()) + this.bodyBytes : 0);
    const log = this.ctx.log;
    if (!this.ctx.accessLog) return;
    log.info({
      type: 'access',
      client: this.fwd.clientIp,
      method: req.method,
      host: requestHost(req),
      path: req.url,
      proto: `HTTP/${req.httpVersion}`,
      status: res.statusCode,
      duration_ms: Math.round(seconds * 1_000_000) / 1000,
      route: this.route?.id ?? '-',
      upstream: this.endpoint?.origin,
      aborted: res.writableFinished ? undefined : true,
      error: this.error,
      user_agent: req.headers['user-agent'],
      proxy_protocol: proxyLogFields(req),
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (responseGone(this.res)) controller.abort(new Error('client closed the connection'));
    // The route's timeouts.request ran out before the upstream request even started.
    else if (this.timedOut) controller.abort(new Error(this.error ?? 'request timeout'));
  }
  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode < 200) {
      // An interim response (RFC 9110 15.2); the final one follows. 103 Early Hints are passed
      // on; the others (102 Processing) say nothing a client can use through a proxy.
      // Never to an HTTP/1.0 client, which would take it for the final response (RFC 9110 15.2).
      if (statusCode === 103 && headers.link !== undefined && this.req.httpVersion !== '1.0' && !responseGone(this.res)) {
        this.interimSent = true;
        try {
          this.res.writeEarlyHints({ link: headers.link });
        } catch {
          // best effort
        }
      }
      return;
    }
    // Anything but exactly chunked leaves the body in a coding the client would not be told of
    // (Transfer-Encoding is hop-by-hop and node:http re-frames): refused, as the fast engine does.
    const te = headers['transfer-encoding'];
    if (te !== undefined && (Array.isArray(te) || te.trim().toLowerCase() !== 'chunked')) {
      this.ctx.log.warn({ err: `unsupported response Transfer-Encoding ${String(te)}`, upstream: this.endpoint?.origin }, 'invalid upstream response');
      this.controller?.abort(Object.assign(new Error(`unsupported response Transfer-Encoding ${String(te)}`), { code: 'HPE_INVALID_TRANSFER_ENCODING' }));
      return;
    }
    this.responseStarted = true;
    // A 204 has no content (RFC 9110 8.6); a Content-Length on it is dropped rather than passed
    // on, since HTTP/2 clients reset a stream that declares a length it does not have.
    if (statusCode === 204 && headers['content-length'] !== undefined) headers = { ...headers, 'content-length': undefined };
    const cl = headers['content-length'];
    this.bodyLeft = typeof cl === 'string' ? Number(cl) : -1;
    observeUpstreamLatency(this.route!, this.backend!, (performance.now() - this.sentAt) / 1000);
    if (responseGone(this.res)) return;
    if (this.route!.filters?.responseHeaders !== undefined || this.backendFilters?.responseHeaders !== undefined) headers = applyResponseFilters(headers, this.route!.filters, this.backendFilters);
    // Gateway API CORS: an allowed Origin's answer carries the CORS headers (a backendRef's own CORS replaces the rule's).
    const cors = this.backendFilters?.cors ?? this.route!.filters?.cors;
    if (cors !== undefined) headers = addCorsHeaders(headers, corsResponseHeaders(cors, this.req.headers.origin));
    try {
      // HTTP/2 has no reason phrase.
      if (isHttp2(this.req)) {
        // A gRPC "trailers-only" response carries grpc-status in its only HEADERS frame, which
        // must end the stream: send it at the end, in one frame.
        if (headers['grpc-status'] !== undefined) {
          this.trailersOnly = { ':status': statusCode, ...downstreamHeaders(headers) };
          return;
        }
        this.res.writeHead(statusCode, downstreamHeaders(headers));
      } else {
        if (drain.active) this.res.setHeader('connection', 'close');
        this.res.writeHead(statusCode, statusMessage || undefined, downstreamHeaders(headers));
      }
    } catch (err) {
      // A header Node refuses to send (bad characters from upstream) is the upstream's fault.
      this.ctx.log.warn({ err: (err as Error).message, upstream: this.endpoint?.origin }, 'invalid upstream response header');
      // writeHead may have set some of the upstream's headers before it threw: the 502 must not
      // carry them (nor fail on them again).
      for (const name of this.res.getHeaderNames()) this.res.removeHeader(name);
      this.controller?.abort(err as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (responseGone(this.res)) return;
    this.bodyBytes += chunk.length;
    if (this.trailersOnly !== undefined) {
      // Not trailers-only after all: send the held headers before the body.
      const { ':status': status, ...rest } = this.trailersOnly;
      this.trailersOnly = undefined;
      this.res.writeHead(status as number, rest as Record<string, string | string[]>);
    }
    if (this.held !== undefined) {
      const first = this.held;
      this.held = undefined;
      this.res.write(first);
    } else if (this.bodyLeft === chunk.length) {
      // The whole body in one chunk (the common small response): end with it, one write.
      this.held = chunk;
      return;
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', onResponseDrain);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.done = true;
    if (this.trailersOnly !== undefined && !responseGone(this.res)) {
      const stream = (this.res as unknown as Http2ServerResponse).stream;
      this.res.statusCode = this.trailersOnly[':status'] as number;
      stream.respond({ ...this.trailersOnly, ...(trailers as Record<string, string>) }, { endStream: true });
      return;
    }
    if (trailers && Object.keys(trailers).length > 0 && !responseGone(this.res)) {
      try {
        this.res.addTrailers(trailers as Record<string, string>);
      } catch {
        // trailers are best effort on HTTP/1.1 (only with chunked encoding)
      }
    }
    if (this.held !== undefined) {
      const last = this.held;
      this.held = undefined;
      this.res.end(last);
      return;
    }
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error & { code?: string }): void {
    if (this.timedOut) return;
    if (this.done && responseGone(this.res)) return;
    const code = err.code ?? '';
    const connectFailure = CONNECT_ERRORS.has(code);
    // A body can go along too while no byte of it was read: undici reads it only once connected.
    if (connectFailure && !this.responseStarted && (!this.hasBody || !this.req.readableDidRead) && this.attempts < MAX_CONNECT_ATTEMPTS && !responseGone(this.res)) {
      // As nginx's proxy_next_upstream: a request not yet sent can try another endpoint.
      const backend = this.nextBackendEndpoint();
      if (backend !== undefined) {
        this.attempts++;
        this.endpoint = backend;
        this.controller = undefined;
        this.dispatch();
        return;
      }
    }
    if (code === 'UND_ERR_SOCKET' && !this.responseStarted && !this.interimSent && !this.hasBody && IDEMPOTENT.has(this.req.method ?? '') && this.attempts < MAX_CONNECT_ATTEMPTS && !responseGone(this.res)) {
      // The connection closed before any response byte: most often a kept-alive connection the
      // upstream closed just as it was reused. As nginx does for idempotent requests, try again
      // (on a new or another idle connection).
      this.attempts++;
      this.controller = undefined;
      this.dispatch();
      return;
    }
    this.done = true;
    const kind = TIMEOUT_ERRORS.has(code) ? 'timeout' : connectFailure ? 'connect' : 'reset';
    upstreamErrors.labels(kind).inc();
    if (this.res.headersSent) {
      this.res.destroy(err);
      return;
    }
    if (responseGone(this.res)) return;
    this.error = `${code || err.name}: ${err.message}`;
    if (kind === 'timeout') sendError(this.res, 504, 'upstream timed out');
    else sendError(this.res, 502, kind === 'connect' ? 'upstream connect error' : 'upstream connection error');
  }

  private nextBackendEndpoint(): CompiledEndpoint | undefined {
    return pickOtherEndpoint(this.route!, this.endpoint);
  }
}


export interface ProxyContext {
  /** The table to route this request on: read once, at the start of the request. */
  readonly table: () => RoutingTable | undefined;
  readonly pools: UpstreamPools;
  readonly log: Logger;
  readonly options: ProxyOptions;
  readonly forwarding: ForwardingResolver;
  /** Whether access logs are written (log level info or lower). */
  readonly accessLog: boolean;
  /** Redirect port and the 421 check (route-decision.ts). */
  readonly decision: DecisionContext;
}

// The route decision reads a node:http (or HTTP/2 compatibility) request through this adapter.
// Lookups are synchronous, so one adapter per handler serves every request and routing
// allocates nothing for it; set `req` before deciding and clear it after.
export class NodeRouteRequest implements RouteRequest {
  req: DownstreamRequest | undefined;

  get method(): string {
    return this.req?.method ?? 'GET';
  }

  get host(): string | undefined {
    return this.req === undefined ? undefined : requestHost(this.req);
  }

  get target(): string {
    return this.req?.url ?? '/';
  }

  /** The listener's port, for Gateway API listener isolation. */
  get localPort(): number | undefined {
    return this.req?.socket?.localPort;
  }

  get serverName(): string | undefined {
    // For HTTP/2, req.socket stands for the session's TLS socket.
    const socket = this.req?.socket as TLSSocket | undefined;
    if (socket?.encrypted !== true) return undefined;
    const name = socket.servername;
    return typeof name === 'string' && name !== '' ? name : undefined;
  }

  header(name: string): string | undefined {
    const v = this.req?.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  queryParam(name: string): string | undefined {
    // Read in place from the target: no URLSearchParams per request.
    return queryParam(this.req?.url ?? '', name);
  }
}

/** What a PROXY v2 header said about the connection (TLVs included), for the access log. */
export function proxyLogFields(req: DownstreamRequest): Record<string, unknown> | undefined {
  const h = getProxyInfo(req.socket);
  if (h === undefined) return undefined;
  return {
    version: h.version,
    command: h.command,
    source: h.sourceAddress,
    ...(h.alpn !== undefined ? { alpn: h.alpn } : {}),
    ...(h.authority !== undefined ? { authority: h.authority } : {}),
    ...(h.awsVpceId !== undefined ? { aws_vpce_id: h.awsVpceId } : {}),
  };
}

export function createRequestHandler(ctx: ProxyContext): RequestHandler {
  const view = new NodeRouteRequest();
  configureMirrors({ connectTimeoutMs: ctx.options.upstreamConnectTimeoutMs });
  return (req, res) => {
    const ex = new Exchange(ctx, req, res);
    if (unsupportedVersion(req)) {
      res.setHeader('connection', 'close');
      ex.error = `HTTP/${req.httpVersion} on an HTTP/1 connection`;
      return ex.reply(505, 'HTTP version not supported');
    }
    const bad = checkTargetAndHost(req);
    if (bad !== undefined) {
      // The request is not understood, so the connection is not reused.
      if (!isHttp2(req)) res.setHeader('connection', 'close');
      ex.error = bad;
      return ex.reply(400, `bad request: ${bad}`);
    }
    if (req.method === 'TRACE') {
      // As nginx: TRACE would echo the client's cookies and credentials back (cross-site tracing).
      res.setHeader('allow', 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS');
      ex.error = 'TRACE is not allowed';
      return ex.reply(405, 'method not allowed');
    }
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && req.httpVersion === '1.0' && !isHttp2(req)) {
      // RFC 9112 6.1: HTTP/1.0 has no chunked framing, so its body cannot be delimited safely.
      res.setHeader('connection', 'close');
      ex.error = 'Transfer-Encoding in an HTTP/1.0 request';
      return ex.reply(400, 'bad request: Transfer-Encoding in an HTTP/1.0 request');
    }
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
      // Node decodes the chunking and would pass the other codings' bytes on unmarked (RFC 9112 6.1).
      if (!isHttp2(req)) res.setHeader('connection', 'close');
      ex.error = `transfer-coding ${te} not implemented`;
      return ex.reply(501, 'not implemented: only the chunked transfer-coding is supported');
    }
    if (req.url === '*') {
      // OPTIONS * asks about the server itself: Portico answers it, no backend does.
      res.writeHead(200, { allow: 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS', 'content-length': '0' });
      return void res.end();
    }
    view.req = req;
    const d = decideRoute(ctx.table(), view, ex.fwd, ctx.decision);
    view.req = undefined;
    if (d.action === 'respond') return ex.respond(d);
    ex.proxy(d.route, d.backend, d.endpoint, d.backendFilters, d.mirrors);
  };
}
