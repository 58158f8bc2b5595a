// Checks on the request line and Host that Node's parser leaves to the application: what a proxy
// and a backend could read differently is refused with 400 before anything is routed.

import type { IncomingMessage } from 'node:http';
import { hasEscapedSlash } from '../router/path.ts';

/**
 * `--escaped-slashes`: what a path holding %2F or %5C gets. `decode`: routed as the slash a
 * decoding backend reads (the original bytes are forwarded); `reject`: 400, as Envoy's
 * REJECT_REQUEST action, for backends that read an escaped slash as a character.
 */
export type EscapedSlashes = 'decode' | 'reject';
export const ESCAPED_SLASHES: readonly EscapedSlashes[] = ['decode', 'reject'];

// Process-wide, set once when a worker starts; every listener applies the same policy.
let escapedSlashes: EscapedSlashes = 'decode';

export function setEscapedSlashes(policy: EscapedSlashes): void {
  escapedSlashes = policy;
}

/**
 * A request that arrived over an HTTP/2 session (through node:http2's compatibility API). Told by
 * the stream it rides on, never by the version number: an HTTP/1 request line can say `HTTP/2.0`.
 */
export function isHttp2(req: IncomingMessage): boolean {
  return (req as { stream?: unknown }).stream !== undefined;
}

/**
 * An HTTP/1 connection carries HTTP/1.0 and HTTP/1.1 only: any other version in a request line
 * (`HTTP/2.0`, `HTTP/1.2`, `HTTP/3.0`) gets 505 (RFC 9110 15.6.6), as nginx answers.
 */
export function unsupportedVersion(req: IncomingMessage): boolean {
  return !isHttp2(req) && req.httpVersion !== '1.1' && req.httpVersion !== '1.0';
}

/**
 * Checks the request target and Host (RFC 9112 3.2): more than one Host, or a Host that is not
 * a host[:port], is a 400, since a proxy and a backend could read different hosts from it. An
 * absolute-form target (`GET http://host/path`) is taken apart: its authority replaces Host.
 * Returns the reason for a 400, or undefined.
 */
export function checkTargetAndHost(req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  // RFC 9112 3.2.4: the asterisk-form is only for a server-wide OPTIONS.
  if (url === '*' && req.method !== 'OPTIONS') return 'the request target * is only for OPTIONS';
  if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
    const m = ABSOLUTE_FORM.exec(url);
    if (m === null) return 'malformed request target';
    // RFC 9110 4.2.4: userinfo is not allowed in http(s) URIs; readers split `a@b` differently.
    if (m[1].includes('@')) return 'userinfo in the request target';
    if (m[1] === '') return 'malformed request target';
    if (!isHttp2(req)) {
      const raw = req.rawHeaders;
      const rest: string[] = [];
      for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() !== 'host') rest.push(raw[i], raw[i + 1]);
      rest.push('Host', m[1]);
      (req as { rawHeaders: string[] }).rawHeaders = rest;
      req.headers.host = m[1];
    }
    req.url = m[2] === '' ? '/' : m[2].charCodeAt(0) === 63 /* ? */ ? `/${m[2]}` : m[2];
  }
  const target = req.url ?? '/';
  if (target.includes('%') || target.includes('..') || target.includes('\\')) {
    const problem = pathProblem(target);
    if (problem !== undefined) return problem;
  }
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && (name.charCodeAt(0) | 0x20) === 104 /* h */ && name.toLowerCase() === 'host') {
      if (++hosts > 1) return 'more than one Host header';
      // An http(s) URI's authority is never empty (RFC 9110 4.2.1), so neither is its Host.
      if (raw[i + 1] === '') return 'empty Host header';
      if (!validHost(raw[i + 1])) return 'malformed Host header';
    }
  }
  // RFC 9112 3.2: an HTTP/1.1 request must have a Host (HTTP/2 has :authority, HTTP/1.0 may omit it).
  if (hosts === 0 && !isHttp2(req) && req.httpVersion === '1.1') return 'missing Host header';
  // RFC 9113 8.3.1: Host and :authority naming different hosts make a malformed request.
  if (hosts > 0 && isHttp2(req)) {
    const authority = req.headers[':authority'];
    if (typeof authority === 'string' && authority.toLowerCase() !== String(req.headers.host).toLowerCase()) return 'Host differs from :authority';
  }
  return undefined;
}

/**
 * As nginx: a path with a broken percent-escape, an escaped NUL, or whose `..` segments climb
 * above the root (escaped slashes and dots counted as the backend will decode them) is refused
 * rather than routed one way and read another way upstream.
 */
export function pathProblem(target: string): string | undefined {
  let end = target.indexOf('?');
  if (end < 0) end = target.length;
  const path = target.slice(0, end);
  // A backslash is a separator to some backends (WHATWG URL parsing) and a character to others.
  if (path.includes('\\')) return 'backslash in the path';
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    if (!isHex(path.charCodeAt(i + 1)) || !isHex(path.charCodeAt(i + 2))) return 'malformed percent-encoding in the path';
    if (path.charCodeAt(i + 1) === 48 /* 0 */ && path.charCodeAt(i + 2) === 48) return 'an escaped NUL in the path';
  }
  const escapedSlash = hasEscapedSlash(path);
  if (escapedSlash && escapedSlashes === 'reject') return 'an escaped slash (%2F or %5C) in the path';
  const decoded = escapedSlash ? path.replace(/%2f|%5c/gi, '/') : path;
  let depth = 0;
  let previous = 'x';
  for (const raw of decoded.split('/').slice(1)) {
    const seg = raw.includes('%') ? raw.replace(/%2e/gi, '.') : raw;
    if (seg === '..') {
      // `//..` reads as one step up to the router (empty segments collapse) and as leaving the
      // empty segment to a WHATWG parser: refuse what two readers see differently.
      if (previous === '') return 'an empty segment followed by ..';
      if (--depth < 0) return 'the path climbs above the root';
    } else if (seg !== '.' && seg !== '') depth++;
    previous = seg;
  }
  return undefined;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

// The authority ends at the first '/' or '?'; what follows it must start with one of them.
const ABSOLUTE_FORM = /^https?:\/\/([^/?#\s]*)((?:[/?][^#\s]*)?)$/i;
const HOST_VALUE = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/;
const validHosts = new Set<string>();

/** RFC 3986 host [":" port]; results are remembered (bounded) since requests repeat hosts. */
function validHost(value: string): boolean {
  if (validHosts.has(value)) return true;
  if (!HOST_VALUE.test(value)) return false;
  if (validHosts.size >= 4096) validHosts.clear();
  validHosts.add(value);
  return true;
}
