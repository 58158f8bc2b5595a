// The HTTP/1.1 request-head parser of the fast path: the security boundary between clients and
// backends. Strict RFC 9112 syntax, no leniency: whatever a proxy and a backend could frame
// differently (both CL and TE, obs-fold, bare CR/LF, duplicate Content-Length, ...) is refused.
//
// Why JS and not llhttp: Node 24 no longer exposes the HTTPParser binding to applications
// (process.binding('http_parser') throws; internalBinding needs --expose-internals), so relying
// on it would tie the data plane to an internal testing API. A byte-level JS parser costs about
// the same (issue 9: ~24 vs ~22 µs/req end to end) and lets Portico be stricter where it wants.

import { METHODS } from 'node:http';

export interface RequestHead {
  readonly method: string;
  /** The request target: origin-form (an absolute-form target reduced to its path and query), or `*`. */
  readonly target: string;
  /** The request target exactly as sent. */
  readonly rawTarget: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly versionMinor: 0 | 1;
  /** Names and values as sent, alternating: [name0, value0, name1, value1, ...]. */
  readonly rawHeaders: string[];
  /** Host header value, or the authority of an absolute-form target; undefined for HTTP/1.0 without Host. */
  readonly host: string | undefined;
  /** Content-Length, or -1 when the request has none. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** Whether the connection may carry another request after this one (RFC 9112 9.3). */
  readonly keepAlive: boolean;
  readonly expectContinue: boolean;
  /** The Expect header's value, if any (an expectation other than 100-continue is answered 417). */
  readonly expect: string | undefined;
  /** Lower-case tokens of the Connection header (hop-by-hop names to remove). */
  readonly connectionTokens: string[];
  readonly upgrade: boolean;
  /** Bytes of the head, including the final CRLF CRLF (and any leading empty lines). */
  readonly headLength: number;
}

export type ParseResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly status: number; readonly reason: string }
  | { readonly kind: 'ok'; readonly head: RequestHead };

const INCOMPLETE: ParseResult = { kind: 'incomplete' };

// RFC 9110 5.6.2 tchar.
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

// field-value bytes: VCHAR, SP, HTAB, obs-text. Every other CTL (including CR, LF, NUL, DEL) is refused.
export const FIELD = new Uint8Array(256);
FIELD[9] = 1;
for (let c = 32; c < 127; c++) FIELD[c] = 1;
for (let c = 128; c < 256; c++) FIELD[c] = 1;

// request-target bytes: visible ASCII only (RFC 9112 3.2; no SP, no CTL, no obs-text).
const TARGET = new Uint8Array(256);
for (let c = 33; c < 127; c++) TARGET[c] = 1;

// Methods llhttp (node:http) knows; an unknown method is refused by both paths alike. PRI is the
// HTTP/2 preface, never an HTTP/1 request.
const KNOWN_METHODS = new Set(METHODS.filter((m) => m !== 'PRI'));

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([/?].*)?$/i;
// What a Host value may be: /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/,
// checked by isHostValue without a regex (one per request).
const REG_NAME = new Uint8Array(128);
for (const c of "._~!$&'()*+,;=%-") REG_NAME[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) REG_NAME[c] = 1;
for (let c = 65; c <= 90; c++) REG_NAME[c] = 1;
for (let c = 97; c <= 122; c++) REG_NAME[c] = 1;
const IP_LITERAL = new Uint8Array(128);
for (const c of '0123456789ABCDEFabcdef:.') IP_LITERAL[c.charCodeAt(0)] = 1;

/** reg-name or [IP-literal] (loosely: hex digits, colons, dots), then optionally `:` and digits. */
function isHostValue(s: string): boolean {
  const n = s.length;
  let i = 0;
  if (n > 0 && s.charCodeAt(0) === 91 /* [ */) {
    i = 1;
    while (i < n && IP_LITERAL[s.charCodeAt(i)] === 1) i++;
    if (i === 1 || i === n || s.charCodeAt(i) !== 93 /* ] */) return false;
    i++;
  } else {
    while (i < n && REG_NAME[s.charCodeAt(i)] === 1) i++;
  }
  if (i === n) return true;
  if (s.charCodeAt(i) !== 58 /* : */) return false;
  for (i++; i < n; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}
const MAX_LEADING_EMPTY_LINES = 4;
// As node:http reads Expect (its continueExpression).
const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i;
// As node:http's default maxHeadersCount, so both engines take the same heads (the size limit
// is what bounds memory: --max-header-size).
const MAX_HEADERS = 2000;

// Field names most messages carry, spelled as clients and servers usually spell them: parsed to
// these constants, so reading them makes no string (a native call each otherwise).
const COMMON_NAMES = [
  'Host', 'User-Agent', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Connection', 'Content-Length', 'Content-Type',
  'Cookie', 'Referer', 'Origin', 'Cache-Control', 'Authorization', 'Upgrade', 'Expect', 'Transfer-Encoding', 'Keep-Alive',
  'Date', 'Server', 'Set-Cookie', 'Last-Modified', 'ETag', 'Vary', 'Expires', 'Location', 'Content-Encoding', 'Accept-Ranges',
  'host', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'connection', 'content-length', 'content-type',
  'cookie', 'referer', 'origin', 'cache-control', 'authorization', 'date', 'server', 'transfer-encoding', 'keep-alive',
];
// Per name length, the common names' bytes back to back and the names: one flat table per length
// (same shape for all), compared byte by byte.
interface NameTable { readonly bytes: Uint8Array; readonly names: readonly string[] }
function nameTables(list: readonly string[]): (NameTable | undefined)[] {
  const byLength: string[][] = [];
  for (const n of list) (byLength[n.length] ??= []).push(n);
  return Array.from(byLength, (names) => (names === undefined ? undefined : { bytes: Buffer.from(names.join(''), 'latin1'), names }));
}
const NAMES_BY_LENGTH = nameTables(COMMON_NAMES);

// The common names' lower-case forms, per length. As property keys they are internalized strings
// (as literals are), so comparing one with a literal ('date', 'content-length') is a pointer comparison.
const internalized = (s: string): string => Object.keys({ [s]: 0 })[0];
const LOWER_BY_LENGTH: ({ readonly names: readonly string[]; readonly lowers: readonly string[] } | undefined)[] = [];
for (const n of COMMON_NAMES) {
  const t = (LOWER_BY_LENGTH[n.length] ??= { names: [], lowers: [] }) as { names: string[]; lowers: string[] };
  t.names.push(n);
  t.lowers.push(internalized(n.toLowerCase()));
}

/** A field name in lower case (made once for the common names). */
export function lowerName(name: string): string {
  // The parsers give the common names as the constants above: found by identity, among the few of
  // the same length (cheaper than hashing the name for a Map).
  const t = name.length < LOWER_BY_LENGTH.length ? LOWER_BY_LENGTH[name.length] : undefined;
  if (t !== undefined) {
    const names = t.names;
    for (let k = 0; k < names.length; k++) if (names[k] === name) return t.lowers[k];
  }
  return name.toLowerCase();
}

/** The constant for buf[start..end) in `tables`, or undefined when it is none of them. */
function lookup(tables: readonly (NameTable | undefined)[], buf: Buffer, start: number, end: number): string | undefined {
  const n = end - start;
  const t = n < tables.length ? tables[n] : undefined;
  if (t === undefined) return undefined;
  const bytes = t.bytes;
  const names = t.names;
  for (let k = 0, o = 0; k < names.length; k++, o += n) {
    let i = 0;
    while (i < n && buf[start + i] === bytes[o + i]) i++;
    if (i === n) return names[k];
  }
  return undefined;
}

/** The common field name in buf[start..end), or undefined when it is not one of them. */
export function commonName(buf: Buffer, start: number, end: number): string | undefined {
  return lookup(NAMES_BY_LENGTH, buf, start, end);
}

/** Whether the tchar bytes buf[at..at+lower.length) spell `lower` (lower-case letters and `-`) in any case. */
export function isNamed(buf: Buffer, at: number, lower: Uint8Array): boolean {
  // Names are tchar: the only tchars that give a lower-case letter with the 0x20 bit set are that
  // letter in either case, and `-` has it set already: an exact case-insensitive comparison.
  for (let i = 0; i < lower.length; i++) if ((buf[at + i] | 0x20) !== lower[i]) return false;
  return true;
}
const L_HOST = Buffer.from('host');
const L_EXPECT = Buffer.from('expect');
const L_UPGRADE = Buffer.from('upgrade');
const L_CONNECTION = Buffer.from('connection');
const L_CONTENT_LENGTH = Buffer.from('content-length');
const L_TRANSFER_ENCODING = Buffer.from('transfer-encoding');

// The methods as constants: matching the bytes against them is the KNOWN_METHODS check, without a string.
const METHOD_TABLES = nameTables([...KNOWN_METHODS]);

/** 1 to 15 decimal digits as a number; -1 for anything else (as /^[0-9]{1,15}$/ and Number()). */
export function digits(buf: Buffer, start: number, end: number): number {
  if (end === start || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

// The fields of the head being parsed, until it is complete: per field, name start, name end,
// value start, value end (offsets in buf), and the name when it is a common one. The strings are
// then cut from one decode of the head: a buf.toString per value is a native call (~100 ns) where
// a slice costs ~15 ns. Parsing is synchronous, so one scratch serves every call.
const offsets = new Int32Array(MAX_HEADERS * 4);
const commonNames: (string | undefined)[] = new Array(MAX_HEADERS).fill(undefined);

function fail(status: number, reason: string): ParseResult {
  return { kind: 'error', status, reason };
}

/**
 * Parses one request head from buf[start..]. `maxHeaderSize` bounds the whole head: a request
 * line that alone exceeds it is a 414, a head that does a 431, both as soon as the buffered bytes
 * show it (before the end is seen).
 */
export function parseRequestHead(buf: Buffer, start: number, maxHeaderSize: number): ParseResult {
  const end = buf.length;
  let p = start;
  // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
  for (let n = 0; n < MAX_LEADING_EMPTY_LINES && p + 1 < end && buf[p] === 13 && buf[p + 1] === 10; n++) p += 2;
  if (p + 1 === end && buf[p] === 13) return INCOMPLETE;
  const lineStart = p;
  // Request line: method SP target SP HTTP/x.y CRLF.
  while (p < end && TCHAR[buf[p]] === 1) p++;
  if (p === end) return p - start > maxHeaderSize ? fail(414, 'request line too long') : INCOMPLETE;
  if (buf[p] !== 32 || p === lineStart) return fail(400, 'malformed method');
  const method = lookup(METHOD_TABLES, buf, lineStart, p);
  if (method === undefined) return fail(400, 'unknown method');
  // A proxy that is not a forward proxy serves no tunnels (as today: 405, connection closed).
  if (method === 'CONNECT') return fail(405, 'CONNECT is not served');
  const targetStart = ++p;
  while (p < end && TARGET[buf[p]] === 1) p++;
  if (p === end) return p - start > maxHeaderSize ? fail(414, 'request line too long') : INCOMPLETE;
  if (buf[p] !== 32 || p === targetStart) return fail(400, 'malformed request target');
  const targetEnd = p;
  p++;
  // RFC 9112 3: exactly one SP between the parts (llhttp tolerates more).
  if (p < end && buf[p] === 32) return fail(400, 'repeated space in the request line');
  if (end - p < 10) return end - start > maxHeaderSize ? fail(414, 'request line too long') : INCOMPLETE;
  if (buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 ||
      !isDigit(buf[p + 5]) || buf[p + 6] !== 46 || !isDigit(buf[p + 7]) || buf[p + 8] !== 13 || buf[p + 9] !== 10) {
    return fail(400, 'malformed HTTP version');
  }
  const major = buf[p + 5] - 48;
  const minor = buf[p + 7] - 48;
  p += 10;
  if (p - start > maxHeaderSize) return fail(414, 'request line too long');
  // RFC 9110 15.6.6: an HTTP/1 connection carries 1.0 and 1.1 only; HTTP/2 is told by the preface.
  if (major !== 1 || minor > 1) return fail(505, 'HTTP version not supported');

  // Fields are read as offsets (see `offsets`); these are field indexes, -1 for none.
  let count = 0;
  let hostAt = -1;
  let hosts = 0;
  let contentLength = -1;
  let teAt = -1;
  let connectionAt = -1;
  let connections = 0;
  let expectAt = -1;
  let upgrade = false;
  for (;;) {
    if (p >= end) return end - start > maxHeaderSize ? fail(431, 'request header fields too large') : INCOMPLETE;
    if (buf[p] === 13) {
      if (p + 1 >= end) return INCOMPLETE;
      if (buf[p + 1] !== 10) return fail(400, 'bare CR');
      p += 2;
      break;
    }
    // RFC 9112 5.2: obs-fold is refused, not unfolded.
    if (buf[p] === 32 || buf[p] === 9) return fail(400, 'obs-fold or whitespace before a header name');
    const nameStart = p;
    while (p < end && TCHAR[buf[p]] === 1) p++;
    if (p === end) return end - start > maxHeaderSize ? fail(431, 'request header fields too large') : INCOMPLETE;
    // RFC 9112 5.1: no whitespace between the name and the colon.
    if (buf[p] !== 58 || p === nameStart) return fail(400, 'malformed header name');
    const nameEnd = p;
    p++;
    while (p < end && (buf[p] === 32 || buf[p] === 9)) p++;
    const valueStart = p;
    while (p < end && FIELD[buf[p]] === 1) p++;
    if (p === end) return end - start > maxHeaderSize ? fail(431, 'request header fields too large') : INCOMPLETE;
    if (buf[p] !== 13) return fail(400, buf[p] === 10 ? 'bare LF' : 'control character in a header value');
    if (p + 1 >= end) return end - start > maxHeaderSize ? fail(431, 'request header fields too large') : INCOMPLETE;
    if (buf[p + 1] !== 10) return fail(400, 'bare CR');
    let valueEnd = p;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
    p += 2;
    if (p - start > maxHeaderSize) return fail(431, 'request header fields too large');
    if (count >= MAX_HEADERS) return fail(431, 'too many header fields');
    const k = count++;
    offsets[k * 4] = nameStart;
    offsets[k * 4 + 1] = nameEnd;
    offsets[k * 4 + 2] = valueStart;
    offsets[k * 4 + 3] = valueEnd;
    commonNames[k] = lookup(NAMES_BY_LENGTH, buf, nameStart, nameEnd);
    switch (nameEnd - nameStart) {
      case 4:
        if (isNamed(buf, nameStart, L_HOST)) {
          hosts++;
          hostAt = k;
        }
        break;
      case 6:
        if (isNamed(buf, nameStart, L_EXPECT)) expectAt = k;
        break;
      case 7:
        if (isNamed(buf, nameStart, L_UPGRADE)) upgrade = true;
        break;
      case 10:
        if (isNamed(buf, nameStart, L_CONNECTION)) {
          if (connections++ === 0) connectionAt = k;
        }
        break;
      case 14:
        if (isNamed(buf, nameStart, L_CONTENT_LENGTH)) {
          // RFC 9112 6.3: one Content-Length of 1*DIGIT; a list or a repeat is refused, not merged.
          if (contentLength !== -1) return fail(400, 'more than one Content-Length');
          contentLength = digits(buf, valueStart, valueEnd);
          if (contentLength < 0) return fail(400, 'malformed Content-Length');
        }
        break;
      case 17:
        if (isNamed(buf, nameStart, L_TRANSFER_ENCODING)) {
          if (teAt !== -1) return fail(400, 'more than one Transfer-Encoding');
          teAt = k;
        }
        break;
    }
  }

  // The head is complete: its strings, cut from one decode of it (from the target on).
  const text = buf.toString('latin1', targetStart, p);
  const target = text.slice(0, targetEnd - targetStart);
  const rawHeaders: string[] = [];
  for (let k = 0; k < count; k++) {
    const o = k * 4;
    rawHeaders.push(commonNames[k] ?? text.slice(offsets[o] - targetStart, offsets[o + 1] - targetStart), text.slice(offsets[o + 2] - targetStart, offsets[o + 3] - targetStart));
  }
  let host = hostAt === -1 ? undefined : rawHeaders[hostAt * 2 + 1];
  const te = teAt === -1 ? undefined : rawHeaders[teAt * 2 + 1];
  const expect = expectAt === -1 ? undefined : rawHeaders[expectAt * 2 + 1];
  let connection = connectionAt === -1 ? '' : rawHeaders[connectionAt * 2 + 1];
  if (connections > 1) {
    for (let k = connectionAt + 1; k < count; k++) {
      if (rawHeaders[k * 2].length === 10 && isNamed(buf, offsets[k * 4], L_CONNECTION)) connection = `${connection},${rawHeaders[k * 2 + 1]}`;
    }
  }

  let chunked = false;
  if (te !== undefined) {
    // RFC 9112 6.1: TE in HTTP/1.0 cannot be trusted (a 1.0 intermediary may not have decoded it).
    if (minor === 0) return fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (contentLength !== -1) return fail(400, 'both Content-Length and Transfer-Encoding');
    if (te.toLowerCase() !== 'chunked') {
      // RFC 9112 6.3 item 4: chunked not last, the body's length cannot be known: MUST 400 and
      // close. Chunked last after another coding (gzip, chunked): a coding not served, 501.
      const codings = te.split(',');
      const last = codings[codings.length - 1].trim().toLowerCase();
      return last === 'chunked' ? fail(501, 'only the chunked transfer-coding is supported') : fail(400, 'chunked is not the final transfer-coding');
    }
    chunked = true;
  }
  const targetProblem = checkTarget(method, target);
  if (targetProblem !== undefined) return fail(400, targetProblem);
  if (hosts > 1) return fail(400, 'more than one Host header');
  // An http(s) URI's authority is never empty (RFC 9110 4.2.1), so neither is its Host (an
  // absolute-form target's authority replaces Host, checked above).
  if (hosts === 1 && host === '' && (target.charCodeAt(0) === 47 || target === '*')) return fail(400, 'empty Host header');
  if (hosts === 1 && !isHostValue(host as string)) return fail(400, 'malformed Host header');
  if (hosts === 0 && minor === 1) return fail(400, 'missing Host header');

  const connectionTokens = connection === '' ? (NO_TOKENS as string[]) : tokens(connection);
  const keepAlive = minor === 1 ? !connectionTokens.includes('close') : connectionTokens.includes('keep-alive');
  // An absolute-form target's authority replaces Host (RFC 9112 3.2.2).
  const absolute = target.charCodeAt(0) !== 47 && target !== '*' ? ABSOLUTE_FORM.exec(target) : null;
  if (absolute !== null) host = absolute[1];
  return {
    kind: 'ok',
    head: {
      method, target: absolute === null ? target : absolute[2] === undefined ? '/' : absolute[2].charCodeAt(0) === 63 ? `/${absolute[2]}` : absolute[2],
      rawTarget: target,
      versionMinor: minor as 0 | 1, rawHeaders, host,
      contentLength, chunked, keepAlive,
      expectContinue: expect !== undefined && CONTINUE_EXPECTATION.test(expect),
      expect,
      connectionTokens, upgrade,
      headLength: p - start,
    },
  };
}

/** Target forms (RFC 9112 3.2): origin-form, absolute-form without userinfo, `*` for OPTIONS only. */
function checkTarget(method: string, target: string): string | undefined {
  const c = target.charCodeAt(0);
  if (c === 47 /* / */) return undefined;
  if (target === '*') return method === 'OPTIONS' ? undefined : 'the request target * is only for OPTIONS';
  const m = ABSOLUTE_FORM.exec(target);
  if (m === null || m[1] === '') return 'malformed request target';
  // RFC 9110 4.2.4: userinfo is not allowed in http(s) URIs; readers split `a@b` differently.
  if (m[1].includes('@')) return 'userinfo in the request target';
  if (!isHostValue(m[1])) return 'malformed request target';
  return undefined;
}

const NO_TOKENS: readonly string[] = Object.freeze([]);
const KEEP_ALIVE: readonly string[] = Object.freeze(['keep-alive']);
const CLOSE: readonly string[] = Object.freeze(['close']);

export function tokens(list: string): string[] {
  // What nearly every message says, without a split.
  if (list === 'keep-alive' || list === 'Keep-Alive') return KEEP_ALIVE as string[];
  if (list === 'close' || list === 'Close') return CLOSE as string[];
  const out: string[] = [];
  for (const t of list.split(',')) {
    const v = t.trim().toLowerCase();
    if (v !== '') out.push(v);
  }
  return out;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
