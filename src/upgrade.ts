// HTTP/1.1 Upgrade (WebSocket and others): route the request like any other, open a connection to
// the endpoint, send the request head, read the upstream's answer, and only on 101 splice bytes
// both ways. A refusal goes back to the client and ends the connection. A tunnel does not depend
// on the routing table once open, so swaps never close it.

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { CompiledBackend, CompiledRoute, RoutingTable } from '../router/index.ts';
import { applyRequestFilters } from '../router/filters.ts';
import { SERVER_HEADER, upstreamHeaders, type ForwardedValues } from './forwarding.ts';
import type { Logger } from './log.ts';
import { observeRequest, requestBytes, upstreamErrors } from './metrics.ts';
import { chooseMirrors, mirrorRequests } from './mirror.ts';
import { NodeRouteRequest, proxyLogFields } from './proxy.ts';
import { checkTargetAndHost, unsupportedVersion } from './request-checks.ts';
import { decideRoute, type DecisionContext } from './route-decision.ts';

const REASONS: Record<number, string> = { 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported' };

/** Answers and closes; returns the bytes written (for the response size metric). */
function refuse(socket: Duplex, status: number, message: string, extra = ''): number {
  const body = `${message}\n`;
  const text = `HTTP/1.1 ${status} ${REASONS[status]}\r\nServer: ${SERVER_HEADER}\r\nConnection: close\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  socket.end(text);
  return Buffer.byteLength(text);
}

/**
 * Whether node:http hands a request with an Upgrade header to the upgrade handler (a tunnel after
 * a 101) or serves it as an ordinary request with the Upgrade dropped (it is hop-by-hop). Only a
 * request without a body is tunnelled: a body would have to be sent before the 101 and the
 * client's bytes after it would be ambiguous. `h2c` is never tunnelled: HTTP/2 is served here
 * (prior knowledge), and an h2c upgrade passed to a backend would smuggle a connection past
 * routing (RFC 9113 3.1 deprecates it).
 */
export function shouldUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined) return false;
  // RFC 9110 7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return false;
  if (req.headers['transfer-encoding'] !== undefined) return false;
  const cl = req.headers['content-length'];
  if (cl !== undefined && cl !== '0') return false;
  for (const token of upgrade.split(',')) if (token.trim().toLowerCase().startsWith('h2c')) return false;
  return true;
}


export interface UpgradeContext {
  readonly table: () => RoutingTable | undefined;
  readonly forwarding: (req: IncomingMessage) => ForwardedValues;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  /** Wait for the upstream's answer (101 or a refusal), unless the route sets its own: then 504. */
  readonly responseTimeoutMs: number;
  /** Idle time after which a tunnel is closed (0: never). */
  readonly idleTimeoutMs: number;
  /** As ProxyContext.decision: redirect port and the 421 check. */
  readonly decision: DecisionContext;
}

export function createUpgradeHandler(ctx: UpgradeContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const view = new NodeRouteRequest();
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    const arrived = performance.now();
    const count = (route: CompiledRoute | undefined, backend: CompiledBackend | undefined, status: number, bytes: number) =>
      observeRequest(route, backend, req.method, status, (performance.now() - arrived) / 1000, requestBytes(req), bytes);
    if (unsupportedVersion(req)) return void count(undefined, undefined, 505, refuse(socket, 505, 'HTTP version not supported'));
    const bad = checkTargetAndHost(req);
    if (bad !== undefined) return void count(undefined, undefined, 400, refuse(socket, 400, `bad request: ${bad}`));
    const fwd = ctx.forwarding(req);
    view.req = req;
    const d = decideRoute(ctx.table(), view, fwd, ctx.decision);
    view.req = undefined;
    if (d.action === 'respond') {
      const bytes = refuse(socket, d.status, d.message, d.location !== undefined ? `Location: ${d.location}\r\n` : '');
      return void count(d.route, d.backend, d.status, bytes);
    }
    const { route, backend, endpoint } = d;
    // RequestMirror: an upgrade is not mirrored (as Envoy's mirror policies skip upgrades and
    // CONNECT). A copy would open a second tunnel at the mirror whose bytes nobody sends, or a
    // head-only request the mirror would answer 101 to and then hang on; each copy the fractions
    // pick is counted as result="upgrade" instead, so the gap is visible.
    const skipped = chooseMirrors(d.mirrors);
    if (skipped !== undefined) mirrorRequests.labels('upgrade').inc(skipped.length);
    const log = (status: number, error?: string) =>
      ctx.log.info({ type: 'access', upgrade: req.headers.upgrade, client: fwd.clientIp, method: req.method, host: req.headers.host, path: req.url, status, route: route.id, upstream: endpoint.origin, duration_ms: Math.round((performance.now() - arrived) * 1000) / 1000, error, proxy_protocol: proxyLogFields(req) });
    // Node's HTTP client reads the upstream's answer: 101 ('upgrade'), or any other final
    // response ('response', with its framing, HEAD and trailers handled). Nothing the client
    // sends goes upstream before a 101: a refusal keeps the connection HTTP (RFC 9110 7.8), and a
    // client must not get a raw tunnel past routing, allowlists and header rules.
    const tlsUpstream = backend.protocol === 'https';
    // Gateway API request filters (header edits, URLRewrite) apply to upgrades as to any request.
    const sent = applyRequestFilters(upstreamHeaders(req.rawHeaders, req.headers.connection, fwd), req.url ?? '/', route.filters, d.backendFilters);
    const upstreamRequest = (tlsUpstream ? https : http).request({
      host: endpoint.address,
      port: endpoint.port,
      method: req.method,
      path: sent.target,
      headers: [...sent.headers, 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? ''],
      setHost: false,
      agent: false,
      ...(tlsUpstream ? { servername: net.isIP(endpoint.address) ? undefined : endpoint.address, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] } : {}),
    });
    let answered = false;
    let connected = false;
    const fail = (status: 502 | 504, message: string, kind: 'connect' | 'timeout' | 'reset', error: string) => {
      if (answered) return;
      answered = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      upstreamErrors.labels(kind).inc();
      count(route, backend, status, refuse(socket, status, message));
      log(status, error);
      upstreamRequest.destroy();
    };
    const connectTimer = setTimeout(() => fail(502, 'upstream connect error', 'timeout', 'connect timeout'), ctx.connectTimeoutMs);
    const responseTimer = setTimeout(() => fail(504, 'upstream timed out', 'timeout', 'no response head in time'), route.ir.timeoutMs ?? ctx.responseTimeoutMs);
    upstreamRequest.on('socket', (s: net.Socket) => {
      s.once(tlsUpstream ? 'secureConnect' : 'connect', () => {
        connected = true;
        clearTimeout(connectTimer);
      });
    });
    upstreamRequest.on('error', (err: Error & { code?: string }) => {
      if (!connected) fail(502, 'upstream connect error', 'connect', `${err.code ?? ''} ${err.message}`.trim());
      else if (!answered) fail(502, 'upstream connection error', 'reset', `${err.code ?? ''} ${err.message}`.trim());
      else socket.destroy();
    });
    upstreamRequest.on('upgrade', (res: IncomingMessage, upstream: net.Socket, upstreamHead: Buffer) => {
      if (answered) return void upstream.destroy();
      answered = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      const head101 = responseHead(res, false);
      count(route, backend, 101, Buffer.byteLength(head101));
      log(101);
      socket.write(head101);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      // What the client sent right behind its request belongs to the new protocol.
      if (head.length > 0) upstream.write(head);
      upstream.setNoDelay(true);
      if (ctx.idleTimeoutMs > 0) upstream.setTimeout(ctx.idleTimeoutMs, () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
      upstream.on('error', () => socket.destroy());
      upstream.on('close', () => closeSoon(socket));
      socket.on('close', () => upstream.destroy());
    });
    upstreamRequest.on('response', (res: IncomingMessage) => {
      if (answered) return void res.destroy();
      if (res.statusCode === 101) {
        // RFC 9110 7.8: a 101 names the protocol switched to; without Upgrade (node's parser then
        // reports it as a response, not an upgrade) it is no answer to pass on.
        res.destroy();
        fail(502, 'upstream sent an invalid response', 'reset', '101 without an Upgrade field');
        return;
      }
      answered = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      // The refusal, with its body (if any) delimited by closing the connection.
      const refusal = responseHead(res, true);
      const cl = Number(res.headers['content-length']);
      count(route, backend, res.statusCode ?? 502, Buffer.byteLength(refusal) + (Number.isSafeInteger(cl) ? cl : 0));
      log(res.statusCode ?? 502);
      socket.write(refusal);
      res.pipe(socket, { end: false });
      res.on('end', () => {
        socket.end();
        closeSoon(socket);
        upstreamRequest.destroy();
      });
      res.on('error', () => socket.destroy());
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      upstreamRequest.destroy();
    });
    upstreamRequest.end();
  };
}

/** After this side has ended, give the client a moment to read and close, then release the socket. */
function closeSoon(socket: Duplex): void {
  if (socket.destroyed) return;
  if (!socket.writableEnded) socket.end();
  setTimeout(() => socket.destroy(), 2000).unref();
}

/**
 * The upstream's status line and headers, for the client. A refusal goes out with its
 * connection-level headers replaced by `Connection: close` (its body then ends with the connection).
 */
function responseHead(res: IncomingMessage, refusal: boolean): string {
  let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (refusal && (name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding' || name === 'upgrade' || name === 'proxy-connection' || name === 'trailer')) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return `${head}${refusal ? 'Connection: close\r\n' : ''}\r\n`;
}
