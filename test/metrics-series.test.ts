// Request series count into plain arrays (src/metrics.ts) instead of prom-client's children: what
// they give a scrape must be what prom-client's own Counter and Histogram give for the same
// observations, since the primary merges and prints them as prom-client metrics.

import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CompiledRoute } from '../router/index.ts';
import { observeRequest, requestDuration, requestsTotal, responseSize } from '../src/metrics.ts';

const route = { labels: { namespace: 'ns', ingress: 'ing', host: 'h.test', path: '/' }, backends: [] } as unknown as CompiledRoute;
const labels = { namespace: 'ns', ingress: 'ing', host: 'h.test', path: '/', service: '' };
const shape = (v: { value: number; metricName?: string; labels: object }[], name: string) =>
  v.map((x) => [x.metricName?.replace(name, ''), x.value, x.labels]);

describe('request series', () => {
  it('give the values, labels and order of prom-client metrics for the same observations', async () => {
    const seconds = [0.001, 0.005, 0.007, 0.3, 3, 100, Number.NaN];
    const bytes = [0, 10, 11, 999, 5_000_000, 20_000_000, Number.NaN];
    const h = new client.Histogram({ name: 'd', help: 'd', labelNames: Object.keys(labels), buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [] });
    const r = new client.Histogram({ name: 'r', help: 'r', labelNames: Object.keys(labels), buckets: [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000], registers: [] });
    const c = new client.Counter({ name: 'c', help: 'c', labelNames: [...Object.keys(labels), 'method', 'status'], registers: [] });
    for (let i = 0; i < seconds.length; i++) {
      const status = i % 2 === 0 ? 200 : 404;
      observeRequest(route, undefined, i === 3 ? 'POST' : 'GET', status, seconds[i], 1, bytes[i]);
      // prom-client throws on a value that is not a number; the series drop it.
      if (Number.isFinite(seconds[i])) h.observe(labels, seconds[i]);
      if (Number.isFinite(bytes[i])) r.observe(labels, bytes[i]);
      c.inc({ ...labels, method: i === 3 ? 'POST' : 'GET', status: status === 200 ? '2xx' : '4xx' });
    }
    expect(shape(requestDuration.get().values, 'portico_request_duration_seconds')).toEqual(shape((await h.get()).values, 'd'));
    expect(shape(responseSize.get().values, 'portico_response_size_bytes')).toEqual(shape((await r.get()).values, 'r'));
    const counts = (v: { value: number; labels: object }[]) => v.map((x) => [x.value, x.labels]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(counts(requestsTotal.get().values)).toEqual(counts((await c.get()).values));
    // In the default registry, as text, like any prom-client metric.
    expect(await client.register.getSingleMetricAsString('portico_requests_total')).toContain('portico_requests_total{namespace="ns",ingress="ing",host="h.test",path="/",service="",method="GET",status="2xx"} 4');
  });
});
