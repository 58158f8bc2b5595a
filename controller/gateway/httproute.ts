// HTTPRoute and GRPCRoute -> route entries per virtual host, and each parent's conditions. A
// GRPCRoute is an HTTPRoute whose matches are gRPC methods (`/service/method` paths over HTTP/2)
// and whose filters are the header modifiers only. Attachment follows
// the spec: parentRef (sectionName, port) -> listeners -> allowedRoutes -> hostname intersection.
// A rule Portico cannot serve exactly as written (a filter the data path does not apply yet, an
// unsafe regular expression) is dropped and reported, never served half-way.

import type { FiltersIR, MirrorIR, RouteIR, ValueMatchIR, WeightedBackendIR } from '../../router/types.ts';
import { unsafeRegexReason } from '../../router/regex.ts';
import type { BackendIndex } from '../backends.ts';
import { asArray, asRecord, asString, type KubeObject } from '../objects.ts';
import { cond, type ConditionInput } from './conditions.ts';
import { parseFilters, type MirrorSpec } from './filters.ts';
import { grpcBackend, parseGrpcMatch, type KindClaims } from './grpcroute.ts';
import { intersectHostnames, routeHostnames } from './hostnames.ts';
import type { GatewayModel, ListenerModel } from './gateways.ts';
import { GATEWAY_GROUP, readBackendRef, readParentRef, type ReferenceGrants } from './refs.ts';

export interface BackendSink {
  addBackend(key: string, backend: import('../../router/types.ts').BackendIR): void;
}

export interface MatchSpec {
  pathType: RouteIR['pathType'];
  path: string;
  method?: string;
  headers?: ValueMatchIR[];
  queryParams?: ValueMatchIR[];
}

interface RuleSpec {
  index: number;
  matches: MatchSpec[];
  backends: WeightedBackendIR[];
  filters?: FiltersIR;
  timeoutMs?: number;
  requestTimeoutMs?: number;
  /** A filter Portico does not apply: the rule answers 500 instead of being served. */
  unsupported?: true;
}

export interface RouteEntry {
  /** Virtual host: undefined = every host. */
  readonly hostname: string | undefined;
  readonly route: RouteIR;
}

export interface HTTPRouteResult {
  readonly object: KubeObject;
  readonly parents: { parentRef: Record<string, unknown>; conditions: ConditionInput[] }[];
  readonly entries: RouteEntry[];
}

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

function durationMs(v: string): number | undefined {
  if (!DURATION.test(v)) return undefined;
  let ms = 0;
  for (const m of v.matchAll(/([0-9]+)(h|ms|m|s)/g)) ms += Number(m[1]) * (m[2] === 'h' ? 3_600_000 : m[2] === 'm' ? 60_000 : m[2] === 's' ? 1000 : 1);
  return ms;
}

/** Exact and PathPrefix values as the spec validates them. */
function pathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'must start with /';
  if (value.length > 1024) return 'is longer than 1024 characters';
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#']) if (value.includes(bad)) return `must not contain ${bad}`;
  if (value.endsWith('/..') || value.endsWith('/.')) return 'must not end with /.. or /.';
  if (/[\s?]/.test(value)) return 'must not contain whitespace or ?';
  return undefined;
}

export function valueMatches(list: unknown, what: string, lower: boolean, errors: string[]): ValueMatchIR[] | undefined {
  const out: ValueMatchIR[] = [];
  const seen = new Set<string>();
  for (const raw of asArray(list)) {
    const m = asRecord(raw);
    const name = asString(m.name) ?? '';
    const value = asString(m.value) ?? '';
    const type = asString(m.type) ?? 'Exact';
    if (name === '') {
      errors.push(`${what} match without a name`);
      continue;
    }
    if (typeof m.value !== 'string') {
      errors.push(`${what} ${name}: the value is not a string`);
      continue;
    }
    // The spec: only the first match of a name counts (names compared as the field is).
    const key = lower ? name.toLowerCase() : name;
    if (seen.has(key)) continue;
    seen.add(key);
    if (type !== 'Exact' && type !== 'RegularExpression') errors.push(`${what} ${name}: match type ${type} is not supported`);
    else if (type === 'RegularExpression') {
      const reason = unsafeRegexReason(value);
      if (reason !== undefined) errors.push(`${what} ${name}: regular expression ${JSON.stringify(value)} refused: ${reason}`);
    }
    out.push({ name, type: type as ValueMatchIR['type'], value });
  }
  return out.length > 0 ? out : undefined;
}

function parseMatch(raw: Record<string, unknown>, errors: string[]): MatchSpec | undefined {
  const p = asRecord(raw.path);
  const type = asString(p.type) ?? 'PathPrefix';
  const value = asString(p.value) ?? '/';
  const before = errors.length;
  // Absent, a path defaults to PathPrefix `/`; present but not a string, it must not widen to that.
  if ((p.value !== undefined && typeof p.value !== 'string') || (p.type !== undefined && typeof p.type !== 'string')) errors.push('path type and value must be strings');
  if (raw.method !== undefined && typeof raw.method !== 'string') errors.push('method must be a string');
  let pathType: RouteIR['pathType'] = 'Prefix';
  let path = value;
  if (type === 'Exact' || type === 'PathPrefix') {
    const problem = pathProblem(value);
    if (problem !== undefined) errors.push(`path ${JSON.stringify(value)} ${problem}`);
    pathType = type === 'Exact' ? 'Exact' : 'Prefix';
    // PathPrefix is element-wise: a trailing slash does not change what it matches.
    if (pathType === 'Prefix') path = value.replace(/\/+$/, '') || '/';
  } else if (type === 'RegularExpression') {
    const reason = unsafeRegexReason(value);
    if (reason !== undefined) errors.push(`path regular expression ${JSON.stringify(value)} refused: ${reason}`);
    pathType = 'RegularExpression';
  } else errors.push(`path match type ${type} is not supported`);
  const headers = valueMatches(raw.headers, 'header', true, errors);
  const queryParams = valueMatches(raw.queryParams, 'query parameter', false, errors);
  const method = asString(raw.method);
  if (errors.length > before) return undefined;
  return { pathType, path, ...(method ? { method } : {}), ...(headers ? { headers } : {}), ...(queryParams ? { queryParams } : {}) };
}

interface RefOutcome {
  reason?: 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound' | 'UnsupportedProtocol';
  message?: string;
}

/** Resolves a rule's backendRefs; unresolvable ones become 500 backends with their share of weight. */
function resolveBackends(route: KubeObject, rule: Record<string, unknown>, index: BackendIndex, grants: ReferenceGrants, sink: BackendSink, outcomes: RefOutcome[], prefixes: (string | undefined)[], errors: string[], notes: string[]): WeightedBackendIR[] {
  const ns = route.metadata.namespace ?? 'default';
  const out: WeightedBackendIR[] = [];
  const failed = (key: string, reason: RefOutcome['reason'], message: string, weight: number): void => {
    outcomes.push({ reason, message });
    const k = `!500 ${key}`;
    sink.addBackend(k, { name: k, protocol: 'http', endpoints: [], unavailableReason: message, errorStatus: 500 });
    out.push({ backend: k, weight });
  };
  for (const raw of asArray(rule.backendRefs)) {
    const b = asRecord(raw);
    const { group, kind, name, refNs, port, label } = readBackendRef(b, ns);
    const weight = b.weight === undefined ? 1 : typeof b.weight === 'number' && Number.isInteger(b.weight) && b.weight >= 0 && b.weight <= 1_000_000 ? b.weight : 1;
    const parsed = parseFilters(b.filters, prefixes, route.kind);
    if (parsed.errors.length > 0) {
      errors.push(...parsed.errors.map((e) => `backendRef ${label}: ${e}`));
      continue;
    }
    if (parsed.unsupported.length > 0) {
      // Forwarding without the filter would serve as if it were not there: this share answers 500.
      const message = `backendRef ${label}: filter ${parsed.unsupported.join(', ')} is not supported by Portico; its share of requests is answered 500`;
      notes.push(message);
      const k = `!500 ${route.kind}/${ns}/${route.metadata.name} unsupported filter on ${label}`;
      sink.addBackend(k, { name: k, protocol: 'http', endpoints: [], unavailableReason: message, errorStatus: 500 });
      out.push({ backend: k, weight });
      continue;
    }
    // A backendRef's own mirrors copy only the requests it gets; resolved once it resolves.
    const withMirrors = (): FiltersIR | undefined => {
      const mirrors = parsed.mirrors.map((m) => resolveMirror(route, m, index, grants, sink, outcomes)).filter((m): m is MirrorIR => m !== undefined);
      return mirrors.length > 0 ? { ...(parsed.filters ?? {}), mirrors } : parsed.filters;
    };
    if (group !== '' || kind !== 'Service') failed(`${group}/${kind} ${label}`, 'InvalidKind', `backendRef ${group || 'core'}/${kind} ${label}: only Services are supported`, weight);
    else if (!grants.permits({ group: GATEWAY_GROUP, kind: route.kind, namespace: ns }, { group: '', kind: 'Service', namespace: refNs, name })) failed(label, 'RefNotPermitted', `Service ${label} is in another namespace and no ReferenceGrant there allows it`, weight);
    else if (port === undefined) failed(label, 'BackendNotFound', `backendRef Service ${label} needs a port`, weight);
    else {
      const problem = index.referenceProblem(refNs, name, { number: port });
      if (problem !== undefined) failed(label, 'BackendNotFound', problem, weight);
      else {
        const plain = index.resolve(refNs, name, { number: port });
        // A GRPCRoute's backends speak HTTP/2 (grpcroute.ts).
        const resolved = route.kind === 'GRPCRoute' ? grpcBackend(plain) : plain;
        if ('unsupported' in resolved) failed(label, 'UnsupportedProtocol', resolved.unsupported, weight);
        else {
          sink.addBackend(resolved.key, resolved.backend);
          const filters = withMirrors();
          out.push({ backend: resolved.key, weight, ...(filters ? { filters } : {}) });
        }
      }
    }
  }
  // No backendRefs, or none with weight: the spec's 500 (ResolvedRefs stays as it is).
  if (out.length === 0 || out.every((w) => w.weight === 0)) {
    const k = '!500 no backend';
    sink.addBackend(k, { name: k, protocol: 'http', endpoints: [], unavailableReason: 'no backendRefs to forward to', errorStatus: 500 });
    return [...out, { backend: k, weight: 1 }];
  }
  return out;
}

function ruleTimeouts(rule: Record<string, unknown>, errors: string[]): { timeoutMs?: number; requestTimeoutMs?: number } {
  const timeouts = asRecord(rule.timeouts);
  const parse = (field: 'request' | 'backendRequest'): number | undefined => {
    if (timeouts[field] === undefined) return undefined;
    const ms = durationMs(asString(timeouts[field]) ?? '');
    if (ms === undefined) errors.push(`timeouts.${field} ${JSON.stringify(timeouts[field])} is not a duration (as 500ms, 10s, 1m)`);
    return ms;
  };
  const request = parse('request');
  const backend = parse('backendRequest');
  // "0s" disables the route's timeout; Portico's --upstream-timeout still bounds the wait for
  // response headers.
  if (request !== undefined && request > 0 && backend !== undefined && backend > request) errors.push(`timeouts.backendRequest (${backend} ms) must not exceed timeouts.request (${request} ms)`);
  return { ...(backend ? { timeoutMs: backend } : {}), ...(request ? { requestTimeoutMs: request } : {}) };
}

/** A RequestMirror's backendRef, resolved as a backendRef is; an unresolvable one is reported and not mirrored to. */
function resolveMirror(route: KubeObject, m: MirrorSpec, index: BackendIndex, grants: ReferenceGrants, sink: BackendSink, outcomes: RefOutcome[]): MirrorIR | undefined {
  const ns = route.metadata.namespace ?? 'default';
  const b = m.backendRef;
  const { group, kind, name, refNs, port, label } = readBackendRef(b, ns);
  const fail = (reason: RefOutcome['reason'], message: string): undefined => {
    outcomes.push({ reason, message: `RequestMirror ${message}; requests are forwarded without the copy` });
    return undefined;
  };
  if (group !== '' || kind !== 'Service') return fail('InvalidKind', `backendRef ${group || 'core'}/${kind} ${label}: only Services are supported`);
  if (!grants.permits({ group: GATEWAY_GROUP, kind: route.kind, namespace: ns }, { group: '', kind: 'Service', namespace: refNs, name })) return fail('RefNotPermitted', `Service ${label} is in another namespace and no ReferenceGrant there allows it`);
  if (port === undefined) return fail('BackendNotFound', `backendRef Service ${label} needs a port`);
  const problem = index.referenceProblem(refNs, name, { number: port });
  if (problem !== undefined) return fail('BackendNotFound', problem);
  // A GRPCRoute's mirror speaks HTTP/2 as its backends do (grpcroute.ts).
  const plain = index.resolve(refNs, name, { number: port });
  const resolved = route.kind === 'GRPCRoute' ? grpcBackend(plain) : plain;
  if ('unsupported' in resolved) return fail('UnsupportedProtocol', resolved.unsupported);
  sink.addBackend(resolved.key, resolved.backend);
  return { backend: resolved.key, fraction: m.fraction };
}

function parseRules(route: KubeObject, index: BackendIndex, grants: ReferenceGrants, sink: BackendSink): { rules: RuleSpec[]; dropped: string[]; notes: string[]; outcomes: RefOutcome[] } {
  const rules: RuleSpec[] = [];
  const dropped: string[] = [];
  const notes: string[] = [];
  const outcomes: RefOutcome[] = [];
  asArray(asRecord(route.spec).rules).forEach((raw, i) => {
    const rule = asRecord(raw);
    const label = `rule ${i}${asString(rule.name) ? ` (${asString(rule.name)})` : ''}`;
    const errors: string[] = [];
    for (const field of ['sessionPersistence', 'retry']) if (rule[field] !== undefined) errors.push(`${field} is not supported`);
    const timeouts = ruleTimeouts(rule, errors);
    if (rule.matches !== undefined && rule.matches !== null && !Array.isArray(rule.matches)) errors.push('matches is not a list');
    const rawMatches = rule.matches === undefined || rule.matches === null ? [{}] : asArray(rule.matches);
    const matches: MatchSpec[] = [];
    const grpc = route.kind === 'GRPCRoute';
    for (const m of rawMatches) {
      const parsed = grpc ? parseGrpcMatch(asRecord(m), errors) : parseMatch(asRecord(m), errors);
      if (parsed !== undefined) matches.push(parsed);
    }
    const prefixes = matches.map((m) => (m.pathType === 'Prefix' ? m.path : undefined));
    const parsed = parseFilters(rule.filters, prefixes, route.kind);
    errors.push(...parsed.errors);
    const hasBackendRefs = asArray(rule.backendRefs).length > 0;
    if (parsed.filters?.redirect !== undefined && hasBackendRefs) errors.push('RequestRedirect cannot be combined with backendRefs');
    const ruleNotes: string[] = [];
    const backends = errors.length > 0 || parsed.filters?.redirect !== undefined ? [] : resolveBackends(route, rule, index, grants, sink, outcomes, prefixes, errors, ruleNotes);
    if (errors.length > 0) {
      dropped.push(`${label}: ${errors.join('; ')}`);
      return;
    }
    if (parsed.unsupported.length > 0) {
      // Serving the rule without the filter would be serving it as if the filter were not
      // there; dropping it would let a less specific rule take its requests. It answers 500.
      const message = `${label}: filter ${parsed.unsupported.join(', ')} is not supported by Portico; its requests are answered 500`;
      notes.push(message);
      const k = `!500 ${route.kind}/${route.metadata.namespace ?? 'default'}/${route.metadata.name}#${i} unsupported filter`;
      sink.addBackend(k, { name: k, protocol: 'http', endpoints: [], unavailableReason: message, errorStatus: 500 });
      rules.push({ index: i, matches, backends: [{ backend: k, weight: 1 }], unsupported: true });
      return;
    }
    notes.push(...ruleNotes.map((n) => `${label}: ${n}`));
    const mirrors = parsed.mirrors.map((m) => resolveMirror(route, m, index, grants, sink, outcomes)).filter((m): m is MirrorIR => m !== undefined);
    const filters: FiltersIR | undefined = mirrors.length > 0 ? { ...(parsed.filters ?? {}), mirrors } : parsed.filters;
    rules.push({ index: i, matches, backends, ...(filters ? { filters } : {}), ...timeouts });
  });
  return { rules, dropped, notes, outcomes };
}

/** Evaluates one HTTPRoute or GRPCRoute against Portico's Gateways. */
export function translateHTTPRoute(route: KubeObject, gateways: ReadonlyMap<string, GatewayModel>, index: BackendIndex, grants: ReferenceGrants, sink: BackendSink, claims?: KindClaims): HTTPRouteResult {
  const ns = route.metadata.namespace ?? 'default';
  const spec = asRecord(route.spec);
  const { hostnames, invalid: badHostnames } = routeHostnames(spec.hostnames);
  const { rules, dropped, notes, outcomes } = parseRules(route, index, grants, sink);
  const failedRef = outcomes.find((o) => o.reason !== undefined);
  const resolvedRefs = failedRef === undefined ? cond('ResolvedRefs', true, 'ResolvedRefs') : cond('ResolvedRefs', false, failedRef.reason!, outcomes.filter((o) => o.reason).map((o) => o.message).join('; '));

  const parents: HTTPRouteResult['parents'] = [];
  const entries: RouteEntry[] = [];
  const seen = new Set<string>();
  // A route counts once per listener in attachedRoutes, however many of its parentRefs select it.
  const counted = new Set<ListenerModel>();
  for (const raw of asArray(spec.parentRefs)) {
    const ref = readParentRef(raw, ns, gateways);
    if (ref === undefined) continue;
    const { gateway: gw, sectionName, port, parentRef } = ref;
    // PartiallyInvalid's message must start "Dropped Rule": rules refused, and rules (or backend
    // shares) answering 500 because a filter is not supported.
    const invalid = [...dropped, ...notes];
    const conditions = (accepted: ConditionInput): ConditionInput[] => [accepted, resolvedRefs, ...(accepted.status === 'True' && invalid.length > 0 ? [cond('PartiallyInvalid', true, 'UnsupportedValue', `Dropped Rule: ${invalid.join(' | ')}`)] : [])];

    if (badHostnames.length > 0) {
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'UnsupportedValue', `spec.hostnames ${badHostnames.join(', ')}: not a valid hostname (RFC 1123, optionally starting with "*.", not an IP address); the route is not served`)) });
      continue;
    }
    const candidates = gw.listeners.filter((l) => (sectionName === undefined || l.name === sectionName) && (port === undefined || l.port === port));
    if (candidates.length === 0) {
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'NoMatchingParent', `Gateway ${parentRef.namespace as string}/${parentRef.name as string} has no listener${sectionName !== undefined ? ` named ${sectionName}` : ''}${port !== undefined ? ` on port ${port}` : ''}`)) });
      continue;
    }
    const allowed = candidates.filter((l) => l.accepted && l.supportedKinds.some((k) => k.kind === route.kind) && l.allowsNamespace(ns));
    if (allowed.length === 0) {
      const why = candidates.map((l) => `${l.name}: ${!l.accepted ? `not accepted (${l.accept?.reason})` : !l.supportedKinds.some((k) => k.kind === route.kind) ? `does not allow ${route.kind}` : `does not allow routes from namespace ${ns}`}`);
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'NotAllowedByListeners', why.join('; '))) });
      continue;
    }
    const attached: { listener: ListenerModel; hosts: (string | undefined)[] }[] = [];
    for (const l of allowed) {
      const hosts = intersectHostnames(l.hostname, hostnames);
      if (hosts.length > 0) attached.push({ listener: l, hosts });
    }
    if (attached.length === 0) {
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'NoMatchingListenerHostname', `no hostname of the route (${hostnames.join(', ')}) matches a listener`)) });
      continue;
    }
    if (rules.length === 0) {
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'UnsupportedValue', dropped.length > 0 ? `no rule can be served: ${dropped.join(' | ')}` : 'the route has no rules')) });
      continue;
    }
    // An HTTPRoute and a GRPCRoute never share a hostname on a listener (grpcroute.ts).
    const taken = claims?.conflicts(route, attached) ?? [];
    const kept = attached.filter((a) => !taken.some((t) => t.listener === a.listener));
    if (kept.length === 0) {
      parents.push({ parentRef, conditions: conditions(cond('Accepted', false, 'NotAllowedByListeners', taken.map((t) => t.message).join('; '))) });
      continue;
    }
    claims?.claim(route, kept);
    // Every rule has a filter Portico does not apply: the route is fully invalid, so not
    // accepted (the spec's UnsupportedValue; PartiallyInvalid is for a route with some valid
    // rules), but its rules still answer 500 rather than let other routes take their requests.
    const fullyInvalid = rules.every((r) => r.unsupported === true);
    const accepted = fullyInvalid
      ? cond('Accepted', false, 'UnsupportedValue', `no rule can be served: ${invalid.join(' | ')}`)
      : cond('Accepted', true, 'Accepted', taken.length > 0 ? `not attached to ${taken.map((t) => t.message).join('; ')}` : '');
    parents.push({ parentRef, conditions: conditions(accepted) });
    for (const { listener, hosts } of kept) {
      if (!fullyInvalid && !counted.has(listener)) {
        counted.add(listener);
        listener.attachedRoutes++;
      }
      if (!listener.programmed) continue;
      for (const host of hosts) {
        for (const rule of rules) {
          rule.matches.forEach((m, mi) => {
            const id = `${route.kind}/${ns}/${route.metadata.name}#${rule.index}.${mi}`;
            // Per socket: the same port on two Gateway addresses is two listeners, each serving the route.
            const dedupe = `${listener.address ?? ''}|${listener.port}|${listener.hostname ?? ''} ${host ?? '*'} ${id}`;
            if (seen.has(dedupe)) return;
            seen.add(dedupe);
            entries.push({
              hostname: host,
              route: {
                id,
                pathType: m.pathType,
                path: m.path,
                ...(m.method ? { method: m.method } : {}),
                ...(m.headers ? { headers: m.headers } : {}),
                ...(m.queryParams ? { queryParams: m.queryParams } : {}),
                ...(rule.filters ? { filters: rule.filters } : {}),
                backends: rule.backends,
                ...(rule.timeoutMs !== undefined ? { timeoutMs: rule.timeoutMs } : {}),
                ...(rule.requestTimeoutMs !== undefined ? { requestTimeoutMs: rule.requestTimeoutMs } : {}),
                listener: { port: listener.port, hostname: listener.hostname ?? '', ...(listener.address !== undefined ? { address: listener.address } : {}) },
                source: { kind: route.kind, namespace: ns, name: route.metadata.name },
              },
            });
          });
        }
      }
    }
  }
  return { object: route, parents, entries };
}
