// HTTP/1.1 Upgrade (WebSocket and others): route the request like any other, open a connection to
// the endpoint, send the request head, then splice bytes both ways. The upstream's own 101 (or
// refusal) goes back to the client as it is. A tunnel does not depend on the routing table once
// open, so swaps never close it.

import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { hostKey, normalizeHostname } from '../router/host.ts';
import { pickBackend, pickEndpoint, type RoutingTable } from '../router/index.ts';
import { upstreamHeaders, type ForwardedValues } from './forwarding.ts';
import type { Logger } from './log.ts';
import { countRequest, upstreamErrors } from './metrics.ts';
import { checkTargetAndHost, proxyLogFields, type DownstreamRequest } from './proxy.ts';
import { allowlistDenial } from './realip/allowlist.ts';

const REASONS: Record<number, string> = { 308: 'Permanent Redirect', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

function refuse(socket: Duplex, status: number, message: string, extra = ''): void {
  const body = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\n${extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * The head sent upstream: the same headers as a proxied request (hop-by-hop and Connection-named
 * ones removed, forwarding headers decided by the real-IP layer), plus the upgrade itself.
 */
function requestHead(req: IncomingMessage, fwd: ForwardedValues): string {
  const headers = upstreamHeaders(req.rawHeaders, req.headers.connection, fwd);
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}Connection: Upgrade\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\n\r\n`;
}

export interface UpgradeContext {
  readonly table: () => RoutingTable | undefined;
  readonly forwarding: (req: IncomingMessage) => ForwardedValues;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
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
    const upstream: net.Socket =
      backend.protocol === 'https'
        ? tls.connect({ host: endpoint.address, port: endpoint.port, servername: net.isIP(endpoint.address) ? undefined : endpoint.address, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
        : net.connect({ host: endpoint.address, port: endpoint.port });
    let connected = false;
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), ctx.connectTimeoutMs);
    upstream.once(backend.protocol === 'https' ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      upstream.setNoDelay(true);
      upstream.write(requestHead(req, fwd));
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      if (ctx.idleTimeoutMs > 0) {
        upstream.setTimeout(ctx.idleTimeoutMs, () => upstream.destroy());
      }
      countRequest(route.id, 101);
      ctx.log.info({ type: 'access', upgrade: req.headers.upgrade, client: fwd.clientIp, method: req.method, host: req.headers.host, path: req.url, route: route.id, upstream: endpoint.origin, connect_ms: Math.round((performance.now() - started) * 1000) / 1000, proxy_protocol: proxyLogFields(req) });
    });
    upstream.on('error', (err: Error & { code?: string }) => {
      clearTimeout(connectTimer);
      if (!connected) {
        upstreamErrors.labels(err.code === 'ETIMEDOUT' ? 'timeout' : 'connect').inc();
        countRequest(route.id, 502);
        refuse(socket, 502, 'upstream connect error');
      } else {
        socket.destroy();
      }
    });
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  };
}
