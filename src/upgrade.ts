// HTTP/1.1 Upgrade (WebSocket and others): route the request like any other, open a connection to
// the endpoint, send the request head, read the upstream's answer, and only on 101 splice bytes
// both ways. A refusal goes back to the client and ends the connection. A tunnel does not depend
// on the routing table once open, so swaps never close it.

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
    let answered = false;
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), ctx.connectTimeoutMs);
    upstream.once(backend.protocol === 'https' ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      upstream.setNoDelay(true);
      upstream.write(requestHead(req, fwd));
      if (ctx.idleTimeoutMs > 0) upstream.setTimeout(ctx.idleTimeoutMs, () => upstream.destroy());
      // Nothing from the client goes upstream until the upstream has switched protocols: a
      // refusal (any status but 101) keeps the connection HTTP (RFC 9110 7.8), and the client
      // must not get a raw tunnel past routing, allowlists and header rules.
      readResponseHead(upstream, (err, response) => {
        answered = true;
        const log = (status: number) =>
          ctx.log.info({ type: 'access', upgrade: req.headers.upgrade, client: fwd.clientIp, method: req.method, host: req.headers.host, path: req.url, status, route: route.id, upstream: endpoint.origin, connect_ms: Math.round((performance.now() - started) * 1000) / 1000, proxy_protocol: proxyLogFields(req) });
        if (err !== undefined || response === undefined) {
          upstreamErrors.labels('reset').inc();
          countRequest(route.id, 502);
          log(502);
          refuse(socket, 502, `upstream connection error: ${err?.message ?? 'no response'}`);
          upstream.destroy();
          return;
        }
        countRequest(route.id, response.status);
        log(response.status);
        if (response.status === 101) {
          socket.write(response.bytes);
          // What the client sent right behind its request belongs to the new protocol.
          if (head.length > 0) upstream.write(head);
          upstream.pipe(socket);
          socket.pipe(upstream);
          return;
        }
        relayRefusal(response, upstream, socket);
      });
    });
    upstream.on('error', (err: Error & { code?: string }) => {
      clearTimeout(connectTimer);
      if (!connected) {
        upstreamErrors.labels(err.code === 'ETIMEDOUT' ? 'timeout' : 'connect').inc();
        countRequest(route.id, 502);
        refuse(socket, 502, 'upstream connect error');
      } else if (!answered) {
        answered = true;
        upstreamErrors.labels('reset').inc();
        countRequest(route.id, 502);
        refuse(socket, 502, 'upstream connection error');
      } else {
        socket.destroy();
      }
    });
    // A response being relayed ends the client connection itself (after its last byte).
    upstream.on('close', () => {
      if (!socket.writableEnded) socket.destroy();
    });
    socket.on('close', () => upstream.destroy());
  };
}

const MAX_RESPONSE_HEAD = 64 * 1024;

interface UpstreamResponseHead {
  readonly status: number;
  /** The head as received, plus any bytes after it that arrived with it. */
  readonly bytes: Buffer;
  readonly headEnd: number;
  readonly contentLength: number | undefined;
  readonly chunked: boolean;
}

/** Reads the upstream's response head (status line and headers) without consuming past it. */
function readResponseHead(upstream: net.Socket, done: (err: Error | undefined, head?: UpstreamResponseHead) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (err: Error | undefined, head?: UpstreamResponseHead) => {
    if (finished) return;
    finished = true;
    upstream.off('data', onData);
    upstream.off('end', onEnd);
    upstream.pause();
    done(err, head);
  };
  const onEnd = () => finish(new Error('the upstream closed before answering'));
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    const bytes = chunks.length === 1 ? chunk : Buffer.concat(chunks);
    const end = bytes.indexOf('\r\n\r\n');
    if (end < 0) {
      if (size > MAX_RESPONSE_HEAD) finish(new Error('response head too large'));
      return;
    }
    const text = bytes.subarray(0, end).toString('latin1');
    const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n?/.exec(text);
    if (m === null) return finish(new Error('malformed response status line'));
    const cl = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r|$)/i.exec(text);
    const chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(text);
    finish(undefined, { status: Number(m[1]), bytes, headEnd: end + 4, contentLength: cl === null ? undefined : Number(cl[1]), chunked });
  };
  upstream.on('data', onData);
  upstream.once('end', onEnd);
}

/**
 * The upstream refused the upgrade: pass its response on with `Connection: close`, then close both
 * connections once the response has been sent (by its length, its last chunk, or the upstream's close).
 */
function relayRefusal(response: UpstreamResponseHead, upstream: net.Socket, socket: Duplex): void {
  const lines = response.bytes.subarray(0, response.headEnd - 4).toString('latin1').split('\r\n');
  const kept = lines.filter((l, i) => i === 0 || !/^(connection|keep-alive|upgrade)\s*:/i.test(l));
  socket.write(`${kept.join('\r\n')}\r\nConnection: close\r\n\r\n`, 'latin1');
  const noBody = response.status === 204 || response.status === 304 || (response.status >= 100 && response.status < 200);
  let left = noBody ? 0 : response.contentLength;
  let tail = '';
  const send = (body: Buffer): boolean => {
    if (left !== undefined) {
      const piece = body.subarray(0, left);
      left -= piece.length;
      if (piece.length > 0) socket.write(piece);
      return left === 0;
    }
    if (body.length > 0) socket.write(body);
    if (!response.chunked) return false; // close-delimited: ends when the upstream closes
    tail = (tail + body.toString('latin1')).slice(-7);
    return tail.endsWith('\r\n0\r\n\r\n') || tail === '0\r\n\r\n';
  };
  const end = () => {
    upstream.destroy();
    socket.end();
  };
  if (send(response.bytes.subarray(response.headEnd))) return end();
  upstream.on('data', (chunk: Buffer) => {
    if (send(chunk)) end();
  });
  upstream.once('end', end);
  upstream.resume();
}
