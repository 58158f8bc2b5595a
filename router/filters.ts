// Gateway API filters as frozen data (compiled once with the table) and the pure per-request
// functions the data path calls: header list edits, the redirect Location, the rewritten path.
// Nothing here parses configuration per request.

import type { CorsIR, FiltersIR, HeaderModifierIR, PathModifierIR, RedirectIR, RewriteIR } from './types.ts';

export interface CompiledHeaderEdit {
  /** Lower-case names whose existing values go: removed ones and set ones. */
  readonly drop: ReadonlySet<string>;
  /** Header lines appended after the drop: set values, then added values (name as configured). */
  readonly append: readonly (readonly [name: string, value: string])[];
  /** Lower-case names that `add` appends to (for record edits, where values merge). */
  readonly addLower: readonly (readonly [lower: string, value: string])[];
  readonly setLower: readonly (readonly [lower: string, value: string])[];
}

export interface CompiledPathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  /** ReplaceFullPath: the path. ReplacePrefixMatch: the replacement, trailing slashes removed ('' for '/'). */
  readonly value: string;
  /** ReplacePrefixMatch: the route's prefix, trailing slashes removed ('' for '/'). */
  readonly prefix: string;
}

export interface CompiledRedirect {
  readonly scheme: 'http' | 'https' | undefined;
  readonly hostname: string | undefined;
  readonly port: number | undefined;
  readonly path: CompiledPathModifier | undefined;
  readonly statusCode: 301 | 302 | 303 | 307 | 308;
}

export interface CompiledRewrite {
  readonly hostname: string | undefined;
  readonly path: CompiledPathModifier | undefined;
}

export interface CompiledCors {
  readonly anyOrigin: boolean;
  /** Lower-case `scheme://host[:port]`. */
  readonly origins: ReadonlySet<string>;
  /** `*.` patterns: scheme, host suffix with its leading dot, port ('' for none). */
  readonly wildcards: readonly { readonly scheme: string; readonly suffix: string; readonly port: string }[];
  readonly anyMethod: boolean;
  readonly methods: string;
  readonly anyHeader: boolean;
  readonly headers: string;
  readonly expose: string;
  readonly credentials: boolean;
  readonly maxAge: string;
}

export interface CompiledFilters {
  readonly requestHeaders: CompiledHeaderEdit | undefined;
  readonly responseHeaders: CompiledHeaderEdit | undefined;
  readonly rewrite: CompiledRewrite | undefined;
  readonly redirect: CompiledRedirect | undefined;
  readonly cors: CompiledCors | undefined;
}

export class FilterError extends Error {}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, spaces and tabs inside; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Fields a header filter may not touch: they frame the message or the connection, so an edit
 * would make Portico and the peer read different messages (a set Content-Length on a request
 * smuggles its body upstream as another request; on a response it splits the client's stream).
 * Framing is Portico's own, on both sides.
 */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function checkHeader(name: string, value?: string): void {
  if (!TOKEN.test(name)) throw new FilterError(`header name ${JSON.stringify(name)} is not a valid token`);
  if (FRAMING_HEADERS.has(name.toLowerCase())) throw new FilterError(`header ${name} frames the message or the connection and cannot be modified`);
  if (value !== undefined && !FIELD_VALUE.test(value)) throw new FilterError(`header ${name}: value has characters not allowed in a header`);
}

export function compileHeaderEdit(ir: HeaderModifierIR | undefined): CompiledHeaderEdit | undefined {
  if (ir === undefined) return undefined;
  const drop = new Set<string>();
  const append: [string, string][] = [];
  const setLower: [string, string][] = [];
  const addLower: [string, string][] = [];
  for (const name of ir.remove ?? []) {
    checkHeader(name);
    drop.add(name.toLowerCase());
  }
  for (const h of ir.set ?? []) {
    checkHeader(h.name, h.value);
    drop.add(h.name.toLowerCase());
    append.push([h.name, h.value]);
    setLower.push([h.name.toLowerCase(), h.value]);
  }
  for (const h of ir.add ?? []) {
    checkHeader(h.name, h.value);
    append.push([h.name, h.value]);
    addLower.push([h.name.toLowerCase(), h.value]);
  }
  if (drop.size === 0 && append.length === 0) return undefined;
  return Object.freeze({ drop, append: Object.freeze(append.map((a) => Object.freeze(a))), setLower: Object.freeze(setLower), addLower: Object.freeze(addLower) });
}

const trimSlashes = (p: string): string => p.replace(/\/+$/, '');

/** `prefix` is the route's PathPrefix, needed by ReplacePrefixMatch. */
export function compilePathModifier(ir: PathModifierIR | undefined, prefix: string | undefined): CompiledPathModifier | undefined {
  if (ir === undefined) return undefined;
  // An empty replacement strips the prefix (the spec's HTTPPathModifier table: /foo/bar -> /bar).
  const stripsPrefix = ir.type === 'ReplacePrefixMatch' && ir.value === '';
  if (!stripsPrefix && !ir.value.startsWith('/')) throw new FilterError(`path ${JSON.stringify(ir.value)} must start with /`);
  if (/[\s?#]/.test(ir.value)) throw new FilterError(`path ${JSON.stringify(ir.value)} must not contain whitespace, ? or #`);
  if (ir.type === 'ReplaceFullPath') return Object.freeze({ type: ir.type, value: ir.value, prefix: '' });
  if (prefix === undefined) throw new FilterError('ReplacePrefixMatch needs a PathPrefix match');
  return Object.freeze({ type: ir.type, value: trimSlashes(ir.value), prefix: trimSlashes(prefix) });
}

function compileRedirect(ir: RedirectIR | undefined, prefix: string | undefined): CompiledRedirect | undefined {
  if (ir === undefined) return undefined;
  if (ir.port !== undefined && !(Number.isInteger(ir.port) && ir.port >= 1 && ir.port <= 65535)) throw new FilterError(`redirect port ${ir.port} is not 1-65535`);
  if (ir.hostname !== undefined && !/^[A-Za-z0-9.-]+$/.test(ir.hostname)) throw new FilterError(`redirect hostname ${JSON.stringify(ir.hostname)} is not a hostname`);
  return Object.freeze({ scheme: ir.scheme, hostname: ir.hostname?.toLowerCase(), port: ir.port, path: compilePathModifier(ir.path, prefix), statusCode: ir.statusCode });
}

function compileRewrite(ir: RewriteIR | undefined, prefix: string | undefined): CompiledRewrite | undefined {
  if (ir === undefined || (ir.hostname === undefined && ir.path === undefined)) return undefined;
  if (ir.hostname !== undefined && !/^[A-Za-z0-9.-]+$/.test(ir.hostname)) throw new FilterError(`rewrite hostname ${JSON.stringify(ir.hostname)} is not a hostname`);
  return Object.freeze({ hostname: ir.hostname, path: compilePathModifier(ir.path, prefix) });
}

const ORIGIN = /^(https?):\/\/(\*\.)?([a-z0-9.-]+)(?::([0-9]{1,5}))?$/;

/** The port of an origin as compared: '' for the scheme's default (the API: 80 for http, 443 for https). */
const originPort = (scheme: string, port: string | undefined): string => (port === undefined || (scheme === 'http' && port === '80') || (scheme === 'https' && port === '443') ? '' : String(Number(port)));

export function compileCors(ir: CorsIR | undefined): CompiledCors | undefined {
  if (ir === undefined) return undefined;
  const origins = new Set<string>();
  const wildcards: { scheme: string; suffix: string; port: string }[] = [];
  let anyOrigin = false;
  for (const o of ir.allowOrigins) {
    if (o === '*') {
      anyOrigin = true;
      continue;
    }
    const m = ORIGIN.exec(o.toLowerCase());
    if (m === null) throw new FilterError(`CORS origin ${JSON.stringify(o)} is not *, scheme://host[:port] or scheme://*.suffix[:port]`);
    const port = originPort(m[1], m[4]);
    if (m[2] !== undefined) wildcards.push({ scheme: m[1], suffix: `.${m[3]}`, port });
    else origins.add(`${m[1]}://${m[3]}${port === '' ? '' : ':' + port}`);
  }
  // The API's own rules (CEL on the CRD, checked here for manifests that skipped it).
  if (anyOrigin && ir.allowOrigins.length > 1) throw new FilterError("CORS allowOrigins cannot list '*' beside other origins");
  if (ir.allowMethods.includes('*') && ir.allowMethods.length > 1) throw new FilterError("CORS allowMethods cannot list '*' beside other methods");
  for (const h of [...ir.allowHeaders, ...ir.exposeHeaders]) if (h !== '*') checkHeader(h);
  for (const m of ir.allowMethods) if (m !== '*' && !TOKEN.test(m)) throw new FilterError(`CORS method ${JSON.stringify(m)} is not a method`);
  return Object.freeze({
    anyOrigin,
    origins,
    wildcards: Object.freeze(wildcards),
    anyMethod: ir.allowMethods.includes('*'),
    methods: ir.allowMethods.filter((m) => m !== '*').join(', '),
    anyHeader: ir.allowHeaders.includes('*'),
    headers: ir.allowHeaders.filter((h) => h !== '*').join(', '),
    expose: ir.exposeHeaders.join(', '),
    credentials: ir.allowCredentials,
    maxAge: String(ir.maxAge),
  });
}

/** Whether a request's Origin is allowed (compared case-insensitively, wildcards over any number of labels). */
export function corsOriginAllowed(c: CompiledCors, origin: string): boolean {
  if (c.anyOrigin) return true;
  const m = ORIGIN.exec(origin.toLowerCase());
  if (m === null || m[2] !== undefined) return false;
  const host = m[3];
  const port = originPort(m[1], m[4]);
  if (c.origins.has(`${m[1]}://${host}${port === '' ? '' : ':' + port}`)) return true;
  return c.wildcards.some((w) => w.scheme === m[1] && w.port === port && host.endsWith(w.suffix) && host.length > w.suffix.length);
}

/** Allow-Origin for an allowed origin: the origin itself, or `*` when any is allowed without credentials. */
const allowOrigin = (c: CompiledCors, origin: string): string => (c.anyOrigin && !c.credentials ? '*' : origin);

/** The answer depends on the Origin (not `*` for all), so caches must key on it (Fetch, CORS and HTTP caches). */
const variesByOrigin = (c: CompiledCors): boolean => !(c.anyOrigin && !c.credentials);

/**
 * The headers of Portico's answer to a CORS preflight (OPTIONS with Origin and
 * Access-Control-Request-Method); for an origin not allowed, no CORS headers (only Vary).
 */
export function corsPreflightHeaders(c: CompiledCors, origin: string, requestMethod: string, requestHeaders: string | undefined): [string, string][] {
  if (!corsOriginAllowed(c, origin)) return variesByOrigin(c) ? [['vary', 'Origin']] : [];
  const out: [string, string][] = [['access-control-allow-origin', allowOrigin(c, origin)]];
  if (allowOrigin(c, origin) !== '*') out.push(['vary', 'Origin']);
  // `*` means any: with credentials a literal `*` is not honoured by browsers, so echo the request.
  const methods = c.anyMethod ? (c.credentials ? requestMethod : '*') : c.methods;
  if (methods !== '') out.push(['access-control-allow-methods', methods]);
  const headers = c.anyHeader ? (c.credentials ? (requestHeaders ?? '') : '*') : c.headers;
  if (headers !== '') out.push(['access-control-allow-headers', headers]);
  if (c.expose !== '') out.push(['access-control-expose-headers', c.expose]);
  if (c.credentials) out.push(['access-control-allow-credentials', 'true']);
  out.push(['access-control-max-age', c.maxAge]);
  return out;
}

/**
 * The CORS headers added to the backend's answer: for an allowed Origin, allow-origin and the
 * rest; else (another Origin, or none) only Vary when the answer depends on the Origin.
 */
export function corsResponseHeaders(c: CompiledCors, origin: string | undefined): [string, string][] {
  if (origin === undefined || !corsOriginAllowed(c, origin)) return variesByOrigin(c) ? [['vary', 'Origin']] : [];
  const out: [string, string][] = [['access-control-allow-origin', allowOrigin(c, origin)]];
  if (allowOrigin(c, origin) !== '*') out.push(['vary', 'Origin']);
  if (c.credentials) out.push(['access-control-allow-credentials', 'true']);
  if (c.expose !== '') out.push(['access-control-expose-headers', c.expose]);
  return out;
}

/** Compiles a route's (or a backend's) filters; `prefix` is the route's PathPrefix, if it is one. Throws FilterError. */
export function compileFilters(ir: FiltersIR | undefined, prefix: string | undefined): CompiledFilters | undefined {
  if (ir === undefined) return undefined;
  const out = {
    requestHeaders: compileHeaderEdit(ir.requestHeaders),
    responseHeaders: compileHeaderEdit(ir.responseHeaders),
    rewrite: compileRewrite(ir.rewrite, prefix),
    redirect: compileRedirect(ir.redirect, prefix),
    cors: compileCors(ir.cors),
  };
  if (out.requestHeaders === undefined && out.responseHeaders === undefined && out.rewrite === undefined && out.redirect === undefined && out.cors === undefined) return undefined;
  return Object.freeze(out);
}

/**
 * Edits a flat header list (`[name, value, name, value, ...]`, as node:http's rawHeaders and
 * undici's request headers): drops removed and set names (any case), then appends set and added
 * lines. An added header becomes its own line after the existing ones, so a backend reading the
 * lines in order sees `old,new`.
 */
export function editHeaderList(list: readonly string[], edit: CompiledHeaderEdit): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (edit.drop.size > 0 && edit.drop.has(list[i].toLowerCase())) continue;
    out.push(list[i], list[i + 1]);
  }
  for (const [name, value] of edit.append) out.push(name, value);
  return out;
}

export type HeaderRecord = Record<string, string | string[] | undefined>;

/**
 * Edits response headers held as a record with lower-case names (undici's response headers).
 * Added values join the existing ones as separate values (separate header lines on the wire).
 */
export function editHeaderRecord(headers: HeaderRecord, edit: CompiledHeaderEdit): HeaderRecord {
  const out: HeaderRecord = {};
  for (const name in headers) {
    if (edit.drop.has(name)) continue;
    out[name] = headers[name];
  }
  for (const [name, value] of edit.setLower) out[name] = value;
  for (const [name, value] of edit.addLower) {
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

function splitTarget(target: string): [path: string, query: string] {
  const q = target.indexOf('?');
  return q === -1 ? [target, ''] : [target.slice(0, q), target.slice(q)];
}

/**
 * Applies a path modifier to a request path (no query). ReplacePrefixMatch is element-wise: the
 * prefix `/foo` of `/foo/bar` becomes the replacement, with the rest kept (`/xyz/bar`); an empty
 * result is `/`.
 */
export function modifyPath(path: string, m: CompiledPathModifier): string {
  if (m.type === 'ReplaceFullPath') return m.value;
  // The router matched the prefix element-wise; when the path as sent starts differently (it
  // was normalised to match), the replacement still takes the matched number of elements.
  let rest: string;
  // A path that is the prefix `/` itself is replaced whole, as `/foo` is by prefix /foo.
  if (m.prefix === '' && path === '/') rest = '';
  else if (path.startsWith(m.prefix) && (path.length === m.prefix.length || path.charCodeAt(m.prefix.length) === 47)) rest = path.slice(m.prefix.length);
  else {
    const elements = m.prefix === '' ? 0 : m.prefix.split('/').length - 1;
    const parts = path.split('/');
    rest = parts.length - 1 > elements ? '/' + parts.slice(elements + 1).join('/') : '';
  }
  const out = m.value + rest;
  return out === '' ? '/' : out.charCodeAt(0) === 47 ? out : '/' + out;
}

/** The upstream request target after a URLRewrite path change; the query is kept. */
export function rewriteTarget(target: string, m: CompiledPathModifier): string {
  const [path, query] = splitTarget(target);
  return modifyPath(path, m) + query;
}

export interface RedirectRequest {
  /** The scheme the client used. */
  readonly scheme: 'http' | 'https';
  /** The request's host, without a port (an IPv6 literal keeps its brackets). */
  readonly host: string;
  /** The port of the listener the request arrived on. */
  readonly listenerPort: number;
  /** The request target: path and query. */
  readonly target: string;
}

/**
 * The Location of a RequestRedirect. The spec's port rules: an explicit port wins; else a
 * redirect that sets the scheme uses that scheme's well-known port; else the listener's port.
 * The port is left out when it is the scheme's default (80 for http, 443 for https). The query
 * string is kept.
 */
export function redirectLocation(r: CompiledRedirect, req: RedirectRequest): string {
  const scheme = r.scheme ?? req.scheme;
  const host = r.hostname ?? req.host;
  const port = r.port ?? (r.scheme !== undefined ? (scheme === 'https' ? 443 : 80) : req.listenerPort);
  const defaultPort = scheme === 'https' ? 443 : 80;
  const [path, query] = splitTarget(req.target);
  const newPath = r.path !== undefined ? modifyPath(path, r.path) : path;
  return `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${newPath}${query}`;
}

/** Replaces the Host line of a flat header list (URLRewrite hostname). */
function setHost(list: string[], host: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i].length !== 4 || list[i].toLowerCase() !== 'host') out.push(list[i], list[i + 1]);
  out.push('host', host);
  return out;
}

/**
 * What goes upstream after a route's filters and then its chosen backend's: header edits, a
 * rewritten Host and target. Returns the inputs themselves when there is nothing to do.
 */
export function applyRequestFilters(headers: string[], target: string, route: CompiledFilters | undefined, backend: CompiledFilters | undefined): { headers: string[]; target: string } {
  let h = headers;
  let t = target;
  for (const f of [route, backend]) {
    if (f === undefined) continue;
    if (f.requestHeaders !== undefined) h = editHeaderList(h, f.requestHeaders);
    if (f.rewrite !== undefined) {
      if (f.rewrite.hostname !== undefined) h = setHost(h, f.rewrite.hostname);
      if (f.rewrite.path !== undefined) t = rewriteTarget(t, f.rewrite.path);
    }
  }
  return { headers: h, target: t };
}

/** Response headers after the route's ResponseHeaderModifier and then the chosen backend's. */
export function applyResponseFilters(headers: HeaderRecord, route: CompiledFilters | undefined, backend: CompiledFilters | undefined): HeaderRecord {
  let h = headers;
  if (route?.responseHeaders !== undefined) h = editHeaderRecord(h, route.responseHeaders);
  if (backend?.responseHeaders !== undefined) h = editHeaderRecord(h, backend.responseHeaders);
  return h;
}

/**
 * Adds CORS header lines to a response header record: they replace the upstream's own values,
 * except Vary, which gets Origin added unless it names it (or `*`) already.
 */
export function addCorsHeaders(headers: HeaderRecord, lines: readonly (readonly [string, string])[]): HeaderRecord {
  if (lines.length === 0) return headers;
  const out: HeaderRecord = { ...headers };
  for (const [name, value] of lines) {
    if (name !== 'vary') {
      out[name] = value;
      continue;
    }
    const prev = out.vary;
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [prev];
    if (!list.some((v) => v.split(',').some((t) => ['origin', '*'].includes(t.trim().toLowerCase())))) out.vary = list.length === 0 ? value : [...list, value].join(', ');
  }
  return out;
}
