// Compiles a RoutingIR into a frozen RoutingTable. The primary compiles each IR once to validate
// it; every worker compiles the same IR again (functions and Maps do not cross IPC).

import { compileFilters, FilterError, type CompiledFilters } from './filters.ts';
import { hostKey, type HostKey } from './host.ts';
import { routeLabels, type RouteLabels } from './labels.ts';
import { needsNormalizing, normalizePath, pathEnd } from './path.ts';
import { compileSafeRegex, RegexError, type SafeRegex } from './regex.ts';
import { PathNode, findChild, freezeTrie, getOrAddChild, splitSegments } from './trie.ts';
import { withEndpointSets, type EndpointSetsIR } from './endpoints.ts';
import type { BackendIR, EndpointIR, MirrorIR, RouteIR, RoutingIR, ValueMatchIR, VirtualHostIR } from './types.ts';

/** What a route's extra conditions may read from a request. Only called when a route has some. */
export interface RequestAttributes {
  readonly method: string;
  /** Header value by lower-case name; several values joined with ', '. */
  header(name: string): string | undefined;
  queryParam(name: string): string | undefined;
  /**
   * The local port the request arrived on (the listener), for Gateway API listener isolation.
   * Undefined: not known, and listener isolation is not applied.
   */
  readonly localPort?: number;
}

export interface CompiledEndpoint {
  readonly address: string;
  readonly port: number;
  /** `http://10.0.0.1:8080`, `http://[fd00::1]:80`: the connection-pool key. */
  readonly origin: string;
}

export interface CompiledBackend {
  readonly name: string;
  readonly protocol: 'http' | 'https' | 'h2c';
  /**
   * The endpoint set: swapped whole, on its own, by RoutingTable.updateEndpoints (an EndpointSlice
   * change recompiles no route). Each list is frozen; a request reads it once when it picks.
   */
  endpoints: readonly CompiledEndpoint[];
  unavailableReason: string | undefined;
  /** Answer with this status instead of proxying (an unresolvable Gateway API backendRef). */
  readonly errorStatus: 500 | undefined;
  /** Round-robin position: run-time state, the one mutable part of a table. */
  readonly cursor: Uint32Array;
}

interface CompiledValueMatch {
  /** A query parameter (case-sensitive name), else a header (lower-case name). */
  readonly query: boolean;
  readonly name: string;
  /** The value an Exact match wants; undefined for a RegularExpression match. */
  readonly exact: string | undefined;
  readonly regex: SafeRegex | undefined;
}

export interface CompiledBackendRef {
  readonly backend: CompiledBackend;
  readonly weight: number;
  /** backendRef filters: applied, after the route's, to the requests this backend gets. */
  readonly filters: CompiledFilters | undefined;
  /** backendRef RequestMirrors: copies of the requests this backend gets. */
  readonly mirrors: readonly CompiledMirror[] | undefined;
}

export interface CompiledMirror {
  readonly backend: CompiledBackend;
  /** Share of requests mirrored, 0-1. */
  readonly fraction: number;
}

/** A TLS passthrough host: where its connections go, and who may open them. */
export interface CompiledPassthrough {
  /** The one backend, or the first of several (pick one per connection with pickPassthroughBackend). */
  readonly backend: CompiledBackend;
  /** Every backend with its weight, for pickBackendRef; one entry of weight 1 when there is one. */
  readonly backends: readonly { readonly backend: CompiledBackend; readonly weight: number }[];
  readonly totalWeight: number;
  readonly currentWeights: Float64Array;
  /** As RouteIR.allowSourceRanges, checked on the connection's client address. */
  readonly allowSourceRanges?: readonly string[];
}

export interface CompiledRoute {
  readonly ir: RouteIR;
  readonly id: string;
  readonly method: string | undefined;
  readonly headers: readonly CompiledValueMatch[] | undefined;
  readonly queryParams: readonly CompiledValueMatch[] | undefined;
  /** headers and queryParams together, in the order conditionsMatch tries them (orderConditions). */
  readonly conditions: readonly CompiledValueMatch[] | undefined;
  /** No method, header or query condition: only listener isolation can refuse it. */
  readonly unconditional: boolean;
  /**
   * `conditions` flattened for conditionsMatch (see flatChecks), the first one also inline
   * (firstKind, firstName, firstOperand): that is where most candidates are turned down, and the
   * route's first fields share a cache line.
   */
  readonly checks: readonly unknown[] | undefined;
  readonly firstKind: number;
  readonly firstName: string;
  readonly firstOperand: unknown;
  readonly backends: readonly CompiledBackendRef[];
  readonly totalWeight: number;
  /** Smooth weighted round-robin state, one current weight per backendRef (see pickBackendRef). */
  readonly currentWeights: Float64Array;
  /** Gateway API rule filters (header edits, rewrite, redirect), compiled once. */
  readonly filters: CompiledFilters | undefined;
  /** Some backendRef has a filter answered by Portico (CORS, RequestRedirect): pick before answering. */
  readonly backendAnswers: boolean;
  /** RequestMirror targets of the rule. */
  readonly mirrors: readonly CompiledMirror[] | undefined;
  /** A RegularExpression path's compiled pattern (see regex.ts for the accepted subset). */
  readonly pathRegex: SafeRegex | undefined;
  /** Metrics labels, from the table only (src/metrics.ts). */
  readonly labels: RouteLabels;
  /** `port|hostname` of the Gateway listener it is attached through (RouteIR.listener). */
  readonly listenerKey: string | undefined;
}

export interface VirtualHost {
  readonly hostname: string;
  readonly root: PathNode<CompiledRoute>;
  /** RegularExpression routes, most specific first: tried after Exact, before Prefix matches. */
  readonly regex: readonly CompiledRoute[] | undefined;
  readonly fallback: CompiledRoute | undefined;
}

export class CompileError extends Error {}

// Condition kinds in CompiledRoute.checks: bit 0 set for a query parameter, bit 1 for a regex.
const QUERY = 1;
const REGEX = 2;

/**
 * Conditions as one flat array, three slots each: kind, name, and the exact value or the regex.
 * One object instead of an array of objects: a lookup that turns a candidate down (most do, at
 * its first condition) reads one or two cache lines fewer per candidate.
 */
function flatChecks(conditions: readonly CompiledValueMatch[] | undefined): readonly unknown[] | undefined {
  if (conditions === undefined) return undefined;
  const out: unknown[] = [];
  for (const c of conditions) out.push((c.query ? QUERY : 0) | (c.regex === undefined ? 0 : REGEX), c.name, c.regex ?? c.exact);
  return Object.freeze(out);
}

function compileValueMatch(m: ValueMatchIR, query: boolean): CompiledValueMatch {
  const name = sharedString(query ? m.name : m.name.toLowerCase());
  // One object shape for both kinds (exact: `regex` undefined), tested inline in conditionsMatch:
  // a closure per match made every conditioned lookup a megamorphic call.
  if (m.type === 'Exact') return Object.freeze({ query, name, exact: sharedString(m.value), regex: undefined });
  return Object.freeze({ query, name, exact: undefined, regex: safeRegex(m.value) });
}

// Cost rank of a condition: a string comparison, then a one-pass or bounded regex (~20-25 ns),
// then one on V8's linear engine (in workers; it interprets: ~0.4 us even for a short value).
const cost = (m: CompiledValueMatch): number => (m.regex === undefined ? 0 : m.regex.direct || m.regex.bounded ? 1 : 2);

/**
 * A route's header and query conditions, cheapest first. They are ANDed and reading a request
 * has no effect, so the order changes only how soon a failing candidate is left.
 */
function orderConditions(headers: readonly CompiledValueMatch[] | undefined, query: readonly CompiledValueMatch[] | undefined): readonly CompiledValueMatch[] | undefined {
  const all = [...(headers ?? []), ...(query ?? [])];
  if (all.length === 0) return undefined;
  // Array.prototype.sort is stable: headers before query parameters, each in IR order, within a rank.
  return Object.freeze(all.sort((a, b) => cost(a) - cost(b)));
}

// While a table compiles: one copy of each condition name, value and pattern for all its routes.
// Routes tend to repeat them (the same header on every canary rule), and a lookup then finds
// them warm in cache instead of reading a copy per route. A compiled regex has no state
// (no g or y flag), so routes can share it. Compiling is synchronous, so one variable serves.
let shared: { strings: Map<string, string>; regexes: Map<string, SafeRegex> } | undefined;

function sharedString(s: string): string {
  if (shared === undefined) return s;
  const hit = shared.strings.get(s);
  if (hit !== undefined) return hit;
  shared.strings.set(s, s);
  return s;
}

function safeRegex(pattern: string): SafeRegex {
  const hit = shared?.regexes.get(pattern);
  if (hit !== undefined) return hit;
  try {
    const re = compileSafeRegex(pattern);
    shared?.regexes.set(pattern, re);
    return re;
  } catch (err) {
    if (err instanceof RegexError) throw new CompileError(err.message);
    throw err;
  }
}

function compileEndpoints(b: Pick<BackendIR, 'name' | 'protocol'>, endpoints: readonly EndpointIR[]): readonly CompiledEndpoint[] {
  return Object.freeze(
    endpoints.map((e) => {
      if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) throw new CompileError(`backend ${b.name}: bad port ${e.port}`);
      const host = e.address.includes(':') ? `[${e.address}]` : e.address;
      const scheme = b.protocol === 'https' ? 'https' : 'http';
      return Object.freeze({ address: e.address, port: e.port, origin: `${scheme}://${host}:${e.port}` });
    }),
  );
}

function compileBackend(b: BackendIR): CompiledBackend {
  // Sealed, not frozen: the endpoint set is swapped in place (updateEndpoints).
  return Object.seal({
    name: b.name,
    protocol: b.protocol,
    endpoints: compileEndpoints(b, b.endpoints),
    unavailableReason: b.unavailableReason,
    errorStatus: b.errorStatus,
    cursor: new Uint32Array(1),
  });
}

function compileRoute(r: RouteIR, backends: Map<string, CompiledBackend>, virtualHost: string | undefined): CompiledRoute {
  if (r.pathType !== 'RegularExpression' && r.path.charCodeAt(0) !== 47) throw new CompileError(`route ${r.id}: path must start with '/'`);
  // ReplacePrefixMatch replaces the route's own prefix ('' for '/').
  const prefix = r.pathType === 'Prefix' ? r.path.replace(/\/+$/, '') : undefined;
  const filters = (ir: RouteIR['filters']): CompiledFilters | undefined => {
    try {
      return compileFilters(ir, prefix);
    } catch (err) {
      if (err instanceof FilterError) throw new CompileError(`route ${r.id}: ${err.message}`);
      throw err;
    }
  };
  const mirrors = (list: readonly MirrorIR[] | undefined): readonly CompiledMirror[] | undefined =>
    list?.length
      ? Object.freeze(list.map((m) => {
          const backend = backends.get(m.backend);
          if (backend === undefined) throw new CompileError(`route ${r.id}: unknown mirror backend ${m.backend}`);
          if (!(m.fraction >= 0 && m.fraction <= 1)) throw new CompileError(`route ${r.id}: bad mirror fraction ${m.fraction}`);
          return Object.freeze({ backend, fraction: m.fraction });
        }))
      : undefined;
  const refs = r.backends.map((ref): CompiledBackendRef => {
    const backend = backends.get(ref.backend);
    if (backend === undefined) throw new CompileError(`route ${r.id}: unknown backend ${ref.backend}`);
    if (!(ref.weight >= 0)) throw new CompileError(`route ${r.id}: bad weight ${ref.weight}`);
    return Object.freeze({ backend, weight: ref.weight, filters: filters(ref.filters), mirrors: mirrors(ref.filters?.mirrors) });
  });
  const headers = r.headers?.length ? Object.freeze(r.headers.map((h) => compileValueMatch(h, false))) : undefined;
  const queryParams = r.queryParams?.length ? Object.freeze(r.queryParams.map((q) => compileValueMatch(q, true))) : undefined;
  const conditions = orderConditions(headers, queryParams);
  const checks = flatChecks(conditions);
  return Object.freeze({
    // What conditionsMatch reads first, so a candidate it turns down costs one cache line.
    listenerKey: r.listener === undefined ? undefined : listenerKey(r.listener.port, r.listener.hostname),
    unconditional: r.method === undefined && conditions === undefined,
    method: r.method,
    firstKind: (checks?.[0] as number | undefined) ?? 0,
    firstName: (checks?.[1] as string | undefined) ?? '',
    firstOperand: checks?.[2],
    checks,
    conditions,
    ir: r,
    id: r.id,
    headers,
    queryParams,
    backends: Object.freeze(refs),
    totalWeight: refs.reduce((sum, ref) => sum + ref.weight, 0),
    currentWeights: new Float64Array(refs.length),
    filters: filters(r.filters),
    backendAnswers: refs.some((ref) => ref.filters?.cors !== undefined || ref.filters?.redirect !== undefined),
    mirrors: mirrors(r.filters?.mirrors),
    pathRegex: r.pathType === 'RegularExpression' ? safeRegex(r.path) : undefined,
    labels: routeLabels(r.source, virtualHost, r.path),
  });
}

// Among routes ending at the same node, more specific conditions come first (the Gateway API's
// precedence: method, then header count, then query count); IR order breaks ties, and the
// translator puts older objects first. Derived entries (RouteIR.derived) come after all others.
function specificity(r: CompiledRoute): number {
  return (r.ir.derived === true ? -(1 << 22) : 0) + (r.method ? 1 << 20 : 0) + (r.headers?.length ?? 0) * 1024 + (r.queryParams?.length ?? 0);
}

function compileVirtualHost(vh: VirtualHostIR, backends: Map<string, CompiledBackend>): VirtualHost {
  const root = new PathNode<CompiledRoute>('');
  const exact = new Map<PathNode<CompiledRoute>, CompiledRoute[]>();
  const prefix = new Map<PathNode<CompiledRoute>, CompiledRoute[]>();
  const regex: CompiledRoute[] = [];
  for (const r of vh.routes) {
    const route = compileRoute(r, backends, vh.hostname);
    if (r.pathType === 'RegularExpression') {
      regex.push(route);
      continue;
    }
    const path = r.pathType === 'Prefix' && r.path.length > 1 && r.path.endsWith('/') ? r.path.replace(/\/+$/, '') || '/' : r.path;
    let node = root;
    for (const seg of splitSegments(path)) node = getOrAddChild(node, seg);
    const bucket = r.pathType === 'Exact' ? exact : prefix;
    const list = bucket.get(node) ?? [];
    list.push(route);
    bucket.set(node, list);
  }
  for (const [node, list] of exact) node.exact = Object.freeze(stableSortBySpecificity(list));
  for (const [node, list] of prefix) node.prefix = Object.freeze(stableSortBySpecificity(list));
  freezeTrie(root);
  return Object.freeze({ hostname: vh.hostname, root, regex: regex.length > 0 ? Object.freeze(stableSortBySpecificity(regex)) : undefined, fallback: vh.fallback ? compileRoute(vh.fallback, backends, vh.hostname) : undefined });
}

function stableSortBySpecificity(list: CompiledRoute[]): CompiledRoute[] {
  return list
    .map((route, index) => ({ route, index, s: specificity(route) }))
    .sort((a, b) => b.s - a.s || a.index - b.index)
    .map((x) => x.route);
}

const listenerKey = (port: number, hostname: string): string => `${port}|${hostname}`;

/** The listeners of one port, by what a Host must be to belong to them (values: listener keys). */
interface PortListeners {
  readonly exact: Map<string, string>;
  /** `*.suffix` listeners, by suffix. */
  readonly suffix: Map<string, string>;
  /** The listener without a hostname, if any. */
  any: string | undefined;
}

/** No Gateway listener on the request's port matches its Host: no Gateway route applies. */
const NO_LISTENER = '\0';
// The listener the request being matched belongs to; undefined: isolation not applied. Lookups
// are synchronous, so one variable serves every lookup (as prefixStack does).
let activeListener: string | undefined;

function conditionsMatch(route: CompiledRoute, req: RequestAttributes | undefined): boolean {
  if (route.listenerKey !== undefined && activeListener !== undefined && route.listenerKey !== activeListener) return false;
  if (route.unconditional) return true;
  if (req === undefined) return false;
  // The method first: one comparison, and it rules out most candidates of a method-split path.
  if (route.method !== undefined && route.method !== req.method) return false;
  const checks = route.checks;
  if (checks === undefined) return true;
  if (!checkMatches(req, route.firstKind, route.firstName, route.firstOperand)) return false;
  for (let i = 3; i < checks.length; i += 3) if (!checkMatches(req, checks[i] as number, checks[i + 1] as string, checks[i + 2])) return false;
  return true;
}

function checkMatches(req: RequestAttributes, kind: number, name: string, operand: unknown): boolean {
  const v = (kind & QUERY) === 0 ? req.header(name) : req.queryParam(name);
  return v !== undefined && ((kind & REGEX) === 0 ? v === operand : (operand as SafeRegex).test(v));
}

function firstMatching(list: Candidates | undefined, req: RequestAttributes | undefined): CompiledRoute | undefined {
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) if (conditionsMatch(list[i], req)) return list[i];
  return undefined;
}
type Candidates = readonly CompiledRoute[];

// Prefix terminals seen on the way down, deepest last. Lookups are synchronous, so one array
// serves every lookup in the process; it only grows, and only for unusually deep paths.
const prefixStack: PathNode<CompiledRoute>[] = new Array(32);

function matchPath(vh: VirtualHost, path: string, end: number, req: RequestAttributes | undefined): CompiledRoute | undefined {
  let node = vh.root;
  let depth = 0;
  if (node.prefix !== undefined) prefixStack[depth++] = node;
  let complete = true;
  if (end > 1) {
    let pos = 1;
    for (;;) {
      let segEnd = path.indexOf('/', pos);
      if (segEnd === -1 || segEnd > end) segEnd = end;
      const child = findChild(node, path, pos, segEnd);
      if (child === undefined) {
        complete = false;
        break;
      }
      node = child;
      if (node.prefix !== undefined) prefixStack[depth++] = node;
      if (segEnd >= end) break;
      pos = segEnd + 1;
    }
  }
  // Exact beats Prefix: an exact match covers the whole path, longer than any prefix.
  if (complete) {
    const route = firstMatching(node.exact, req);
    if (route !== undefined) return route;
  }
  // RegularExpression precedence is left to implementations: after Exact, before any Prefix (as
  // Envoy Gateway orders them).
  if (vh.regex !== undefined) {
    const value = end === path.length ? path : path.slice(0, end);
    for (let i = 0; i < vh.regex.length; i++) {
      const route = vh.regex[i];
      if (route.pathRegex!.test(value) && conditionsMatch(route, req)) return route;
    }
  }
  for (let i = depth - 1; i >= 0; i--) {
    const route = firstMatching(prefixStack[i].prefix, req);
    if (route !== undefined) return route;
  }
  return undefined;
}

export class RoutingTable {
  readonly version: number;
  /** The one part that changes after compiling: the endpoint sets (updateEndpoints). */
  private readonly live: { ir: RoutingIR; endpointsVersion: number };

  /** The IR this table serves: its routes as compiled, its endpoint sets as last updated. */
  get ir(): RoutingIR {
    return this.live.ir;
  }

  /** Number of the last endpoint update applied (the primary numbers them; 0: none). */
  get endpointsVersion(): number {
    return this.live.endpointsVersion;
  }
  readonly backends: ReadonlyMap<string, CompiledBackend>;
  private readonly exactHosts: ReadonlyMap<string, VirtualHost>;
  private readonly wildcardHosts: ReadonlyMap<string, VirtualHost>;
  /** Gateway API `*.suffix` hosts (any number of labels), by suffix. */
  private readonly suffixHosts: ReadonlyMap<string, VirtualHost>;
  private readonly catchAll: VirtualHost | undefined;
  private readonly defaultRoute: CompiledRoute | undefined;
  private readonly passthroughExact: ReadonlyMap<string, CompiledPassthrough>;
  private readonly passthroughWildcard: ReadonlyMap<string, CompiledPassthrough>;
  /** TLSRoute `*.suffix` hosts (any number of labels), by suffix. */
  private readonly passthroughSuffix: ReadonlyMap<string, CompiledPassthrough>;
  /** Gateway API listeners by port, for listener isolation. */
  private readonly listenersByPort: ReadonlyMap<number, PortListeners>;
  /** Whether any host is served by TLS passthrough (listeners peek SNI only then). */
  readonly hasPassthrough: boolean;

  /** Tables of the listeners with ports of their own (RoutingIR.listeners), by key. */
  private readonly listenerTables: ReadonlyMap<string, RoutingTable>;

  /** `sharedBackends`: a listener's table uses its parent's backends (one endpoint set each). */
  constructor(ir: RoutingIR, version: number, sharedBackends?: Map<string, CompiledBackend>) {
    this.version = version;
    this.live = { ir, endpointsVersion: 0 };
    let backends = sharedBackends;
    if (backends === undefined) {
      backends = new Map<string, CompiledBackend>();
      for (const [key, b] of Object.entries(ir.backends)) backends.set(key, compileBackend(b));
    }
    const listenerTables = new Map<string, RoutingTable>();
    const ports = new Map<number, string>();
    for (const l of sharedBackends === undefined ? (ir.listeners ?? []) : []) {
      if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw new CompileError(`listener ${l.key}: bad port ${l.port}`);
      if (listenerTables.has(l.key)) throw new CompileError(`duplicate listener ${l.key}`);
      // One port, one socket per address: the wildcard address and a specific one cannot share it.
      const other = ports.get(l.port);
      if (other !== undefined && (other === '' || l.address === '')) throw new CompileError(`listener ${l.key} overlaps listener on port ${l.port}`);
      ports.set(l.port, l.address);
      // Gateway listener isolation applies within a listener of its own too (several hostnames on one port).
      const refs = l.gatewayListeners ?? ir.gatewayListeners;
      listenerTables.set(l.key, new RoutingTable({ virtualHosts: l.virtualHosts, backends: ir.backends, ...(refs ? { gatewayListeners: refs } : {}), ...(l.passthrough ? { passthrough: l.passthrough } : {}) }, version, backends));
    }
    this.listenerTables = listenerTables;
    const exactHosts = new Map<string, VirtualHost>();
    const wildcardHosts = new Map<string, VirtualHost>();
    const suffixHosts = new Map<string, VirtualHost>();
    let catchAll: VirtualHost | undefined;
    for (const vh of ir.virtualHosts) {
      const compiled = compileVirtualHost(vh, backends);
      const name = vh.hostname.toLowerCase();
      if (name === '*' || name === '') {
        if (catchAll) throw new CompileError('more than one catch-all virtual host');
        catchAll = compiled;
      } else if (name.startsWith('*.') && vh.multiLabelWildcard === true) {
        if (suffixHosts.has(name.slice(2))) throw new CompileError(`duplicate virtual host ${name}`);
        suffixHosts.set(name.slice(2), compiled);
      } else if (name.startsWith('*.')) {
        if (wildcardHosts.has(name.slice(2))) throw new CompileError(`duplicate virtual host ${name}`);
        wildcardHosts.set(name.slice(2), compiled);
      } else {
        if (exactHosts.has(name)) throw new CompileError(`duplicate virtual host ${name}`);
        exactHosts.set(name, compiled);
      }
    }
    this.backends = backends;
    this.exactHosts = exactHosts;
    this.wildcardHosts = wildcardHosts;
    this.suffixHosts = suffixHosts;
    this.catchAll = catchAll;
    this.defaultRoute = ir.defaultRoute ? compileRoute(ir.defaultRoute, backends, undefined) : undefined;
    const ptExact = new Map<string, CompiledPassthrough>();
    const ptWildcard = new Map<string, CompiledPassthrough>();
    const ptSuffix = new Map<string, CompiledPassthrough>();
    for (const p of ir.passthrough ?? []) {
      const refs = (p.backends ?? [{ backend: p.backend, weight: 1 }]).map((r) => {
        const backend = backends.get(r.backend);
        if (backend === undefined) throw new CompileError(`passthrough ${p.hostname}: unknown backend ${r.backend}`);
        if (!Number.isInteger(r.weight) || r.weight < 0) throw new CompileError(`passthrough ${p.hostname}: bad weight ${r.weight}`);
        return Object.freeze({ backend, weight: r.weight });
      });
      if (refs.length === 0) throw new CompileError(`passthrough ${p.hostname}: no backends`);
      const name = p.hostname.toLowerCase();
      const map = name.startsWith('*.') ? (p.multiLabelWildcard === true ? ptSuffix : ptWildcard) : ptExact;
      const key = name.startsWith('*.') ? name.slice(2) : name;
      if (map.has(key)) throw new CompileError(`duplicate passthrough host ${name}`);
      map.set(key, Object.freeze({
        backend: refs[0].backend,
        backends: Object.freeze(refs),
        totalWeight: refs.reduce((sum, r) => sum + r.weight, 0),
        currentWeights: new Float64Array(refs.length),
        ...(p.allowSourceRanges !== undefined ? { allowSourceRanges: Object.freeze([...p.allowSourceRanges]) } : {}),
      }));
    }
    this.passthroughExact = ptExact;
    this.passthroughWildcard = ptWildcard;
    this.passthroughSuffix = ptSuffix;
    this.hasPassthrough = ptExact.size + ptWildcard.size + ptSuffix.size > 0;
    const byPort = new Map<number, PortListeners>();
    for (const l of ir.gatewayListeners ?? []) {
      let entry = byPort.get(l.port);
      if (entry === undefined) byPort.set(l.port, (entry = { exact: new Map(), suffix: new Map(), any: undefined }));
      const key = listenerKey(l.port, l.hostname);
      const name = l.hostname.toLowerCase();
      if (name === '') entry.any = key;
      else if (name.startsWith('*.')) entry.suffix.set(name.slice(2), key);
      else entry.exact.set(name, key);
    }
    this.listenersByPort = byPort;
    Object.freeze(this);
  }

  /** The table of a listener with a port of its own (RoutingIR.listeners), by its key. */
  listener(key: string): RoutingTable | undefined {
    return this.listenerTables.get(key);
  }

  /**
   * Swaps the endpoint sets of the named backends; routes, weights and everything else stay.
   * All or nothing: a set that does not compile (or names a backend the table lacks) leaves
   * every set as it was. Requests already proxying keep the endpoint they picked.
   */
  updateEndpoints(sets: EndpointSetsIR, endpointsVersion: number): void {
    const compiled: [CompiledBackend, readonly CompiledEndpoint[], string | undefined][] = [];
    for (const [key, set] of Object.entries(sets)) {
      const backend = this.backends.get(key);
      if (backend === undefined) throw new CompileError(`endpoint update for unknown backend ${key}`);
      compiled.push([backend, compileEndpoints(backend, set.endpoints), set.unavailableReason]);
    }
    for (const [backend, endpoints, reason] of compiled) {
      backend.endpoints = endpoints;
      backend.unavailableReason = reason;
    }
    this.live.ir = withEndpointSets(this.live.ir, sets);
    this.live.endpointsVersion = endpointsVersion;
  }

  /** The most specific virtual host for a Host header: exact name, one-label wildcard, catch-all. */
  virtualHost(rawHost: string | undefined): VirtualHost | undefined {
    const key = hostKey(rawHost);
    const found = this.exactHosts.get(key.name) ?? (key.wildcardSuffix !== '' ? this.wildcardHosts.get(key.wildcardSuffix) : undefined);
    if (found !== undefined) return found;
    if (this.suffixHosts.size > 0) for (const suffix of key.suffixes) {
      const vh = this.suffixHosts.get(suffix);
      if (vh !== undefined) return vh;
    }
    return this.catchAll;
  }

  /**
   * The backend a new TLS connection is spliced to, by its SNI server name (a weighted pick when
   * the name has several); undefined: terminate here, or (for a name that has only weight-0
   * backends) refuse.
   */
  passthroughBackend(serverName: string | undefined): CompiledBackend | undefined {
    const route = this.passthroughRoute(serverName);
    return route === undefined ? undefined : pickPassthroughBackend(route);
  }

  /** The passthrough route for an SNI name: its backend and its allowlist. */
  passthroughRoute(serverName: string | undefined): CompiledPassthrough | undefined {
    if (!this.hasPassthrough || serverName === undefined) return undefined;
    const key = hostKey(serverName);
    const found = this.passthroughExact.get(key.name) ?? (key.wildcardSuffix !== '' ? this.passthroughWildcard.get(key.wildcardSuffix) : undefined);
    if (found !== undefined || this.passthroughSuffix.size === 0) return found;
    for (const suffix of key.suffixes) {
      const route = this.passthroughSuffix.get(suffix);
      if (route !== undefined) return route;
    }
    return undefined;
  }


  /**
   * The route for a request, or undefined (404). `target` is the request target as received
   * (path and query); `req` is needed only when some route has method/header/query conditions.
   */
  match(rawHost: string | undefined, target: string, req?: RequestAttributes): CompiledRoute | undefined {
    const key = hostKey(rawHost);
    activeListener = this.listenersByPort.size === 0 || req?.localPort === undefined ? undefined : this.listenerFor(req.localPort, key);
    try {
      return this.matchHost(key, target, req);
    } finally {
      activeListener = undefined;
    }
  }

  /**
   * Gateway API misdirected requests (421): on a TLS connection, the listener its SNI chose is
   * not the one the request's Host belongs to (HTTP/2 connection reuse across hostnames). False
   * when the port has no Gateway listeners or anything is unknown.
   */
  misdirected(localPort: number | undefined, serverName: string | undefined, host: string | undefined): boolean {
    if (localPort === undefined || serverName === undefined || host === undefined || !this.listenersByPort.has(localPort)) return false;
    return this.listenerFor(localPort, hostKey(serverName)) !== this.listenerFor(localPort, hostKey(host));
  }

  /**
   * The Gateway listener a request belongs to: on its port, the listener with the Host as its
   * exact hostname, else the longest wildcard covering it, else the one without a hostname.
   */
  private listenerFor(port: number, key: HostKey): string {
    const l = this.listenersByPort.get(port);
    if (l === undefined) return NO_LISTENER;
    const exact = l.exact.get(key.name);
    if (exact !== undefined) return exact;
    if (l.suffix.size > 0) for (const suffix of key.suffixes) {
      const found = l.suffix.get(suffix);
      if (found !== undefined) return found;
    }
    return l.any ?? NO_LISTENER;
  }

  private matchHost(key: HostKey, target: string, req: RequestAttributes | undefined): CompiledRoute | undefined {
    let path = target;
    let end = pathEnd(target);
    if (needsNormalizing(target, end)) {
      path = normalizePath(target, end);
      end = path.length;
    }
    // Every rule whose host matches applies; the most specific host wins, then the path. So a
    // path the exact host does not serve is looked up under the wildcard, then the catch-all
    // ("a rule with no host matches every host"). A host's own default backend (an Ingress's
    // spec.defaultBackend) counts as its `/` and ends the search.
    const exact = this.exactHosts.get(key.name);
    if (exact !== undefined) {
      const r = matchPath(exact, path, end, req) ?? exact.fallback;
      if (r !== undefined) return r;
    }
    if (key.wildcardSuffix !== '') {
      const wildcard = this.wildcardHosts.get(key.wildcardSuffix);
      if (wildcard !== undefined) {
        const r = matchPath(wildcard, path, end, req) ?? wildcard.fallback;
        if (r !== undefined) return r;
      }
    }
    // Gateway API wildcards, the longest suffix (the most specific hostname) first.
    if (this.suffixHosts.size > 0) {
      const suffixes = key.suffixes;
      for (let i = 0; i < suffixes.length; i++) {
        const vh = this.suffixHosts.get(suffixes[i]);
        if (vh === undefined) continue;
        const r = matchPath(vh, path, end, req) ?? vh.fallback;
        if (r !== undefined) return r;
      }
    }
    const any = this.catchAll;
    if (any !== undefined) {
      const r = matchPath(any, path, end, req) ?? any.fallback;
      if (r !== undefined) return r;
    }
    return this.defaultRoute;
  }
}

/** Compile and freeze; throws CompileError on an inconsistent IR. */
export function compileTable(ir: RoutingIR, version: number): RoutingTable {
  // Listener tables are built inside this one and share its strings and regexes too.
  shared = { strings: new Map(), regexes: new Map() };
  try {
    return new RoutingTable(ir, version);
  } finally {
    shared = undefined;
  }
}

/** Choose a backend of a route by weight; undefined when every weight is 0. */
export function pickBackend(route: CompiledRoute): CompiledBackend | undefined {
  return pickBackendRef(route)?.backend;
}

/**
 * Choose a weighted backend reference (with its backendRef filters); undefined when every weight
 * is 0. Smooth weighted round-robin, as nginx balances weighted upstreams: every run of
 * totalWeight picks gives each reference exactly its weight, interleaved, so a split is exact
 * from the first requests on (a random pick drifts by a few points over hundreds of requests).
 * The state is per worker; across workers each split is exact on its own.
 */
/** What pickBackendRef chooses among: a route's backendRefs, or a passthrough host's backends. */
export interface WeightedChoice<T extends { readonly weight: number }> {
  readonly backends: readonly T[];
  readonly totalWeight: number;
  readonly currentWeights: Float64Array;
}

export function pickBackendRef<T extends { readonly weight: number }>(route: WeightedChoice<T>): T | undefined {
  const refs = route.backends;
  if (refs.length === 1) return refs[0].weight > 0 ? refs[0] : undefined;
  if (route.totalWeight <= 0) return undefined;
  const current = route.currentWeights;
  let best = -1;
  for (let i = 0; i < refs.length; i++) {
    const w = refs[i].weight;
    // A weight-0 reference is never chosen.
    if (w <= 0) continue;
    current[i] += w;
    if (best < 0 || current[i] > current[best]) best = i;
  }
  current[best] -= route.totalWeight;
  return refs[best];
}

/**
 * The backend one TLS passthrough connection is spliced to: by weight when the host has several
 * (a TLSRoute's backendRefs; an unresolvable one has no endpoints, so its share is refused);
 * undefined when every weight is 0.
 */
export function pickPassthroughBackend(route: CompiledPassthrough): CompiledBackend | undefined {
  return pickBackendRef(route)?.backend;
}

/**
 * For a retry (nginx's proxy_next_upstream): another endpoint of the backend `failed` belongs to
 * among the route's backends, by the same round-robin; undefined when it has no other.
 */
export function pickOtherEndpoint(route: CompiledRoute, failed: CompiledEndpoint | undefined): CompiledEndpoint | undefined {
  if (failed === undefined) return undefined;
  for (const { backend } of route.backends) {
    if (backend.endpoints.length < 2 || !backend.endpoints.includes(failed)) continue;
    for (let i = 0; i < backend.endpoints.length; i++) {
      const ep = pickEndpoint(backend);
      if (ep !== undefined && ep !== failed) return ep;
    }
  }
  return undefined;
}

/** Round-robin over a backend's endpoints. */
export function pickEndpoint(backend: CompiledBackend): CompiledEndpoint | undefined {
  const eps = backend.endpoints;
  if (eps.length === 0) return undefined;
  const i = backend.cursor[0]++ % eps.length;
  return eps[i];
}
