// Object storage with one global resourceVersion counter and a bounded event history that
// watches replay from. Objects are stored once per group+kind and served at every version.
import { randomUUID } from 'node:crypto';
import { alreadyExists, badRequest, conflict, expired, invalid, notFound } from './errors.ts';
import { groupVersion, type ResourceType } from './resources.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface StoredEvent { rv: number; type: EventType; gk: string; obj: any; prev?: any }

const HISTORY_MAX = 10_000;
const clone = <T>(v: T): T => structuredClone(v);
const gkOf = (t: ResourceType): string => `${t.group}/${t.plural}`;
const keyOf = (ns: string | undefined, name: string): string => `${ns ?? ''}/${name}`;
/** Everything except metadata and status: a change here bumps metadata.generation. */
const specPart = (o: any): string => JSON.stringify(o, (k, v) => (k === 'metadata' || k === 'status' ? undefined : v));

// metav1.MicroTime is parsed with exactly six fractional digits; a JS Date's three are refused.
const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/;
function checkMicroTimes(t: ResourceType, obj: any): void {
  if (t.kind !== 'Lease') return;
  for (const f of ['acquireTime', 'renewTime']) {
    const v = obj?.spec?.[f];
    if (v !== undefined && v !== null && (typeof v !== 'string' || !MICROTIME.test(v))) {
      throw badRequest(`Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(String(v))} as "2006-01-02T15:04:05.000000Z07:00": cannot parse as MicroTime`);
    }
  }
}

export interface WriteOptions { subresource?: 'status' }

export class Store {
  private rv = 1;
  private objects = new Map<string, Map<string, any>>();
  private history: StoredEvent[] = [];
  /** Lowest resourceVersion a watch may start from (older ones get 410 Gone). */
  private oldest = 1;
  private listeners = new Set<(ev: StoredEvent) => void>();

  currentRv(): number { return this.rv; }
  oldestRv(): number { return this.oldest; }
  expire(): void { this.oldest = this.rv; this.history = []; }

  subscribe(fn: (ev: StoredEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Events after `rv` for one resource, or a 410 when history no longer reaches back that far. */
  since(t: ResourceType, rv: number): StoredEvent[] {
    if (rv < this.oldest) throw expired(`too old resource version: ${rv} (${this.rv})`);
    const gk = gkOf(t);
    return this.history.filter((e) => e.rv > rv && e.gk === gk);
  }

  private bucket(t: ResourceType): Map<string, any> {
    const gk = gkOf(t);
    let b = this.objects.get(gk);
    if (!b) this.objects.set(gk, (b = new Map()));
    return b;
  }

  private record(t: ResourceType, type: EventType, obj: any, prev?: any): void {
    const ev = { rv: Number(obj.metadata.resourceVersion), type, gk: gkOf(t), obj: clone(obj), prev: prev && clone(prev) };
    this.history.push(ev);
    if (this.history.length > HISTORY_MAX) {
      const dropped = this.history.splice(0, this.history.length - HISTORY_MAX);
      this.oldest = dropped[dropped.length - 1].rv;
    }
    for (const l of [...this.listeners]) l(ev);
  }

  /** The stored object as served at `t`'s version. */
  private view(t: ResourceType, obj: any): any {
    return { ...clone(obj), apiVersion: groupVersion(t), kind: t.kind };
  }

  get(t: ResourceType, ns: string | undefined, name: string): any | undefined {
    const o = this.bucket(t).get(keyOf(t.namespaced ? ns : undefined, name));
    return o && this.view(t, o);
  }

  list(t: ResourceType, ns?: string): any[] {
    const out = [...this.bucket(t).values()].filter((o) => !ns || !t.namespaced || o.metadata.namespace === ns).map((o) => this.view(t, o));
    return out.sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)));
  }

  viewEvent(t: ResourceType, ev: StoredEvent): any { return this.view(t, ev.obj); }

  create(t: ResourceType, input: any): any {
    const obj = clone(input);
    checkMicroTimes(t, obj);
    const md = (obj.metadata ??= {});
    if (!md.name && md.generateName) md.name = md.generateName + randomUUID().slice(0, 5);
    if (!md.name || typeof md.name !== 'string') throw invalid(t, '', 'metadata.name: Required value: name or generateName is required');
    if (t.namespaced) md.namespace ??= 'default';
    else delete md.namespace;
    const key = keyOf(md.namespace, md.name);
    const b = this.bucket(t);
    if (b.has(key)) throw alreadyExists(t, md.name);
    md.uid = randomUUID();
    md.resourceVersion = String(++this.rv);
    md.generation = 1;
    md.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    delete md.deletionTimestamp;
    if (t.kind === 'Namespace') obj.status = { phase: 'Active' };
    if (t.kind === 'Secret' && !obj.type) obj.type = 'Opaque';
    if (t.kind === 'Secret' && obj.stringData) {
      // stringData is write-only: folded into data as base64.
      obj.data = { ...obj.data };
      for (const [k, v] of Object.entries(obj.stringData)) obj.data[k] = Buffer.from(String(v)).toString('base64');
      delete obj.stringData;
    }
    obj.apiVersion = groupVersion(t);
    obj.kind = t.kind;
    b.set(key, obj);
    this.record(t, 'ADDED', obj);
    return this.view(t, obj);
  }

  /**
   * Replaces an object. A main-resource write keeps the stored status when the kind has a status
   * subresource; a status write changes only status. A resourceVersion in the input must match.
   */
  update(t: ResourceType, input: any, opts: WriteOptions = {}): any {
    const md = input?.metadata ?? {};
    const ns = t.namespaced ? (md.namespace ?? 'default') : undefined;
    const key = keyOf(ns, md.name);
    const b = this.bucket(t);
    const old = b.get(key);
    if (!old) throw notFound(t, md.name);
    if (md.resourceVersion !== undefined && md.resourceVersion !== '' && md.resourceVersion !== old.metadata.resourceVersion) throw conflict(t, md.name);
    checkMicroTimes(t, input);
    let next: any;
    if (opts.subresource === 'status') {
      next = clone(old);
      if (input.status === undefined) delete next.status;
      else next.status = clone(input.status);
    } else {
      next = clone(input);
      if (t.status) {
        if (old.status === undefined) delete next.status;
        else next.status = clone(old.status);
      }
      next.metadata = { ...clone(md), namespace: ns, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp, generation: old.metadata.generation };
      if (!t.namespaced) delete next.metadata.namespace;
      if (t.kind === 'Secret' && next.stringData) {
        next.data = { ...next.data };
        for (const [k, v] of Object.entries(next.stringData)) next.data[k] = Buffer.from(String(v)).toString('base64');
        delete next.stringData;
      }
      if (t.kind === 'Secret' && !next.type) next.type = old.type;
      if (t.kind === 'Secret' && next.type !== old.type) throw invalid(t, md.name, 'type: Invalid value: field is immutable');
    }
    next.apiVersion = groupVersion(t);
    next.kind = t.kind;
    if (specPart(next) !== specPart(old)) next.metadata.generation = (old.metadata.generation ?? 1) + 1;
    // A write that changes nothing keeps the resourceVersion and sends no event, as the API server does.
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (JSON.stringify(next) === JSON.stringify(old)) return this.view(t, old);
    next.metadata.resourceVersion = String(++this.rv);
    b.set(key, next);
    this.record(t, 'MODIFIED', next, old);
    return this.view(t, next);
  }

  delete(t: ResourceType, ns: string | undefined, name: string, precondition?: { resourceVersion?: string; uid?: string }): any {
    const key = keyOf(t.namespaced ? ns : undefined, name);
    const b = this.bucket(t);
    const old = b.get(key);
    if (!old) throw notFound(t, name);
    if (precondition?.resourceVersion && precondition.resourceVersion !== old.metadata.resourceVersion) throw conflict(t, name);
    if (precondition?.uid && precondition.uid !== old.metadata.uid) throw conflict(t, name);
    b.delete(key);
    const gone = { ...clone(old), metadata: { ...clone(old.metadata), resourceVersion: String(++this.rv) } };
    this.record(t, 'DELETED', gone);
    if (t.kind === 'Namespace') for (const [gk, objs] of this.objects) for (const [k, o] of objs) if (o.metadata.namespace === name) this.dropNamespaced(gk, k, o);
    return this.view(t, gone);
  }

  /** Deletes every object of a group (a CRD removed takes its custom resources with it). */
  dropGroup(group: string): void {
    for (const [gk, objs] of this.objects) if (gk.startsWith(`${group}/`)) for (const [k, o] of [...objs]) this.dropNamespaced(gk, k, o);
  }

  private dropNamespaced(gk: string, key: string, o: any): void {
    this.objects.get(gk)!.delete(key);
    const gone = { ...clone(o), metadata: { ...clone(o.metadata), resourceVersion: String(++this.rv) } };
    const ev = { rv: this.rv, type: 'DELETED' as const, gk, obj: gone };
    this.history.push(ev);
    for (const l of [...this.listeners]) l(ev);
  }
}
