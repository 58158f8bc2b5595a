// The primary's view of every worker's metrics. prom-client's own cluster aggregation sums only
// the workers alive at scrape time, so a respawned worker took its counts with it (counters went
// backwards) and one stuck worker blanked everyone's. This collector speaks the same IPC request
// the workers' prom-client answers, keeps each worker's last answer, and folds the counters and
// histograms of workers that exit into a running total. The primary's own process and Node.js
// metrics are summed in with the workers', so process_cpu_seconds_total and the memory gauges
// describe the whole of Portico.

import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import { labelKey } from '../router/labels.ts';
import { SERIES_GONE } from './metrics.ts';

// prom-client's worker-side protocol (lib/cluster.js): it answers with the same requestId.
const GET_METRICS_REQ = 'prom-client:getMetricsReq';
const GET_METRICS_RES = 'prom-client:getMetricsRes';

type MetricsJson = Awaited<ReturnType<client.Registry['getMetricsAsJSON']>>;

interface MetricsResponse {
  readonly type: string;
  readonly requestId?: unknown;
  readonly metrics?: MetricsJson[];
  readonly error?: string;
}

interface Collection {
  readonly waiting: Set<number>;
  readonly finish: () => void;
}

export class WorkerMetrics {
  /** Each live worker's latest answer, by worker id. */
  private readonly latest = new Map<number, MetricsJson>();
  /** Counters and histograms of workers that have exited (summed at each scrape into one). */
  private retired: MetricsJson[] = [];
  private readonly collections = new Map<string, Collection>();
  private seq = 0;

  private readonly timeoutMs: number;
  /** The primary's process and Node.js metrics (prom-client's default metrics). */
  private readonly own = new client.Registry();

  constructor(timeoutMs = 3000) {
    this.timeoutMs = timeoutMs;
    client.collectDefaultMetrics({ register: this.own });
    cluster.on('message', (worker: Worker, message: MetricsResponse & { keys?: unknown }) => {
      if (message?.type === SERIES_GONE && Array.isArray(message.keys)) return this.dropSeries(new Set(message.keys.map(String)));
      if (message?.type !== GET_METRICS_RES || typeof message.requestId !== 'string') return;
      const c = this.collections.get(message.requestId);
      if (c === undefined || !c.waiting.delete(worker.id)) return;
      if (message.error === undefined && Array.isArray(message.metrics)) this.latest.set(worker.id, message.metrics.flat());
      if (c.waiting.size === 0) c.finish();
    });
    cluster.on('exit', (worker: Worker) => this.retire(worker.id));
  }

  /**
   * The Prometheus text for all workers: each live worker's fresh answer (or, if it does not answer
   * in time, its last one), plus the counts of workers that have exited.
   */
  async metrics(): Promise<string> {
    const requestId = `portico-${this.seq++}`;
    const waiting = new Set<number>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), this.timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.collections.delete(requestId);
        resolve();
      };
      this.collections.set(requestId, { waiting, finish });
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker === undefined || !worker.isConnected()) continue;
        waiting.add(worker.id);
        worker.send({ type: GET_METRICS_REQ, requestId });
      }
      if (waiting.size === 0) finish();
    });
    if (this.retired.length > 1) this.retired = [(await client.AggregatorRegistry.aggregate(this.retired).getMetricsAsJSON()) as MetricsJson];
    const snapshots = [...this.latest.values(), ...this.retired, (await this.own.getMetricsAsJSON()) as MetricsJson];
    return client.AggregatorRegistry.aggregate(snapshots).metrics();
  }

  /**
   * A worker swapped in a table without these routes (series keys, router/labels.ts): exited
   * workers' counts for them are dropped too, so a deleted route's series leave /metrics. Live
   * workers have removed their own already.
   */
  private dropSeries(gone: ReadonlySet<string>): void {
    if (gone.size === 0) return;
    this.retired = this.retired.map((snapshot) =>
      snapshot.map((metric) => {
        const values = metric.values.filter((v) => {
          const l = v.labels as Record<string, string | number | undefined>;
          if (l.path === undefined || l.namespace === undefined) return true;
          const key = `${labelKey(String(l.namespace), l.ingress === undefined ? undefined : String(l.ingress), l.route === undefined ? undefined : String(l.route), String(l.host ?? ''), String(l.path))}\0${String(l.service ?? '')}`;
          return !gone.has(key);
        });
        return values.length === metric.values.length ? metric : { ...metric, values };
      }) as MetricsJson,
    );
  }

  private retire(workerId: number): void {
    const last = this.latest.get(workerId);
    this.latest.delete(workerId);
    if (last === undefined) return;
    // Gauges describe the live process only; counts carry on.
    const counts = last.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram');
    if (counts.length > 0) this.retired.push(counts);
  }
}
