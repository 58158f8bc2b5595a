// The data path: route a request on the current table and stream it to an endpoint through an
// undici Pool, streaming the response back. Bodies flow both ways with backpressure and are
// never buffered whole. Errors map to 404/503/502/504 with short text bodies.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { CompiledEndpoint, CompiledRoute, RequestAttributes, RoutingTable } from '../router/index.ts';
import { pickBackend, pickEndpoint } from '../router/index.ts';
import { downstreamHeaders, upstreamHeaders, type ForwardedValues } from './forwarding.ts';
import type { Logger } from './log.ts';
import { countRequest, observeUpstreamLatency, upstreamErrors } from './metrics.ts';

export interface ProxyOptions {
  readonly upstreamTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
}

/** Per-request facts from the listener and real-IP layers. */
export type ForwardingResolver = (req: IncomingMessage) => ForwardedValues;

/** Keep-alive connection pools, one per endpoint origin, kept across table swaps. */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private readonly options: ProxyOptions;

  constructor(options: ProxyOptions) {
    this.options = options;
  }

  get(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        connectTimeout: this.options.upstreamConnectTimeoutMs,
        connect: { timeout: this.options.upstreamConnectTimeoutMs, rejectUnauthorized: false },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Close pools whose origin the new table no longer uses, once their requests are done. */
  retainOnly(table: RoutingTable): void {
    const live = new Set<string>();
    for (const b of table.backends.values()) for (const e of b.endpoints) live.add(e.origin);
    for (const [origin, pool] of this.pools) {
      if (live.has(origin)) continue;
      this.pools.delete(origin);
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

export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function hasRequestBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** One proxied request: an undici dispatch handler writing into the client's response. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: CompiledRoute;
  readonly headers: string[];
  readonly hasBody: boolean;
  readonly ctx: ProxyContext;
  endpoint: CompiledEndpoint;
  attempts = 1;
  controller: Dispatcher.DispatchController | undefined;
  sentAt = 0;
  responseStarted = false;
  done = false;

  constructor(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse, route: CompiledRoute, endpoint: CompiledEndpoint, headers: string[]) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.route = route;
    this.endpoint = endpoint;
    this.headers = headers;
    this.hasBody = hasRequestBody(req);
    res.on('close', this.onClientClose);
  }

  start(): void {
    this.sentAt = performance.now();
    res_locals.set(this.res, this);
    const timeout = this.route.ir.timeoutMs ?? this.ctx.options.upstreamTimeoutMs;
    this.ctx.pools.get(this.endpoint.origin).dispatch(
      {
        path: this.req.url ?? '/',
        method: this.req.method ?? 'GET',
        headers: this.headers,
        body: this.hasBody ? this.req : null,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        blocking: false,
      },
      this,
    );
  }

  private onClientClose = (): void => {
    if (!this.done && this.controller !== undefined && !this.controller.aborted) {
      this.done = true;
      this.controller.abort(new Error('client closed the connection'));
    }
  };

  private resume = (): void => {
    this.controller?.resume();
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.responseStarted = true;
    observeUpstreamLatency(this.route.id, (performance.now() - this.sentAt) / 1000);
    if (this.res.destroyed) return;
    try {
      this.res.writeHead(statusCode, statusMessage || undefined, downstreamHeaders(headers));
    } catch (err) {
      // A header Node refuses to send (bad characters from upstream) is the upstream's fault.
      this.ctx.log.warn({ err: (err as Error).message, upstream: this.endpoint.origin }, 'invalid upstream response header');
      this.controller?.abort(err as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.destroyed) return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.resume);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.done = true;
    if (trailers && Object.keys(trailers).length > 0 && !this.res.destroyed) {
      try {
        this.res.addTrailers(trailers as Record<string, string>);
      } catch {
        // trailers are best effort on HTTP/1.1 (only with chunked encoding)
      }
    }
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error & { code?: string }): void {
    if (this.done && this.res.destroyed) return;
    const code = err.code ?? '';
    const connectFailure = CONNECT_ERRORS.has(code);
    if (connectFailure && !this.responseStarted && !this.hasBody && this.attempts < MAX_CONNECT_ATTEMPTS && !this.res.destroyed) {
      // As nginx's proxy_next_upstream: a request not yet sent can try another endpoint.
      const backend = this.nextBackendEndpoint();
      if (backend !== undefined) {
        this.attempts++;
        this.endpoint = backend;
        this.controller = undefined;
        this.start();
        return;
      }
    }
    this.done = true;
    const kind = TIMEOUT_ERRORS.has(code) ? 'timeout' : connectFailure ? 'connect' : 'reset';
    upstreamErrors.labels(kind).inc();
    if (this.res.headersSent) {
      this.res.destroy(err);
      return;
    }
    if (this.res.destroyed) return;
    res_errors.set(this.res, `${code || err.name}: ${err.message}`);
    if (kind === 'timeout') sendError(this.res, 504, 'upstream timed out');
    else sendError(this.res, 502, kind === 'connect' ? 'upstream connect error' : 'upstream connection error');
  }

  private nextBackendEndpoint(): CompiledEndpoint | undefined {
    for (const { backend } of this.route.backends) {
      if (backend.endpoints.length < 2) continue;
      if (!backend.endpoints.includes(this.endpoint)) continue;
      for (let i = 0; i < backend.endpoints.length; i++) {
        const ep = pickEndpoint(backend);
        if (ep !== undefined && ep !== this.endpoint) return ep;
      }
    }
    return undefined;
  }
}

// Access-log facts attached to a response without widening Node's types.
const res_locals = new WeakMap<ServerResponse, Exchange>();
const res_errors = new WeakMap<ServerResponse, string>();

export interface ProxyContext {
  /** The table to route this request on: read once, at the start of the request. */
  readonly table: () => RoutingTable | undefined;
  readonly pools: UpstreamPools;
  readonly log: Logger;
  readonly options: ProxyOptions;
  readonly forwarding: ForwardingResolver;
}

// Route conditions (method, headers, query) read the request through this adapter. Lookups are
// synchronous, so one adapter serves every request and routing allocates nothing for it.
class RequestView implements RequestAttributes {
  req: IncomingMessage | undefined;
  private query: URLSearchParams | undefined;
  private queryOf: IncomingMessage | undefined;

  get method(): string {
    return this.req?.method ?? 'GET';
  }

  header(name: string): string | undefined {
    const v = this.req?.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  queryParam(name: string): string | undefined {
    if (this.queryOf !== this.req) {
      const url = this.req?.url ?? '';
      const q = url.indexOf('?');
      this.query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
      this.queryOf = this.req;
    }
    return this.query?.get(name) ?? undefined;
  }
}
const requestView = new RequestView();

export function createRequestHandler(ctx: ProxyContext): (req: IncomingMessage, res: ServerResponse) => void {
  const accessLog = ctx.log.isLevelEnabled('info');
  return (req, res) => {
    const startedAt = performance.now();
    const table = ctx.table();
    const fwd = ctx.forwarding(req);
    let routeId = '-';
    res.once('close', () => {
      countRequest(routeId, res.statusCode);
      if (!accessLog) return;
      const ex = res_locals.get(res);
      ctx.log.info({
        type: 'access',
        client: fwd.clientIp,
        method: req.method,
        host: req.headers.host,
        path: req.url,
        proto: `HTTP/${req.httpVersion}`,
        status: res.statusCode,
        duration_ms: Math.round((performance.now() - startedAt) * 1000) / 1000,
        route: routeId,
        upstream: ex?.endpoint.origin,
        aborted: res.writableFinished ? undefined : true,
        error: res_errors.get(res),
        user_agent: req.headers['user-agent'],
      });
    });
    if (table === undefined) {
      sendError(res, 503, 'no routing table yet');
      return;
    }
    requestView.req = req;
    const route = table.match(req.headers.host, req.url ?? '/', requestView);
    requestView.req = undefined;
    if (route === undefined) {
      sendError(res, 404, 'no route for this host and path');
      return;
    }
    routeId = route.id;
    const backend = pickBackend(route);
    const endpoint = backend === undefined ? undefined : pickEndpoint(backend);
    if (backend === undefined || endpoint === undefined) {
      const reason = backend?.unavailableReason ?? 'no backend available';
      res_errors.set(res, reason);
      sendError(res, 503, `service unavailable: ${reason}`);
      return;
    }
    const headers = upstreamHeaders(req.rawHeaders, req.headers.connection, fwd);
    new Exchange(ctx, req, res, route, endpoint, headers).start();
  };
}
