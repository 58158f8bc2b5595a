// Worker-side Prometheus metrics. Each worker registers them in prom-client's default registry;
// the primary's /metrics collects and sums every worker's registry (src/cluster-metrics.ts).
//
// Request series are labelled as ingress-nginx labels them (namespace, ingress, host, path,
// service, method, status), from the routing table only (CompiledRoute.labels): a client can
// choose among a route's series but never create one. Series of routes that leave the table are
// removed when the new table is swapped in (retainRouteSeries).

import cluster from 'node:cluster';
import client from 'prom-client';
import type { CompiledBackend, CompiledRoute, RoutingIR } from '../router/index.ts';
import { seriesKey, serviceLabel, tableSeriesKeys, type RouteLabels } from '../router/labels.ts';

type Labels = Readonly<Record<string, string>>;

// Request series are observed on every request. prom-client's own children validate and hash
// their labels on each observe (about a microsecond each, five per request), so a Series counts
// into plain arrays, and these metrics read them when scraped. They join the default registry
// with the duck type prom-client's AggregatorRegistry registers its merged metrics with (name,
// help, type, aggregator, get), so the primary's collection reads them as any other metric.
interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

class SeriesMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  private readonly read: (out: MetricValue[]) => void;

  constructor(name: string, help: string, type: 'counter' | 'histogram', read: (out: MetricValue[]) => void) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.read = read;
    client.register.registerMetric(this as unknown as client.Metric);
  }

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    this.read(values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** registry.resetMetrics(): every series starts from zero. */
  reset(): void {
    for (const s of observed) s.reset();
  }
}

/** One histogram of one series: counts per bucket (the last is above every bound), sum, count. */
class HistogramCounts {
  readonly bounds: readonly number[];
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.buckets = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // prom-client refuses (throws on) a value that is not a finite number: dropped here.
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.buckets[i]++;
    this.sum += value;
    this.count++;
  }

  /** The values prom-client's Histogram.get() gives for one label set, in its order. */
  read(name: string, labels: Labels, out: MetricValue[]): void {
    if (this.count === 0) return;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.buckets[i];
      out.push({ value: acc, metricName: `${name}_bucket`, labels: { le: this.bounds[i], ...labels } });
    }
    out.push({ value: this.count, metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels } });
    out.push({ value: this.sum, metricName: `${name}_sum`, labels: { ...labels } });
    out.push({ value: this.count, metricName: `${name}_count`, labels: { ...labels } });
  }

  reset(): void {
    this.buckets.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** Series observed at least once and not removed, in the order of their first observation. */
const observed = new Set<Series>();

export const requestsTotal = new SeriesMetric(
  'portico_requests_total',
  'Requests answered, by route (namespace, ingress or route, host pattern, configured path), backend Service, method and status class',
  'counter',
  (out) => {
    for (const s of observed) s.readCounts(out);
  },
);

// ingress-nginx's default --time-buckets.
const TIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// ingress-nginx's default --size-buckets (its --length-buckets, 10..100 bytes, would put nearly
// every request in +Inf).
const SIZE_BUCKETS = [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];

const UPSTREAM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// Histograms carry the route labels only: method and status would multiply their buckets by up
// to 50; the counter above has them.
type HistogramName = 'duration' | 'request' | 'response' | 'upstream';
const histogramOf = (name: string, help: string, which: HistogramName): SeriesMetric =>
  new SeriesMetric(name, help, 'histogram', (out) => {
    for (const s of observed) s.histogram(which)?.read(name, s.labels, out);
  });

export const requestDuration = histogramOf('portico_request_duration_seconds', 'Whole request, from its arrival to the end of the response (to the 101 for upgrades), in seconds', 'duration');

export const requestSize = histogramOf('portico_request_size_bytes', 'Request size: head (request line and header fields, as HTTP/1.1 text) and the body its Content-Length declares', 'request');

export const responseSize = histogramOf('portico_response_size_bytes', 'Response size: head (status line and header fields, as HTTP/1.1 text) and body bytes sent', 'response');

export const upstreamLatency = histogramOf('portico_upstream_response_seconds', 'Time from sending a request upstream to its response headers', 'upstream');

export const upstreamErrors = new client.Counter({
  name: 'portico_upstream_errors_total',
  help: 'Upstream failures, by kind (connect, timeout, reset)',
  labelNames: ['kind'] as const,
});

export const tableVersion = new client.Gauge({
  name: 'portico_table_version',
  help: 'Version of the routing table being served',
  aggregator: 'min',
});

export const tableSwaps = new client.Counter({
  name: 'portico_table_swaps_total',
  help: 'Routing tables swapped in, summed over workers',
});

export const endpointUpdates = new client.Counter({
  name: 'portico_endpoint_updates_total',
  help: 'Endpoint updates applied without a new routing table (EndpointSlice changes), summed over workers',
});

/**
 * Open client connections by listener, counted in plain numbers (src/listeners.ts) and read at
 * scrape: a labelled inc()/dec() hashes its labels on every connection.
 */
export const openConnectionCounts = new Map<string, { n: number }>();

export const openConnections = new client.Gauge({
  name: 'portico_open_connections',
  help: 'Open client connections',
  labelNames: ['listener'] as const,
  collect() {
    for (const [listener, c] of openConnectionCounts) this.labels(listener).set(c.n);
  },
});

/** Methods with a series of their own; any other is `other`. */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE', 'other'] as const;
const METHOD_INDEX = new Map<string, number>(METHODS.map((m, i) => [m, i]));
const OTHER_METHOD = METHODS.length - 1;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export function methodIndex(method: string | undefined): number {
  // Nearly every request is a GET: no Map lookup for it.
  if (method === 'GET') return 0;
  return (method !== undefined ? METHOD_INDEX.get(method) : undefined) ?? OTHER_METHOD;
}

export function statusClassIndex(status: number): number {
  return Math.min(Math.max(Math.floor(status / 100) - 1, 0), 4);
}

/** One route towards one Service: its label values and what was counted for them. */
class Series {
  readonly key: string;
  readonly labels: Labels;
  dead = false;
  /** Requests by method and status class (METHODS x STATUS_CLASSES). */
  private readonly counts = new Float64Array(METHODS.length * STATUS_CLASSES.length);
  private duration: HistogramCounts | undefined;
  private request: HistogramCounts | undefined;
  private response: HistogramCounts | undefined;
  private upstream: HistogramCounts | undefined;

  constructor(key: string, labels: Labels) {
    this.key = key;
    this.labels = labels;
  }

  observe(method: number, statusClass: number, seconds: number, requestBytes: number, responseBytes: number): void {
    if (this.duration === undefined) {
      this.duration = new HistogramCounts(TIME_BUCKETS);
      this.request = new HistogramCounts(SIZE_BUCKETS);
      this.response = new HistogramCounts(SIZE_BUCKETS);
      observed.add(this);
    }
    this.counts[method * STATUS_CLASSES.length + statusClass]++;
    this.duration.observe(seconds);
    this.request!.observe(requestBytes);
    this.response!.observe(responseBytes);
  }

  observeUpstream(seconds: number): void {
    if (this.upstream === undefined) {
      this.upstream = new HistogramCounts(UPSTREAM_BUCKETS);
      observed.add(this);
    }
    this.upstream.observe(seconds);
  }

  histogram(which: HistogramName): HistogramCounts | undefined {
    return this[which];
  }

  readCounts(out: MetricValue[]): void {
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      if (c[i] === 0) continue;
      out.push({ value: c[i], labels: { ...this.labels, method: METHODS[Math.floor(i / STATUS_CLASSES.length)], status: STATUS_CLASSES[i % STATUS_CLASSES.length] } });
    }
  }

  reset(): void {
    this.counts.fill(0);
    for (const h of [this.duration, this.request, this.response, this.upstream]) h?.reset();
  }

  /** Drops every series this made from what is scraped; later observations are dropped. */
  remove(): void {
    this.dead = true;
    observed.delete(this);
  }
}

/** Requests that match no route (400, 404, 421, 505...): fixed labels, so they cannot make series. */
const UNMATCHED = new Series('', { namespace: '', ingress: '', host: '', path: '', service: '' });
/** Where observations for routes that already left the table go. */
const GONE = new Series('\0gone', {});
GONE.dead = true;

/** Series by key: a route that stays in the table keeps its series across swaps. */
const byKey = new Map<string, Series>();
/** Per compiled route's labels (one object per route per table), by backend name. */
const byRoute = new WeakMap<RouteLabels, Map<string, Series>>();
/** Keys the current table can produce; undefined until the first table. */
let liveKeys: Set<string> | undefined;

function labelsOf(l: RouteLabels, service: string): Labels {
  const out: Record<string, string> = { namespace: l.namespace };
  if (l.ingress !== undefined) out.ingress = l.ingress;
  if (l.route !== undefined) out.route = l.route;
  out.host = l.host;
  out.path = l.path;
  out.service = service;
  return Object.freeze(out);
}

// The last route and backend asked for and their series: a request asks twice (upstream latency,
// then the request), and consecutive requests mostly take the same route. What seriesFor finds
// for a route and backend never changes (perBackend entries are only ever added), so this cannot
// go stale.
let lastRoute: CompiledRoute | undefined;
let lastBackend: CompiledBackend | undefined;
let lastSeries: Series = UNMATCHED;

function seriesFor(route: CompiledRoute | undefined, backend: CompiledBackend | undefined): Series {
  if (route === undefined) return UNMATCHED;
  if (route === lastRoute && backend === lastBackend) return lastSeries;
  const series = findSeries(route, backend);
  lastRoute = route;
  lastBackend = backend;
  lastSeries = series;
  return series;
}

function findSeries(route: CompiledRoute, backend: CompiledBackend | undefined): Series {
  // A request answered before a backend was picked (redirect, allowlist) is the route's only
  // backend's, when it has one: the series exists anyway.
  const b = backend ?? (route.backends.length === 1 ? route.backends[0].backend : undefined);
  const labels = route.labels;
  let perBackend = byRoute.get(labels);
  if (perBackend === undefined) {
    perBackend = new Map();
    byRoute.set(labels, perBackend);
  }
  const name = b?.name ?? '';
  let series = perBackend.get(name);
  if (series === undefined) {
    const service = b === undefined ? '' : serviceLabel(b.name);
    const key = seriesKey(labels, service);
    series = byKey.get(key);
    if (series === undefined) {
      if (liveKeys !== undefined && !liveKeys.has(key)) {
        series = GONE; // a request of an older table, for a route that has left it
      } else {
        series = new Series(key, labelsOf(labels, service));
        byKey.set(key, series);
      }
    }
    perBackend.set(name, series);
  }
  return series;
}

/**
 * Counts one answered request. `route` is undefined when none matched; `backend` is the one
 * picked, if any. Sizes in bytes, duration in seconds.
 */
export function observeRequest(route: CompiledRoute | undefined, backend: CompiledBackend | undefined, method: string | undefined, status: number, seconds: number, requestBytes: number, responseBytes: number): void {
  const series = seriesFor(route, backend);
  if (series.dead) return;
  series.observe(methodIndex(method), statusClassIndex(status), seconds, requestBytes, responseBytes);
}

export function observeUpstreamLatency(route: CompiledRoute, backend: CompiledBackend, seconds: number): void {
  const series = seriesFor(route, backend);
  if (!series.dead) series.observeUpstream(seconds);
}

/** IPC message telling the primary which series keys left the table (cluster-metrics.ts). */
export const SERIES_GONE = 'portico:metrics-series-gone';

/**
 * A new table was swapped in: removes the series of routes (and route-Service pairs) it no longer
 * has, and tells the primary, which drops them from the counts of exited workers too.
 * Returns the keys removed.
 */
export function retainRouteSeries(ir: RoutingIR): string[] {
  const keys = tableSeriesKeys(ir);
  const gone = liveKeys === undefined ? [] : [...liveKeys].filter((k) => !keys.has(k));
  liveKeys = keys;
  for (const [key, series] of byKey) {
    if (keys.has(key)) continue;
    series.remove();
    byKey.delete(key);
  }
  if (gone.length > 0 && cluster.isWorker && process.connected) process.send?.({ type: SERIES_GONE, keys: gone });
  return gone;
}

/** Number of route series held (for tests). */
export function routeSeriesCount(): number {
  return byKey.size;
}

/** Size of a request head written as HTTP/1.1 text (HTTP/2's pseudo-headers count as fields). */
export function requestHeadBytes(method: string | undefined, url: string | undefined, rawHeaders: readonly string[]): number {
  // "METHOD SP target SP HTTP/1.1 CRLF", each "name: value CRLF", then CRLF.
  let n = (method?.length ?? 0) + (url?.length ?? 0) + 12;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) n += rawHeaders[i].length + rawHeaders[i + 1].length + 4;
  return n;
}

/** A request's size: its head and the body its Content-Length declares (a chunked body is not counted). */
export function requestBytes(req: { method?: string; url?: string; rawHeaders: string[]; headers: { 'content-length'?: string } }): number {
  const cl = Number(req.headers['content-length']);
  return requestHeadBytes(req.method, req.url, req.rawHeaders) + (Number.isSafeInteger(cl) && cl > 0 ? cl : 0);
}

/** Size of a response head written as HTTP/1.1 text. */
export function responseHeadBytes(statusMessage: string | undefined, headers: Readonly<Record<string, unknown>>): number {
  // "HTTP/1.1 SP 200 SP reason CRLF", each "name: value CRLF", then CRLF.
  let n = 17 + (statusMessage?.length ?? 0);
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) n += name.length + String(x).length + 4;
    else n += name.length + String(v).length + 4;
  }
  return n;
}

// prom-client answers the primary's metrics requests only after an AggregatorRegistry has been
// made in this process: making one registers that listener. Not in the primary, whose own listener
// would take the collector's answers for its own (src/cluster-metrics.ts). The primary collects
// its own process metrics there and sums them with these.
if (cluster.isWorker) {
  new client.AggregatorRegistry();
  client.collectDefaultMetrics();
}
