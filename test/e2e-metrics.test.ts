// Request metrics as ingress-nginx users' dashboards read them: labelled by namespace, ingress,
// host, path and service from the routing table (never from what a client sends), stable when
// paths are inserted, dropped when their route leaves the table; with duration and size
// histograms and prom-client's process and Node.js metrics, summed over the workers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';

let a: EchoBackend;
let b: EchoBackend;
let portico: Portico;

const objects = (paths: { path: string; service: string }[]) =>
  toYaml(ingressClass(), service('a'), service('b'), endpointSlice('a', [`127.0.0.1:${a.port}`]), endpointSlice('b', [`127.0.0.1:${b.port}`]), ingress('shop', 'shop.test', paths));

async function series(name: string): Promise<string[]> {
  const text = await (await portico.admin('/metrics')).text();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`));
}

beforeAll(async () => {
  a = await startEchoBackend('a', '127.0.0.1', 0);
  b = await startEchoBackend('b', '127.0.0.1', 0);
  portico = await startPortico({ files: { 'all.yaml': objects([{ path: '/', service: 'a' }, { path: '/cart', service: 'b' }]) }, workers: 2 });
});

afterAll(async () => {
  await portico?.stop();
  await a?.close();
  await b?.close();
});

describe('request metrics', () => {
  it('count requests by namespace, ingress, host pattern, configured path, service, method and status class', async () => {
    for (let i = 0; i < 6; i++) expect((await request(portico.httpPort, `/cart/item/${i}?q=${i}`, { host: 'shop.test' })).status).toBe(200);
    expect((await request(portico.httpPort, '/', { host: 'shop.test', method: 'POST', body: 'x' })).status).toBe(200);
    const labels = { namespace: 'default', ingress: 'shop', host: 'shop.test', path: '/cart', service: 'b' };
    expect(await portico.metric('portico_requests_total', { ...labels, method: 'GET', status: '2xx' })).toBe(6);
    expect(await portico.metric('portico_requests_total', { namespace: 'default', ingress: 'shop', path: '/', service: 'a', method: 'POST', status: '2xx' })).toBe(1);
    expect(await portico.metric('portico_request_duration_seconds_count', labels)).toBe(6);
    expect(await portico.metric('portico_request_size_bytes_count', labels)).toBe(6);
    expect(await portico.metric('portico_response_size_bytes_count', labels)).toBe(6);
    // The echo backend answers a JSON body of some hundred bytes: the response sizes say so.
    expect(await portico.metric('portico_response_size_bytes_sum', labels)).toBeGreaterThan(6 * 100);
    expect(await portico.metric('portico_upstream_response_seconds_count', labels)).toBe(6);
  });

  it('requests that match no route, or are refused before routing, share one fixed series', async () => {
    const before = (await series('portico_requests_total')).length;
    for (let i = 0; i < 20; i++) expect((await request(portico.httpPort, `/random-${i}`, { host: `h${i}.nowhere.test` })).status).toBe(404);
    const bad = await rawExchange(portico.httpPort, 'GET /x HTTP/2.0\r\nHost: shop.test\r\n\r\n');
    expect(bad.text).toMatch(/^HTTP\/1\.1 505/);
    expect(await portico.metric('portico_requests_total', { namespace: '', host: '', path: '', method: 'GET', status: '4xx' })).toBe(20);
    // Twenty random hosts and paths made one series (4xx) at most, and the 505 one more.
    expect((await series('portico_requests_total')).length).toBeLessThanOrEqual(before + 2);
  });

  it('inserting a path keeps every other path\'s series; removing a path drops its series', async () => {
    const cartBefore = await portico.metric('portico_requests_total', { ingress: 'shop', path: '/cart', method: 'GET', status: '2xx' });
    expect(cartBefore).toBe(6);
    const version = (await portico.json('/debug/routes')).version as number;
    // A new path in front of /cart: positional labels would have renamed /cart's series.
    portico.write('all.yaml', objects([{ path: '/', service: 'a' }, { path: '/account', service: 'a' }, { path: '/cart', service: 'b' }]));
    await portico.waitVersion(version + 1);
    expect(await portico.metric('portico_requests_total', { ingress: 'shop', path: '/cart', method: 'GET', status: '2xx' })).toBe(6);
    expect((await request(portico.httpPort, '/account', { host: 'shop.test' })).status).toBe(200);
    expect(await portico.metric('portico_requests_total', { ingress: 'shop', path: '/account', method: 'GET', status: '2xx' })).toBe(1);

    portico.write('all.yaml', objects([{ path: '/', service: 'a' }, { path: '/account', service: 'a' }]));
    await portico.waitVersion(version + 2);
    await waitFor('the /cart series to leave /metrics', async () => (await series('portico_requests_total')).every((l) => !l.includes('path="/cart"')));
    for (const name of ['portico_request_duration_seconds_bucket', 'portico_response_size_bytes_count', 'portico_upstream_response_seconds_count']) {
      expect((await series(name)).filter((l) => l.includes('path="/cart"'))).toEqual([]);
    }
    expect(await portico.metric('portico_requests_total', { ingress: 'shop', path: '/account', method: 'GET', status: '2xx' })).toBe(1);
  });

  it('exposes process and Node.js metrics, summed over the primary and the workers', async () => {
    expect(await portico.metric('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(await portico.metric('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(await portico.metric('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    // One HELP line per metric name: the workers' and the primary's values are one series.
    const text = await (await portico.admin('/metrics')).text();
    expect(text.split('\n').filter((l) => l === '# TYPE process_cpu_seconds_total counter')).toHaveLength(1);
  });
});
