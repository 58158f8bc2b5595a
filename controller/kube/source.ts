// The Kubernetes API source: one client-node informer per kind in KUBE_ACCESS, restarted with
// backoff when it stops (client-node's informer gives up on anything but 410), Gateway API kinds
// picked up when their CRDs appear. Delivers the same SourceSnapshot as the manifest directory.

import * as k8s from '@kubernetes/client-node';
import type { KubeObject, SourceSnapshot, SourcedObject } from '../objects.ts';
import { Coalescer, type Source, type SourceHealth } from '../source.ts';
import { errorCode, type KubeClient } from './client.ts';
import { resourcePath, watchedResources, type KubeAccess } from './resources.ts';

export interface KubeSourceLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface KubeSourceOptions {
  readonly client: KubeClient;
  /** Limits the namespaced kinds to one namespace. */
  readonly watchNamespace?: string;
  readonly log: KubeSourceLog;
  readonly coalesceMs?: number;
  readonly coalesceMaxMs?: number;
  /** How often discovery is re-checked for Gateway API CRDs that were installed or removed. */
  readonly rediscoverMs?: number;
  readonly restartMinMs?: number;
  readonly restartMaxMs?: number;
  /**
   * Objects watched by name outside --watch-namespace: the --publish-service Service, which
   * usually lives in the controller's namespace rather than the watched one.
   */
  readonly namedObjects?: readonly { readonly kind: string; readonly namespace: string; readonly name: string }[];
}

/** Secrets Portico can use: only TLS ones, so the cache never holds other credentials. */
export const TLS_SECRET_SELECTOR = 'type=kubernetes.io/tls';

/** Groups served by CRDs that may be missing; the built-in kinds must all be served. */
const OPTIONAL_GROUPS = new Set(['gateway.networking.k8s.io']);

interface Watched {
  readonly access: KubeAccess;
  readonly informer: k8s.ListWatch<k8s.KubernetesObject>;
  stopped: boolean;
  synced: boolean;
  downSince?: number;
  backoffMs: number;
  restartTimer?: NodeJS.Timeout;
}

export class KubeSource implements Source {
  private readonly o: KubeSourceOptions;
  private readonly watched = new Map<string, Watched>();
  private readonly skipped = new Set<string>();
  private readonly coalescer: Coalescer;
  private onSnapshot: ((s: SourceSnapshot) => void) | undefined;
  private discoverTimer: NodeJS.Timeout | undefined;
  private delivered = false;
  private stopping = false;

  constructor(options: KubeSourceOptions) {
    this.o = options;
    this.coalescer = new Coalescer(() => this.deliver(), options.coalesceMs ?? 50, options.coalesceMaxMs ?? 500);
  }

  async start(onSnapshot: (s: SourceSnapshot) => void): Promise<void> {
    this.onSnapshot = onSnapshot;
    await this.discover();
    this.discoverTimer = setInterval(() => void this.discover(), this.o.rediscoverMs ?? 30_000);
    this.discoverTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.discoverTimer);
    this.coalescer.cancel();
    this.onSnapshot = undefined;
    await Promise.all([...this.watched.values()].map((w) => this.stopOne(w)));
  }

  health(): SourceHealth {
    const down = [...this.watched.values()].filter((w) => w.downSince !== undefined);
    const staleSince = down.length > 0 ? Math.min(...down.map((w) => w.downSince!)) : undefined;
    return {
      synced: this.delivered,
      ...(staleSince !== undefined ? { staleSince, detail: `watch down for ${down.map((w) => w.access.resource).join(', ')}` } : {}),
    };
  }

  /** Which watched kinds the server serves; adds informers for new ones and drops vanished CRDs. */
  private async discover(): Promise<void> {
    const byGv = new Map<string, KubeAccess[]>();
    for (const a of watchedResources()) {
      const gv = `${a.group}/${a.version}`;
      byGv.set(gv, [...(byGv.get(gv) ?? []), a]);
    }
    for (const list of byGv.values()) {
      let served: Set<string> | undefined;
      try {
        served = await this.o.client.servedResources(list[0].group, list[0].version);
      } catch (err) {
        // Discovery failing says nothing about the CRDs: keep what runs, try again next round.
        this.o.log.warn({ err: (err as Error).message, group: list[0].group }, 'API discovery failed; will retry');
        continue;
      }
      if (this.stopping) return;
      for (const a of list) {
        const key = `${a.group}/${a.resource}`;
        const present = served?.has(a.resource) ?? false;
        const w = this.watched.get(key);
        if (present && w === undefined) {
          if (this.skipped.delete(key)) this.o.log.info({ resource: key }, 'API resource now served; watching it');
          this.watch(a);
        } else if (!present && w !== undefined) {
          this.o.log.warn({ resource: key }, 'API resource no longer served (CRD removed?); dropping its objects');
          this.watched.delete(key);
          await this.stopOne(w);
          this.coalescer.trigger();
        } else if (!present && !this.skipped.has(key)) {
          this.skipped.add(key);
          this.o.log.warn({ resource: key, kind: a.kind }, 'API resource not served (CRD not installed?); skipping it until it appears');
        }
      }
    }
    this.watchNamedObjects();
    this.maybeFirstDelivery();
    const builtIn = watchedResources().filter((a) => !OPTIONAL_GROUPS.has(a.group));
    if (!this.stopping && !builtIn.every((a) => this.watched.has(`${a.group}/${a.resource}`))) {
      // Not started yet (API unreachable, or discovery failed): try again soon, not in 30 s.
      setTimeout(() => void this.discover(), this.o.restartMinMs ?? 500).unref();
    }
  }

  /** One informer per named object its kind's own informer cannot see (another namespace). */
  private watchNamedObjects(): void {
    if (this.stopping || this.o.watchNamespace === undefined) return;
    for (const n of this.o.namedObjects ?? []) {
      if (n.namespace === this.o.watchNamespace) continue;
      const a = watchedResources().find((x) => x.kind === n.kind);
      if (a === undefined || !a.namespaced) continue;
      const key = `${a.group}/${a.resource}@${n.namespace}/${n.name}`;
      if (this.watched.has(key) || !this.watched.has(`${a.group}/${a.resource}`)) continue;
      this.watch(a, { key, namespace: n.namespace, fieldSelector: `metadata.name=${n.name}` });
    }
  }

  private watch(a: KubeAccess, scope?: { readonly key: string; readonly namespace: string; readonly fieldSelector: string }): void {
    const ns = scope?.namespace ?? (a.namespaced ? this.o.watchNamespace : undefined);
    const fieldSelector = scope?.fieldSelector ?? (a.kind === 'Secret' ? TLS_SECRET_SELECTOR : undefined);
    const listFn = async (): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> => {
      const r = await this.o.client.list(a, ns, fieldSelector);
      return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: r.resourceVersion }, items: r.items as k8s.KubernetesObject[] };
    };
    // The selector goes to both: client-node adds it to the watch but not to the list.
    const informer = new k8s.ListWatch(resourcePath(a, ns), new k8s.Watch(this.o.client.kc), listFn, false, undefined, fieldSelector);
    const w: Watched = { access: a, informer, stopped: false, synced: false, backoffMs: this.o.restartMinMs ?? 500 };
    this.watched.set(scope?.key ?? `${a.group}/${a.resource}`, w);
    const changed = (): void => {
      if (w.downSince !== undefined) this.markUp(w);
      this.coalescer.trigger();
    };
    informer.on(k8s.ADD, changed);
    informer.on(k8s.UPDATE, changed);
    informer.on(k8s.DELETE, changed);
    informer.on(k8s.ERROR, (err?: unknown) => this.failed(w, err));
    this.runStart(w);
  }

  private runStart(w: Watched): void {
    w.informer.start().then(
      () => {
        if (w.stopped) return;
        w.synced = true;
        // A restart that worked: objects changed meanwhile came with the re-list or re-watch.
        if (w.downSince !== undefined) this.markUp(w);
        w.backoffMs = this.o.restartMinMs ?? 500;
        this.coalescer.trigger();
        this.maybeFirstDelivery();
      },
      (err: unknown) => this.failed(w, err),
    );
  }

  private failed(w: Watched, err: unknown): void {
    // stop() aborts the watch and client-node reports that as an error: ours, not a failure.
    if (w.stopped || this.stopping || (err as Error | undefined)?.name === 'AbortError') return;
    if (w.restartTimer !== undefined) return;
    if (w.downSince === undefined) {
      w.downSince = Date.now();
      this.o.log.error({ resource: w.access.resource, code: errorCode(err), err: (err as Error | undefined)?.message }, 'watch stopped; serving the last good table, restarting it');
    }
    const delay = w.backoffMs;
    w.backoffMs = Math.min(w.backoffMs * 2, this.o.restartMaxMs ?? 30_000);
    w.restartTimer = setTimeout(() => {
      w.restartTimer = undefined;
      if (!w.stopped) this.runStart(w);
    }, delay);
    w.restartTimer.unref();
  }

  private markUp(w: Watched): void {
    const since = w.downSince;
    w.downSince = undefined;
    this.o.log.info({ resource: w.access.resource, downMs: since === undefined ? 0 : Date.now() - since }, 'watch running again');
  }

  private async stopOne(w: Watched): Promise<void> {
    w.stopped = true;
    clearTimeout(w.restartTimer);
    try {
      await w.informer.stop();
    } catch {
      // AbortError from its own stop; nothing to do.
    }
  }

  /** The first table waits until every served kind has listed, so nothing is served half-known. */
  private maybeFirstDelivery(): void {
    if (this.delivered) return;
    if (this.allSynced()) this.coalescer.trigger();
  }

  /** Every watched kind listed, and every built-in kind among them (an unreachable API server must not give an empty table). */
  private allSynced(): boolean {
    const builtIn = watchedResources().filter((a) => !OPTIONAL_GROUPS.has(a.group));
    return builtIn.every((a) => this.watched.has(`${a.group}/${a.resource}`)) && [...this.watched.values()].every((w) => w.synced);
  }

  private deliver(): void {
    if (this.onSnapshot === undefined) return;
    const ws = [...this.watched.values()];
    if (!this.delivered && !this.allSynced()) return;
    const objects: SourcedObject[] = [];
    for (const w of ws) {
      for (const o of w.informer.list()) objects.push({ object: normalize(o, w.access), origin: 'kubernetes' });
    }
    this.delivered = true;
    this.onSnapshot({ objects, problems: [] });
  }
}

/** Objects from LIST are model classes, from WATCH plain JSON; the snapshot always gets plain JSON. */
function normalize(o: k8s.KubernetesObject, a: KubeAccess): KubeObject {
  const plain = JSON.parse(JSON.stringify(o)) as KubeObject;
  plain.apiVersion = a.group === '' ? a.version : `${a.group}/${a.version}`;
  plain.kind = a.kind;
  return plain;
}
