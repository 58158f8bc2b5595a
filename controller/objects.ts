// The Kubernetes objects Portico reads, as plain JSON. Sources deliver them untrusted (a manifest
// file can say anything), so readers go through the small accessors here instead of trusting types.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

/** An object plus where it came from (a manifest file, or the API server). */
export interface SourcedObject {
  readonly object: KubeObject;
  readonly origin: string;
}

/** Something wrong with an input, reported in logs, /status and metrics; never a crash. */
export interface Problem {
  readonly severity: 'error' | 'warning';
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** A file path or 'kubernetes'. */
  readonly origin?: string;
  readonly message: string;
}

/** What a source hands to translation: the whole current set of objects. */
export interface SourceSnapshot {
  readonly objects: readonly SourcedObject[];
  readonly problems: readonly Problem[];
}

const CLUSTER_SCOPED = new Set(['Namespace', 'IngressClass', 'GatewayClass', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

export function isClusterScoped(kind: string): boolean {
  return CLUSTER_SCOPED.has(kind);
}

export function objectKey(o: KubeObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

export function nsName(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asRecord(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

/**
 * Checks the envelope every object needs (apiVersion, kind, metadata.name) and returns a reason
 * when it is missing, so one bad document never stops the others from loading.
 */
export function validateEnvelope(v: unknown): string | undefined {
  if (!isRecord(v)) return 'document is not an object';
  if (typeof v.apiVersion !== 'string' || v.apiVersion === '') return 'missing apiVersion';
  if (typeof v.kind !== 'string' || v.kind === '') return 'missing kind';
  const meta = v.metadata;
  if (!isRecord(meta)) return `${v.kind}: missing metadata`;
  if (typeof meta.name !== 'string' || meta.name === '') return `${v.kind}: missing metadata.name`;
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') return `${v.kind} ${meta.name}: metadata.namespace must be a string`;
  for (const field of ['labels', 'annotations']) {
    const m = meta[field];
    if (m === undefined || m === null) continue;
    if (!isRecord(m) || Object.values(m).some((x) => typeof x !== 'string')) return `${v.kind} ${meta.name}: metadata.${field} must map strings to strings`;
  }
  return undefined;
}

/** Sort key for "oldest wins" rules: creationTimestamp, then namespace/name. */
export function compareAge(a: KubeObject, b: KubeObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
