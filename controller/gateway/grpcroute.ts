// GRPCRoute specifics. A GRPCRoute is translated by httproute.ts's attachment, backend and status
// code (the two kinds share listeners, parentRefs and backendRefs); what differs lives here:
// how a gRPC method match becomes an HTTP/2 request match, GRPCRoute's own precedence, the
// protocol its backends are reached with, and the rule that keeps HTTPRoutes and GRPCRoutes from
// sharing a hostname on one listener.

import { unsafeRegexReason } from '../../router/regex.ts';
import type { RouteIR } from '../../router/types.ts';
import type { ResolvedBackend } from '../backends.ts';
import { asRecord, asString, type KubeObject } from '../objects.ts';
import type { ListenerModel } from './gateways.ts';
import { intersectHostnames } from './hostnames.ts';
import { valueMatches, type MatchSpec } from './httproute.ts';

// GRPCMethodMatch validation (apis/v1/grpcroute_types.go): a service is dot-separated
// identifiers, a method one identifier.
const GRPC_SERVICE = /^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;
// An Exact method-only match's path pattern: `/[^/]+/<method>`.
const METHOD_ONLY_PREFIX = '/[^/]+/';
const METHOD_ONLY = /^\/\[\^\/\]\+\/([A-Za-z_][A-Za-z_0-9]*)$/;

/**
 * A GRPCRoute match as an HTTP/2 request match. gRPC calls are `POST /service/method`
 * (gRPC over HTTP/2: only POST is a call), so every match carries method POST. Service and
 * method -> Exact `/service/method`; service only -> PathPrefix `/service`; method only ->
 * `/[^/]+/method` (METHOD_ONLY); RegularExpression values -> one whole-path pattern. No method
 * at all: every call (PathPrefix `/`). A `method` that names neither service nor method is
 * invalid (the CRD's CEL rule refuses it), so the rule is dropped rather than widened.
 */
export function parseGrpcMatch(raw: Record<string, unknown>, errors: string[]): MatchSpec | undefined {
  const before = errors.length;
  const hasMethod = raw.method !== undefined && raw.method !== null;
  const m = asRecord(raw.method);
  const type = asString(m.type) ?? 'Exact';
  const service = asString(m.service) || undefined;
  const method = asString(m.method) || undefined;
  let pathType: MatchSpec['pathType'] = 'Prefix';
  let path = '/';
  // Present but not a string, a field must not widen the match as if it were absent.
  if ((['type', 'service', 'method'] as const).some((f) => m[f] !== undefined && m[f] !== null && typeof m[f] !== 'string')) errors.push('gRPC method match type, service and method must be strings');
  else if (hasMethod && service === undefined && method === undefined) errors.push('a gRPC method match must name a service, a method or both');
  else if (type === 'Exact') {
    if (service !== undefined && !GRPC_SERVICE.test(service)) errors.push(`gRPC service ${JSON.stringify(service)} is not a valid service name`);
    if (method !== undefined && !GRPC_METHOD.test(method)) errors.push(`gRPC method ${JSON.stringify(method)} is not a valid method name`);
    if (service !== undefined && method !== undefined) [pathType, path] = ['Exact', `/${service}/${method}`];
    else if (service !== undefined) path = `/${service}`;
    else if (method !== undefined) [pathType, path] = ['RegularExpression', `${METHOD_ONLY_PREFIX}${method}`];
  } else if (type === 'RegularExpression') {
    pathType = 'RegularExpression';
    // Each value must match a whole name, and the path pattern is anchored: `^` and `$` that
    // authors write around a value are redundant, and only allowed at the pattern's ends.
    const bare = (re: string): string => re.replace(/^\^/, '').replace(/(?<!\\)\$$/, '');
    path = `/(?:${service !== undefined ? bare(service) : '[^/]+'})/(?:${method !== undefined ? bare(method) : '[^/]+'})`;
    const reason = unsafeRegexReason(path);
    if (reason !== undefined) errors.push(`gRPC method regular expression ${JSON.stringify(path)} refused: ${reason}`);
  } else errors.push(`gRPC method match type ${type} is not supported`);
  const headers = valueMatches(raw.headers, 'header', true, errors);
  if (errors.length > before) return undefined;
  return { pathType, path, method: 'POST', ...(headers ? { headers } : {}) };
}

/** A listener a route attaches to, with the hostnames it serves there (undefined: every host). */
export interface Attachment {
  readonly listener: ListenerModel;
  readonly hosts: readonly (string | undefined)[];
}

function overlap(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return intersectHostnames(a, [b]).length > 0;
}

/**
 * The hostnames HTTPRoutes and GRPCRoutes hold on each listener. The spec (GRPCRouteSpec and
 * HTTPRouteSpec hostnames): when a route of one kind would attach to a listener where a route of
 * the other kind already holds an intersecting hostname, exactly one is accepted there, the older
 * (then the first by namespace/name). Routes are translated oldest first, so the one that claims
 * first keeps the listener, and a later route of the other kind is refused on it.
 */
export class KindClaims {
  private readonly held = new Map<ListenerModel, { kind: string; route: string; hosts: readonly (string | undefined)[] }[]>();

  /** The attachments of `route` that a route of the other kind already holds, with why. */
  conflicts(route: KubeObject, attached: readonly Attachment[]): { listener: ListenerModel; message: string }[] {
    const out: { listener: ListenerModel; message: string }[] = [];
    for (const a of attached) {
      for (const h of this.held.get(a.listener) ?? []) {
        if (h.kind === route.kind) continue;
        if (!a.hosts.some((x) => h.hosts.some((y) => overlap(x, y)))) continue;
        out.push({ listener: a.listener, message: `listener ${a.listener.name}: the older ${h.kind} ${h.route} already serves ${describe(h.hosts)} there, and an HTTPRoute and a GRPCRoute cannot share a hostname on one listener` });
        break;
      }
    }
    return out;
  }

  claim(route: KubeObject, attached: readonly Attachment[]): void {
    const id = `${route.metadata.namespace ?? 'default'}/${route.metadata.name}`;
    for (const a of attached) {
      const list = this.held.get(a.listener) ?? [];
      list.push({ kind: route.kind, route: id, hosts: a.hosts });
      this.held.set(a.listener, list);
    }
  }
}

function describe(hosts: readonly (string | undefined)[]): string {
  return hosts.includes(undefined) ? 'every hostname' : hosts.join(', ');
}

/**
 * GRPCRoute precedence counts the characters of a matching service before those of a matching
 * method, so on one virtual host a service-only match beats a method-only one. The router tries
 * RegularExpression paths (method-only matches) before prefixes (service-only), so each
 * service-only GRPCRoute match is also entered as an Exact `/service/method` route for every
 * method a method-only match of the host and listener names: Exact paths are tried first. The copies are
 * `derived`: the router tries them after every real service+method match at that path, whatever
 * the header counts, since a matching method's characters count before header matches.
 */
export function serviceBeforeMethod(routes: readonly RouteIR[]): RouteIR[] {
  // Precedence is among the routes of one listener (listener isolation serves one per request).
  const listenerOf = (r: RouteIR): string => (r.listener === undefined ? '' : `${r.listener.port}|${r.listener.hostname}`);
  const grpc = routes.filter((r) => r.source.kind === 'GRPCRoute');
  const methods = new Map<string, Set<string>>();
  for (const r of grpc) {
    const m = r.pathType === 'RegularExpression' ? METHOD_ONLY.exec(r.path)?.[1] : undefined;
    if (m === undefined) continue;
    const set = methods.get(listenerOf(r)) ?? new Set<string>();
    set.add(m);
    methods.set(listenerOf(r), set);
  }
  // A service+method match without header matches takes every call to its path: a copy there
  // could only come before it (with more header matches), wrongly.
  const catchAll = new Set(grpc.filter((r) => r.pathType === 'Exact' && !r.headers?.length).map((r) => `${listenerOf(r)} ${r.path}`));
  const extra: RouteIR[] = [];
  for (const r of grpc) {
    if (r.pathType !== 'Prefix' || r.path === '/') continue;
    for (const m of methods.get(listenerOf(r)) ?? []) {
      const path = `${r.path}/${m}`;
      if (!catchAll.has(`${listenerOf(r)} ${path}`)) extra.push({ ...r, id: `${r.id}~${m}`, pathType: 'Exact', path, derived: true });
    }
  }
  return extra;
}

/**
 * A GRPCRoute backend: gRPC is HTTP/2, so a Service port with appProtocol kubernetes.io/h2c is
 * used as it is, and one without an HTTP/2 appProtocol is reached over h2c too (GEP-1911 lets an
 * implementation infer the protocol from the route's kind; HTTP/1.1 cannot carry gRPC). It gets
 * its own key, so an HTTPRoute's HTTP/1.1 use of the same port is kept apart. An HTTPS port
 * (appProtocol https) is UnsupportedProtocol: Portico reaches HTTPS backends over HTTP/1.1 only.
 */
export function grpcBackend(r: ResolvedBackend): ResolvedBackend | { unsupported: string } {
  if (r.backend.protocol === 'h2c') return r;
  if (r.backend.protocol === 'https') return { unsupported: `Service port ${r.backend.name} has appProtocol https: Portico reaches HTTPS backends over HTTP/1.1, and gRPC needs HTTP/2` };
  const key = `${r.key} (h2c)`;
  return { ...r, key, backend: { ...r.backend, protocol: 'h2c' } };
}
