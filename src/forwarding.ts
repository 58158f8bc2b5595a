// Request headers sent upstream: the client's, minus hop-by-hop headers (RFC 9110 7.6.1) and
// minus forwarding headers Portico does not believe, plus Portico's own X-Forwarded-* set.

import { lowerName } from './http1/head-parser.ts';


/** Forwarding headers a client could forge; the proxy writes its own. */
export function isForwardingHeader(lowerName: string): boolean {
  const n = lowerName.includes('_') ? lowerName.replaceAll('_', '-') : lowerName;
  return n === 'x-forwarded-for' || n === 'x-forwarded-proto' || n === 'x-forwarded-host' || n === 'x-forwarded-port' || n === 'x-real-ip' || n === 'forwarded';
}

/** isForwardingHeader for a name without `_`, ruled out by its length first. */
function isForwardingName(n: string): boolean {
  switch (n.length) {
    case 9:
      return n === 'x-real-ip' || n === 'forwarded';
    case 15:
      return n === 'x-forwarded-for';
    case 16:
      return n === 'x-forwarded-host' || n === 'x-forwarded-port';
    case 17:
      return n === 'x-forwarded-proto';
    default:
      return false;
  }
}

/** Names listed in the Connection header are hop-by-hop too. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined || value === '' || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    // Host is never hop-by-hop (RFC 9112 3.2): a client listing it must not change what the
    // backend sees.
    if (name !== '' && name !== 'close' && name !== 'keep-alive' && name !== 'host') set.add(name);
  }
  return set.size > 0 ? set : undefined;
}

export function isHopByHop(lowerName: string, listed: Set<string> | undefined): boolean {
  return isHopByHopName(lowerName) || (listed !== undefined && listed.has(lowerName));
}

/**
 * Hop-by-hop headers: they describe one connection and never go further. Connection,
 * Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
 * Transfer-Encoding, Upgrade, HTTP2-Settings. Asked for every field of every message: by length
 * first, most names are ruled out without a comparison (a Set lookup hashes the name).
 */
function isHopByHopName(n: string): boolean {
  switch (n.length) {
    case 2:
      return n === 'te';
    case 7:
      return n === 'upgrade' || n === 'trailer';
    case 10:
      return n === 'connection' || n === 'keep-alive';
    case 14:
      return n === 'http2-settings';
    case 16:
      return n === 'proxy-connection';
    case 17:
      return n === 'transfer-encoding';
    case 18:
      return n === 'proxy-authenticate';
    case 19:
      return n === 'proxy-authorization';
    default:
      return false;
  }
}

/** The forwarding values a request goes upstream with (decided by the real-IP layer). */
export interface ForwardedValues {
  readonly clientIp: string;
  /** X-Forwarded-For as sent upstream. */
  readonly forwardedFor: string;
  readonly proto: string;
  readonly host: string;
  readonly port: string;
  /** Client headers to keep although they are forwarding headers (from trusted hops). */
  readonly keep?: ReadonlySet<string>;
  /** Client headers (lower-case) the real-IP layer does not believe, e.g. a custom forwarded-for header. */
  readonly drop?: readonly string[];
}

/**
 * Builds the upstream header list from Node's rawHeaders (flat name/value array), keeping the
 * client's spelling and order. Host is kept as the client sent it.
 */
export function upstreamHeaders(rawHeaders: readonly string[], connection: string | undefined, fwd: ForwardedValues): string[] {
  const listed = connectionTokens(connection);
  const drop = fwd.drop !== undefined && fwd.drop.length > 0 ? fwd.drop : undefined;
  const out: string[] = [];
  let hasHost = false;
  let cookieAt = -1;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // As nginx (underscores_in_headers off): `Content_Length` is Content-Length to backends that
    // map `_` to `-` (CGI, WSGI, PHP), a framing header this proxy never checked. Not forwarded.
    if (name.includes('_')) continue;
    const first = name.charCodeAt(0) | 0x20;
    // Fast path: a header whose first letter starts no hop-by-hop or forwarding name, and that
    // Connection does not list, goes through without being lower-cased.
    if (listed === undefined && drop === undefined && !MAYBE_SPECIAL[first]) {
      out.push(name, rawHeaders[i + 1]);
      continue;
    }
    // HTTP/2 pseudo-headers: :authority becomes Host below, the rest are in the request line.
    if (first === 0x3a /* : */) continue;
    // The parsers' common names have lower-case constants: no new string for them.
    const lower = lowerName(name);
    if (lower === 'host') hasHost = true;
    if (isHopByHop(lower, listed)) {
      // gRPC needs `TE: trailers` end to end; it is the one TE value that is not about this hop.
      if (lower === 'te' && rawHeaders[i + 1].trim().toLowerCase() === 'trailers') out.push(name, 'trailers');
      continue;
    }
    // Expect is answered here (Node sends the 100 Continue); the body is streamed on anyway.
    if (lower === 'expect') continue;
    // Names with `_` were left out above, so the forwarding names are read as they are.
    if (isForwardingName(lower) && !(fwd.keep !== undefined && fwd.keep.has(lower))) continue;
    if (drop !== undefined && drop.includes(lower)) continue;
    if (lower === 'cookie') {
      // HTTP/2 clients send each cookie as its own field; an HTTP/1.1 upstream wants one line
      // (RFC 9113 8.2.3), and one line is right for any upstream.
      if (cookieAt >= 0) {
        out[cookieAt] += `; ${rawHeaders[i + 1]}`;
        continue;
      }
      cookieAt = out.length + 1;
    }
    out.push(name, rawHeaders[i + 1]);
  }
  if (!hasHost && fwd.host !== '') out.push('host', fwd.host);
  out.push('x-forwarded-for', fwd.forwardedFor, 'x-real-ip', fwd.clientIp);
  if (fwd.keep === undefined || !fwd.keep.has('x-forwarded-proto')) out.push('x-forwarded-proto', fwd.proto);
  // No Host (an HTTP/1.0 request may omit it): no X-Forwarded-Host either, rather than an empty one.
  if ((fwd.keep === undefined || !fwd.keep.has('x-forwarded-host')) && fwd.host !== '') out.push('x-forwarded-host', fwd.host);
  if (fwd.keep === undefined || !fwd.keep.has('x-forwarded-port')) out.push('x-forwarded-port', fwd.port);
  return out;
}

// First letters (lower-cased, and ':') of the names upstreamHeaders must look at: hop-by-hop
// (connection, keep-alive, proxy-*, te, trailer, transfer-encoding, upgrade), forwarding
// (x-*, forwarded), host, expect, and HTTP/2 pseudo-headers.
const MAYBE_SPECIAL: boolean[] = (() => {
  const t: boolean[] = new Array(128).fill(false);
  for (const c of 'ckptuxfhe:') t[c.charCodeAt(0)] = true;
  return t;
})();

/** Response headers from upstream, minus hop-by-hop ones (Node sets its own framing). */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const conn = headers.connection;
  const listed = connectionTokens(Array.isArray(conn) ? conn.join(',') : conn);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || isHopByHop(name, listed)) continue;
    out[name] = v;
  }
  out.server ??= SERVER_HEADER;
  return out;
}

/**
 * The Server field of a response that has none (the upstream's is kept): clients and the
 * Ingress conformance suite expect one, as nginx and Envoy send theirs. No version: it would
 * only help someone looking for a vulnerable one.
 */
export const SERVER_HEADER = 'portico';

/** `::ffff:1.2.3.4` -> `1.2.3.4`: one spelling per client in logs, headers and allowlists. */
export function unmapIpv4(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
