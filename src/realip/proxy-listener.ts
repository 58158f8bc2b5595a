// Socket glue: runs on every accepted raw socket before it reaches the HTTP or TLS server, reads
// the PROXY header when one is expected, and answers PROXY mismatches in either direction with
// an explicit error instead of the "broken header" a parser would report.
//
// Fits the `accept` hook of createTrafficListener (src/listeners.ts): (socket, next) => void.
// The header is stored on the socket and read back per request with getProxyInfo / realIpForRequest.

import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import client from 'prom-client';
import type { CidrSet } from './cidr.ts';
import { normalizeIp } from './cidr.ts';
import type { ProxyProtocolMode, RealIpConfig, RealIpResult } from './client-ip.ts';
import { resolveRealIp } from './client-ip.ts';
import type { ConnectionStart, ProxyHeader } from './proxy-protocol.ts';
import { V2_MAX_LENGTH, V2_SIGNATURE, classifyConnectionStart, readProxyHeader } from './proxy-protocol.ts';

export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface ProxyProtocolAcceptOptions {
  /** use-proxy-protocol. */
  readonly mode: ProxyProtocolMode;
  /** proxy-protocol-trusted-cidrs: peers allowed to send a header; undefined = every peer. */
  readonly trustedCidrs?: CidrSet | undefined;
  readonly log: WarnLogger;
  /** Listener name for logs. */
  readonly listener?: string;
  /** How long to wait for the first bytes / the whole header (default 5 s; see proxyHeaderTimeoutMs). */
  readonly headerTimeoutMs?: number;
  /** Largest v2 header accepted, fixed part included (default: the protocol maximum, 65551). */
  readonly maxHeaderBytes?: number;
  /** Mismatch and rejection logs: at most one per peer and kind per this interval (default 60 s). */
  readonly logIntervalMs?: number;
}

export type AcceptHook = ((socket: net.Socket, next: (socket: net.Socket) => void) => void) & {
  /**
   * With mode 'off' only: the hook's decision on a connection's first bytes, for a server that
   * reads them itself (the fast HTTP/1.1 engine) and so needs no accept step: 'wait' (they may
   * still become a PROXY signature), 'refused' (a PROXY header: answered 400, counted, logged,
   * and the socket is this function's now), 'no'.
   */
  readonly unexpectedProxy?: FirstBytesCheck;
};

export type FirstBytesCheck = (socket: net.Socket, first: Buffer) => 'wait' | 'refused' | 'no';

/** How long a connection has to send its PROXY header (the README's "5 seconds"). */
export const PROXY_HEADER_TIMEOUT_MS = 5000;

/**
 * The PROXY header timeout for a listener: 5 s, or the HTTP head timeout (--headers-timeout)
 * when that is shorter, so the header never gets longer than the request head would.
 */
export function proxyHeaderTimeoutMs(headersTimeoutMs: number): number {
  return Number.isFinite(headersTimeoutMs) && headersTimeoutMs > 0 ? Math.min(PROXY_HEADER_TIMEOUT_MS, headersTimeoutMs) : PROXY_HEADER_TIMEOUT_MS;
}

export const MISSING_HEADER_BODY = 'PROXY protocol header expected; check that the load balancer sends it';
export const UNEXPECTED_HEADER_BODY = 'unexpected PROXY protocol header; this listener does not accept PROXY protocol (set use-proxy-protocol)';

export type MismatchKind = 'missing_header_http' | 'missing_header_tls' | 'missing_header_other' | 'unexpected_header';
export type MalformedReason = 'invalid' | 'truncated';

function counter<T extends string>(name: string, help: string, labelNames: readonly T[]): client.Counter<T> {
  // Re-importing this module (tests, hot reload) must not register the metric twice.
  const existing = client.register.getSingleMetric(name);
  if (existing !== undefined) return existing as client.Counter<T>;
  return new client.Counter<T>({ name, help, labelNames });
}

export const proxyMismatchTotal = counter(
  'portico_proxy_protocol_mismatch_total',
  'Connections whose PROXY protocol use did not match the listener: missing_header_* (PROXY expected, got HTTP, TLS or other bytes) or unexpected_header (PROXY header on a listener without PROXY protocol)',
  ['kind'] as const,
);
export const proxyUntrustedTotal = counter(
  'portico_proxy_protocol_untrusted_total',
  'PROXY headers from peers outside proxy-protocol-trusted-cidrs; the connection was closed',
  [] as const,
);
export const proxyMalformedTotal = counter(
  'portico_proxy_protocol_malformed_total',
  'PROXY headers that could not be parsed (invalid) or did not arrive whole (truncated: connection closed or timed out mid-header); the connection was closed',
  ['reason'] as const,
);
export const proxyHeadersTotal = counter('portico_proxy_protocol_headers_total', 'PROXY headers accepted, by version and command', ['version', 'command'] as const);

/** Every label combination the counters can take; each is exported (as 0) from startup. */
export const MISMATCH_KINDS: readonly MismatchKind[] = ['missing_header_http', 'missing_header_tls', 'missing_header_other', 'unexpected_header'];
export const MALFORMED_REASONS: readonly MalformedReason[] = ['invalid', 'truncated'];
/** v1 has no LOCAL command (its UNKNOWN is counted as PROXY). */
export const HEADER_LABELS: readonly { readonly version: string; readonly command: string }[] = [
  { version: '1', command: 'PROXY' },
  { version: '2', command: 'PROXY' },
  { version: '2', command: 'LOCAL' },
];

// `labels()` alone does not create a sample: prom-client only exports a series once it has been
// incremented, so each child is incremented by 0 here.
function zeroed<T extends string>(c: client.Counter<T>, labels: client.LabelValues<T>): client.Counter.Internal {
  const child = c.labels(labels);
  child.inc(0);
  return child;
}
const mismatchChildren = Object.fromEntries(MISMATCH_KINDS.map((kind) => [kind, zeroed(proxyMismatchTotal, { kind })])) as Record<MismatchKind, client.Counter.Internal>;
const malformedChildren = Object.fromEntries(MALFORMED_REASONS.map((reason) => [reason, zeroed(proxyMalformedTotal, { reason })])) as Record<MalformedReason, client.Counter.Internal>;
for (const l of HEADER_LABELS) zeroed(proxyHeadersTotal, l);
proxyUntrustedTotal.inc(0);

const kProxyHeader = Symbol('portico.proxyHeader');

type Tagged = { [kProxyHeader]?: ProxyHeader; _parent?: unknown };

/**
 * The PROXY header a connection arrived with. Accepts the raw socket, a TLSSocket wrapping it,
 * or the socket proxies of HTTP/2 sessions and requests (req.socket).
 */
export function getProxyInfo(socket: object | null | undefined): ProxyHeader | undefined {
  let s = socket as Tagged | null | undefined;
  // TLSSocket keeps the socket it wraps in _parent; a symbol read passes through HTTP/2's proxies.
  for (let depth = 0; depth < 3 && s !== null && s !== undefined && typeof s === 'object'; depth++) {
    const h = s[kProxyHeader];
    if (h !== undefined) return h;
    s = s._parent as Tagged | null | undefined;
  }
  return undefined;
}

/** Records a header on a socket (for tests and for callers that read headers themselves). */
export function setProxyInfo(socket: object, header: ProxyHeader): void {
  (socket as Tagged)[kProxyHeader] = header;
}

/** resolveRealIp with the connection facts taken from the request's socket. */
export function realIpForRequest(req: IncomingMessage, config: RealIpConfig): RealIpResult {
  const s = req.socket as (net.Socket & { encrypted?: boolean }) | undefined;
  return resolveRealIp(s?.remoteAddress, getProxyInfo(s), s?.encrypted === true, s?.localPort ?? 0, req.rawHeaders, config);
}

/** True while `b` is a proper prefix of `PROXY ` or the v2 signature. */
function couldBecomeProxy(b: Buffer): boolean {
  const sig = b[0] === 0x0d ? V2_SIGNATURE : b[0] === 0x50 ? PROXY_V1 : undefined;
  if (sig === undefined || b.length >= sig.length) return false;
  return b.compare(sig, 0, b.length, 0, b.length) === 0;
}
const PROXY_V1 = Buffer.from('PROXY ', 'latin1');

function httpError(body: string): string {
  return `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Closes after an optional reply, reading and discarding what the peer still sends so the
 * reply is not lost to a TCP reset. */
function closeWith(socket: net.Socket, reply?: string): void {
  socket.on('error', noop);
  if (reply === undefined || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(reply);
  socket.on('data', noop);
  socket.resume();
  const t = setTimeout(() => socket.destroy(), 2000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}
function noop(): void {}

/**
 * At most one log line per key per interval, so a misconfigured balancer cannot flood the log.
 * The key is a peer and the kind of event (peerWarningKey), so each kind from each peer has its
 * own budget. Memory is bounded: stale keys are swept, and everything is forgotten past 10,000.
 */
export class PeerLogLimiter {
  private readonly intervalMs: number;
  private readonly last = new Map<string, number>();

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  allow(key: string, now = Date.now()): boolean {
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    if (this.last.size >= 10_000) {
      for (const [k, t] of this.last) if (now - t >= this.intervalMs) this.last.delete(k);
      if (this.last.size >= 10_000) this.last.clear();
    }
    this.last.set(key, now);
    return true;
  }
}

/** The rate-limit key of a peer warning: the peer address and the kind of event. */
export function peerWarningKey(peer: string, kind: unknown): string {
  return `${peer} ${typeof kind === 'string' ? kind : ''}`;
}

/**
 * Builds the per-connection hook. With mode 'off' it only looks at the first chunk (to catch a
 * PROXY header sent to a listener that does not expect one) and hands the socket on at once.
 */
export function createProxyProtocolAccept(o: ProxyProtocolAcceptOptions): AcceptHook {
  const mode = o.mode;
  const trusted = o.trustedCidrs;
  const timeoutMs = o.headerTimeoutMs ?? PROXY_HEADER_TIMEOUT_MS;
  const maxBytes = Math.max(16, Math.min(o.maxHeaderBytes ?? V2_MAX_LENGTH, V2_MAX_LENGTH));
  const logEvery = o.logIntervalMs ?? 60_000;
  const listener = o.listener;
  const limiter = new PeerLogLimiter(logEvery);

  const warn = (peer: string, obj: Record<string, unknown>, msg: string) => {
    if (!limiter.allow(peerWarningKey(peer, obj.kind))) return;
    try {
      o.log.warn({ listener, peer, ...obj }, msg);
    } catch {
      // a failing logger must not take the connection path down
    }
  };

  const mismatch = (socket: net.Socket, peer: string, kind: MismatchKind) => {
    mismatchChildren[kind].inc();
    if (kind === 'unexpected_header') {
      warn(peer, { kind }, 'PROXY protocol header on a listener without use-proxy-protocol; answered 400 and closed');
      closeWith(socket, httpError(UNEXPECTED_HEADER_BODY));
    } else if (kind === 'missing_header_http') {
      warn(peer, { kind }, 'expected a PROXY protocol header, got a plain HTTP request; answered 400 and closed (is PROXY protocol enabled on the load balancer?)');
      closeWith(socket, httpError(MISSING_HEADER_BODY));
    } else {
      const what = kind === 'missing_header_tls' ? 'a TLS ClientHello' : 'bytes that are neither PROXY, HTTP nor TLS';
      warn(peer, { kind }, `expected a PROXY protocol header, got ${what}; closed (is PROXY protocol enabled on the load balancer?)`);
      closeWith(socket);
    }
  };

  const peerOf = (socket: net.Socket): string => {
    const rawPeer = socket.remoteAddress ?? '';
    return normalizeIp(rawPeer) ?? rawPeer;
  };

  const unexpectedProxy: FirstBytesCheck = (socket, first) => {
    if (couldBecomeProxy(first)) return 'wait';
    const kind = classifyConnectionStart(first);
    if (kind !== 'proxy-v1' && kind !== 'proxy-v2') return 'no';
    mismatch(socket, peerOf(socket), 'unexpected_header');
    return 'refused';
  };

  const hook = (socket: net.Socket, next: (socket: net.Socket) => void): void => {
    const rawPeer = socket.remoteAddress ?? '';
    const peer = normalizeIp(rawPeer) ?? rawPeer;
    const peerMayProxy = trusted === undefined || trusted.contains(peer);
    let buf: Buffer | undefined;
    let done = false;

    const finish = () => {
      done = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', onError);
    };
    // The socket is handed on as a fresh one looks: not paused, bytes read so far put back.
    // Reading in 'readable' mode (not 'data') is what makes that possible: once the 'readable'
    // listener is gone, Node returns the stream to its initial state, so the next consumer can
    // start it with a 'data' listener, resume(), or a TLS/HTTP server taking it over.
    const handOn = (rest: Buffer | undefined) => {
      finish();
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      next(socket);
    };
    const reject = (reply?: string) => {
      finish();
      closeWith(socket, reply);
    };

    const decideOff = (b: Buffer) => {
      if (couldBecomeProxy(b)) return; // a split signature: wait for the next bytes
      const kind = classifyConnectionStart(b);
      if (kind === 'proxy-v1' || kind === 'proxy-v2') {
        finish();
        mismatch(socket, peer, 'unexpected_header');
        return;
      }
      handOn(b);
    };

    const decideProxy = (b: Buffer) => {
      const kind: ConnectionStart = classifyConnectionStart(b);
      if (kind === 'need-more') return;
      if (kind === 'proxy-v1' || kind === 'proxy-v2') {
        if (!peerMayProxy) {
          proxyUntrustedTotal.inc();
          warn(peer, { kind: 'untrusted_peer' }, 'PROXY protocol header from a peer outside proxy-protocol-trusted-cidrs; closed');
          reject();
          return;
        }
        const r = readProxyHeader(b, maxBytes);
        if (r.state === 'need-more') return;
        if (r.state === 'invalid') {
          malformedChildren.invalid.inc();
          warn(peer, { kind: 'malformed', reason: r.reason }, 'malformed PROXY protocol header; closed');
          reject();
          return;
        }
        setProxyInfo(socket, r.header);
        proxyHeadersTotal.inc({ version: String(r.header.version), command: r.header.command });
        handOn(b.subarray(r.consumed));
        return;
      }
      if (mode === 'optional') {
        handOn(b);
        return;
      }
      finish();
      mismatch(socket, peer, kind === 'http' ? 'missing_header_http' : kind === 'tls' ? 'missing_header_tls' : 'missing_header_other');
    };

    const onReadable = () => {
      let chunk: Buffer | null;
      while (!done && (chunk = socket.read() as Buffer | null) !== null) {
        buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
        if (mode === 'off') decideOff(buf);
        else decideProxy(buf);
      }
    };
    // Bytes that are, or may still become, a PROXY header.
    const proxyish = (b: Buffer | undefined): boolean => {
      if (b === undefined || b.length === 0) return false;
      const k = classifyConnectionStart(b);
      return k === 'proxy-v1' || k === 'proxy-v2' || couldBecomeProxy(b);
    };
    const onEnd = () => {
      if (done) return;
      // The peer closed first: with nothing sent this is a TCP health check, not an error.
      if (mode !== 'off' && proxyish(buf)) malformedChildren.truncated.inc();
      reject();
    };
    const onError = () => {
      if (!done) reject();
    };
    const onTimeout = () => {
      if (done) return;
      if (mode !== 'off' && proxyish(buf)) {
        malformedChildren.truncated.inc();
        warn(peer, { kind: 'truncated' }, 'PROXY protocol header incomplete after the timeout; closed');
        reject();
        return;
      }
      // Idle or slow clients: the HTTP server's own timeouts judge them, unless a header is required.
      if (mode === 'on') reject();
      else handOn(buf);
    };

    const timer = setTimeout(onTimeout, timeoutMs);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('error', onError);
  };
  return mode === 'off' ? Object.assign(hook, { unexpectedProxy }) : hook;
}
