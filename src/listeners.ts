// Client-facing listeners and their limits. Each worker binds its own socket with SO_REUSEPORT
// (Linux), so the kernel spreads connections and the primary stays off the data path.

import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from './log.ts';
import { openConnections } from './metrics.ts';

export interface ListenerLimits {
  readonly maxHeaderSize: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Answers a connection whose request cannot be parsed, then closes it. */
export function rejectClient(err: Error & { code?: string }, socket: Socket, log: Logger): void {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body = `${REASONS[status]}\n`;
  log.debug({ code: err.code, remote: socket.remoteAddress }, 'rejected malformed request');
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  socket.destroySoon?.();
}

export function createHttpServer(
  name: string,
  limits: ListenerLimits,
  log: Logger,
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): http.Server {
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
      // Large uploads stream through; the socket timeout is the idle guard.
      highWaterMark: 64 * 1024,
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => rejectClient(err, socket, log));
  const gauge = openConnections.labels(name);
  server.on('connection', (socket: Socket) => {
    gauge.inc();
    socket.once('close', () => gauge.dec());
  });
  server.on('drop', () => log.warn({ listener: name, max: limits.maxConnections }, 'connection limit reached; dropping connection'));
  return server;
}

export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: this worker binds its own socket; reusePort: the kernel balances between them.
    server.listen({ port, host, exclusive: true, reusePort: true, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
