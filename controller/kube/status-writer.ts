// Writes the translator's status items to the status subresource. Items are generic (apiVersion,
// kind, namespace, name, status body), so Gateway API status flows through the same path.
// Merge patch carrying the read resourceVersion (optimistic lock), only when something changed,
// retried on conflict; a live condition with a newer observedGeneration is never overwritten.
// Status Portico wrote on objects it no longer owns is released (see released()): its route
// parents entries, and the conditions of a Gateway or GatewayClass that moved to another owner.

import { isRecord, type KubeObject } from '../objects.ts';
import type { StatusItem } from '../status.ts';
import { errorCode, type KubeClient } from './client.ts';
import { accessFor } from './resources.ts';

export interface StatusWriterLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface StatusWriterOptions {
  readonly client: KubeClient;
  readonly log: StatusWriterLog;
  readonly conflictRetries?: number;
  /** The object's current identity (uid/resourceVersion), so a re-created object is written again. */
  readonly identity?: (kind: string, namespace: string | undefined, name: string) => string | undefined;
  /** Called for every write attempt result, for metrics. */
  readonly onResult?: (kind: string, result: 'written' | 'unchanged' | 'stale' | 'conflict' | 'error' | 'cleared') => void;
  /** `--gateway-controller-name`: route status.parents entries with it are Portico's. */
  readonly controllerName?: string;
}

/** The objects as the API (the informer cache) has them now, with their current status. */
export type LiveObjects = readonly KubeObject[];

const ROUTE_KINDS = new Set(['HTTPRoute', 'GRPCRoute', 'TLSRoute']);
const GATEWAY_GROUP = 'gateway.networking.k8s.io/';

interface Release {
  readonly item: StatusItem;
  /** metadata.generation in the cache when the release was decided. */
  readonly generation: number | undefined;
}

const isStale = (c: unknown, generation: number | undefined): boolean =>
  isRecord(c) && typeof c.observedGeneration === 'number' && generation !== undefined && c.observedGeneration < generation;

/**
 * What a released object's status becomes: a route without our parents entries; a Gateway or
 * GatewayClass without the conditions written for an older generation (ours: we stopped writing
 * when it moved), and, when no condition is left that another controller wrote for the current
 * one, without the listeners, addresses and supportedFeatures we wrote beside them. Returns
 * undefined when there is nothing of ours left.
 */
export function releasedStatus(kind: string, live: unknown, generation: number | undefined, controllerName: string): Record<string, unknown> | undefined {
  if (!isRecord(live)) return undefined;
  if (ROUTE_KINDS.has(kind)) {
    if (!Array.isArray(live.parents)) return undefined;
    const others = live.parents.filter((p) => !(isRecord(p) && p.controllerName === controllerName));
    // parents is required in RouteStatus: [] rather than absent.
    return others.length === live.parents.length ? undefined : { parents: others };
  }
  const conditions = Array.isArray(live.conditions) ? live.conditions : [];
  const fresh = conditions.filter((c) => !isStale(c, generation));
  const extra = kind === 'Gateway' ? ['listeners', 'addresses'] : kind === 'GatewayClass' ? ['supportedFeatures'] : [];
  const out: Record<string, unknown> = {};
  // A merge patch replaces the list whole; null removes the field (the CRD default comes back).
  if (fresh.length !== conditions.length) out.conditions = fresh.length > 0 ? fresh : null;
  const freshByOthers = fresh.some((c) => isRecord(c) && typeof c.observedGeneration === 'number');
  if (!freshByOthers) for (const k of extra) if (live[k] !== undefined && live[k] !== null) out[k] = null;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Objects that carry status Portico wrote though it owns them no more: routes with parents
 * entries of ours and no item (no parentRef names a Portico Gateway now, or its Gateway is gone),
 * and Gateways and GatewayClasses without an item that we wrote before (`owned`), or, for a
 * Gateway (after a restart, with nothing remembered), whose conditions are from an older
 * generation and whose addresses are those Portico publishes for its Gateways.
 */
export function released(objects: LiveObjects, items: readonly StatusItem[], controllerName: string, owned: ReadonlyMap<string, string | undefined>): Release[] {
  const have = new Set(items.map(keyOf));
  // No addresses says nothing about who wrote a status: only a non-empty list is a signature.
  const ourAddresses = new Set(items.filter((i) => i.kind === 'Gateway' && Array.isArray(i.status.addresses) && i.status.addresses.length > 0).map((i) => JSON.stringify(i.status.addresses)));
  const out: Release[] = [];
  for (const o of objects) {
    if (!o.apiVersion.startsWith(GATEWAY_GROUP)) continue;
    const key = keyOf(o);
    if (have.has(key)) continue;
    const generation = o.metadata.generation;
    let ours = false;
    if (ROUTE_KINDS.has(o.kind)) ours = true;
    else if (o.kind === 'Gateway' || o.kind === 'GatewayClass') {
      const status = isRecord(o.status) ? o.status : {};
      const stale = Array.isArray(status.conditions) && status.conditions.some((c) => isStale(c, generation));
      ours = (owned.has(key) && (owned.get(key) === undefined || owned.get(key) === o.metadata.uid)) || (o.kind === 'Gateway' && stale && ourAddresses.has(JSON.stringify(status.addresses)));
    }
    if (!ours || releasedStatus(o.kind, o.status, generation, controllerName) === undefined) continue;
    out.push({ item: { apiVersion: o.apiVersion, kind: o.kind, metadata: { ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}), name: o.metadata.name, ...(generation !== undefined ? { generation } : {}) }, status: {} }, generation });
  }
  return out;
}

function keyOf(i: { readonly kind: string; readonly metadata: { readonly namespace?: string; readonly name: string } }): string {
  return `${i.kind}/${i.metadata.namespace ?? ''}/${i.metadata.name}`;
}

/** Every condition list in a status body: top-level, listeners[], parents[]. */
function conditionLists(status: unknown): Record<string, unknown>[][] {
  if (!isRecord(status)) return [];
  const out: Record<string, unknown>[][] = [];
  const take = (v: unknown): void => {
    if (Array.isArray(v)) out.push(v.filter(isRecord));
  };
  take(status.conditions);
  for (const arr of [status.listeners, status.parents]) if (Array.isArray(arr)) for (const e of arr) if (isRecord(e)) take(e.conditions);
  return out;
}

/** True when the live object carries a condition computed from a newer generation than ours. */
export function liveIsNewer(live: unknown, computed: unknown): boolean {
  const ours = conditionLists(computed).flat();
  const theirs = conditionLists(live).flat();
  for (const c of ours) {
    const g = typeof c.observedGeneration === 'number' ? c.observedGeneration : undefined;
    if (g === undefined) continue;
    for (const l of theirs) if (l.type === c.type && typeof l.observedGeneration === 'number' && l.observedGeneration > g) return true;
  }
  return false;
}

/** Whether every field we compute already has that value live (fields we do not compute are left alone). */
export function covers(live: unknown, computed: unknown): boolean {
  if (isRecord(computed)) {
    if (!isRecord(live)) return false;
    const keys = Object.keys(computed);
    // An empty object in a merge patch means "no fields": only equal if live has none either.
    if (keys.length === 0) return Object.keys(live).length === 0;
    return keys.every((k) => covers(live[k], computed[k]));
  }
  return JSON.stringify(live) === JSON.stringify(computed);
}

/**
 * A merge patch replaces arrays whole, so the body keeps what others own: route `parents` entries
 * of other controllers and top-level conditions of types we do not compute.
 */
export function mergeOwned(live: unknown, computed: Record<string, unknown>): Record<string, unknown> {
  if (!isRecord(live)) return computed;
  const out = { ...computed };
  if (Array.isArray(computed.parents) && Array.isArray(live.parents)) {
    const ours = new Set(computed.parents.filter(isRecord).map((p) => p.controllerName));
    out.parents = [...live.parents.filter((p) => isRecord(p) && !ours.has(p.controllerName)), ...computed.parents];
  }
  if (Array.isArray(computed.conditions) && Array.isArray(live.conditions)) {
    const types = new Set(computed.conditions.filter(isRecord).map((c) => c.type));
    out.conditions = [...live.conditions.filter((c) => isRecord(c) && !types.has(c.type)), ...computed.conditions];
  }
  return out;
}

export class StatusWriter {
  private readonly o: StatusWriterOptions;
  /** What was last written (or found already in place), by object key. */
  private readonly written = new Map<string, string>();
  /** Ingresses whose loadBalancer status we wrote: cleared when they stop being served. */
  private readonly servedIngress = new Map<string, StatusItem>();
  /** Gateways and GatewayClasses whose status we wrote (key -> uid): released when they stop being ours. */
  private readonly owned = new Map<string, string | undefined>();
  private running: Promise<void> = Promise.resolve();
  private pending: { items: readonly StatusItem[]; ingressOnHold: boolean; objects?: LiveObjects } | undefined;

  constructor(options: StatusWriterOptions) {
    this.o = options;
  }

  /**
   * Queues the current set of items; writes run one batch at a time, the newest set wins. With
   * `ingressOnHold` (the published address is pending), Ingress status is neither written nor
   * cleared: only the other kinds' is. With `objects` (the cached objects, with their status) and
   * a controllerName, Gateway API status of ours on objects we no longer own is released.
   */
  update(items: readonly StatusItem[], options: { ingressOnHold?: boolean; objects?: LiveObjects } = {}): Promise<void> {
    const idle = this.pending === undefined;
    this.pending = { items, ingressOnHold: options.ingressOnHold === true, ...(options.objects !== undefined ? { objects: options.objects } : {}) };
    if (idle) this.running = this.running.then(() => this.drain());
    return this.running;
  }

  /** Ingresses that carry our address though not served (e.g. served before a restart): cleared on the next update. */
  adoptServed(items: readonly StatusItem[]): void {
    for (const i of items) if (!this.servedIngress.has(keyOf(i))) this.servedIngress.set(keyOf(i), i);
  }

  /** Forgets what was written, e.g. after losing leadership (another replica may write meanwhile). */
  reset(): void {
    this.written.clear();
  }

  private async drain(): Promise<void> {
    const batch = this.pending;
    this.pending = undefined;
    if (batch === undefined) return;
    const items = batch.ingressOnHold ? batch.items.filter((i) => i.kind !== 'Ingress') : batch.items;
    const now = new Set(items.map(keyOf));
    if (!batch.ingressOnHold) for (const [key, prev] of [...this.servedIngress]) {
      if (now.has(key)) continue;
      // Served before, not now: ExternalDNS must not keep pointing its hosts at Portico.
      const clear = { ...prev, status: { loadBalancer: { ingress: null } } } as unknown as StatusItem;
      if (await this.writeOne(clear, 'clear')) this.servedIngress.delete(key);
    }
    const controllerName = this.o.controllerName;
    if (batch.objects !== undefined && controllerName !== undefined) {
      const present = new Set(batch.objects.map(keyOf));
      for (const key of [...this.owned.keys()]) if (!present.has(key)) this.owned.delete(key);
      for (const r of released(batch.objects, items, controllerName, this.owned)) {
        if (await this.writeOne(r.item, 'release', r.generation)) this.owned.delete(keyOf(r.item));
      }
    }
    for (const item of items) {
      const done = await this.writeOne(item, 'write');
      if (done && item.kind === 'Ingress') this.servedIngress.set(keyOf(item), item);
      if (done && (item.kind === 'Gateway' || item.kind === 'GatewayClass')) this.owned.set(keyOf(item), this.o.identity?.(item.kind, item.metadata.namespace, item.metadata.name));
    }
  }

  /** Returns true when the object now has the status (written or already in place, or gone). */
  private async writeOne(item: StatusItem, mode: 'write' | 'clear' | 'release', generation?: number): Promise<boolean> {
    const clearing = mode === 'clear';
    const key = keyOf(item);
    const id = this.o.identity?.(item.kind, item.metadata.namespace, item.metadata.name) ?? '';
    const body = mode === 'release' ? `${id}|released` : `${id}|${JSON.stringify(item.status)}`;
    if (this.written.get(key) === body) return true;
    let access;
    try {
      access = accessFor(item.kind, 'status');
    } catch (err) {
      this.o.log.warn({ kind: item.kind }, (err as Error).message);
      return false;
    }
    const { namespace, name } = item.metadata;
    const retries = this.o.conflictRetries ?? 5;
    for (let attempt = 0; attempt <= retries; attempt++) {
      try {
        const live = (await this.o.client.getStatus(access, namespace, name)) as KubeObject;
        if (mode === 'release') {
          // Changed since the cache saw it (it may name a Portico Gateway again): the newer event decides.
          if (live.metadata.generation !== generation) {
            this.o.onResult?.(item.kind, 'stale');
            return false;
          }
          const wanted = releasedStatus(item.kind, live.status, generation, this.o.controllerName ?? '');
          if (wanted === undefined) {
            this.written.set(key, body);
            this.o.onResult?.(item.kind, 'unchanged');
            return true;
          }
          await this.o.client.patchStatus(access, namespace, name, { metadata: { resourceVersion: live.metadata.resourceVersion }, status: wanted });
          this.written.set(key, body);
          this.o.onResult?.(item.kind, 'cleared');
          this.o.log.info({ kind: item.kind, namespace, name }, 'released status (no longer owned)');
          return true;
        }
        if (!clearing && liveIsNewer(live.status, item.status)) {
          this.o.onResult?.(item.kind, 'stale');
          return false; // our view is older than what is written; the newer event will come
        }
        const wanted = clearing ? item.status : mergeOwned(live.status, item.status);
        const already = clearing ? !hasLbIngress(live.status) : covers(live.status, wanted);
        if (already) {
          this.written.set(key, body);
          this.o.onResult?.(item.kind, 'unchanged');
          return true;
        }
        await this.o.client.patchStatus(access, namespace, name, { metadata: { resourceVersion: live.metadata.resourceVersion }, status: wanted });
        this.written.set(key, body);
        this.o.onResult?.(item.kind, clearing ? 'cleared' : 'written');
        this.o.log.info({ kind: item.kind, namespace, name }, clearing ? 'cleared status' : 'wrote status');
        return true;
      } catch (err) {
        const code = errorCode(err);
        if (code === 404) return true; // deleted meanwhile: nothing to write
        if (code === 409 && attempt < retries) {
          this.o.onResult?.(item.kind, 'conflict');
          continue;
        }
        this.o.onResult?.(item.kind, 'error');
        this.o.log.warn({ kind: item.kind, namespace, name, code, err: (err as Error).message }, 'status write failed; will retry on the next change');
        return false;
      }
    }
    return false;
  }
}

function hasLbIngress(status: unknown): boolean {
  const lb = isRecord(status) ? status.loadBalancer : undefined;
  return isRecord(lb) && Array.isArray(lb.ingress) && lb.ingress.length > 0;
}
