// Keep-alive connections to upstream endpoints for the fast path: raw sockets (TLS for
// appProtocol https), pooled per endpoint with a cap, an idle timeout, and eviction of any idle
// connection the upstream closed or sent bytes on (a response nobody asked for would be read as
// the answer to the next request). The pool owns the socket's listeners for its whole life and
// passes events to whoever holds the connection, so a request adds or removes none.

import net from 'node:net';
import tls from 'node:tls';
import { socketIo, type IoSink, type SocketIo } from './socket-io.ts';

export interface UpstreamPoolOptions {
  /** Open connections (busy and idle) per endpoint; further requests wait for one. */
  readonly maxPerEndpoint: number;
  /** An idle connection is closed after this long unused. */
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

export interface UpstreamTarget {
  readonly address: string;
  readonly port: number;
  /** TLS to the upstream (certificate not verified, as ingress-nginx's backend-protocol HTTPS). */
  readonly tls?: boolean;
  /** UpstreamSocketPool.key(this), when the caller keeps the target: not rebuilt per request. */
  readonly key?: string;
}

/** Whoever holds a connection gets its events. */
export interface UpstreamUser {
  onUpstreamData(chunk: Buffer): void;
  /** The connection ended (FIN), failed or closed while held. Called once; the pool has dropped it. */
  onUpstreamClose(err: (Error & { code?: string }) | undefined): void;
  onUpstreamDrain(): void;
}

/** Waits for a connection. */
export interface UpstreamWaiter {
  onConnection(conn: UpstreamConnection): void;
  onConnectError(err: Error & { code?: string }): void;
}

/** Set on errors of connects that did not finish within connectTimeoutMs. */
export const CONNECT_TIMEOUT = 'ECONNECT_TIMEOUT';
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', CONNECT_TIMEOUT]);

/** An error that means the request never reached the upstream (safe to try another endpoint). */
export function isConnectError(err: { code?: string } | undefined): boolean {
  return err !== undefined && err.code !== undefined && CONNECT_CODES.has(err.code);
}

export class UpstreamConnection implements IoSink {
  readonly socket: net.Socket;
  /** Reads and writes, set once connected (src/http1/socket-io.ts). */
  io!: SocketIo;
  readonly key: string;
  readonly pool: UpstreamSocketPool;
  user: UpstreamUser | undefined;
  /** Requests completed on this connection: above 0, it was reused (and may meet a stale close). */
  uses = 0;
  idleSince = 0;
  connected = false;
  gone = false;

  constructor(pool: UpstreamSocketPool, key: string, socket: net.Socket) {
    this.pool = pool;
    this.key = key;
    this.socket = socket;
  }

  /** Strings are heads: latin1, byte for byte as they were parsed. */
  write(data: string | Buffer): boolean {
    return this.io.write(data);
  }

  onIoData(chunk: Buffer): void {
    if (this.user !== undefined) this.user.onUpstreamData(chunk);
    // Bytes on an idle connection answer no request: the connection is out of step, drop it.
    else this.pool.evict(this);
  }

  onIoDrain(): void {
    this.user?.onUpstreamDrain();
  }
}

interface Slot {
  open: number;
  readonly idle: UpstreamConnection[];
  readonly waiters: UpstreamWaiter[];
}

function onSocketEnd(this: net.Socket & { [kConn]?: UpstreamConnection }): void {
  this[kConn]!.pool.lost(this[kConn]!, undefined);
}
function onSocketError(this: net.Socket & { [kConn]?: UpstreamConnection }, err: Error): void {
  this[kConn]!.pool.lost(this[kConn]!, err);
}
function onSocketClose(this: net.Socket & { [kConn]?: UpstreamConnection }): void {
  this[kConn]!.pool.lost(this[kConn]!, undefined);
}
const kConn = Symbol('portico.upstream');

export class UpstreamSocketPool {
  private readonly slots = new Map<string, Slot>();
  private readonly options: UpstreamPoolOptions;
  private sweeper: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(options: UpstreamPoolOptions) {
    this.options = options;
  }

  static key(t: UpstreamTarget): string {
    return `${t.tls === true ? 'tls:' : ''}${t.address}:${t.port}`;
  }

  /**
   * Gives the waiter an idle connection at once (synchronously), or opens one, or queues the
   * waiter until one is released when the endpoint is at its cap.
   */
  acquire(target: UpstreamTarget, waiter: UpstreamWaiter): void {
    const key = target.key ?? UpstreamSocketPool.key(target);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { open: 0, idle: [], waiters: [] };
      this.slots.set(key, slot);
    }
    // Most recently used first: the least likely to have been closed by the upstream.
    while (slot.idle.length > 0) {
      const conn = slot.idle.pop()!;
      if (conn.gone || conn.socket.destroyed || !conn.socket.writable) continue;
      waiter.onConnection(conn);
      return;
    }
    if (slot.open >= this.options.maxPerEndpoint) {
      slot.waiters.push(waiter);
      return;
    }
    this.connect(target, key, slot, waiter);
  }

  /** Forgets a waiter that no longer wants a connection (its client went away). */
  cancel(target: UpstreamTarget, waiter: UpstreamWaiter): void {
    const slot = this.slots.get(target.key ?? UpstreamSocketPool.key(target));
    if (slot === undefined) return;
    const i = slot.waiters.indexOf(waiter);
    if (i >= 0) slot.waiters.splice(i, 1);
  }

  private connect(target: UpstreamTarget, key: string, slot: Slot, waiter: UpstreamWaiter | undefined): void {
    slot.open++;
    const socket = target.tls === true
      ? tls.connect({ host: target.address, port: target.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(net.isIP(target.address) === 0 ? { servername: target.address } : {}) })
      : net.connect({ host: target.address, port: target.port, noDelay: true });
    // Errors are reported through the listeners below; this one only keeps a late one from
    // becoming an uncaught exception.
    socket.on('error', noop);
    const conn = new UpstreamConnection(this, key, socket);
    (socket as net.Socket & { [kConn]?: UpstreamConnection })[kConn] = conn;
    let pending: UpstreamWaiter | undefined = waiter;
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`connect to ${target.address}:${target.port} timed out`), { code: CONNECT_TIMEOUT });
      socket.destroy(err);
    }, this.options.connectTimeoutMs);
    const onConnectFailure = (err: Error & { code?: string }): void => {
      clearTimeout(timer);
      socket.off('error', onConnectFailure);
      socket.off('close', onEarlyClose);
      if (!conn.gone) {
        conn.gone = true;
        this.dropped(key, slot);
      }
      socket.destroy();
      const w = pending;
      pending = undefined;
      w?.onConnectError(err);
    };
    const onEarlyClose = (): void => onConnectFailure(Object.assign(new Error('upstream closed while connecting'), { code: 'ECONNRESET' }));
    socket.once('error', onConnectFailure);
    socket.once('close', onEarlyClose);
    socket.once(target.tls === true ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', onConnectFailure);
      socket.off('close', onEarlyClose);
      conn.connected = true;
      socket.setNoDelay(true);
      conn.io = socketIo(socket, conn);
      socket.on('end', onSocketEnd);
      socket.on('error', onSocketError);
      socket.on('close', onSocketClose);
      const w = pending;
      pending = undefined;
      if (w !== undefined) w.onConnection(conn);
      else this.release(conn, true);
    });
  }

  /** Returns a connection: kept for the next request when `reusable`, else closed. */
  release(conn: UpstreamConnection, reusable: boolean): void {
    conn.user = undefined;
    if (conn.gone) return;
    const slot = this.slots.get(conn.key);
    if (!reusable || this.closing || slot === undefined || conn.socket.destroyed || !conn.socket.writable || conn.socket.readableEnded) {
      this.evict(conn);
      return;
    }
    conn.uses++;
    const next = slot.waiters.shift();
    if (next !== undefined) {
      next.onConnection(conn);
      return;
    }
    conn.idleSince = performance.now();
    slot.idle.push(conn);
    this.startSweeper();
  }

  /** Closes a connection and forgets it. */
  evict(conn: UpstreamConnection): void {
    conn.user = undefined;
    if (!conn.gone) {
      conn.gone = true;
      this.removeIdle(conn);
      this.dropped(conn.key, this.slots.get(conn.key));
    }
    conn.socket.destroy();
  }

  /** The socket ended, failed or closed: tell its holder, forget it. */
  lost(conn: UpstreamConnection, err: Error | undefined): void {
    if (conn.gone) {
      if (!conn.socket.destroyed) conn.socket.destroy();
      return;
    }
    conn.gone = true;
    const user = conn.user;
    conn.user = undefined;
    this.removeIdle(conn);
    this.dropped(conn.key, this.slots.get(conn.key));
    conn.socket.destroy();
    user?.onUpstreamClose(err);
  }

  private removeIdle(conn: UpstreamConnection): void {
    const slot = this.slots.get(conn.key);
    if (slot === undefined) return;
    const i = slot.idle.indexOf(conn);
    if (i >= 0) slot.idle.splice(i, 1);
  }

  /** One connection fewer: a waiter held back by the cap may open one now. */
  private dropped(key: string, slot: Slot | undefined): void {
    if (slot === undefined) return;
    slot.open--;
    const next = slot.waiters.shift();
    if (next !== undefined && !this.closing) {
      const [address, port, isTls] = parseKey(key);
      this.connect({ address, port, tls: isTls }, key, slot, next);
    } else if (slot.open === 0 && slot.waiters.length === 0) {
      this.slots.delete(key);
    }
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    const every = Math.max(25, Math.min(1000, Math.floor(this.options.idleTimeoutMs / 2)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = performance.now();
    let idle = 0;
    for (const slot of this.slots.values()) {
      for (const conn of [...slot.idle]) {
        if (now - conn.idleSince >= this.options.idleTimeoutMs) this.evict(conn);
        else idle++;
      }
    }
    if (idle === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Closes idle connections to endpoints not in `live` (keys from UpstreamSocketPool.key). */
  retainOnly(live: ReadonlySet<string>): void {
    for (const [key, slot] of this.slots) {
      if (live.has(key)) continue;
      for (const conn of [...slot.idle]) this.evict(conn);
    }
  }

  /** Closes every idle connection now, and each busy one when it is released. */
  closeAll(): void {
    this.closing = true;
    for (const slot of this.slots.values()) {
      for (const conn of [...slot.idle]) this.evict(conn);
      slot.waiters.length = 0;
    }
  }

  /** Open and idle connections to an endpoint (for tests and debugging). */
  stats(target: UpstreamTarget): { open: number; idle: number; waiting: number } {
    const slot = this.slots.get(UpstreamSocketPool.key(target));
    return { open: slot?.open ?? 0, idle: slot?.idle.length ?? 0, waiting: slot?.waiters.length ?? 0 };
  }
}

function noop(): void {}

function parseKey(key: string): [string, number, boolean] {
  const isTls = key.startsWith('tls:');
  const rest = isTls ? key.slice(4) : key;
  const i = rest.lastIndexOf(':');
  return [rest.slice(0, i), Number(rest.slice(i + 1)), isTls];
}
