// Real-IP settings: named like ingress-nginx ConfigMap keys, read from a YAML config file
// (`--config FILE`) or from command-line flags of the same names. Values may be ConfigMap
// strings ("true", "10.0.0.0/8,192.168.0.0/16") or plain YAML booleans and lists. Bad values
// become error strings; nothing here throws.
//
// Trust is two separate lists on purpose: proxy-protocol-trusted-cidrs says who may send a
// PROXY header (checked against the socket peer); proxy-real-ip-cidr says whose forwarded-for
// header is read (checked against the PROXY source when there is one, else the socket peer).
// whitelist-source-range is access control decided on the address those two produce: the
// default allowlist of every route without its own portico.dev/whitelist-source-range.

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CidrSet } from './cidr.ts';
import type { ProxyProtocolMode, RealIpConfig } from './client-ip.ts';
import { nearestName } from '../../router/similar.ts';

export type { ProxyProtocolMode, RealIpConfig } from './client-ip.ts';

export const REAL_IP_KEYS = [
  'use-proxy-protocol',
  'proxy-protocol-trusted-cidrs',
  'use-forwarded-headers',
  'proxy-real-ip-cidr',
  'forwarded-for-header',
  'compute-full-forwarded-for',
  'whitelist-source-range',
] as const;

/** Command-line flags, in the shape of src/options.ts's SERVE_FLAGS entries. */
export const REAL_IP_FLAGS: readonly { readonly name: string; readonly value: string; readonly help: string }[] = [
  { name: 'use-proxy-protocol', value: 'false', help: 'expect a PROXY protocol v1/v2 header: true (required), false, or optional' },
  { name: 'proxy-protocol-trusted-cidrs', value: 'all', help: 'CIDRs allowed to send a PROXY header, comma-separated or repeated (default: every peer; narrow it to the load balancer subnet)' },
  { name: 'use-forwarded-headers', value: 'false', help: 'trust the X-Forwarded-For chain (forwarded-for-header) and X-Forwarded-Proto/Host/Port sent by hops in proxy-real-ip-cidr' },
  { name: 'proxy-real-ip-cidr', value: '', help: 'CIDRs of proxies whose forwarded-for header is believed, comma-separated or repeated (default: none)' },
  { name: 'forwarded-for-header', value: 'X-Forwarded-For', help: 'header carrying the client chain: X-Forwarded-For or Forwarded' },
  { name: 'compute-full-forwarded-for', value: 'false', help: 'send the whole trusted X-Forwarded-For chain plus the peer upstream' },
  { name: 'whitelist-source-range', value: 'CIDRS', help: 'CIDRs of clients allowed on routes without their own portico.dev/whitelist-source-range, comma-separated or repeated (others get 403; default: every client)' },
];

/** Flags that take a list: repeating one adds to it (`--proxy-real-ip-cidr A --proxy-real-ip-cidr B`). */
export const REAL_IP_LIST_KEYS: ReadonlySet<string> = new Set(['proxy-protocol-trusted-cidrs', 'proxy-real-ip-cidr', 'whitelist-source-range']);

export function defaultRealIpConfig(): RealIpConfig {
  return {
    useProxyProtocol: 'off',
    proxyProtocolTrustedCidrs: undefined,
    useForwardedHeaders: false,
    proxyRealIpCidr: new CidrSet(),
    forwardedForHeader: 'X-Forwarded-For',
    computeFullForwardedFor: false,
    whitelistSourceRange: undefined,
  };
}

export interface RealIpSettings {
  readonly config: RealIpConfig;
  /** One line per bad value; the setting keeps its default. */
  readonly errors: string[];
  /** Valid but risky combinations, worth logging at startup. */
  readonly warnings: string[];
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function describe(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function parseBool(key: string, v: unknown, errors: string[]): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.trim().toLowerCase();
    if (TRUE.has(l)) return true;
    if (FALSE.has(l)) return false;
  }
  errors.push(`${key}: expected true or false, got ${describe(v)}`);
  return undefined;
}

/** A list given as a YAML list, a comma/space separated string, or repeated flags. */
function parseList(key: string, v: unknown, errors: string[]): string[] | undefined {
  const items: string[] = [];
  const add = (x: unknown): boolean => {
    if (typeof x !== 'string') return false;
    for (const part of x.split(/[\s,]+/)) if (part !== '') items.push(part);
    return true;
  };
  if (Array.isArray(v)) {
    for (const x of v) {
      if (!add(x)) {
        errors.push(`${key}: list items must be strings, got ${describe(x)}`);
        return undefined;
      }
    }
    return items;
  }
  if (add(v)) return items;
  errors.push(`${key}: expected a comma-separated string or a list of CIDRs, got ${describe(v)}`);
  return undefined;
}

function parseCidrs(key: string, v: unknown, errors: string[]): CidrSet | undefined {
  const list = parseList(key, v, errors);
  if (list === undefined) return undefined;
  const { set, errors: bad } = CidrSet.parse(list);
  for (const e of bad) errors.push(`${key}: ${e}`);
  return bad.length > 0 ? undefined : set;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Reads the real-IP settings from a map keyed by their ConfigMap names: the config file's map,
 * flag values, or both merged (`{ ...file, ...flags }`: flags win). Other keys are ignored;
 * undefined/null/empty values mean "default".
 */
export function parseRealIpSettings(raw: Record<string, unknown>): RealIpSettings {
  const errors: string[] = [];
  const warnings: string[] = [];
  const d = defaultRealIpConfig();
  const src: Record<string, unknown> = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
  if (src !== raw) errors.push(`real-ip settings: expected a map of settings, got ${describe(raw)}`);
  const get = (k: string): unknown => {
    const v = Object.hasOwn(src, k) ? src[k] : undefined;
    return v === null || (typeof v === 'string' && v.trim() === '') ? undefined : v;
  };

  let useProxyProtocol: ProxyProtocolMode = d.useProxyProtocol;
  const upp = get('use-proxy-protocol');
  if (upp !== undefined) {
    if (typeof upp === 'string' && upp.trim().toLowerCase() === 'optional') useProxyProtocol = 'optional';
    else {
      const e: string[] = [];
      const b = parseBool('use-proxy-protocol', upp, e);
      if (b === undefined) errors.push(`use-proxy-protocol: expected true, false or optional, got ${describe(upp)}`);
      else useProxyProtocol = b ? 'on' : 'off';
    }
  }

  let proxyProtocolTrustedCidrs = d.proxyProtocolTrustedCidrs;
  const pptc = get('proxy-protocol-trusted-cidrs');
  if (pptc !== undefined) {
    const set = parseCidrs('proxy-protocol-trusted-cidrs', pptc, errors);
    // An empty list is treated as unset (every peer), not as "trust nobody".
    if (set !== undefined && !set.isEmpty) proxyProtocolTrustedCidrs = set;
  }

  let useForwardedHeaders = d.useForwardedHeaders;
  const ufh = get('use-forwarded-headers');
  if (ufh !== undefined) useForwardedHeaders = parseBool('use-forwarded-headers', ufh, errors) ?? d.useForwardedHeaders;

  let proxyRealIpCidr = d.proxyRealIpCidr;
  const pric = get('proxy-real-ip-cidr');
  if (pric !== undefined) proxyRealIpCidr = parseCidrs('proxy-real-ip-cidr', pric, errors) ?? d.proxyRealIpCidr;

  let forwardedForHeader = d.forwardedForHeader;
  const ffh = get('forwarded-for-header');
  if (ffh !== undefined) {
    if (typeof ffh === 'string' && HEADER_NAME.test(ffh.trim())) forwardedForHeader = ffh.trim();
    else errors.push(`forwarded-for-header: expected a header name such as X-Forwarded-For or Forwarded, got ${describe(ffh)}`);
  }

  let computeFullForwardedFor = d.computeFullForwardedFor;
  const cff = get('compute-full-forwarded-for');
  if (cff !== undefined) computeFullForwardedFor = parseBool('compute-full-forwarded-for', cff, errors) ?? d.computeFullForwardedFor;

  let whitelistSourceRange = d.whitelistSourceRange;
  const wsr = get('whitelist-source-range');
  if (wsr !== undefined) {
    const set = parseCidrs('whitelist-source-range', wsr, errors);
    // As in ingress-nginx, an empty list is no default allowlist (every client), not "nobody".
    if (set !== undefined && !set.isEmpty) whitelistSourceRange = set;
  }

  if (useProxyProtocol !== 'off' && proxyProtocolTrustedCidrs === undefined) {
    warnings.push('use-proxy-protocol is on and proxy-protocol-trusted-cidrs is not set: a PROXY header is believed from every peer; set it to the load balancer subnet');
  }
  if (useProxyProtocol === 'off' && proxyProtocolTrustedCidrs !== undefined) {
    warnings.push('proxy-protocol-trusted-cidrs has no effect while use-proxy-protocol is false');
  }
  if (proxyRealIpCidr.coversEverything) {
    warnings.push(`proxy-real-ip-cidr ${proxyRealIpCidr.toString()} trusts every peer: any client can set its own ${forwardedForHeader}`);
  }
  if (!useForwardedHeaders && !proxyRealIpCidr.isEmpty) {
    warnings.push(`proxy-real-ip-cidr has no effect while use-forwarded-headers is false: ${forwardedForHeader} is not believed from any peer`);
  }
  if (useForwardedHeaders && proxyRealIpCidr.isEmpty) {
    warnings.push('use-forwarded-headers has no effect until proxy-real-ip-cidr lists the proxies in front of Portico');
  }

  return {
    config: { useProxyProtocol, proxyProtocolTrustedCidrs, useForwardedHeaders, proxyRealIpCidr, forwardedForHeader, computeFullForwardedFor, whitelistSourceRange },
    errors,
    warnings,
  };
}

/**
 * The settings as a plain map that parseRealIpSettings reads back to an equal config: for
 * passing the config to worker processes as JSON.
 */
export function realIpSettingsToRecord(c: RealIpConfig): Record<string, string> {
  const out: Record<string, string> = {
    'use-proxy-protocol': c.useProxyProtocol === 'on' ? 'true' : c.useProxyProtocol === 'off' ? 'false' : 'optional',
    'use-forwarded-headers': String(c.useForwardedHeaders),
    'proxy-real-ip-cidr': c.proxyRealIpCidr.toString(),
    'forwarded-for-header': c.forwardedForHeader,
    'compute-full-forwarded-for': String(c.computeFullForwardedFor),
  };
  if (c.proxyProtocolTrustedCidrs !== undefined) out['proxy-protocol-trusted-cidrs'] = c.proxyProtocolTrustedCidrs.toString();
  if (c.whitelistSourceRange !== undefined) out['whitelist-source-range'] = c.whitelistSourceRange.toString();
  return out;
}

const KNOWN_KEYS: ReadonlySet<string> = new Set(REAL_IP_KEYS);

/**
 * The config file's keys that Portico does not read, each with the known key it is closest to
 * when that looks like a typo (`use-proxy-protocl (did you mean use-proxy-protocol?)`). An
 * ingress-nginx ConfigMap has many keys Portico has no use for; they are reported, not refused.
 */
export function unknownConfigKeys(values: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of Object.keys(values)) {
    if (KNOWN_KEYS.has(key)) continue;
    const near = nearestName(key, REAL_IP_KEYS);
    out.push(near === undefined ? key : `${key} (did you mean ${near}?)`);
  }
  return out;
}

/**
 * Reads a YAML config file into a settings map: either a flat map of keys, or a Kubernetes
 * ConfigMap manifest (its `data` is used). Errors are returned, never thrown.
 */
export async function loadConfigFile(path: string): Promise<{ values: Record<string, unknown>; errors: string[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { values: {}, errors: [`config file ${path}: ${(err as Error).message}`] };
  }
  return parseConfigText(text, path);
}

/** The parsing half of loadConfigFile, for text already in hand. */
export function parseConfigText(text: string, name = 'config'): { values: Record<string, unknown>; errors: string[] } {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { values: {}, errors: [`config file ${name}: invalid YAML: ${(err as Error).message}`] };
  }
  if (doc === null || doc === undefined) return { values: {}, errors: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) return { values: {}, errors: [`config file ${name}: expected a map of settings`] };
  const map = doc as Record<string, unknown>;
  if (map.kind === 'ConfigMap') {
    const data = map.data;
    if (data === undefined || data === null) return { values: {}, errors: [] };
    if (typeof data !== 'object' || Array.isArray(data)) return { values: {}, errors: [`config file ${name}: ConfigMap data must be a map`] };
    return { values: data as Record<string, unknown>, errors: [] };
  }
  return { values: map, errors: [] };
}
