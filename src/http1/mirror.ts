// Gateway API RequestMirror on the HTTP/1.1 fast path: each mirror the route's fraction picks gets
// the forwarded request's head (after the header filters) and its body bytes as they are relayed,
// over a pooled upstream connection. Its answer is read (as far as framing needs) and dropped.
// A mirror never delays the forwarded request: copies use a connection pool of their own (so a
// slow mirror, even one sharing endpoints with the backend, never takes or queues for the
// forwarded requests' connections), bytes a copy cannot send yet are buffered up to a bound, and
// a mirror that falls further behind, or does not answer in time, is cut. The worker's cap on
// copies in flight and on the bytes they hold is src/mirror.ts's mirrorBudget, shared with the
// node:http engine and HTTP/2: past it a new copy is dropped (busy), a growing one cut.

import type { CompiledMirror } from '../../router/compile.ts';
import { pickEndpoint } from '../../router/index.ts';
import { MIRROR_BUFFER, mirrorBudget, mirrorLimits, mirrorRequests } from '../mirror.ts';
import { BodyFramer } from './body.ts';
import { parseResponseHead, responseFraming } from './response-head.ts';
import { UpstreamSocketPool, type UpstreamConnection, type UpstreamTarget, type UpstreamUser, type UpstreamWaiter } from './upstream-pool.ts';

/** A mirror with no upstream timeout of its own is still given up on after this long. */
const MAX_MIRROR_MS = 60_000;

let mirrorPool: UpstreamSocketPool | undefined;

/** The copies' own pool, made on first use (after configureMirrors set the connect timeout). */
function pool(): UpstreamSocketPool {
  mirrorPool ??= new UpstreamSocketPool({ maxPerEndpoint: 64, idleTimeoutMs: 4_000, connectTimeoutMs: mirrorLimits().connectTimeoutMs });
  return mirrorPool;
}

class MirrorCopy implements UpstreamWaiter, UpstreamUser {
  private readonly pool: UpstreamSocketPool;
  private readonly target: UpstreamTarget;
  private readonly method: string;
  private head: string;
  private conn: UpstreamConnection | undefined;
  /** Body bytes waiting for the connection. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private bodyDone: boolean;
  private gone = false;
  private rbuf: Buffer | undefined;
  private framer: BodyFramer | undefined;
  private reusable = false;
  /** This copy's share of mirrorBudget.held: queued bytes, then what its socket has not sent. */
  private held = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(pool: UpstreamSocketPool, target: UpstreamTarget, method: string, head: string, hasBody: boolean, timeoutMs: number) {
    this.pool = pool;
    this.target = target;
    this.method = method;
    this.head = head;
    this.bodyDone = !hasBody;
    mirrorBudget.inFlight++;
    this.timer = setTimeout(cutMirror, timeoutMs > 0 ? timeoutMs : MAX_MIRROR_MS, this);
    this.timer.unref();
    pool.acquire(target, this);
  }

  onConnection(conn: UpstreamConnection): void {
    if (this.gone) {
      conn.pool.release(conn, true);
      return;
    }
    this.conn = conn;
    conn.user = this;
    conn.io.cork();
    conn.write(this.head);
    this.head = '';
    for (const b of this.queued) conn.write(b);
    conn.io.uncork();
    this.queued = [];
    this.queuedBytes = 0;
    this.account(conn.io.pendingBytes());
  }

  /** Sets this copy's held bytes; cuts it when the worker's copies hold too much. */
  private account(now: number): void {
    mirrorBudget.held += now - this.held;
    this.held = now;
    if (mirrorBudget.held > mirrorLimits().totalBuffer) this.cut();
  }

  onConnectError(): void {
    this.finish('failed');
  }

  /** A piece of the request body, as relayed upstream. */
  write(part: Buffer): void {
    if (this.gone) return;
    if (this.conn === undefined) {
      this.queuedBytes += part.length;
      if (this.queuedBytes > MIRROR_BUFFER) return this.cut();
      // The relay's buffer moves on; keep a copy.
      this.queued.push(Buffer.from(part));
      return this.account(this.queuedBytes);
    }
    this.conn.write(part);
    const held = this.conn.io.pendingBytes();
    if (held > MIRROR_BUFFER) return this.cut();
    this.account(held);
  }

  endBody(): void {
    this.bodyDone = true;
  }

  /** Gives up on this copy (the client went away mid-body, the mirror is too slow or silent). */
  cut(result: 'cut' | 'aborted' | 'failed' = 'cut'): void {
    if (this.gone) return;
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) conn.pool.evict(conn);
    else this.pool.cancel(this.target, this);
    this.finish(result);
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.gone) return;
    if (this.framer === undefined) {
      let buf: Buffer = this.rbuf === undefined ? chunk : Buffer.concat([this.rbuf, chunk]);
      for (;;) {
        const r = parseResponseHead(buf, 0, 65536);
        if (r.kind === 'incomplete') {
          this.rbuf = buf;
          return;
        }
        if (r.kind === 'error') return this.cut('failed');
        const rest: Buffer | undefined = buf.length === r.head.headLength ? undefined : buf.subarray(r.head.headLength);
        this.rbuf = undefined;
        if (r.head.status < 200) {
          if (rest === undefined) return;
          buf = rest;
          continue;
        }
        this.framer = new BodyFramer(responseFraming(r.head, this.method), r.head.contentLength);
        this.reusable = r.head.keepAlive && !(r.head.chunked && r.head.contentLength >= 0);
        if (rest === undefined) return this.maybeDone();
        chunk = rest;
        break;
      }
    }
    const p = this.framer.feed(chunk, 0);
    if (p.error !== undefined) return this.cut('failed');
    // Bytes past the end of the answer: the connection is out of step.
    if (p.consumed < chunk.length) this.reusable = false;
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.framer === undefined || !this.framer.done) return;
    const conn = this.conn;
    this.conn = undefined;
    // Reused only when the mirror read the whole request and answered with nothing extra.
    if (conn !== undefined) conn.pool.release(conn, this.reusable && this.bodyDone && this.framer.framing !== 'close');
    this.finish('answered');
  }

  onUpstreamClose(): void {
    this.conn = undefined;
    // A close-delimited answer ends with the connection.
    this.finish(this.framer !== undefined && this.framer.endOfInput() ? 'answered' : 'failed');
  }

  onUpstreamDrain(): void {}

  /** Counted once, in portico_mirror_requests_total as src/mirror.ts counts node:http's copies. */
  private finish(result: 'answered' | 'failed' | 'cut' | 'aborted'): void {
    if (this.gone) return;
    mirrorRequests.labels(result).inc();
    this.gone = true;
    clearTimeout(this.timer);
    this.queued = [];
    mirrorBudget.inFlight--;
    mirrorBudget.held -= this.held;
    this.held = 0;
  }
}

function cutMirror(m: MirrorCopy): void {
  m.cut();
}

/** The mirror copies of one request; empty when the fractions pick none. */
export class Mirrors {
  private readonly copies: MirrorCopy[];

  private constructor(copies: MirrorCopy[]) {
    this.copies = copies;
  }

  /**
   * Starts the copies the mirrors' fractions pick. `head` is the request head as forwarded
   * upstream (its framing headers included); h2c mirrors are not served by this path.
   */
  static start(mirrors: readonly CompiledMirror[], method: string, head: string, hasBody: boolean, timeoutMs: number): Mirrors | undefined {
    const copies: MirrorCopy[] = [];
    for (const m of mirrors) {
      if (!(m.fraction >= 1 || (m.fraction > 0 && Math.random() < m.fraction))) continue;
      if (m.backend.protocol === 'h2c') continue;
      if (mirrorBudget.inFlight >= mirrorLimits().maxInFlight) {
        mirrorRequests.labels('busy').inc();
        continue;
      }
      const ep = pickEndpoint(m.backend);
      if (ep === undefined) {
        mirrorRequests.labels('no_endpoint').inc();
        continue;
      }
      copies.push(new MirrorCopy(pool(), { address: ep.address, port: ep.port, tls: m.backend.protocol === 'https' }, method, head, hasBody, timeoutMs));
    }
    return copies.length === 0 ? undefined : new Mirrors(copies);
  }

  write(part: Buffer): void {
    for (const c of this.copies) c.write(part);
  }

  endBody(): void {
    for (const c of this.copies) c.endBody();
  }

  /** The request body will not be complete: no mirror gets a truncated body as if whole. */
  abort(): void {
    for (const c of this.copies) c.cut('aborted');
  }
}
