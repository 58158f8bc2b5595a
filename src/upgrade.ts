// HTTP/1.1 Upgrade (WebSocket and others): route the request like any other, open a connection to
// the endpoint, send the request head, read the upstream's answer, and only on 101 splice bytes
// both ways. A refusal goes back to the client and ends the connection. A tunnel does not depend
// on the routing table once open, so swaps never close it.

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { hostKey, normalizeHostname } from '../router/host.ts';
import { pickBackend, pickEndpoint, type RoutingTable } from '../router/index.ts';
import { upstreamHeaders, type ForwardedValues } from './forwarding.ts';
import type { Logger } from './log.ts';
import { countRequest, upstreamErrors } from './metrics.ts';
import { proxyLogFields, type DownstreamRequest } from './proxy.ts';
import { checkTargetAndHost, unsupportedVersion } from './request-checks.ts';
import { allowlistDenial } from './realip/allowlist.ts';

const REASONS: Record<number, string> = { 308: 'Permanent Redirect', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported' };

function refuse(socket: Duplex, status: number, message: string, extra = ''): void {
  const body = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
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
  /** Port HTTPS is served on, for redirects of routes that require TLS. */
  readonly httpsPort: number;
  /** As ProxyContext.misdirected: the 421 check for TLS connections. */
  readonly misdirected?: (req: DownstreamRequest, host: string) => boolean;
}

export function createUpgradeHandler(ctx: UpgradeContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    if (unsupportedVersion(req)) {
      countRequest('-', 505);
      return refuse(socket, 505, 'HTTP version not supported');
    }
    const bad = checkTargetAndHost(req);
    if (bad !== undefined) {
      countRequest('-', 400);
      return refuse(socket, 400, `bad request: ${bad}`);
    }
    const host = req.headers.host;
    if (ctx.misdirected !== undefined && host !== undefined && ctx.misdirected(req, hostKey(host).name)) {
      countRequest('-', 421);
      return refuse(socket, 421, 'misdirected request: this connection was set up for another host');
    }
    const table = ctx.table();
    const route = table?.match(host, req.url ?? '/');
    if (route === undefined) {
      countRequest('-', 404);
      return refuse(socket, 404, 'no route for this host and path');
    }
    const fwd = ctx.forwarding(req);
    if (route.ir.httpsRedirect === true && fwd.proto !== 'https') {
      const location = `https://${normalizeHostname(host ?? '')}${ctx.httpsPort === 443 ? '' : `:${ctx.httpsPort}`}${req.url ?? '/'}`;
      countRequest(route.id, 308);
      return refuse(socket, 308, `redirecting to ${location}`, `Location: ${location}\r\n`);
    }
    if (allowlistDenial(route.ir, fwd) !== undefined) {
      countRequest(route.id, 403);
      return refuse(socket, 403, 'forbidden: your address is not allowed here');
    }
    const backend = pickBackend(route);
    const endpoint = backend === undefined ? undefined : pickEndpoint(backend);
    if (backend === undefined || endpoint === undefined) {
      countRequest(route.id, 503);
      return refuse(socket, 503, `service unavailable: ${backend?.unavailableReason ?? 'no backend available'}`);
    }
    const started = performance.now();
    const log = (status: number, error?: string) =>
      ctx.log.info({ type: 'access', upgrade: req.headers.upgrade, client: fwd.clientIp, method: req.method, host: req.headers.host, path: req.url, status, route: route.id, upstream: endpoint.origin, duration_ms: Math.round((performance.now() - started) * 1000) / 1000, error, proxy_protocol: proxyLogFields(req) });
    // Node's HTTP client reads the upstream's answer: 101 ('upgrade'), or any other final
    // response ('response', with its framing, HEAD and trailers handled). Nothing the client
    // sends goes upstream before a 101: a refusal keeps the connection HTTP (RFC 9110 7.8), and a
    // client must not get a raw tunnel past routing, allowlists and header rules.
    const tlsUpstream = backend.protocol === 'https';
    const upstreamRequest = (tlsUpstream ? https : http).request({
      host: endpoint.address,
      port: endpoint.port,
      method: req.method,
      path: req.url,
      headers: [...upstreamHeaders(req.rawHeaders, req.headers.connection, fwd), 'Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? ''],
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
      countRequest(route.id, status);
      log(status, error);
      refuse(socket, status, message);
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
      countRequest(route.id, 101);
      log(101);
      socket.write(responseHead(res, false));
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
      answered = true;
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      countRequest(route.id, res.statusCode ?? 502);
      log(res.statusCode ?? 502);
      // The refusal, with its body (if any) delimited by closing the connection.
      socket.write(responseHead(res, true));
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
