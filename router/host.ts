// Host header normalisation: lower-case, port and trailing dot removed.
// Requests repeat the same few Host values, so results are cached: after the first request for a
// host, a lookup allocates nothing.

export interface HostKey {
  /** Normalised hostname, e.g. `api.example.com` or `[::1]`. */
  readonly name: string;
  /** What a one-label wildcard `*.X` must have as X: everything after the first label, or '' if none. */
  readonly wildcardSuffix: string;
  /** Every proper suffix after a dot, longest first (`b.example.com`, `example.com`, `com`): Gateway API wildcards. */
  readonly suffixes: readonly string[];
}

const EMPTY: HostKey = Object.freeze({ name: '', wildcardSuffix: '', suffixes: Object.freeze([]) });

function suffixesOf(name: string): readonly string[] {
  const out: string[] = [];
  if (name.charCodeAt(0) === 91 /* [ */) return Object.freeze(out);
  for (let i = name.indexOf('.'); i > 0 && i < name.length - 1; i = name.indexOf('.', i + 1)) out.push(name.slice(i + 1));
  return Object.freeze(out);
}
const MAX_CACHED = 4096;
let cache = new Map<string, HostKey>();

export function normalizeHostname(raw: string): string {
  let host = raw;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    host = close === -1 ? host : host.slice(0, close + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

// The last host asked for: requests in a row mostly name the same one, and comparing it costs
// less than hashing it for the Map (the parser gives a new string per request).
let lastRaw = '';
let lastKey: HostKey = EMPTY;

export function hostKey(raw: string | undefined): HostKey {
  if (raw === undefined || raw === '') return EMPTY;
  if (raw === lastRaw) return lastKey;
  const hit = cache.get(raw) ?? newKey(raw);
  lastRaw = raw;
  lastKey = hit;
  return hit;
}

function newKey(raw: string): HostKey {
  const name = normalizeHostname(raw);
  const dot = name.indexOf('.');
  const key: HostKey = Object.freeze({ name, wildcardSuffix: dot <= 0 || name.charCodeAt(0) === 91 ? '' : name.slice(dot + 1), suffixes: suffixesOf(name) });
  // Clients control the Host header: bound the cache so random hosts cannot grow it without limit.
  if (cache.size >= MAX_CACHED) cache = new Map();
  cache.set(raw, key);
  return key;
}
