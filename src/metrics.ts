// Worker-side Prometheus metrics. Each worker registers them in prom-client's default registry;
// the primary's /metrics collects and sums every worker's registry (src/cluster-metrics.ts).

import cluster from 'node:cluster';
import client from 'prom-client';

export const requestsTotal = new client.Counter({
  name: 'portico_requests_total',
  help: 'Requests served, by status class and route',
  labelNames: ['code_class', 'route'] as const,
});

export const upstreamLatency = new client.Histogram({
  name: 'portico_upstream_response_seconds',
  help: 'Time from sending a request upstream to its response headers',
  labelNames: ['route'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});

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

export const openConnections = new client.Gauge({
  name: 'portico_open_connections',
  help: 'Open client connections',
  labelNames: ['listener'] as const,
});

// Label lookups hash their arguments on every call; requests reuse the child per route and class.
const requestChildren = new Map<string, client.Counter.Internal[]>();
const latencyChildren = new Map<string, client.Histogram.Internal<'route'>>();
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export function countRequest(route: string, status: number): void {
  let children = requestChildren.get(route);
  if (children === undefined) {
    children = CLASSES.map((c) => requestsTotal.labels(c, route));
    requestChildren.set(route, children);
  }
  const i = Math.min(Math.max(Math.floor(status / 100) - 1, 0), 4);
  children[i].inc();
}

export function observeUpstreamLatency(route: string, seconds: number): void {
  let child = latencyChildren.get(route);
  if (child === undefined) {
    child = upstreamLatency.labels(route);
    latencyChildren.set(route, child);
  }
  child.observe(seconds);
}

// prom-client answers the primary's metrics requests only after an AggregatorRegistry has been
// made in this process: making one registers that listener. Not in the primary, whose own listener
// would take the collector's answers for its own (src/cluster-metrics.ts).
if (cluster.isWorker) new client.AggregatorRegistry();
