// Gateway API RequestMirror, for both HTTP/1.1 engines and HTTP/2: a copy of the request (method,
// target and headers after the route's filters, Host kept, and the body as it streams) goes to
// each mirror backend the route's fractions pick; the mirror's answer is read and dropped.
// A mirror never holds up or fails the client's request: copies go out on pools of their own,
// each copy's body may lag at most MIRROR_BUFFER bytes behind the forwarded one before the copy
// is cut (never slowing the forwarded body down), a worker's copies share a cap on those in
// flight and on the bytes they hold (mirrorBudget, both engines), and every outcome only counts
// in portico_mirror_requests_total. The engines call openMirrors() once per client request, after
// the route decision and before any retry, so a retried request is mirrored once.

import { PassThrough, type Readable } from 'node:stream';
import client from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import type { CompiledBackend, CompiledMirror } from '../router/compile.ts';
import { pickEndpoint } from '../router/index.ts';
import { ChunkedFramer } from './http1/chunked.ts';

/** Body bytes a mirror copy may lag behind the forwarded request before it is cut. */
export const MIRROR_BUFFER = 1 << 20;
/** Mirror pools kept per worker; the oldest is closed past this. */
const MAX_POOLS = 256;

/**
 * A worker's limits on mirror copies, shared by both HTTP/1.1 engines and HTTP/2 (the fast path's
 * copies, src/http1/mirror.ts, count here too): copies in flight, past which a new copy is dropped
 * (busy) rather than queued; body bytes all copies hold, past which the copy being written is cut.
 */
const limits = { maxInFlight: 512, totalBuffer: 64 << 20, connectTimeoutMs: 5_000 };

/** What the worker's copies use of those limits now. `held` is an upper bound: reads lower it unseen. */
export const mirrorBudget = { inFlight: 0, held: 0 };

export function mirrorLimits(): Readonly<typeof limits> {
  return limits;
}

export const mirrorRequests = new client.Counter({
  name: 'portico_mirror_requests_total',
  help: 'RequestMirror copies by result: answered (the mirror answered; its answer dropped), failed (connect error, timeout, reset), cut (its body fell too far behind), aborted (the client request did not complete), no_endpoint, busy (too many copies in flight), upgrade (not sent: an upgrade request, such as a WebSocket, is not mirrored)',
  labelNames: ['result'] as const,
});

/** The request as the forwarded backend gets it (after the route's and backend's filters). */
export interface MirrorRequest {
  readonly method: string;
  /** Path and query. */
  readonly target: string;
  /** Flat `[name, value, ...]` list. */
  readonly headers: readonly string[];
  /** Response header and body timeout of the copies, ms. */
  readonly timeoutMs: number;
}

/** Takes the client's request body for the copies, as it is forwarded. */
export interface MirrorBody {
  write(chunk: Uint8Array): void;
  end(): void;
  /** The client request did not complete: the copies are aborted, not sent truncated. */
  abort(): void;
}

// Framing and connection-level fields are the mirror pool's own (undici refuses some of them).
const NOT_COPIED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'proxy-connection']);

const pools = new Map<string, Pool>();

/** The connect timeout of mirror pools (--upstream-connect-timeout); the caps, for tests. */
export function configureMirrors(opts: { connectTimeoutMs: number; maxInFlight?: number; totalBuffer?: number }): void {
  limits.connectTimeoutMs = opts.connectTimeoutMs;
  if (opts.maxInFlight !== undefined) limits.maxInFlight = opts.maxInFlight;
  if (opts.totalBuffer !== undefined) limits.totalBuffer = opts.totalBuffer;
}

function poolFor(backend: CompiledBackend, origin: string): Pool {
  const key = backend.protocol === 'h2c' ? `h2c+${origin}` : origin;
  let pool = pools.get(key);
  if (pool === undefined) {
    if (pools.size >= MAX_POOLS) {
      const [oldKey, old] = pools.entries().next().value as [string, Pool];
      pools.delete(oldKey);
      old.close().catch(() => undefined);
    }
    pool = new Pool(origin, {
      connections: backend.protocol === 'h2c' ? 2 : 64,
      pipelining: backend.protocol === 'h2c' ? 100 : 1,
      keepAliveTimeout: 4_000,
      connectTimeout: limits.connectTimeoutMs,
      // As for forwarded requests: cluster-internal certificates are not verified.
      connect: { timeout: limits.connectTimeoutMs, rejectUnauthorized: false },
      allowH2: false,
      useH2c: backend.protocol === 'h2c',
    } as Pool.Options);
    pools.set(key, pool);
  }
  return pool;
}

/** The mirrors this request is sampled for; undefined when none. */
export function chooseMirrors(mirrors: readonly CompiledMirror[] | undefined, random: () => number = Math.random): CompiledMirror[] | undefined {
  if (mirrors === undefined) return undefined;
  let out: CompiledMirror[] | undefined;
  for (const m of mirrors) if (m.fraction >= 1 || (m.fraction > 0 && random() < m.fraction)) (out ??= []).push(m);
  return out;
}

/** Reads one copy's answer and drops it, counting how it ended. */
class Copy implements Dispatcher.DispatchHandler {
  /** Counted already (cut or aborted): the error that follows is ours. */
  settled = false;
  /** This copy's share of `held`. */
  held = 0;
  controller: Dispatcher.DispatchController | undefined;
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {
    this.finish('answered');
  }
  onResponseError(): void {
    this.finish('failed');
  }
  finish(result: 'answered' | 'failed' | 'cut' | 'aborted'): void {
    if (this.settled) return;
    this.settled = true;
    mirrorBudget.inFlight--;
    mirrorBudget.held -= this.held;
    this.held = 0;
    mirrorRequests.labels(result).inc();
  }
}

class CopiesBody implements MirrorBody {
  private readonly copies: { body: PassThrough; copy: Copy }[];
  constructor(copies: { body: PassThrough; copy: Copy }[]) {
    this.copies = copies;
  }
  write(chunk: Uint8Array): void {
    // Our own bytes: an engine may reuse the memory of what it read once it is relayed.
    let data: Buffer | undefined;
    for (const c of this.copies) {
      if (c.body.destroyed || c.copy.settled) continue;
      data ??= Buffer.from(chunk);
      // Full: the mirror is too far behind (or all copies hold too much). Cut it rather than
      // hold the forwarded body.
      if (!c.body.write(data)) {
        this.drop(c, 'cut');
        continue;
      }
      const now = c.body.writableLength + c.body.readableLength;
      mirrorBudget.held += now - c.copy.held;
      c.copy.held = now;
      if (mirrorBudget.held > limits.totalBuffer) this.drop(c, 'cut');
    }
  }
  end(): void {
    for (const c of this.copies) {
      if (c.body.destroyed) continue;
      c.body.end();
      // What undici has read meanwhile is no longer held.
      if (!c.copy.settled) {
        const now = c.body.writableLength + c.body.readableLength;
        mirrorBudget.held += now - c.copy.held;
        c.copy.held = now;
      }
    }
  }
  abort(): void {
    for (const c of this.copies) if (!c.body.writableEnded) this.drop(c, 'aborted');
  }
  private drop(c: { body: PassThrough; copy: Copy }, result: 'cut' | 'aborted'): void {
    c.copy.finish(result);
    c.body.destroy();
    c.copy.controller?.abort(new Error(`mirror copy ${result}`));
  }
}

/**
 * Sends the copies of a request to the chosen mirrors, at once. Without a body that is all
 * (undefined is returned); with one, the returned MirrorBody takes the body as it is forwarded.
 */
export function openMirrors(mirrors: readonly CompiledMirror[], req: MirrorRequest, hasBody: boolean): MirrorBody | undefined {
  const headers: string[] = [];
  for (let i = 0; i < req.headers.length; i += 2) if (!NOT_COPIED.has(req.headers[i].toLowerCase())) headers.push(req.headers[i], req.headers[i + 1]);
  const copies: { body: PassThrough; copy: Copy }[] = [];
  for (const m of mirrors) {
    if (mirrorBudget.inFlight >= limits.maxInFlight) {
      mirrorRequests.labels('busy').inc();
      continue;
    }
    // One endpoint of the backend per copy (the spec), by the backend's round-robin.
    const endpoint = pickEndpoint(m.backend);
    if (endpoint === undefined) {
      mirrorRequests.labels('no_endpoint').inc();
      continue;
    }
    mirrorBudget.inFlight++;
    const copy = new Copy();
    const body = hasBody ? new PassThrough({ highWaterMark: MIRROR_BUFFER }) : null;
    body?.on('error', () => undefined);
    const timeout = req.timeoutMs > 0 ? req.timeoutMs : 60_000;
    try {
      poolFor(m.backend, endpoint.origin).dispatch({ path: req.target, method: req.method, headers, body, headersTimeout: timeout, bodyTimeout: timeout, blocking: false }, copy);
    } catch {
      body?.destroy();
      copy.finish('failed');
      continue;
    }
    if (body !== null) copies.push({ body, copy });
  }
  return copies.length > 0 ? new CopiesBody(copies) : undefined;
}

/**
 * The node:http (and HTTP/2) request body to forward, feeding `copies` too: the forwarded stream
 * keeps the client's backpressure, the copies take each chunk as it passes. A client that goes
 * away mid-body aborts both.
 */
export function teeBody(req: Readable, copies: MirrorBody): Readable {
  const main = new PassThrough();
  req.on('data', (chunk: Buffer) => {
    if (!main.write(chunk)) req.pause();
    copies.write(chunk);
  });
  main.on('drain', () => req.resume());
  req.on('end', () => {
    main.end();
    copies.end();
  });
  req.on('close', () => {
    if (main.writableEnded) return;
    // Neither upstream gets a truncated body as if complete.
    main.destroy(new Error('client closed the connection'));
    copies.abort();
  });
  return main;
}

/** A MirrorBody fed with chunked-framed bytes (the HTTP/1.1 fast path relays bodies framed). */
export function dechunkedMirrorBody(body: MirrorBody): MirrorBody {
  const framer = new ChunkedFramer();
  framer.onData = (buf, start, end) => body.write(buf.subarray(start, end));
  return {
    write(chunk) {
      if (framer.feed(chunk, 0).error !== undefined) body.abort();
    },
    end: () => body.end(),
    abort: () => body.abort(),
  };
}
