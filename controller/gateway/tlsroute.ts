// TLSRoute on TLS Passthrough listeners -> SNI passthrough entries (RoutingIR.passthrough): the
// connection is spliced, still encrypted, to the backend. Attachment is HTTPRoute's (parentRef
// sectionName/port, allowedRoutes, hostname intersection). Several weighted backendRefs share the
// connections by weight, one pick per connection. An unresolvable backend is still entered (with
// no endpoints), so its share of the connections is refused rather than terminated here; so does
// a route without backendRefs or with weight 0 only, and a name a TLS listener accepts that no
// TLSRoute routes (refuseUnroutedNames).

import type { PassthroughRouteIR } from '../../router/types.ts';
import type { BackendIndex } from '../backends.ts';
import { asArray, asRecord, asString, type KubeObject, type Problem } from '../objects.ts';
import { cond, type ConditionInput } from './conditions.ts';
import type { GatewayModel, ListenerModel } from './gateways.ts';
import { intersectHostnames, routeHostnames } from './hostnames.ts';
import type { BackendSink } from './httproute.ts';
import { GATEWAY_GROUP, readBackendRef, readParentRef, type ReferenceGrants } from './refs.ts';

export interface PassthroughSink extends BackendSink {
  /** `listener`: the listener the entry is for (a socket of its own keeps its entries apart). */
  addPassthrough(route: PassthroughRouteIR, listener?: ListenerModel): void;
  passthroughOwner(hostname: string, multiLabelWildcard: boolean, listener?: ListenerModel): PassthroughRouteIR | undefined;
}

export interface TLSRouteResult {
  readonly parents: { parentRef: Record<string, unknown>; conditions: ConditionInput[] }[];
}

/** Why a backendRef cannot be used, as a ResolvedRefs condition; undefined when it can. */
function refProblem(route: KubeObject, b: Record<string, unknown>, index: BackendIndex, grants: ReferenceGrants): { problem?: ConditionInput; refNs: string; name: string; port?: number } {
  const ns = route.metadata.namespace ?? 'default';
  const { group, kind, name, refNs, port, label } = readBackendRef(b, ns);
  let problem: ConditionInput | undefined;
  if (group !== '' || kind !== 'Service') problem = cond('ResolvedRefs', false, 'InvalidKind', `backendRef ${group || 'core'}/${kind} ${label}: only Services are supported`);
  else if (!grants.permits({ group: GATEWAY_GROUP, kind: 'TLSRoute', namespace: ns }, { group: '', kind: 'Service', namespace: refNs, name })) problem = cond('ResolvedRefs', false, 'RefNotPermitted', `Service ${label} is in another namespace and no ReferenceGrant there allows it`);
  else if (port === undefined) problem = cond('ResolvedRefs', false, 'BackendNotFound', `backendRef Service ${label} needs a port`);
  else {
    const why = index.referenceProblem(refNs, name, { number: port });
    if (why !== undefined) problem = cond('ResolvedRefs', false, 'BackendNotFound', why);
  }
  return { problem, refNs, name, port };
}

/**
 * The route's backends (keys with weights; weight 0 left out, as it never gets a connection) and
 * its ResolvedRefs condition over every backendRef. An unresolvable reference gets a backend
 * without endpoints, so its share of the connections is refused, as the spec asks.
 */
function resolveBackends(route: KubeObject, index: BackendIndex, grants: ReferenceGrants, sink: BackendSink): { backends: { backend: string; weight: number }[]; resolved: ConditionInput } {
  const ns = route.metadata.namespace ?? 'default';
  const refs = asArray(asRecord(route.spec).rules).flatMap((r) => asArray(asRecord(r).backendRefs).map(asRecord));
  const weighted = refs.filter((b) => b.weight !== 0);
  if (weighted.length === 0) {
    // No backendRef, or only weight 0: the spec's "no forwarding", and connections are rejected.
    const key = `!refused TLSRoute/${ns}/${route.metadata.name} no backend`;
    sink.addBackend(key, { name: key, protocol: 'http', endpoints: [], unavailableReason: refs.length === 0 ? 'the TLSRoute has no backendRefs' : 'every backendRef of the TLSRoute has weight 0' });
    return { backends: [{ backend: key, weight: 1 }], resolved: cond('ResolvedRefs', true, 'ResolvedRefs') };
  }
  const problems: ConditionInput[] = [];
  const backends = weighted.map((b, i) => {
    // As HTTPRoute reads it: default 1, the CRD's bounds (0 was left out above).
    const weight = typeof b.weight === 'number' && Number.isInteger(b.weight) && b.weight > 0 && b.weight <= 1_000_000 ? b.weight : 1;
    const { problem, refNs, name, port } = refProblem(route, b, index, grants);
    if (problem !== undefined) {
      problems.push(problem);
      // No endpoints: this reference's connections are refused.
      const key = `!refused TLSRoute/${ns}/${route.metadata.name}${weighted.length > 1 ? ` #${i}` : ''}`;
      sink.addBackend(key, { name: key, protocol: 'http', endpoints: [], unavailableReason: problem.message, errorStatus: 500 });
      return { backend: key, weight };
    }
    const r = index.resolve(refNs, name, { number: port! });
    sink.addBackend(r.key, r.backend);
    return { backend: r.key, weight };
  });
  const resolved = problems.length === 0 ? cond('ResolvedRefs', true, 'ResolvedRefs') : cond('ResolvedRefs', false, problems[0].reason, problems.map((p) => p.message).join('; '));
  return { backends, resolved };
}

export function translateTLSRoute(route: KubeObject, gateways: ReadonlyMap<string, GatewayModel>, index: BackendIndex, grants: ReferenceGrants, sink: PassthroughSink): TLSRouteResult {
  const ns = route.metadata.namespace ?? 'default';
  const spec = asRecord(route.spec);
  const { hostnames, invalid: badHostnames } = routeHostnames(spec.hostnames);
  const { backends, resolved } = resolveBackends(route, index, grants, sink);
  const target = { backend: backends[0].backend, ...(backends.length > 1 ? { backends } : {}) };
  const parents: TLSRouteResult['parents'] = [];
  // A route counts once per listener in attachedRoutes, however many of its parentRefs select it.
  const counted = new Set<ListenerModel>();
  for (const raw of asArray(spec.parentRefs)) {
    const ref = readParentRef(raw, ns, gateways);
    if (ref === undefined) continue;
    const { gateway: gw, sectionName, port, parentRef } = ref;
    const done = (accepted: ConditionInput) => parents.push({ parentRef, conditions: [accepted, resolved] });
    if (badHostnames.length > 0) {
      // Dropping the bad names could leave none, and no hostnames means the listener's.
      done(cond('Accepted', false, 'UnsupportedValue', `spec.hostnames ${badHostnames.join(', ')}: not a valid hostname (RFC 1123, optionally starting with "*.", not an IP address); the route is not served`));
      continue;
    }
    const candidates = gw.listeners.filter((l) => (sectionName === undefined || l.name === sectionName) && (port === undefined || l.port === port));
    if (candidates.length === 0) {
      done(cond('Accepted', false, 'NoMatchingParent', `Gateway ${parentRef.namespace as string}/${parentRef.name as string} has no listener${sectionName !== undefined ? ` named ${sectionName}` : ''}${port !== undefined ? ` on port ${port}` : ''}`));
      continue;
    }
    const allowed = candidates.filter((l) => l.accepted && l.supportedKinds.some((k) => k.kind === 'TLSRoute') && l.allowsNamespace(ns));
    if (allowed.length === 0) {
      done(cond('Accepted', false, 'NotAllowedByListeners', candidates.map((l) => `${l.name}: ${!l.accepted ? `not accepted (${l.accept?.reason})` : !l.supportedKinds.some((k) => k.kind === 'TLSRoute') ? 'does not allow TLSRoute' : `does not allow routes from namespace ${ns}`}`).join('; ')));
      continue;
    }
    const attached = allowed.map((l) => ({ listener: l, hosts: intersectHostnames(l.hostname, hostnames) })).filter((a) => a.hosts.length > 0);
    if (attached.length === 0) {
      done(cond('Accepted', false, 'NoMatchingListenerHostname', `no hostname of the route (${hostnames.join(', ')}) matches a listener`));
      continue;
    }
    const skipped: string[] = [];
    let entered = 0;
    for (const { listener, hosts } of attached) {
      for (const host of hosts) {
        if (host === undefined) {
          skipped.push(`listener ${listener.name}: neither the listener nor the route names a hostname, and passthrough is chosen by SNI hostname`);
          continue;
        }
        const multi = host.startsWith('*.');
        const owner = sink.passthroughOwner(host, multi, listener);
        if (owner !== undefined) {
          if (owner.source.kind !== 'TLSRoute' || owner.source.namespace !== ns || owner.source.name !== route.metadata.name) skipped.push(`${host} is already passed through by the older ${owner.source.kind} ${owner.source.namespace}/${owner.source.name}`);
          else entered++;
          continue;
        }
        if (listener.programmed) sink.addPassthrough({ hostname: host, ...(multi ? { multiLabelWildcard: true } : {}), ...target, source: { kind: 'TLSRoute', namespace: ns, name: route.metadata.name } }, listener);
        entered++;
      }
    }
    if (entered === 0) {
      done(cond('Accepted', false, 'UnsupportedValue', skipped.join('; ')));
      continue;
    }
    for (const { listener } of attached) {
      if (counted.has(listener)) continue;
      counted.add(listener);
      listener.attachedRoutes++;
    }
    done(cond('Accepted', true, 'Accepted', skipped.length > 0 ? `not served: ${skipped.join('; ')}` : ''));
  }
  return { parents };
}

/** Names Portico terminates TLS for on the HTTPS port: HTTPS listeners' hostnames and Ingress hosts. */
function terminatedNames(gateways: readonly GatewayModel[], objects: readonly KubeObject[]): { name: string; what: string }[] {
  const out: { name: string; what: string }[] = [];
  for (const g of gateways) for (const l of g.listeners) if (l.protocol === 'HTTPS' && l.accepted && l.hostname !== undefined) out.push({ name: l.hostname, what: `HTTPS listener ${g.key}/${l.name}` });
  for (const o of objects) {
    if (o.kind !== 'Ingress') continue;
    const spec = asRecord(o.spec);
    const hosts = [...asArray(spec.rules).map((r) => asString(asRecord(r).host)), ...asArray(spec.tls).flatMap((t) => asArray(asRecord(t).hosts).map(asString))];
    for (const h of new Set(hosts)) if (h) out.push({ name: h.toLowerCase(), what: `Ingress ${o.metadata.namespace ?? 'default'}/${o.metadata.name}` });
  }
  return out;
}

/**
 * A TLS Passthrough listener serves only the names its TLSRoutes route: a connection whose SNI
 * falls under the listener's hostname but matches no TLSRoute is refused, not terminated by
 * Portico with some other certificate. Call after every TLSRoute is entered: each listener
 * hostname no route holds gets an entry to a backend with no endpoints (the more specific route
 * entries still win). Not possible, and reported instead: when Portico terminates TLS for a name
 * under that hostname (an HTTPS listener or Ingress host there would be refused too), and for a
 * listener with no hostname (passthrough entries are by name; everything else is terminated).
 */
export function refuseUnroutedNames(gateways: readonly GatewayModel[], objects: readonly KubeObject[], sink: PassthroughSink): Problem[] {
  const problems: Problem[] = [];
  const terminated = terminatedNames(gateways, objects);
  // Beside no HTTPS listener and no Ingress, the socket refuses every name nothing routes by
  // itself (CertificateStore claims()): a listener without hostname needs no warning there.
  const terminatesOthers = objects.some((o) => o.kind === 'Ingress') || gateways.some((g) => g.listeners.some((l) => l.protocol === 'HTTPS' && l.accepted));
  for (const g of gateways) {
    for (const l of g.listeners) {
      if (l.protocol !== 'TLS' || !l.programmed) continue;
      const where = { kind: 'Gateway', namespace: g.object.metadata.namespace ?? 'default', name: g.object.metadata.name };
      const host = l.hostname;
      if (host === undefined) {
        if (terminatesOthers) problems.push({ severity: 'warning', ...where, message: `TLS listener ${l.name} has no hostname: a connection whose SNI matches no TLSRoute is terminated by Portico instead of refused (passthrough refuses by hostname only); give the listener a hostname` });
        continue;
      }
      const multi = host.startsWith('*.');
      if (sink.passthroughOwner(host, multi) !== undefined) continue;
      // Names under the listener's hostname (or the same) that Portico terminates.
      const under = terminated.filter((t) => intersectHostnames(host, [t.name])[0] === t.name);
      if (under.length > 0) {
        problems.push({ severity: 'warning', ...where, message: `TLS listener ${l.name} (${host}): a connection whose SNI matches no TLSRoute is terminated by Portico instead of refused, because ${under.map((t) => `${t.what} (${t.name})`).join(', ')} is terminated under that hostname` });
        continue;
      }
      const key = `!refused TLS listener ${g.key}/${l.name}`;
      sink.addBackend(key, { name: key, protocol: 'http', endpoints: [], unavailableReason: `no TLSRoute on listener ${g.key}/${l.name} routes this server name` });
      sink.addPassthrough({ hostname: host, ...(multi ? { multiLabelWildcard: true } : {}), backend: key, source: where });
    }
  }
  return problems;
}
