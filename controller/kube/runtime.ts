// Everything `--kubernetes` adds to the primary: the API source, the published address (from
// --publish-service or --publish-status-address), leader election and the status writer, with
// their metrics. The primary only swaps the source and hands over each translation's statuses.

import client from 'prom-client';
import { asArray, asRecord, asString, type SourceSnapshot } from '../objects.ts';
import type { StatusItem } from '../status.ts';
import { loadKubeConfig, makeKubeClient, type KubeClient } from './client.ts';
import { defaultIdentity, LeaderElector, leaderTimingsFromEnv } from './leader.ts';
import { KubeSource } from './source.ts';
import { StatusWriter } from './status-writer.ts';

export interface KubeRuntimeOptions {
  readonly kubeconfig?: string;
  readonly watchNamespace?: string;
  readonly publishService?: string;
  readonly publishStatusAddresses: readonly string[];
  readonly electionId: string;
  readonly electionNamespace: string;
  /** `--gateway-controller-name`, to release the route status entries of ours we no longer manage. */
  readonly gatewayControllerName?: string;
}

export interface KubeLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/** LoadBalancer IPs and hostnames of a Service in the snapshot; [] while pending or absent. */
export function serviceAddresses(snapshot: SourceSnapshot, nsName: string): string[] {
  const [ns, name] = nsName.split('/');
  const svc = snapshot.objects.find((s) => s.object.kind === 'Service' && s.object.metadata.namespace === ns && s.object.metadata.name === name)?.object;
  if (svc === undefined) return [];
  const out: string[] = [];
  for (const e of asArray(asRecord(asRecord(svc.status).loadBalancer).ingress)) {
    const a = asString(asRecord(e).ip) ?? asString(asRecord(e).hostname);
    if (a) out.push(a);
  }
  return out;
}

export class KubeRuntime {
  readonly source: KubeSource;
  private readonly o: KubeRuntimeOptions;
  private readonly log: KubeLog;
  private readonly client: KubeClient;
  private readonly writer: StatusWriter;
  private readonly elector: LeaderElector;
  private readonly pendingGauge: client.Gauge;
  private last: readonly StatusItem[] | undefined;
  /** uid of each object in the latest snapshot. */
  private uids = new Map<string, string>();
  private snapshot: SourceSnapshot | undefined;
  private pendingLogged = false;
  private ingressOnHold = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(options: KubeRuntimeOptions, log: KubeLog, registry: client.Registry) {
    this.o = options;
    this.log = log;
    this.client = makeKubeClient(loadKubeConfig(options.kubeconfig));
    const published = options.publishService?.split('/');
    this.source = new KubeSource({
      client: this.client,
      log,
      ...(options.watchNamespace ? { watchNamespace: options.watchNamespace } : {}),
      ...(published ? { namedObjects: [{ kind: 'Service', namespace: published[0], name: published[1] }] } : {}),
      ...testTimings(),
    });
    const writes = new client.Counter({ name: 'portico_status_writes_total', help: 'Status subresource writes, by kind and result', labelNames: ['kind', 'result'], registers: [registry] });
    this.writer = new StatusWriter({
      client: this.client,
      log,
      onResult: (kind, result) => writes.labels(kind, result).inc(),
      identity: (kind, ns, name) => this.uids.get(`${kind}/${ns ?? ''}/${name}`),
      ...(options.gatewayControllerName !== undefined ? { controllerName: options.gatewayControllerName } : {}),
    });
    const leader = new client.Gauge({ name: 'portico_leader', help: '1 while this replica holds the leader Lease (and writes status)', registers: [registry] });
    this.elector = new LeaderElector({
      api: this.client.coordination,
      namespace: options.electionNamespace,
      name: options.electionId,
      identity: defaultIdentity(),
      timings: leaderTimingsFromEnv(process.env.PORTICO_LEADER_TIMINGS),
      log,
      onChange: (leading) => {
        leader.set(leading ? 1 : 0);
        // Another replica may have written meanwhile: compare with the live objects again.
        this.writer.reset();
        if (leading) this.flush();
      },
    });
    this.pendingGauge = new client.Gauge({ name: 'portico_publish_service_pending', help: '1 while the --publish-service Service has no LoadBalancer address (status not written)', registers: [registry] });
    const source = this.source;
    new client.Gauge({
      name: 'portico_source_stale_since_seconds',
      help: 'Since when (Unix seconds) the Kubernetes source has had a watch down; 0 when current',
      registers: [registry],
      collect() {
        this.set((source.health().staleSince ?? 0) / 1000);
      },
    });
  }

  start(): void {
    this.elector.start();
    // Failed writes are retried on the next change, and at least this often.
    this.retryTimer = setInterval(() => this.flush(), 10_000);
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.retryTimer);
    await Promise.all([this.source.stop(), this.elector.stop()]);
  }

  /** The addresses to publish for this snapshot. */
  addresses(snapshot: SourceSnapshot): readonly string[] {
    this.snapshot = snapshot;
    this.uids = new Map(snapshot.objects.filter((s) => s.object.metadata.uid).map((s) => [`${s.object.kind}/${s.object.metadata.namespace ?? ''}/${s.object.metadata.name}`, s.object.metadata.uid!]));
    if (this.o.publishService === undefined) return this.o.publishStatusAddresses;
    const a = serviceAddresses(snapshot, this.o.publishService);
    this.pendingGauge.set(a.length === 0 ? 1 : 0);
    if (a.length === 0 && !this.pendingLogged) this.log.warn({ service: this.o.publishService }, 'publish Service has no LoadBalancer address yet; not writing Ingress status until it has');
    if (a.length > 0 && this.pendingLogged) this.log.info({ service: this.o.publishService, addresses: a }, 'publish Service has LoadBalancer addresses');
    this.pendingLogged = a.length === 0;
    return a;
  }

  /** The translation's statuses; written when this replica leads. */
  statuses(items: readonly StatusItem[]): void {
    // Never an empty or made-up address: an Ingress status without one is not written.
    this.last = items.filter((i) => i.kind !== 'Ingress' || asArray(asRecord(i.status.loadBalancer).ingress).length > 0);
    // The publish Service's address is pending: Ingress status stays as written (never emptied or
    // made up), while Gateway API status, which reports the missing address itself, is written.
    this.ingressOnHold = this.o.publishService !== undefined && this.pendingLogged;
    if (!this.ingressOnHold) this.adoptStale(items);
    this.flush();
  }

  /**
   * Ingresses not served now whose status holds exactly the address we publish were served by
   * Portico before (perhaps before a restart): they are cleared, so DNS stops pointing here.
   */
  private adoptStale(items: readonly StatusItem[]): void {
    const served = new Set(items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`));
    const ours = items.find((i) => i.kind === 'Ingress');
    if (ours === undefined || this.snapshot === undefined) return;
    const lb = JSON.stringify(asRecord(ours.status.loadBalancer).ingress);
    const stale: StatusItem[] = [];
    for (const { object: o } of this.snapshot.objects) {
      if (o.kind !== 'Ingress' || served.has(`${o.metadata.namespace}/${o.metadata.name}`)) continue;
      if (JSON.stringify(asRecord(asRecord(o.status).loadBalancer).ingress) !== lb) continue;
      stale.push({ apiVersion: o.apiVersion, kind: 'Ingress', metadata: { namespace: o.metadata.namespace, name: o.metadata.name }, status: {} });
    }
    if (stale.length > 0) this.writer.adoptServed(stale);
  }

  private flush(): void {
    if (!this.elector.isLeader() || this.last === undefined) return;
    // The cached objects' status says which of ours are left on objects we no longer own.
    const objects = this.snapshot?.objects.map((s) => s.object);
    this.writer.update(this.last, { ingressOnHold: this.ingressOnHold, ...(objects !== undefined ? { objects } : {}) }).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'status writer failed'));
  }
}

/** `PORTICO_KUBE_TEST_TIMINGS=coalesce,coalesceMax,rediscover,restartMin` in ms, for tests. */
function testTimings(): { coalesceMs?: number; coalesceMaxMs?: number; rediscoverMs?: number; restartMinMs?: number } {
  const v = process.env.PORTICO_KUBE_TEST_TIMINGS;
  if (!v) return {};
  const [coalesceMs, coalesceMaxMs, rediscoverMs, restartMinMs] = v.split(',').map(Number);
  const ok = (n: number): boolean => Number.isFinite(n) && n > 0;
  return { ...(ok(coalesceMs) ? { coalesceMs } : {}), ...(ok(coalesceMaxMs) ? { coalesceMaxMs } : {}), ...(ok(rediscoverMs) ? { rediscoverMs } : {}), ...(ok(restartMinMs) ? { restartMinMs } : {}) };
}
