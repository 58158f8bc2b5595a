// TLS passthrough: route a TLS connection by the SNI of its ClientHello without terminating it.
// Shared by Ingress ssl-passthrough and the Gateway API TLSRoute.

import net from 'node:net';
import client from 'prom-client';
import { peekClientHello, type ClientHelloErrorReason, type ClientHelloOk } from './clienthello.ts';

export interface PassthroughBackend {
  host: string;
  port: number;
}

export type RejectReason = ClientHelloErrorReason | 'no-backend' | 'select-failed' | 'connect-failed' | 'client-closed';

export interface PassthroughOptions {
  /**
   * Picks the backend for a server name (undefined when the client sent no SNI). Return
   * undefined to refuse the connection. May return a promise.
   */
  selectBackend(
    serverName: string | undefined,
    hello: ClientHelloOk,
  ): PassthroughBackend | undefined | Promise<PassthroughBackend | undefined>;
  /** Time allowed for a complete ClientHello. Default 10 s. */
  helloTimeoutMs?: number;
  /** Cap on ClientHello bytes buffered. Default 32 KiB. */
  maxHelloBytes?: number;
  /** Time allowed to connect to the backend. Default 5 s. */
  connectTimeoutMs?: number;
  /** Close both sides after this long with no traffic either way. Default 10 min; 0 disables. */
  idleTimeoutMs?: number;
  /** Metric label; defaults to 'passthrough'. */
  listener?: string;
}

export interface PassthroughOutcome {
  result: 'proxied' | 'rejected';
  reason?: RejectReason | 'idle-timeout' | 'client-error' | 'backend-error';
  detail?: string;
  serverName?: string;
  alpn?: string[];
  backend?: PassthroughBackend;
  /** Bytes client to backend, including the replayed ClientHello. */
  bytesToBackend: number;
  /** Bytes backend to client. */
  bytesToClient: number;
}

function counter<T extends string>(name: string, help: string, labelNames: readonly T[]): client.Counter<T> {
  // A second import of this module (tests, or a reloaded worker) must reuse the registered metric.
  const existing = client.register.getSingleMetric(name);
  if (existing !== undefined) return existing as client.Counter<T>;
  return new client.Counter({ name, help, labelNames });
}

export const passthroughRejected = counter(
  'portico_tls_passthrough_rejected_total',
  'TLS passthrough connections closed before reaching a backend, by reason',
  ['listener', 'reason'] as const,
);

export const passthroughConnections = counter(
  'portico_tls_passthrough_connections_total',
  'TLS passthrough connections spliced to a backend',
  ['listener'] as const,
);

/**
 * Handles one accepted connection end to end and resolves when both sides are closed. Never
 * rejects and never throws: every failure closes the connection and is counted.
 *
 * The accepting server should be created with `allowHalfOpen: true` so that a client's FIN is
 * forwarded to the backend without ending the backend-to-client direction.
 */
export async function handlePassthrough(socket: net.Socket, options: PassthroughOptions): Promise<PassthroughOutcome> {
  const listener = options.listener ?? 'passthrough';
  const reject = (reason: RejectReason, detail: string, extra: Partial<PassthroughOutcome> = {}): PassthroughOutcome => {
    passthroughRejected.labels(listener, reason).inc();
    socket.destroy();
    return { result: 'rejected', reason, detail, bytesToBackend: 0, bytesToClient: 0, ...extra };
  };

  // Until the splice below takes over, errors must not escape as 'error' events.
  const swallow = (): void => {};
  socket.on('error', swallow);

  const hello = await peekClientHello(socket, { timeoutMs: options.helloTimeoutMs, maxBytes: options.maxHelloBytes });
  if (!hello.ok) return reject(hello.error, hello.detail);
  const { serverName, alpn } = hello;

  let backend: PassthroughBackend | undefined;
  try {
    backend = await options.selectBackend(serverName, hello);
  } catch (err) {
    return reject('select-failed', (err as Error).message, { serverName, alpn });
  }
  if (backend === undefined) return reject('no-backend', `no backend for ${serverName ?? '(no SNI)'}`, { serverName, alpn });
  if (socket.destroyed) return reject('client-closed', 'client went away while a backend was chosen', { serverName, alpn, backend });

  const upstream = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true });
  upstream.setNoDelay(true);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const connected = await new Promise<Error | 'client-closed' | undefined>((resolve) => {
    const settle = (err?: Error | 'client-closed'): void => {
      clearTimeout(timer);
      upstream.off('connect', onConnect);
      upstream.off('error', onError);
      socket.off('close', onClientClose);
      resolve(err);
    };
    const onConnect = (): void => settle();
    const onError = (err: Error): void => settle(err);
    // A client that gives up while we connect should not hold the connection attempt open.
    const onClientClose = (): void => settle('client-closed');
    const timer = setTimeout(() => settle(new Error(`connect timeout after ${connectTimeoutMs} ms`)), connectTimeoutMs);
    upstream.once('connect', onConnect);
    upstream.once('error', onError);
    socket.once('close', onClientClose);
  });
  if (connected !== undefined) {
    upstream.on('error', swallow);
    upstream.destroy();
    if (connected === 'client-closed') return reject('client-closed', 'client went away during the backend connect', { serverName, alpn, backend });
    return reject('connect-failed', `${backend.host}:${backend.port}: ${connected.message}`, { serverName, alpn, backend });
  }
  passthroughConnections.labels(listener).inc();
  return splice(socket, upstream, hello.buffered, options.idleTimeoutMs ?? 600_000, { serverName, alpn, backend });
}

/** Returns a 'connection' listener for a net.Server. */
export function passthroughHandler(options: PassthroughOptions): (socket: net.Socket) => void {
  return (socket) => {
    void handlePassthrough(socket, options);
  };
}

function splice(
  down: net.Socket,
  up: net.Socket,
  head: Buffer,
  idleTimeoutMs: number,
  info: Pick<PassthroughOutcome, 'serverName' | 'alpn' | 'backend'>,
): Promise<PassthroughOutcome> {
  return new Promise((resolve) => {
    let reason: PassthroughOutcome['reason'];
    let detail: string | undefined;
    const abort = (why: NonNullable<PassthroughOutcome['reason']>, err?: Error): void => {
      if (reason === undefined) {
        reason = why;
        detail = err?.message;
      }
      down.destroy();
      up.destroy();
    };
    // The no-op 'error' listener added earlier stays; these make an error tear down both sides.
    down.on('error', (err) => abort('client-error', err));
    up.on('error', (err) => abort('backend-error', err));
    if (idleTimeoutMs > 0) {
      // Any byte in either direction is a read on one socket and a write on the other, so each
      // socket's inactivity timer covers both directions.
      down.setTimeout(idleTimeoutMs, () => abort('idle-timeout'));
      up.setTimeout(idleTimeoutMs, () => abort('idle-timeout'));
    }
    let closed = 0;
    const onClose = (): void => {
      if (++closed < 2) return;
      resolve({
        result: 'proxied',
        reason,
        detail,
        ...info,
        bytesToBackend: up.bytesWritten,
        bytesToClient: down.bytesWritten,
      });
    };
    // Once one side is fully closed nothing more can reach it, so the other side only has to
    // flush what it was given (its FIN was already forwarded by pipe) and can then go: without
    // this, a peer that never sends FIN would hold the socket until the idle timeout.
    const flushThenDestroy = (s: net.Socket): void => {
      if (s.destroyed) return;
      if (s.writableFinished) s.destroy();
      else {
        s.once('finish', () => s.destroy());
        s.end();
      }
    };
    down.on('close', () => {
      flushThenDestroy(up);
      onClose();
    });
    up.on('close', () => {
      flushThenDestroy(down);
      onClose();
    });
    // The ClientHello goes first; pipe() then resumes the paused client socket. pipe() applies
    // backpressure both ways and forwards each side's FIN as end() on the other (half-close).
    up.write(head);
    down.pipe(up);
    up.pipe(down);
  });
}
