// HTTPRoute filters -> typed FiltersIR. What Portico applies, on rules and on backendRefs alike
// (a backendRef's only to the requests it is picked for): RequestHeaderModifier,
// ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror (resolved by httproute.ts)
// and CORS. What it does not (ExtensionRef, anything else) is reported by the caller and never
// skipped silently: skipping an auth extension would serve the request as if it were not there.

import { compileFilters, FilterError } from '../../router/filters.ts';
import { FRAMING_HEADERS } from '../../router/filters.ts';
import type { CorsIR, FiltersIR, HeaderModifierIR, HeaderValueIR, PathModifierIR, RedirectIR, RewriteIR } from '../../router/types.ts';
import { asArray, asRecord, asString } from '../objects.ts';

/** A RequestMirror filter before its backendRef is resolved (httproute.ts resolves it). */
export interface MirrorSpec {
  readonly backendRef: Record<string, unknown>;
  /** 0-1 */
  readonly fraction: number;
}

export interface ParsedFilters {
  readonly filters: FiltersIR | undefined;
  readonly mirrors: MirrorSpec[];
  /** Filter types Portico does not apply (the rule then answers 500). */
  readonly unsupported: string[];
  /** Invalid configuration (the rule is dropped). */
  readonly errors: string[];
}

function headerModifier(raw: unknown, errors: string[], what: string): HeaderModifierIR | undefined {
  const m = asRecord(raw);
  // A field of the wrong shape is an error, not an empty list: a removal silently not done would
  // pass on a header the author meant to strip.
  for (const field of ['set', 'add', 'remove'] as const) if (m[field] !== undefined && m[field] !== null && !Array.isArray(m[field])) errors.push(`${what} ${field} is not a list`);
  const list = (field: 'set' | 'add'): HeaderValueIR[] => {
    const out: HeaderValueIR[] = [];
    const seen = new Set<string>();
    for (const h of asArray(m[field])) {
      const r = asRecord(h);
      if (typeof r.name !== 'string' || typeof r.value !== 'string') {
        errors.push(`${what} ${field}: each entry needs a name and a value, both strings`);
        continue;
      }
      const name = r.name;
      const value = r.value;
      // Names are unique case-insensitively (the spec); the first one counts.
      if (seen.has(name.toLowerCase())) continue;
      seen.add(name.toLowerCase());
      out.push({ name, value });
    }
    return out;
  };
  const set = list('set');
  const add = list('add');
  if (asArray(m.remove).some((v) => typeof v !== 'string')) errors.push(`${what} remove: each entry must be a header name`);
  const remove = [...new Set(asArray(m.remove).filter((v): v is string => typeof v === 'string'))];
  const framing = [...set.map((h) => h.name), ...add.map((h) => h.name), ...remove].filter((n) => FRAMING_HEADERS.has(n.toLowerCase()));
  if (framing.length > 0) {
    // Framing is Portico's own on both sides: an edit would desynchronise it from the peer's.
    errors.push(`${what} cannot modify ${[...new Set(framing)].join(', ')}: these fields frame the message or the connection`);
    return undefined;
  }
  if (set.length + add.length + remove.length === 0) {
    errors.push(`${what} sets, adds and removes nothing`);
    return undefined;
  }
  return { ...(set.length ? { set } : {}), ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) };
}

function pathModifier(raw: unknown, errors: string[], what: string): PathModifierIR | undefined {
  if (raw === undefined || raw === null) return undefined;
  const p = asRecord(raw);
  const type = asString(p.type);
  if (type === 'ReplaceFullPath') {
    const value = asString(p.replaceFullPath);
    if (value === undefined) errors.push(`${what}: ReplaceFullPath needs replaceFullPath`);
    else return { type, value };
  } else if (type === 'ReplacePrefixMatch') {
    const value = asString(p.replacePrefixMatch);
    if (value === undefined) errors.push(`${what}: ReplacePrefixMatch needs replacePrefixMatch`);
    else return { type, value };
  } else errors.push(`${what}: path type ${type ?? '(none)'} is not ReplaceFullPath or ReplacePrefixMatch`);
  return undefined;
}

const STATUS = new Set([301, 302, 303, 307, 308]);

function redirect(raw: unknown, errors: string[]): RedirectIR | undefined {
  const r = asRecord(raw);
  const before = errors.length;
  const scheme = asString(r.scheme);
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') errors.push(`RequestRedirect scheme ${scheme} is not http or https`);
  const statusCode = r.statusCode === undefined ? 302 : r.statusCode;
  if (typeof statusCode !== 'number' || !STATUS.has(statusCode)) errors.push(`RequestRedirect statusCode ${JSON.stringify(r.statusCode)} is not 301, 302, 303, 307 or 308`);
  const port = r.port;
  if (port !== undefined && !(typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535)) errors.push(`RequestRedirect port ${JSON.stringify(port)} is not 1-65535`);
  if (r.hostname !== undefined && r.hostname !== null && typeof r.hostname !== 'string') errors.push('RequestRedirect hostname is not a string');
  const hostname = asString(r.hostname);
  const path = pathModifier(r.path, errors, 'RequestRedirect');
  if (errors.length > before) return undefined;
  return { ...(scheme ? { scheme: scheme as 'http' | 'https' } : {}), ...(hostname ? { hostname } : {}), ...(typeof port === 'number' ? { port } : {}), ...(path ? { path } : {}), statusCode: statusCode as RedirectIR['statusCode'] };
}

function rewrite(raw: unknown, errors: string[]): RewriteIR | undefined {
  const r = asRecord(raw);
  if (r.hostname !== undefined && r.hostname !== null && typeof r.hostname !== 'string') errors.push('URLRewrite hostname is not a string');
  const hostname = asString(r.hostname);
  const path = pathModifier(r.path, errors, 'URLRewrite');
  if (hostname === undefined && path === undefined) return undefined;
  return { ...(hostname ? { hostname } : {}), ...(path ? { path } : {}) };
}

function cors(raw: unknown, errors: string[]): CorsIR | undefined {
  const c = asRecord(raw);
  const strings = (field: string): string[] => asArray(c[field]).filter((v): v is string => typeof v === 'string');
  const maxAge = c.maxAge === undefined ? 5 : c.maxAge;
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0) {
    errors.push(`CORS maxAge ${JSON.stringify(c.maxAge)} is not a whole number of seconds`);
    return undefined;
  }
  if (c.allowCredentials !== undefined && typeof c.allowCredentials !== 'boolean') errors.push('CORS allowCredentials must be true or false');
  return { allowOrigins: strings('allowOrigins'), allowMethods: strings('allowMethods'), allowHeaders: strings('allowHeaders'), exposeHeaders: strings('exposeHeaders'), allowCredentials: c.allowCredentials === true, maxAge };
}

function mirror(raw: unknown, errors: string[]): MirrorSpec | undefined {
  const m = asRecord(raw);
  const backendRef = asRecord(m.backendRef);
  if (asString(backendRef.name) === undefined) {
    errors.push('RequestMirror needs a backendRef');
    return undefined;
  }
  let fraction = 1;
  if (m.percent !== undefined && m.fraction !== undefined) errors.push('RequestMirror takes percent or fraction, not both');
  else if (m.percent !== undefined) {
    if (typeof m.percent !== 'number' || !Number.isInteger(m.percent) || m.percent < 0 || m.percent > 100) errors.push(`RequestMirror percent ${JSON.stringify(m.percent)} is not 0-100`);
    else fraction = m.percent / 100;
  } else if (m.fraction !== undefined) {
    const f = asRecord(m.fraction);
    const numerator = f.numerator;
    const denominator = f.denominator === undefined ? 100 : f.denominator;
    if (typeof numerator !== 'number' || typeof denominator !== 'number' || !Number.isInteger(numerator) || !Number.isInteger(denominator) || numerator < 0 || denominator < 1 || numerator > denominator) errors.push(`RequestMirror fraction ${JSON.stringify(m.fraction)} is not numerator <= denominator (>= 1)`);
    else fraction = numerator / denominator;
  }
  return { backendRef, fraction };
}

/**
 * Parses a list of filters, of a rule or of a backendRef (whose filters apply to the requests it
 * is picked for). `prefixes`: the rule's matches as the compiler will see them (a
 * ReplacePrefixMatch needs every one to be a PathPrefix). The result is checked by compiling it
 * with each prefix, so the table compile never fails on it.
 */
export function parseFilters(list: unknown, prefixes: readonly (string | undefined)[], kind = 'HTTPRoute'): ParsedFilters {
  const errors: string[] = [];
  const mirrors: MirrorSpec[] = [];
  const unsupported: string[] = [];
  const out: { requestHeaders?: HeaderModifierIR; responseHeaders?: HeaderModifierIR; redirect?: RedirectIR; rewrite?: RewriteIR; cors?: CorsIR } = {};
  const seen = new Set<string>();
  // Read as none, a filters field that is not a list would serve the rule without them.
  if (list !== undefined && list !== null && !Array.isArray(list)) errors.push('filters is not a list');
  for (const raw of asArray(list)) {
    const f = asRecord(raw);
    const type = asString(f.type) ?? '(no type)';
    if (seen.has(type) && type !== 'RequestMirror') {
      errors.push(`filter ${type} appears more than once`);
      continue;
    }
    seen.add(type);
    // GRPCRoute filters are the header modifiers, RequestMirror and ExtensionRef.
    if (kind === 'GRPCRoute' && (type === 'RequestRedirect' || type === 'URLRewrite' || type === 'CORS')) errors.push(`filter ${type} is not a GRPCRoute filter`);
    else if (type === 'RequestHeaderModifier') out.requestHeaders = headerModifier(f.requestHeaderModifier, errors, type);
    else if (type === 'ResponseHeaderModifier') out.responseHeaders = headerModifier(f.responseHeaderModifier, errors, type);
    else if (type === 'RequestRedirect') out.redirect = redirect(f.requestRedirect, errors);
    else if (type === 'URLRewrite') out.rewrite = rewrite(f.urlRewrite, errors);
    else if (type === 'RequestMirror') {
      const m = mirror(f.requestMirror, errors);
      if (m !== undefined) mirrors.push(m);
    } else if (type === 'CORS') out.cors = cors(f.cors, errors);
    else unsupported.push(type === 'ExtensionRef' ? `ExtensionRef ${asString(asRecord(f.extensionRef).kind) ?? ''}/${asString(asRecord(f.extensionRef).name) ?? ''}` : type);
  }
  if (out.redirect !== undefined && out.rewrite !== undefined) errors.push('RequestRedirect and URLRewrite cannot be combined');
  const filters: FiltersIR | undefined = Object.keys(out).length > 0 ? out : undefined;
  if (filters !== undefined && errors.length === 0) {
    for (const prefix of prefixes) {
      try {
        compileFilters(filters, prefix);
      } catch (err) {
        if (!(err instanceof FilterError)) throw err;
        errors.push(prefix === undefined && /ReplacePrefixMatch/.test(err.message) ? 'ReplacePrefixMatch needs every match of the rule to be a PathPrefix' : err.message);
        break;
      }
    }
  }
  return { filters: errors.length === 0 ? filters : undefined, mirrors, unsupported: [...new Set(unsupported)], errors };
}
