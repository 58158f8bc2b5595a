// Ingress (networking.k8s.io/v1) -> routes. Class selection, validation, path rules and the
// "oldest wins" conflict rule live here; backend resolution is in backends.ts.

import { parseCidrList } from '../router/cidr.ts';
import { unsafeRegexReason } from '../router/regex.ts';
import type { RouteIR, RouteSource, ValueMatchIR } from '../router/types.ts';
import { hostnameCovered } from '../tls/certificate.ts';
import type { BackendIndex, ServicePortRef } from './backends.ts';
import { asArray, asRecord, asString, compareAge, isRecord, type KubeObject, type Problem } from './objects.ts';
import type { TableBuilder } from './table-builder.ts';
import { nearestName } from '../router/similar.ts';

export const INGRESS_CONTROLLER_NAME = 'portico.dev/ingress-controller';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
export const TIMEOUT_ANNOTATION = 'portico.dev/proxy-read-timeout';
export const SSL_REDIRECT_ANNOTATION = 'portico.dev/ssl-redirect';
export const SSL_PASSTHROUGH_ANNOTATION = 'portico.dev/ssl-passthrough';
export const ALLOWLIST_ANNOTATION = 'portico.dev/whitelist-source-range';
export const CANARY_ANNOTATION = 'portico.dev/canary';

const PORTICO_PREFIX = 'portico.dev/';
const NGINX_PREFIX = 'nginx.ingress.kubernetes.io/';
/** The annotations Portico reads (portico.dev/ names; the nginx.ingress.kubernetes.io/ ones are aliases). */
const SUPPORTED_ANNOTATIONS = ['proxy-read-timeout', 'ssl-redirect', 'force-ssl-redirect', 'ssl-passthrough', 'whitelist-source-range', 'allowlist-source-range'];
/** ingress-nginx's current name for whitelist-source-range (the old one is deprecated): the same allowlist. */
const ALLOWLIST_NEW_NAME = 'portico.dev/allowlist-source-range';
export const FORCE_SSL_REDIRECT_ANNOTATION = 'portico.dev/force-ssl-redirect';
/**
 * Annotations that restrict who may reach a route. Portico honours whitelist-source-range; any
 * other one it cannot honour, so instead of serving the route open it denies every client (403)
 * until the annotation is removed: a restriction Portico does not apply must fail closed.
 */
const RESTRICTING = /^(?:whitelist-source-range|allowlist-source-range|denylist-source-range|auth-.+|satisfy|enable-modsecurity|enable-owasp-core-rules|modsecurity-.+)$/;

export interface AnnotationReport {
  /** Annotations Portico does not read: reported, and otherwise without effect. */
  readonly ignored: string[];
  /** Access restrictions Portico cannot apply: the Ingress's routes deny every client. */
  readonly denying: string[];
}

/**
 * Sorts an Ingress's portico.dev/ and nginx.ingress.kubernetes.io/ annotations into those Portico
 * reads, those it ignores (reported) and restrictions it cannot apply (fail closed). A typo of a
 * supported name is reported with the name it is closest to, and denies if that one restricts.
 */
export function reviewAnnotations(annotations: Readonly<Record<string, string>>): AnnotationReport {
  const ignored: string[] = [];
  const denying: string[] = [];
  for (const name of Object.keys(annotations)) {
    const prefix = name.startsWith(PORTICO_PREFIX) ? PORTICO_PREFIX : name.startsWith(NGINX_PREFIX) ? NGINX_PREFIX : undefined;
    if (prefix === undefined) continue;
    const key = name.slice(prefix.length);
    // Canary annotations are read by readCanary, and reported there.
    if (SUPPORTED_ANNOTATIONS.includes(key) || CANARY_KEYS.includes(key)) continue;
    const near = nearestName(key, SUPPORTED_ANNOTATIONS);
    const label = near === undefined ? name : `${name} (did you mean ${prefix}${near}?)`;
    if (RESTRICTING.test(key) || (near !== undefined && RESTRICTING.test(near))) denying.push(label);
    else ignored.push(label);
  }
  return { ignored, denying };
}

/** ingress-nginx's canary annotations (portico.dev/ names; nginx.ingress.kubernetes.io/ aliases). */
const CANARY_KEYS = ['canary', 'canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern', 'canary-by-cookie', 'canary-weight', 'canary-weight-total'];
// RFC 9110 token: what a header or cookie name may be.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** How a canary Ingress takes traffic from the main Ingress of the same host and path. */
export interface CanaryConfig {
  /**
   * canary-by-header: `always-never` (the header's value `always` picks the canary, `never` the
   * main), or an exact value / a regular expression (of the router's safe subset) that picks the
   * canary. Any other value, or no header, leaves the request to the cookie and the weight.
   */
  readonly header?: { readonly name: string; readonly match: { readonly type: 'always-never' } | { readonly type: 'Exact' | 'RegularExpression'; readonly value: string } };
  /** canary-by-cookie: the cookie's value `always` picks the canary, `never` the main. */
  readonly cookie?: string;
  /** canary-weight of canary-weight-total (0..total; total default 100). */
  readonly weight: number;
  readonly total: number;
}

export interface CanaryReading {
  /** `canary` is set and not false: the Ingress never serves on its own. */
  readonly isCanary: boolean;
  /** Undefined when a setting cannot be honoured (errors say why): the canary is not served at all. */
  readonly config?: CanaryConfig;
  readonly errors: string[];
  readonly warnings: string[];
}

/**
 * The settings `keys` under their portico.dev/ names or their nginx.ingress.kubernetes.io/
 * aliases (migrations keep their manifests); the portico.dev/ one wins, a differing alias is
 * reported.
 */
function readAliased(raw: Readonly<Record<string, string>>, keys: readonly string[]): { values: Record<string, string>; conflicts: string[] } {
  const values: Record<string, string> = {};
  const conflicts: string[] = [];
  for (const key of keys) {
    const own = raw[PORTICO_PREFIX + key];
    const alias = raw[NGINX_PREFIX + key];
    const v = own ?? alias;
    if (v === undefined) continue;
    values[key] = v;
    if (own !== undefined && alias !== undefined && own !== alias) conflicts.push(`${PORTICO_PREFIX}${key} (${JSON.stringify(own)}) is used; ${NGINX_PREFIX}${key} (${JSON.stringify(alias)}) is not`);
  }
  return { values, conflicts };
}

const BOOL_TRUE = new Set(['true', 'True', 'TRUE', '1', 't', 'T']);
const BOOL_FALSE = new Set(['false', 'False', 'FALSE', '0', 'f', 'F']);

/**
 * The canary annotations of an Ingress. Without a `canary` annotation, or with a false one, it
 * is not a canary (other canary annotations are reported as without effect). An unreadable
 * `canary` value makes it a canary that is not served: serving it as an ordinary Ingress could
 * take a host away from its main Ingress.
 */
export function readCanary(raw: Readonly<Record<string, string>>): CanaryReading {
  const errors: string[] = [];
  const others: string[] = [];
  const { values: value, conflicts: warnings } = readAliased(raw, CANARY_KEYS);
  const flag = value.canary;
  if (flag === undefined || BOOL_FALSE.has(flag)) {
    const inert = Object.keys(raw).filter((n) => [PORTICO_PREFIX, NGINX_PREFIX].some((p) => n.startsWith(p) && CANARY_KEYS.includes(n.slice(p.length)) && n.slice(p.length) !== 'canary'));
    if (inert.length > 0) warnings.push(`canary annotations without ${CANARY_ANNOTATION}: "true" have no effect: ${inert.join(', ')}`);
    return { isCanary: false, errors: [], warnings };
  }
  if (!BOOL_TRUE.has(flag)) errors.push(`annotation canary: ${JSON.stringify(flag)} must be "true" or "false"`);
  // Any other canary-like name is a setting this canary would not get: refuse rather than half-apply.
  for (const name of Object.keys(raw)) {
    const prefix = name.startsWith(PORTICO_PREFIX) ? PORTICO_PREFIX : name.startsWith(NGINX_PREFIX) ? NGINX_PREFIX : undefined;
    if (prefix === undefined) continue;
    const key = name.slice(prefix.length);
    if (CANARY_KEYS.includes(key)) continue;
    if (key.startsWith('canary')) {
      const near = nearestName(key, CANARY_KEYS);
      errors.push(`annotation ${name} is not a canary setting Portico supports${near === undefined ? '' : ` (did you mean ${prefix}${near}?)`}`);
    } else others.push(name);
  }
  if (others.length > 0) warnings.push(`annotations not applied to a canary Ingress (its traffic gets the main Ingress's settings, as with ingress-nginx): ${others.join(', ')}`);
  let header: CanaryConfig['header'];
  const headerName = value['canary-by-header'];
  if (headerName !== undefined) {
    if (!TOKEN.test(headerName)) errors.push(`annotation canary-by-header: ${JSON.stringify(headerName)} is not a header name`);
    const exact = value['canary-by-header-value'];
    const pattern = value['canary-by-header-pattern'];
    if (exact !== undefined && exact !== '') {
      header = { name: headerName, match: { type: 'Exact', value: exact } };
      if (pattern !== undefined) warnings.push('canary-by-header-pattern has no effect with canary-by-header-value (as with ingress-nginx)');
    } else if (pattern !== undefined && pattern !== '') {
      const re = unanchoredPattern(pattern);
      if (re.error !== undefined) errors.push(`annotation canary-by-header-pattern: ${JSON.stringify(pattern)} cannot be matched safely: ${re.error}`);
      else header = { name: headerName, match: { type: 'RegularExpression', value: re.pattern } };
    } else header = { name: headerName, match: { type: 'always-never' } };
  } else {
    for (const k of ['canary-by-header-value', 'canary-by-header-pattern']) if (value[k] !== undefined) warnings.push(`${k} has no effect without canary-by-header`);
  }
  const cookie = value['canary-by-cookie'];
  if (cookie !== undefined && !TOKEN.test(cookie)) errors.push(`annotation canary-by-cookie: ${JSON.stringify(cookie)} is not a cookie name`);
  const integer = (key: string, fallback: number, min: number): number => {
    const v = value[key];
    if (v === undefined) return fallback;
    if (/^\d{1,9}$/.test(v.trim()) && Number(v) >= min) return Number(v);
    errors.push(`annotation ${key}: ${JSON.stringify(v)} is not a whole number${min > 0 ? ` above 0` : ' (0 or more)'}`);
    return fallback;
  };
  const total = integer('canary-weight-total', 100, 1);
  const weight = integer('canary-weight', 0, 0);
  if (weight > total) errors.push(`annotation canary-weight: ${weight} is more than canary-weight-total (${total})`);
  if (errors.length > 0) return { isCanary: true, errors, warnings };
  return { isCanary: true, config: { ...(header ? { header } : {}), ...(cookie !== undefined ? { cookie } : {}), weight, total }, errors, warnings };
}

/**
 * ingress-nginx searches a header for canary-by-header-pattern (PCRE, unanchored); the router
 * matches whole values, so each top-level alternative gets `.*` on a side it does not anchor.
 * The result must be of the router's safe subset (router/regex.ts), else the canary is refused.
 */
function unanchoredPattern(pattern: string): { pattern: string; error?: undefined } | { error: string } {
  const whole = unsafeRegexReason(pattern.replace(/^\^/, '').replace(/(?<!\\)\$$/, ''));
  if (whole !== undefined && !/\$ only at the end|\^ only at the start/.test(whole)) return { error: whole };
  // Top-level alternatives: `|` outside groups and classes.
  const alternatives: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      alternatives.push(pattern.slice(from, i));
      from = i + 1;
    }
  }
  alternatives.push(pattern.slice(from));
  const wrapped = alternatives.map((alt) => {
    const start = alt.startsWith('^');
    let end = false;
    if (alt.endsWith('$')) {
      let slashes = 0;
      for (let i = alt.length - 2; i >= 0 && alt[i] === '\\'; i--) slashes++;
      end = slashes % 2 === 0;
    }
    const body = alt.slice(start ? 1 : 0, end ? -1 : undefined);
    return `${start ? '' : '.*'}${body === '' ? '' : `(?:${body})`}${end ? '' : '.*'}`;
  });
  const out = wrapped.length === 1 ? wrapped[0] : wrapped.map((w) => `(?:${w})`).join('|');
  const reason = unsafeRegexReason(out);
  return reason === undefined ? { pattern: out } : { error: reason };
}

/** A Cookie header holding `name=value` (cookies joined by `;`, or `,` across several headers). */
function cookieMatch(name: string, value: string): ValueMatchIR {
  const esc = (s: string): string => s.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`);
  return { name: 'cookie', type: 'RegularExpression', value: `(?:.*[;,]\\s*)?${esc(name)}=${esc(value)}(?:[;,].*)?` };
}

/** An Ingress's annotations without Portico's and ingress-nginx's: a canary's spec is read without them. */
function withoutControllerAnnotations(ing: KubeObject): KubeObject {
  const raw = ing.metadata.annotations;
  if (raw === undefined) return ing;
  const kept = Object.fromEntries(Object.entries(raw).filter(([n]) => !n.startsWith(PORTICO_PREFIX) && !n.startsWith(NGINX_PREFIX)));
  return { ...ing, metadata: { ...ing.metadata, annotations: kept } };
}

const PATH_TYPES = new Set(['Exact', 'Prefix', 'ImplementationSpecific']);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface IngressClassSelection {
  /** The class Portico serves (`--ingress-class`), when an IngressClass of that name names our controller. */
  readonly className: string;
  readonly classFound: boolean;
  /** No IngressClass of that name exists at all (not: one exists for another controller). */
  readonly classMissing: boolean;
  readonly isDefault: boolean;
  readonly problems: Problem[];
}

export function selectIngressClass(objects: readonly KubeObject[], className: string, controllerName = INGRESS_CONTROLLER_NAME): IngressClassSelection {
  const problems: Problem[] = [];
  const cls = objects.find((o) => o.kind === 'IngressClass' && o.metadata.name === className);
  if (!cls) {
    problems.push({ severity: 'warning', kind: 'IngressClass', name: className, message: `IngressClass ${className} not found; only Ingresses with the legacy annotation ${LEGACY_CLASS_ANNOTATION}: ${className} are served until it exists with spec.controller ${controllerName}` });
    return { className, classFound: false, classMissing: true, isDefault: false, problems };
  }
  const controller = asString(asRecord(cls.spec).controller);
  if (controller !== controllerName) {
    problems.push({ severity: 'warning', kind: 'IngressClass', name: className, message: `IngressClass ${className} has spec.controller ${controller ?? '(none)'}, not ${controllerName}; its Ingresses are not served` });
    return { className, classFound: false, classMissing: false, isDefault: false, problems };
  }
  return { className, classFound: true, classMissing: false, isDefault: cls.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true', problems };
}

/** The class an Ingress asks for: spec.ingressClassName, else the legacy annotation. */
export function ingressClassOf(ing: KubeObject): string | undefined {
  return asString(asRecord(ing.spec).ingressClassName) || ing.metadata.annotations?.[LEGACY_CLASS_ANNOTATION] || undefined;
}

export function isServedIngress(ing: KubeObject, sel: IngressClassSelection): boolean {
  if (ing.kind !== 'Ingress') return false;
  const named = asString(asRecord(ing.spec).ingressClassName);
  if (named) return sel.classFound && named === sel.className;
  const legacy = ing.metadata.annotations?.[LEGACY_CLASS_ANNOTATION];
  // The legacy annotation predates IngressClass objects: like ingress-nginx, it is matched against
  // --ingress-class even when no IngressClass exists (never when one names another controller).
  if (legacy) return legacy === sel.className && (sel.classFound || sel.classMissing);
  return sel.classFound && sel.isDefault;
}

/** A hostname as Ingress allows it: DNS-1123 name, optionally `*.` + name; never an IP. */
export function validIngressHost(host: string): boolean {
  if (host.length > 253) return false;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  const labels = name.split('.');
  if (labels.length < (host.startsWith('*.') ? 2 : 1)) return false;
  if (labels.every((l) => /^[0-9]+$/.test(l))) return false;
  return labels.every((l) => l.length <= 63 && DNS_LABEL.test(l));
}

interface IngressPath {
  host: string;
  pathType: 'Exact' | 'Prefix';
  path: string;
  service: string;
  port: ServicePortRef;
  ruleIndex: number;
  pathIndex: number;
}

export interface IngressTls {
  /** Hosts listed in spec.tls[].hosts; empty means every host of the Ingress's rules. */
  hosts: string[];
  secretName?: string;
}

interface ParsedIngress {
  paths: IngressPath[];
  defaultBackend?: { service: string; port: ServicePortRef };
  timeoutMs?: number;
  tls: IngressTls[];
  sslRedirect: boolean;
  /** force-ssl-redirect: every host of the Ingress redirects plain HTTP, TLS in spec.tls or not. */
  forceSslRedirect: boolean;
  sslPassthrough: boolean;
  allowSourceRanges?: string[];
  /** The allowlist annotation is present but unreadable: every route of the Ingress denies every client. */
  denyAll: boolean;
  /** Annotations not read, and access restrictions not honoured (which set denyAll). */
  annotations: AnnotationReport;
  /** Both a portico.dev/ annotation and its nginx.ingress.kubernetes.io/ alias, with different values. */
  aliasConflicts: string[];
  /** Errors that make this version of the object invalid. */
  errors: string[];
}

function parseBackend(v: unknown, where: string, errors: string[]): { service: string; port: ServicePortRef } | undefined {
  if (!isRecord(v)) {
    errors.push(`${where}: missing backend`);
    return undefined;
  }
  if (v.resource !== undefined) {
    errors.push(`${where}: resource backends are not supported`);
    return undefined;
  }
  const svc = asRecord(v.service);
  const name = asString(svc.name);
  if (!name) {
    errors.push(`${where}: backend.service.name is required`);
    return undefined;
  }
  const port = asRecord(svc.port);
  const number = port.number;
  const portName = asString(port.name);
  if (typeof number === 'number' && Number.isInteger(number) && number > 0 && number < 65536 && !portName) return { service: name, port: { number } };
  if (portName && number === undefined) return { service: name, port: { name: portName } };
  errors.push(`${where}: backend.service.port needs exactly one of number (1-65535) or name`);
  return undefined;
}

/** Reads an Ingress's spec, collecting every validation error instead of stopping at the first. */
/** Settings an Ingress's annotations override (the config file's ssl-redirect). */
export interface IngressDefaults {
  readonly sslRedirect: boolean;
}

export function parseIngress(ing: KubeObject, defaults: IngressDefaults = { sslRedirect: true }): ParsedIngress {
  const errors: string[] = [];
  const spec = asRecord(ing.spec);
  const paths: IngressPath[] = [];
  let defaultBackend: ParsedIngress['defaultBackend'];
  if (spec.defaultBackend !== undefined) defaultBackend = parseBackend(spec.defaultBackend, 'spec.defaultBackend', errors);
  const rules = asArray(spec.rules);
  if (rules.length === 0 && spec.defaultBackend === undefined) errors.push('spec needs rules or a defaultBackend');
  rules.forEach((rule, ruleIndex) => {
    const r = asRecord(rule);
    const rawHost = asString(r.host) ?? '';
    const host = rawHost.toLowerCase();
    if (host !== '' && !validIngressHost(host)) {
      errors.push(`spec.rules[${ruleIndex}].host ${JSON.stringify(rawHost)} is not a valid hostname`);
      return;
    }
    // The API server refuses it (a DNS-1123 subdomain is lower case): said here too, so a manifest
    // that `kubectl apply` would reject does not pass unnoticed. Served lower-cased, as hosts match.
    if (host !== rawHost) errors.push(`spec.rules[${ruleIndex}].host ${JSON.stringify(rawHost)} must be lower case (RFC 1123); served as ${JSON.stringify(host)}`);
    asArray(asRecord(r.http).paths).forEach((p, pathIndex) => {
      const where = `spec.rules[${ruleIndex}].http.paths[${pathIndex}]`;
      const pr = asRecord(p);
      const pathType = asString(pr.pathType);
      if (!pathType || !PATH_TYPES.has(pathType)) {
        errors.push(`${where}: pathType ${JSON.stringify(pr.pathType ?? null)} must be Exact, Prefix or ImplementationSpecific`);
        return;
      }
      let path = asString(pr.path) ?? '';
      if (path === '' && pathType === 'ImplementationSpecific') path = '/';
      if (!path.startsWith('/')) {
        errors.push(`${where}: path ${JSON.stringify(path)} must be absolute`);
        return;
      }
      if (/[?#\s]/.test(path)) {
        errors.push(`${where}: path ${JSON.stringify(path)} must not contain '?', '#' or whitespace`);
        return;
      }
      const backend = parseBackend(pr.backend, where, errors);
      if (!backend) return;
      // ImplementationSpecific is served as Prefix (documented in README); Prefix ignores a trailing slash.
      const type = pathType === 'Exact' ? 'Exact' : 'Prefix';
      const normalized = type === 'Prefix' ? path.replace(/\/+$/, '') || '/' : path;
      paths.push({ host, pathType: type, path: normalized, service: backend.service, port: backend.port, ruleIndex, pathIndex });
    });
  });
  const tls: IngressTls[] = [];
  asArray(spec.tls).forEach((entry, i) => {
    const e = asRecord(entry);
    const hosts = asArray(e.hosts).filter((h): h is string => typeof h === 'string').map((h) => h.toLowerCase());
    for (const h of hosts) if (!validIngressHost(h)) errors.push(`spec.tls[${i}].hosts: ${JSON.stringify(h)} is not a valid hostname`);
    tls.push({ hosts: hosts.filter(validIngressHost), secretName: asString(e.secretName) || undefined });
  });
  const raw = ing.metadata.annotations ?? {};
  // ingress-nginx's names for the same settings are read too (migrations keep their manifests);
  // the portico.dev/ name wins when both are set.
  const { values: read, conflicts: aliasConflicts } = readAliased(raw, SUPPORTED_ANNOTATIONS);
  const annotations: Record<string, string> = { ...raw };
  for (const [key, v] of Object.entries(read)) annotations[PORTICO_PREFIX + key] = v;
  const review = reviewAnnotations(raw);
  const flag = (name: string, fallback: boolean): boolean => {
    const v = annotations[name];
    if (v === undefined) return fallback;
    if (v === 'true' || v === 'false') return v === 'true';
    errors.push(`annotation ${name}: ${JSON.stringify(v)} must be "true" or "false"`);
    return fallback;
  };
  const sslRedirect = flag(SSL_REDIRECT_ANNOTATION, defaults.sslRedirect);
  const sslPassthrough = flag(SSL_PASSTHROUGH_ANNOTATION, false);
  // As ingress-nginx: redirect plain HTTP to HTTPS even for hosts without TLS in this Ingress
  // (TLS ends in front of Portico, or the default certificate serves them).
  const forceSslRedirect = flag(FORCE_SSL_REDIRECT_ANNOTATION, false);
  let allowSourceRanges: string[] | undefined;
  let denyAll = false;
  const oldName = annotations[ALLOWLIST_ANNOTATION];
  const newName = annotations[ALLOWLIST_NEW_NAME];
  let allow: string | undefined = oldName ?? newName;
  if (oldName !== undefined && newName !== undefined && oldName !== newName) {
    // Two allowlists that disagree: no client is let in on a guess of which one was meant.
    errors.push(`annotations ${ALLOWLIST_ANNOTATION} and ${ALLOWLIST_NEW_NAME} (or their nginx.ingress.kubernetes.io/ names) give different ranges; the Ingress's routes deny every client until one is removed`);
    allow = undefined;
    allowSourceRanges = [];
    denyAll = true;
  }
  if (allow !== undefined) {
    // The data plane's own parser decides validity; the IR carries canonical, already valid ranges.
    const { cidrs, errors: bad } = parseCidrList(allow);
    // An allowlist that cannot be read must not open the routes to everyone.
    if (bad.length > 0 || cidrs.length === 0) {
      errors.push(`annotation ${ALLOWLIST_ANNOTATION}: ${bad.length > 0 ? `not a CIDR: ${bad.join('; ')}` : 'empty'}; the Ingress's routes deny every client until it is fixed`);
      allowSourceRanges = [];
      denyAll = true;
    } else allowSourceRanges = cidrs;
  }
  if (review.denying.length > 0) {
    allowSourceRanges = [];
    denyAll = true;
  }
  let timeoutMs: number | undefined;
  const t = annotations[TIMEOUT_ANNOTATION];
  if (t !== undefined) {
    const seconds = Number(t);
    if (Number.isFinite(seconds) && seconds > 0) timeoutMs = Math.round(seconds * 1000);
    else errors.push(`annotation ${TIMEOUT_ANNOTATION}: ${JSON.stringify(t)} is not a positive number of seconds`);
  }
  return { paths, defaultBackend, timeoutMs, tls, sslRedirect, forceSslRedirect, sslPassthrough, errors, denyAll, annotations: review, aliasConflicts, ...(allowSourceRanges !== undefined ? { allowSourceRanges } : {}) };
}

/** The hosts an Ingress serves over TLS (spec.tls), `*` when a TLS entry lists no hosts. */
export function tlsHostsOf(parsed: { tls: IngressTls[]; paths: { host: string }[] }): Set<string> {
  const hosts = new Set<string>();
  for (const t of parsed.tls) {
    if (t.hosts.length === 0) for (const p of parsed.paths) hosts.add(p.host || '*');
    for (const h of t.hosts) hosts.add(h);
  }
  return hosts;
}

export interface IngressTranslation {
  /** Ingresses that Portico owns (their current version), for status. */
  readonly served: KubeObject[];
  /** The version of each owned Ingress that is actually served (the last good one, if invalid). */
  readonly servedVersions: { object: KubeObject; origin: string }[];
  readonly problems: Problem[];
}

/**
 * Adds the routes of every served Ingress to the builder. `lastGood` holds, per Ingress, the last
 * version that had no errors: an invalid edit keeps that version serving instead of dropping routes.
 */
export function translateIngresses(
  ingresses: readonly { object: KubeObject; origin: string }[],
  index: BackendIndex,
  builder: TableBuilder,
  lastGood: Map<string, KubeObject>,
  certificateNames: (secretId: string) => readonly string[] = () => [],
  defaults: IngressDefaults = { sslRedirect: true },
): IngressTranslation {
  const problems: Problem[] = [];
  const served: KubeObject[] = [];
  const servedVersions: { object: KubeObject; origin: string }[] = [];
  const live = new Set<string>();
  const chosen: { object: KubeObject; current: KubeObject; origin: string; parsed: ParsedIngress; canary: CanaryReading }[] = [];

  for (const { object, origin } of ingresses) {
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    live.add(key);
    const canary = readCanary(object.metadata.annotations ?? {});
    // A canary's other annotations are not its own (as with ingress-nginx): the main Ingress's
    // settings apply to its share of traffic, so its spec is read without them.
    const read = (o: KubeObject): ParsedIngress => parseIngress(canary.isCanary ? withoutControllerAnnotations(o) : o, defaults);
    const parsed = read(object);
    const report = (message: string, severity: Problem['severity'] = 'error'): void => {
      problems.push({ severity, kind: 'Ingress', namespace: object.metadata.namespace, name: object.metadata.name, origin, message });
    };
    for (const e of canary.errors) report(`${e}; this canary Ingress is not served (its main Ingress keeps all traffic)`);
    for (const w of canary.warnings) report(w, 'warning');
    // Only a version that cannot be translated falls back to the last good one. A reference to a
    // missing Service or port is not that: the path is served from the current content and answers
    // 503 with the reason, exactly as a cold start on the same objects would.
    if (parsed.annotations.denying.length > 0) report(`access restrictions Portico does not apply: ${parsed.annotations.denying.join(', ')}; every route of this Ingress answers 403 until they are removed`);
    if (parsed.annotations.ignored.length > 0) report(`annotations Portico does not support, ignored: ${parsed.annotations.ignored.join(', ')}`, 'warning');
    for (const c of parsed.aliasConflicts) report(c, 'warning');
    let servedVersion = object;
    let servedParsed = parsed;
    if (parsed.errors.length === 0) {
      lastGood.set(key, object);
    } else {
      const previous = lastGood.get(key);
      if (previous && previous.metadata.generation !== object.metadata.generation) {
        for (const e of parsed.errors) report(`generation ${object.metadata.generation} is invalid: ${e}; still serving generation ${previous.metadata.generation}`);
        servedVersion = previous;
        servedParsed = read(previous);
        // An access restriction that cannot be honoured fails closed, also over the last good routes.
        if (parsed.denyAll) servedParsed = { ...servedParsed, allowSourceRanges: [], denyAll: true };
      } else {
        // No earlier good version: serve what is valid (an unreadable allowlist denies every client).
        for (const e of parsed.errors) report(e);
      }
    }
    const ns = object.metadata.namespace ?? 'default';
    const refs = [...servedParsed.paths.map((p) => ({ service: p.service, port: p.port, at: `${p.host || '*'}${p.path}` })), ...(servedParsed.defaultBackend ? [{ ...servedParsed.defaultBackend, at: 'spec.defaultBackend' }] : [])];
    for (const r of refs) {
      const problem = index.referenceProblem(ns, r.service, r.port);
      if (problem !== undefined) report(`${problem} (${r.at}): answered 503 until it exists`, 'warning');
    }
    chosen.push({ object: servedVersion, current: object, origin, parsed: servedParsed, canary });
  }
  for (const key of [...lastGood.keys()]) if (!live.has(key)) lastGood.delete(key);

  chosen.sort((a, b) => compareAge(a.object, b.object));
  // As ingress-nginx, whose server block for a host has TLS once any Ingress gives the host TLS:
  // the paths other Ingresses add to that host redirect plain HTTP too (unless ssl-redirect is
  // false on them), instead of staying reachable over plain HTTP.
  const anyTlsHosts = new Set<string>();
  for (const c of chosen) if (!c.canary.isCanary) for (const t of c.parsed.tls) for (const h of t.hosts) anyTlsHosts.add(h);
  const claimed = new Map<string, string>();
  const resolveBackend = (ns: string, service: string, port: ServicePortRef): string => {
    const resolved = index.resolve(ns, service, port);
    builder.addBackend(resolved.key, resolved.backend);
    return resolved.key;
  };
  // Path routes are added once the canaries have had their say: a canary turns its main's route
  // into several (see canaryRoutes).
  const pending: { host: string; routes: RouteIR[] }[] = [];
  const mains = new Map<string, { entry: { host: string; routes: RouteIR[] }; ns: string; owner: string }>();
  const canaries: typeof chosen = [];
  for (const chosenOne of chosen) {
    const { object, current, origin, parsed } = chosenOne;
    const ns = object.metadata.namespace ?? 'default';
    const owner = `${ns}/${object.metadata.name}`;
    const source = { kind: 'Ingress', namespace: ns, name: object.metadata.name };
    served.push(current);
    // A canary never claims a host or path: it only takes a share of its main Ingress's traffic.
    // Nor does it bring certificates (servedVersions feeds the TLS store, where the oldest
    // Ingress's certificate for a name wins): the host stays as its main Ingress serves it.
    if (chosenOne.canary.isCanary) {
      canaries.push(chosenOne);
      continue;
    }
    servedVersions.push({ object, origin });
    const tlsHosts = tlsHostsOf(parsed);
    const tlsNames = [...tlsHosts];
    const certNames = parsed.tls.flatMap((t) => (t.secretName === undefined ? [] : certificateNames(`${ns}/${t.secretName}`)));
    // As ingress-nginx: a host is served over TLS when spec.tls (of this or any served Ingress)
    // lists it, or this one's lists a wildcard that covers it, or one of its certificates names it.
    const servedOverTls = (host: string): boolean => tlsHosts.has(host) || anyTlsHosts.has(host) || hostnameCovered(tlsNames, host) || hostnameCovered(certNames, host);
    const backendKey = (service: string, port: ServicePortRef): string => resolveBackend(ns, service, port);
    const routeFor = (id: string, pathType: RouteIR['pathType'], path: string, service: string, port: ServicePortRef, host?: string): RouteIR => ({
      id,
      pathType,
      path,
      backends: [{ backend: backendKey(service, port), weight: 1 }],
      source,
      ...(parsed.timeoutMs ? { timeoutMs: parsed.timeoutMs } : {}),
      // As ingress-nginx: hosts this Ingress serves over TLS redirect plain HTTP with 308.
      ...((host !== undefined && parsed.sslRedirect && servedOverTls(host)) || parsed.forceSslRedirect ? { httpsRedirect: true } : {}),
      ...(parsed.allowSourceRanges !== undefined ? { allowSourceRanges: parsed.allowSourceRanges } : {}),
    });
    if (parsed.sslPassthrough) {
      // The connection stays encrypted: only the host can route it, to its first path's backend.
      const seen = new Set<string>();
      for (const p of parsed.paths) {
        if (p.host === '') {
          problems.push({ severity: 'error', kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message: `${SSL_PASSTHROUGH_ANNOTATION}: a rule without a host cannot be matched by SNI; not served` });
          continue;
        }
        if (seen.has(p.host)) continue;
        seen.add(p.host);
        const claimKey = `passthrough ${p.host}`;
        const holder = claimed.get(claimKey);
        if (holder !== undefined) {
          problems.push({ severity: 'error', kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message: `TLS passthrough for host ${p.host} is already served by the older Ingress ${holder}; this one is not served` });
          continue;
        }
        claimed.set(claimKey, owner);
        // The allowlist holds for the encrypted connection too: checked on its client address
        // (the TCP peer or a trusted PROXY header's source; no HTTP headers are read).
        builder.addPassthrough({ hostname: p.host, backend: backendKey(p.service, p.port), source, ...(parsed.allowSourceRanges !== undefined ? { allowSourceRanges: parsed.allowSourceRanges } : {}) });
      }
      continue;
    }
    for (const p of parsed.paths) {
      const claimKey = `${p.host || '*'} ${p.pathType} ${p.path}`;
      const holder = claimed.get(claimKey);
      if (holder !== undefined) {
        const message = holder === owner
          ? `${p.pathType} path ${p.path} on host ${p.host || '*'} is defined more than once in this Ingress; the first is served, not spec.rules[${p.ruleIndex}].http.paths[${p.pathIndex}]`
          : `${p.pathType} path ${p.path} on host ${p.host || '*'} is already served by the older Ingress ${holder}; this one is not served`;
        problems.push({ severity: 'error', kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message });
        continue;
      }
      claimed.set(claimKey, owner);
      const entry = { host: p.host || '*', routes: [routeFor(`${owner}#${p.ruleIndex}.${p.pathIndex}`, p.pathType, p.path, p.service, p.port, p.host || '*')] };
      pending.push(entry);
      mains.set(claimKey, { entry, ns, owner });
    }
    if (parsed.defaultBackend) {
      const route = routeFor(`${owner}#default`, 'Prefix', '/', parsed.defaultBackend.service, parsed.defaultBackend.port);
      const hosts = new Set(parsed.paths.map((p) => p.host || '*'));
      for (const host of hosts) builder.setFallback(host, route);
      const holder = builder.setDefaultRoute(route);
      if (holder !== undefined && holder !== route) {
        problems.push({ severity: 'warning', kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message: `spec.defaultBackend serves only this Ingress's hosts; the older Ingress ${holder.source.namespace}/${holder.source.name} holds the default for unmatched hosts` });
      }
    }
  }
  // Oldest canary first: as with ingress-nginx, one canary per host and path.
  const canaryHolders = new Map<string, string>();
  for (const { object, origin, parsed, canary } of canaries) {
    if (canary.config === undefined) continue; // refused, reported above
    const ns = object.metadata.namespace ?? 'default';
    const owner = `${ns}/${object.metadata.name}`;
    const source = { kind: 'Ingress', namespace: ns, name: object.metadata.name };
    const report = (message: string, severity: Problem['severity'] = 'error'): void => {
      problems.push({ severity, kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message });
    };
    if (parsed.defaultBackend) report('spec.defaultBackend of a canary Ingress is not served: a canary only takes a share of the paths a main Ingress serves', 'warning');
    if (parsed.tls.length > 0) report("spec.tls of a canary Ingress is not used: its hosts keep the main Ingress's TLS settings and certificates", 'warning');
    for (const p of parsed.paths) {
      const claimKey = `${p.host || '*'} ${p.pathType} ${p.path}`;
      const where = `${p.pathType} path ${p.path} on host ${p.host || '*'}`;
      const main = mains.get(claimKey);
      if (main === undefined) {
        report(`${where}: no main (non-canary) Ingress serves it, and a canary never serves alone; not served`);
        continue;
      }
      // Stricter than ingress-nginx, which pairs across namespaces: anyone allowed to create an
      // Ingress somewhere could otherwise take any share of another namespace's traffic.
      if (main.ns !== ns) {
        report(`${where} is served by the Ingress ${main.owner} of another namespace; a canary applies only to a main Ingress of its own namespace; not served`);
        continue;
      }
      const holder = canaryHolders.get(claimKey);
      if (holder !== undefined) {
        report(holder === owner
          ? `${where} is defined more than once in this canary Ingress; the first is served, not spec.rules[${p.ruleIndex}].http.paths[${p.pathIndex}]`
          : `${where} already has the older canary Ingress ${holder}; only one canary per host and path is served (as with ingress-nginx), not this one`);
        continue;
      }
      canaryHolders.set(claimKey, owner);
      main.entry.routes = canaryRoutes(main.entry.routes[0], resolveBackend(ns, p.service, p.port), canary.config, source);
    }
  }
  for (const e of pending) for (const r of e.routes) builder.addRoute(e.host, r);
  return { served, servedVersions, problems };
}

/**
 * A main Ingress's route with a canary: routes for the same host and path with one header
 * condition each, which the router tries before the unconditioned main route; among them the IR
 * order decides, giving ingress-nginx's precedence (header, then cookie, then weight). Each is a
 * copy of the main route (timeouts, redirects, allowlists: the canary's traffic gets the main's
 * settings), with other backends. The weight splits the main route by smooth weighted
 * round-robin.
 */
export function canaryRoutes(main: RouteIR, canaryBackend: string, c: CanaryConfig, source: RouteSource): RouteIR[] {
  const mainBackend = main.backends[0].backend;
  const to = (suffix: string, match: ValueMatchIR, backend: string, src: RouteSource): RouteIR => ({ ...main, id: `${main.id}~canary-${suffix}`, headers: [match], backends: [{ backend, weight: 1 }], source: src });
  const out: RouteIR[] = [];
  if (c.header !== undefined) {
    const { name, match } = c.header;
    if (match.type === 'always-never') {
      out.push(to('header-always', { name, type: 'Exact', value: 'always' }, canaryBackend, source));
      out.push(to('header-never', { name, type: 'Exact', value: 'never' }, mainBackend, main.source));
    } else out.push(to('header', { name, type: match.type, value: match.value }, canaryBackend, source));
  }
  if (c.cookie !== undefined) {
    out.push(to('cookie-always', cookieMatch(c.cookie, 'always'), canaryBackend, source));
    out.push(to('cookie-never', cookieMatch(c.cookie, 'never'), mainBackend, main.source));
  }
  out.push(c.weight > 0 ? { ...main, backends: [{ backend: mainBackend, weight: c.total - c.weight }, { backend: canaryBackend, weight: c.weight }] } : main);
  return out;
}
