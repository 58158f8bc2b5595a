// ReferenceGrant (an index consulted for cross-namespace references) and Namespace label selection
// for allowedRoutes.namespaces.from: Selector.

import { asArray, asRecord, asString, type KubeObject } from '../objects.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export interface RefFrom {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}
export interface RefTo {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * A reference's string field: absent takes the spec's default; present but not a string becomes
 * its JSON text, which names nothing, so a malformed reference matches less rather than
 * widening to the default (a grant's `to.name: 7` granting every name, a parentRef's
 * `sectionName: 7` attaching to every listener) and shows as written in messages.
 */
function field(v: unknown, absent: string): string;
function field(v: unknown, absent: undefined): string | undefined;
function field(v: unknown, absent: string | undefined): string | undefined {
  if (v === undefined || v === null) return absent;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export class ReferenceGrants {
  private readonly grants: KubeObject[];
  constructor(objects: readonly KubeObject[]) {
    this.grants = objects.filter((o) => o.kind === 'ReferenceGrant' && (o.apiVersion === `${GATEWAY_GROUP}/v1beta1` || o.apiVersion === `${GATEWAY_GROUP}/v1`));
  }

  /** A reference into the same namespace needs no grant; another namespace needs one there. */
  permits(from: RefFrom, to: RefTo): boolean {
    if (from.namespace === to.namespace) return true;
    return this.grants.some((g) => {
      if ((g.metadata.namespace ?? 'default') !== to.namespace) return false;
      const spec = asRecord(g.spec);
      const fromOk = asArray(spec.from).some((f) => {
        const r = asRecord(f);
        return field(r.group, '') === from.group && asString(r.kind) === from.kind && asString(r.namespace) === from.namespace;
      });
      if (!fromOk) return false;
      return asArray(spec.to).some((t) => {
        const r = asRecord(t);
        const name = field(r.name, undefined);
        return field(r.group, '') === to.group && asString(r.kind) === to.kind && (name === undefined || name === '' || name === to.name);
      });
    });
  }
}

/** Namespace labels; a namespace without an object still has kubernetes.io/metadata.name, as the API server sets it. */
export class NamespaceLabels {
  private readonly labels = new Map<string, Record<string, string>>();
  constructor(objects: readonly KubeObject[]) {
    for (const o of objects) if (o.kind === 'Namespace') this.labels.set(o.metadata.name, { ...(o.metadata.labels ?? {}), 'kubernetes.io/metadata.name': o.metadata.name });
  }
  of(ns: string): Record<string, string> {
    return this.labels.get(ns) ?? { 'kubernetes.io/metadata.name': ns };
  }
}

/**
 * A metav1.LabelSelector as a predicate; undefined when it is malformed (then it selects nothing,
 * which is the restrictive reading).
 */
export function labelSelector(sel: unknown): ((labels: Record<string, string>) => boolean) | undefined {
  const s = asRecord(sel);
  const match = asRecord(s.matchLabels);
  const tests: ((l: Record<string, string>) => boolean)[] = [];
  for (const [k, v] of Object.entries(match)) {
    if (typeof v !== 'string') return undefined;
    tests.push((l) => l[k] === v);
  }
  for (const e of asArray(s.matchExpressions)) {
    const r = asRecord(e);
    const key = asString(r.key);
    const op = asString(r.operator);
    const values = asArray(r.values).filter((v): v is string => typeof v === 'string');
    if (!key) return undefined;
    if (op === 'In') tests.push((l) => l[key] !== undefined && values.includes(l[key]));
    else if (op === 'NotIn') tests.push((l) => l[key] === undefined || !values.includes(l[key]));
    else if (op === 'Exists') tests.push((l) => l[key] !== undefined);
    else if (op === 'DoesNotExist') tests.push((l) => l[key] === undefined);
    else return undefined;
  }
  return (l) => tests.every((t) => t(l));
}

/**
 * A route's parentRef, read: the Gateway it names (by `namespace/name`, the route's namespace by
 * default) when that is one of Portico's, the listener selectors, and the parentRef as status
 * echoes it. Undefined for another kind or a Gateway Portico does not own (its controller reports).
 */
export function readParentRef<G>(raw: unknown, routeNamespace: string, gateways: ReadonlyMap<string, G>): { gateway: G; sectionName: string | undefined; port: number | undefined; parentRef: Record<string, unknown> } | undefined {
  const p = asRecord(raw);
  const group = field(p.group, GATEWAY_GROUP);
  const kind = field(p.kind, 'Gateway');
  const name = field(p.name, '');
  const namespace = field(p.namespace, routeNamespace);
  if (group !== GATEWAY_GROUP || kind !== 'Gateway') return undefined;
  const gateway = gateways.get(`${namespace}/${name}`);
  if (gateway === undefined) return undefined;
  const sectionName = field(p.sectionName, undefined);
  // Not a port number: port 0, which no listener has (NoMatchingParent), not "any port".
  const port = p.port === undefined || p.port === null ? undefined : typeof p.port === 'number' && Number.isInteger(p.port) ? p.port : 0;
  return { gateway, sectionName, port, parentRef: { group, kind, namespace, name, ...(sectionName !== undefined ? { sectionName } : {}), ...(port !== undefined ? { port } : {}) } };
}

/** A backendRef's fields as the spec defaults them (core Service, the route's namespace), and its label for messages. */
export function readBackendRef(b: Record<string, unknown>, routeNamespace: string): { group: string; kind: string; name: string; refNs: string; port: number | undefined; label: string } {
  const group = field(b.group, '');
  const kind = field(b.kind, 'Service');
  const name = field(b.name, '');
  const refNs = field(b.namespace, routeNamespace);
  const port = typeof b.port === 'number' && Number.isInteger(b.port) && b.port > 0 && b.port < 65536 ? b.port : undefined;
  return { group, kind, name, refNs, port, label: `${refNs}/${name}${port !== undefined ? ':' + port : ''}` };
}
