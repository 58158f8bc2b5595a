// Choosing the client IP and the forwarding headers sent upstream, once per request.
//
// Contract:
//   1. Start from the socket peer.
//   2. A PROXY header (command PROXY, TCP4/TCP6) replaces it with its source address.
//   3. Only with use-forwarded-headers on, and only if that address is in proxy-real-ip-cidr,
//      walk the configured header's chain right to left, skipping trusted addresses; the first
//      untrusted one is the client. If every hop is trusted, the leftmost is.
//   4. Mapped IPv4 (::ffff:a.b.c.d) is folded to IPv4.
//   5. Entries are read leniently (ports, brackets, quotes are stripped); an entry that is not
//      an address (`unknown`, an obfuscated `_id`, a Forwarded element without `for`, junk) is
//      ignored, as are empty list items. Only trusted hops' entries are ever read past, so junk
//      a client wrote is never reached: the walk stops at the first untrusted address.
// Untrusted peers' forwarding headers are dropped; Portico writes its own.

import type { CidrSet } from './cidr.ts';
import { normalizeIp, normalizeNode } from './cidr.ts';
import type { ProxyHeader } from './proxy-protocol.ts';
import { proxySourceAddress } from './proxy-protocol.ts';

export type ProxyProtocolMode = 'off' | 'on' | 'optional';

/** The real-IP settings (see config.ts for their names, forms and defaults). */
export interface RealIpConfig {
  /** use-proxy-protocol: off, on (required) or optional (with or without a header). */
  readonly useProxyProtocol: ProxyProtocolMode;
  /** proxy-protocol-trusted-cidrs: peers whose PROXY header is believed; undefined = all peers. */
  readonly proxyProtocolTrustedCidrs: CidrSet | undefined;
  /** use-forwarded-headers: believe trusted hops' forwarded-for chain, X-Forwarded-Proto/Host/Port (and Forwarded proto/host). */
  readonly useForwardedHeaders: boolean;
  /** proxy-real-ip-cidr: hops whose forwarded-for header is believed (checked after PROXY). */
  readonly proxyRealIpCidr: CidrSet;
  /** forwarded-for-header: X-Forwarded-For, Forwarded (RFC 7239), or another list header. */
  readonly forwardedForHeader: string;
  /** compute-full-forwarded-for: send the trusted chain plus the peer, not the client alone. */
  readonly computeFullForwardedFor: boolean;
  /**
   * whitelist-source-range: the clients allowed on routes without their own allowlist
   * (portico.dev/whitelist-source-range); undefined = every client.
   */
  readonly whitelistSourceRange?: CidrSet | undefined;
}

/** The parts of a PROXY header this module reads. */
export type ProxyInfo = Pick<ProxyHeader, 'command' | 'protocol' | 'sourceAddress' | 'destinationPort' | 'sslClient'>;

/**
 * What a request goes upstream with. Structurally a `ForwardedValues` (src/forwarding.ts):
 * clientIp, forwardedFor, proto, host, port, keep.
 */
export interface RealIpResult {
  readonly clientIp: string;
  /** X-Forwarded-For as sent upstream. */
  readonly forwardedFor: string;
  readonly proto: string;
  readonly host: string;
  readonly port: string;
  /** The address the request arrived from: the socket peer, or the PROXY source. */
  readonly peerIp: string;
  /** Whether peerIp is in proxy-real-ip-cidr and use-forwarded-headers is on (its forwarding headers were read). */
  readonly trusted: boolean;
  /** Incoming forwarding headers (lowercase) that go upstream unchanged: a trusted hop's Forwarded. */
  readonly keep?: ReadonlySet<string>;
  /**
   * Incoming header names (lowercase, as found) that must not go upstream: every forwarding
   * header Portico replaces or does not believe, and underscore spellings (X_Forwarded_For)
   * always, since some backends read them as the dashed name.
   */
  readonly drop: readonly string[];
  /**
   * The configured whitelist-source-range, carried with the request's forwarding values to where
   * routes are matched; checked there by allowlistDenial (allowlist.ts) on clientIp.
   */
  readonly defaultAllowlist?: CidrSet | undefined;
}

// Header kinds, by lowercase dashed name.
const K_NONE = 0;
const K_XFF = 1;
const K_PROTO = 2;
const K_HOST = 3;
const K_PORT = 4;
const K_REAL_IP = 5;
const K_FORWARDED = 6;
const K_CUSTOM = 7;

function standardKind(dashed: string): number {
  switch (dashed) {
    case 'x-forwarded-for':
      return K_XFF;
    case 'x-forwarded-proto':
      return K_PROTO;
    case 'x-forwarded-host':
      return K_HOST;
    case 'x-forwarded-port':
      return K_PORT;
    case 'x-real-ip':
      return K_REAL_IP;
    case 'forwarded':
      return K_FORWARDED;
    default:
      return K_NONE;
  }
}

interface Compiled {
  readonly trust: CidrSet;
  readonly anyTrust: boolean;
  /** Kind of the forwarded-for header: K_XFF, K_FORWARDED, K_REAL_IP or K_CUSTOM. */
  readonly sourceKind: number;
  /** Lowercase name of a custom forwarded-for header ('' when it is a standard one). */
  readonly custom: string;
  /** First char codes (lower, upper) a candidate header name can start with. */
  readonly customFirst: number;
  readonly keepTrusted: ReadonlySet<string>;
  readonly useForwarded: boolean;
  readonly full: boolean;
}

// Requests share one config object; compiling once per config keeps the per-request path flat.
let lastConfig: RealIpConfig | undefined;
let lastCompiled: Compiled | undefined;

function compile(config: RealIpConfig): Compiled {
  if (config === lastConfig && lastCompiled !== undefined) return lastCompiled;
  const lower = String(config.forwardedForHeader || 'X-Forwarded-For').trim().toLowerCase();
  const std = standardKind(lower);
  const sourceKind = std === K_NONE ? K_CUSTOM : std === K_FORWARDED ? K_FORWARDED : std === K_REAL_IP ? K_REAL_IP : K_XFF;
  const custom = sourceKind === K_CUSTOM ? lower : '';
  const keep = new Set(['forwarded']);
  if (custom !== '') keep.add(custom);
  const c: Compiled = {
    trust: config.proxyRealIpCidr,
    anyTrust: config.proxyRealIpCidr !== undefined && !config.proxyRealIpCidr.isEmpty,
    sourceKind,
    custom,
    customFirst: custom === '' ? -1 : custom.charCodeAt(0),
    keepTrusted: keep,
    useForwarded: config.useForwardedHeaders === true,
    full: config.computeFullForwardedFor === true,
  };
  lastConfig = config;
  lastCompiled = c;
  return c;
}

const NO_DROP: readonly string[] = Object.freeze([]);

// The last socket address and its normal form: a keep-alive connection asks with the same string
// on every request, and one client's connections with equal ones (parsing it is not free).
let lastRaw = '';
let lastPeer = '';

function peerIp(raw: string): string {
  if (raw !== lastRaw || lastPeer === '') {
    lastPeer = normalizeIp(raw) ?? raw;
    lastRaw = raw;
  }
  return lastPeer;
}
const PORT_STRINGS = new Map<number, string>();

function portString(p: number): string {
  let s = PORT_STRINGS.get(p);
  if (s === undefined) {
    s = Number.isInteger(p) && p >= 0 && p <= 65535 ? String(p) : '';
    if (PORT_STRINGS.size < 1024) PORT_STRINGS.set(p, s);
  }
  return s;
}

/**
 * Decides the client IP and the forwarding values for one request.
 *
 * @param peerAddress  socket.remoteAddress (any spelling; mapped IPv4 is folded)
 * @param proxy        the connection's PROXY header, if any
 * @param tlsTerminated whether TLS was terminated by this listener
 * @param listenerPort the local port the connection arrived on
 * @param rawHeaders   req.rawHeaders: [name, value, name, value, ...]
 */
export function resolveRealIp(
  peerAddress: string | undefined,
  proxy: ProxyInfo | undefined,
  tlsTerminated: boolean,
  listenerPort: number,
  rawHeaders: readonly string[],
  config: RealIpConfig,
): RealIpResult {
  const c = compile(config);
  const proxySource = proxySourceAddress(proxy);
  const peer = proxySource ?? peerIp(peerAddress ?? '');
  let proto = tlsTerminated || proxy?.sslClient === true ? 'https' : 'http';
  // Behind a PROXY-speaking balancer, the port the client used is the balancer's.
  let port = portString(proxySource !== undefined && proxy?.destinationPort !== undefined ? proxy.destinationPort : listenerPort);
  const trusted = c.useForwarded && c.anyTrust && c.trust.contains(peer);

  let host = '';
  let hostSeen = false;
  let drop: string[] | undefined;
  // Only collected for trusted peers: the values of headers we may believe.
  let sources: string[] | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let xfPort: string | undefined;

  const n = rawHeaders.length - 1;
  for (let i = 0; i < n; i += 2) {
    const name = rawHeaders[i];
    const len = name.length;
    const c0 = name.charCodeAt(0) | 0x20;
    if (!hostSeen) {
      if (len === 4 && c0 === 104 /* h */ && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) {
        host = rawHeaders[i + 1];
        hostSeen = true;
        continue;
      }
      if (len === 10 && name === ':authority') {
        host = rawHeaders[i + 1];
        hostSeen = true;
        continue;
      }
    }
    // Cheap pre-filter: every forwarding header starts with x or f, or is the custom one.
    if (c0 !== 120 /* x */ && c0 !== 102 /* f */ && c0 !== (c.customFirst | 0x20)) continue;
    if (len < 9 || len > 17) {
      if (c.custom === '' || len !== c.custom.length) continue;
    }
    const lower = name.toLowerCase();
    const underscored = lower.indexOf('_') >= 0;
    const dashed = underscored ? lower.replaceAll('_', '-') : lower;
    let kind = standardKind(dashed);
    if (kind === K_NONE && c.custom !== '' && dashed === c.custom) kind = K_CUSTOM;
    if (kind === K_NONE) continue;
    if (underscored) {
      (drop ??= []).push(lower);
      continue;
    }
    if (!trusted) {
      (drop ??= []).push(lower);
      continue;
    }
    const value = rawHeaders[i + 1];
    if (kind === c.sourceKind) (sources ??= []).push(value);
    if (kind === K_PROTO) xfProto ??= value;
    else if (kind === K_HOST) xfHost ??= value;
    else if (kind === K_PORT) xfPort ??= value;
    // A trusted hop's Forwarded and custom client header pass through; the rest is rewritten.
    if (!c.keepTrusted.has(lower)) (drop ??= []).push(lower);
  }

  if (!trusted) {
    return { clientIp: peer, forwardedFor: peer, proto, host, port, peerIp: peer, trusted: false, drop: drop ?? NO_DROP, defaultAllowlist: config.whitelistSourceRange };
  }

  let client = peer;
  let chain = '';
  let elementProto: string | undefined;
  let elementHost: string | undefined;
  if (sources !== undefined) {
    if (c.sourceKind === K_FORWARDED) {
      const elements: ForwardedElement[] = [];
      for (const v of sources) parseForwarded(v, elements);
      const walked = walkForwarded(elements, c.trust, peer);
      client = walked.client;
      elementProto = walked.element?.proto;
      elementHost = walked.element?.host;
      // X-Forwarded-For carries bare addresses: a node's brackets and port are dropped, and an
      // obfuscated or unknown node (RFC 7239 6.3, 6.2) is written `unknown`.
      if (c.full) chain = elements.map((e) => (e.for === undefined ? undefined : normalizeNode(e.for)) ?? 'unknown').join(', ');
    } else {
      client = walkList(sources, c.trust, peer);
      if (c.full) chain = sources.map((s) => s.trim()).filter((s) => s !== '').join(', ');
    }
  }

  const p = pickProto(elementProto) ?? pickProto(firstItem(xfProto));
  if (p !== undefined) proto = p;
  const h = pickHost(elementHost) ?? pickHost(firstItem(xfHost));
  if (h !== undefined) host = h;
  const pt = pickPort(firstItem(xfPort));
  if (pt !== undefined) port = pt;

  const forwardedFor = c.full ? (chain === '' ? peer : `${chain}, ${peer}`) : client;
  return { clientIp: client, forwardedFor, proto, host, port, peerIp: peer, trusted: true, keep: c.keepTrusted, drop: drop ?? NO_DROP, defaultAllowlist: config.whitelistSourceRange };
}

/** Right-to-left walk over comma-separated list headers (X-Forwarded-For and the like). */
function walkList(values: readonly string[], trust: CidrSet, peer: string): string {
  let client = peer;
  for (let v = values.length - 1; v >= 0; v--) {
    const items = values[v].split(',');
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i].trim();
      if (item === '') continue;
      const ip = normalizeNode(item);
      // `unknown`, an obfuscated name, junk: the trusted hop that wrote it could not name its
      // client, so nothing to its left can be believed (as nginx's realip module stops there).
      if (ip === undefined) return client;
      client = ip;
      if (!trust.contains(ip)) return client;
    }
  }
  return client;
}

function walkForwarded(elements: readonly ForwardedElement[], trust: CidrSet, peer: string): { client: string; element: ForwardedElement | undefined } {
  let client = peer;
  let element: ForwardedElement | undefined;
  for (let i = elements.length - 1; i >= 0; i--) {
    const e = elements[i];
    // As in walkList: an element that names no address ends the walk.
    if (e.bad || e.for === undefined) break;
    const ip = normalizeNode(e.for);
    if (ip === undefined) break;
    client = ip;
    element = e;
    if (!trust.contains(ip)) break;
  }
  return { client, element };
}

function firstItem(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const comma = v.indexOf(',');
  return (comma < 0 ? v : v.slice(0, comma)).trim();
}

function pickProto(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const l = v.toLowerCase();
  return l === 'https' || l === 'http' ? l : undefined;
}

function pickPort(v: string | undefined): string | undefined {
  if (v === undefined || v.length === 0 || v.length > 5) return undefined;
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) < 48 || v.charCodeAt(i) > 57) return undefined;
  const p = Number(v);
  return p >= 1 && p <= 65535 ? String(p) : undefined;
}

/** A host[:port] as a Host header may carry it: letters, digits, `.-_:[]`, at most 261 chars. */
function pickHost(v: string | undefined): string | undefined {
  if (v === undefined || v.length === 0 || v.length > 261) return undefined;
  for (let i = 0; i < v.length; i++) {
    const ch = v.charCodeAt(i);
    const ok = (ch >= 97 && ch <= 122) || (ch >= 65 && ch <= 90) || (ch >= 48 && ch <= 57) || ch === 46 || ch === 45 || ch === 95 || ch === 58 || ch === 91 || ch === 93;
    if (!ok) return undefined;
  }
  return v;
}

/** One RFC 7239 forwarded-element. `bad`: it did not parse, so a walk ignores it. */
export interface ForwardedElement {
  for?: string;
  proto?: string;
  host?: string;
  by?: string;
  bad: boolean;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** RFC 7230 tchar. */
function isTchar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 33 || c === 35 || c === 36 || c === 37 || c === 38 || c === 39 || c === 42 || c === 43 || c === 45 || c === 46 || c === 94 || c === 95 || c === 96 || c === 124 || c === 126
  );
}

/**
 * Parses one Forwarded header value (RFC 7239 section 4) and appends its elements to `out`.
 * Quoted-strings may hold commas and semicolons. A malformed element is kept, marked bad, and
 * parsing resumes at the first comma after the element's start, whatever quotes say: a stray or
 * unclosed quote (`for=garbage"x, for=10.1.1.1`) ends at that comma instead of swallowing the
 * elements after it, which a later (trusted) hop appended. Empty elements are skipped.
 */
export function parseForwarded(value: string, out: ForwardedElement[]): ForwardedElement[] {
  const s = typeof value === 'string' ? value : '';
  const n = s.length;
  let i = 0;
  let el: ForwardedElement = { bad: false };
  let pairs = 0;
  // Where the current element began: a malformed element ends at the first comma after it.
  let start = 0;
  const finish = () => {
    if (pairs > 0 || el.bad) out.push(el);
    el = { bad: false };
    pairs = 0;
  };
  // Marks the element bad and moves to the first comma after its start (possibly back, into a
  // quoted-string that turned out not to be one). Each element starts after the previous one's
  // comma, so parsing always moves forward.
  const fail = () => {
    el.bad = true;
    const comma = s.indexOf(',', start);
    i = comma < 0 ? n : comma;
  };
  while (i < n) {
    while (i < n && isOws(s.charCodeAt(i))) i++;
    if (i >= n) break;
    let c = s.charCodeAt(i);
    if (c === 44 /* , */) {
      finish();
      i++;
      start = i;
      continue;
    }
    if (c === 59 /* ; */) {
      i++;
      continue;
    }
    const nameStart = i;
    while (i < n && isTchar(s.charCodeAt(i))) i++;
    if (i === nameStart) {
      fail();
      continue;
    }
    const name = s.slice(nameStart, i).toLowerCase();
    while (i < n && isOws(s.charCodeAt(i))) i++;
    if (i >= n || s.charCodeAt(i) !== 61 /* = */) {
      fail();
      continue;
    }
    i++;
    while (i < n && isOws(s.charCodeAt(i))) i++;
    let v: string;
    if (i < n && s.charCodeAt(i) === 34 /* " */) {
      i++;
      let text = '';
      let closed = false;
      let from = i;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 92 /* \ */ && i + 1 < n) {
          text += s.slice(from, i) + s[i + 1];
          i += 2;
          from = i;
          continue;
        }
        if (c === 34) {
          closed = true;
          break;
        }
        i++;
      }
      if (!closed) {
        fail();
        continue;
      }
      v = text + s.slice(from, i);
      i++;
    } else {
      // Lenient: also takes the `:[]` that a strict token forbids (unquoted IPv6 from sloppy senders).
      const vs = i;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 44 || c === 59 || c === 34 || isOws(c)) break;
        i++;
      }
      v = s.slice(vs, i);
      if (v === '') {
        fail();
        continue;
      }
    }
    while (i < n && isOws(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) !== 44 && s.charCodeAt(i) !== 59) {
      fail();
      continue;
    }
    // A parameter must not repeat within one element (RFC 7239 section 4).
    if (name === 'for' || name === 'proto' || name === 'host' || name === 'by') {
      if (el[name] !== undefined) el.bad = true;
      else el[name] = v;
    }
    pairs++;
  }
  finish();
  return out;
}

/** The forwarding headers to send upstream, as a flat [name, value, ...] list. */
export function forwardingHeaders(r: RealIpResult): string[] {
  const out = ['x-forwarded-for', r.forwardedFor, 'x-real-ip', r.clientIp, 'x-forwarded-proto', r.proto];
  if (r.host !== '') out.push('x-forwarded-host', r.host);
  if (r.port !== '') out.push('x-forwarded-port', r.port);
  return out;
}

/** Whether an incoming header (lowercase name) must be left out of the upstream request. */
export function isDroppedHeader(r: RealIpResult, lowerName: string): boolean {
  return r.drop.length > 0 && r.drop.includes(lowerName);
}
