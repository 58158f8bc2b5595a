// HTTP/1.1 Upgrade (WebSocket and others): route the request like any other, open a connection to
// the endpoint, send the request head, then splice bytes both ways. The upstream's own 101 (or
// refusal) goes back to the client as it is. A tunnel does not depend on the routing table once
// open, so swaps never close it.

import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { pickBackend, pickEndpoint, type RoutingTable } from '../router/index.ts';
import { isForwardingHeader, type ForwardedValues } from './forwarding.ts';
import type { Logger } from './log.ts';
import { countRequest, upstreamErrors } from './metrics.ts';
import { sourceAllowed } from './proxy.ts';

const REASONS: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

function refuse(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

// Hop-by-hop headers except the two that carry the upgrade itself.
const DROP = new Set(['keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding']);

function requestHead(req: IncomingMessage, fwd: ForwardedValues): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (DROP.has(lower) || isForwardingHeader(lower)) continue;
    if (lower === 'connection') {
      head += 'Connection: Upgrade\r\n';
      continue;
    }
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  head += `X-Forwarded-For: ${fwd.forwardedFor}\r\nX-Real-IP: ${fwd.clientIp}\r\nX-Forwarded-Proto: ${fwd.proto}\r\nX-Forwarded-Host: ${fwd.host}\r\nX-Forwarded-Port: ${fwd.port}\r\n\r\n`;
  return head;
}

export interface UpgradeContext {
  readonly table: () => RoutingTable | undefined;
  readonly forwarding: (req: IncomingMessage) => ForwardedValues;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  /** Idle time after which a tunnel is closed (0: never). */
  readonly idleTimeoutMs: number;
}

export function createUpgradeHandler(ctx: UpgradeContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    const table = ctx.table();
    const route = table?.match(req.headers.host, req.url ?? '/');
    if (route === undefined) {
      countRequest('-', 404);
      return refuse(socket, 404, 'no route for this host and path');
    }
    const fwd = ctx.forwarding(req);
    if (route.ir.allowSourceRanges !== undefined && !sourceAllowed(route.ir, fwd.clientIp)) {
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
      ctx.log.info({ type: 'access', upgrade: req.headers.upgrade, client: fwd.clientIp, method: req.method, host: req.headers.host, path: req.url, route: route.id, upstream: endpoint.origin, connect_ms: Math.round((performance.now() - started) * 1000) / 1000 });
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
