// The endpoint fast path: an EndpointSlice change reaches the workers as an endpoint update, not
// a new routing table. Traffic moves at once, requests in flight to an endpoint that left finish,
// and a restarted worker gets the table with the latest endpoints.

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, waitFor, type Portico } from './helpers/portico.ts';

interface Named {
  server: http.Server;
  port: number;
}

/** A backend that answers its name, after `delayMs` for paths under /slow. */
function backend(name: string): Promise<Named> {
  const server = http.createServer((req, res) => setTimeout(() => res.end(name), req.url?.startsWith('/slow') ? 800 : 0));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

let one: Named;
let two: Named;
let portico: Portico;
// One slice per backend port (a slice has one port), as for a Service whose pods listen on different ports.
const slices = (...ports: number[]) => toYaml(...ports.map((p, i) => endpointSlice('app', [`127.0.0.1:${p}`], 'default', `app-${i}`)));
const names = async (n: number) => {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await request(portico.httpPort, '/', { host: 'app.test' })).body);
  return [...seen].sort();
};

beforeAll(async () => {
  one = await backend('one');
  two = await backend('two');
  portico = await startPortico({
    workers: 2,
    files: { 'app.yaml': toYaml(ingressClass(), service('app'), ingress('app', 'app.test', [{ path: '/', service: 'app' }])), 'slices.yaml': slices(one.port) },
  });
});

afterAll(async () => {
  await portico?.stop();
  for (const b of [one, two]) {
    b?.server.closeAllConnections();
    b?.server.close();
  }
});

describe('endpoint updates', () => {
  it('an EndpointSlice change moves traffic without a new table', async () => {
    const { version } = await portico.json('/debug/routes');
    expect(await names(4)).toEqual(['one']);
    portico.write('slices.yaml', slices(one.port, two.port));
    await waitFor('both endpoints', async () => (await names(8)).length === 2, 3000, 20);
    portico.write('slices.yaml', slices(two.port));
    await waitFor('only the new endpoint', async () => (await names(6)).join() === 'two', 3000, 20);
    const routes = await portico.json('/debug/routes');
    expect(routes.version).toBe(version);
    // /debug/routes shows the endpoints being served.
    expect(routes.backends['default/app:80'].endpoints).toEqual([{ address: '127.0.0.1', port: two.port }]);
    expect(await portico.metric('portico_endpoint_updates_total')).toBeGreaterThanOrEqual(2 * 2);
    expect(await portico.metric('portico_table_swaps_total')).toBe(2);
  });

  it('a request in flight to an endpoint that left finishes; new requests go to the others', async () => {
    portico.write('slices.yaml', slices(one.port));
    await waitFor('one again', async () => (await names(4)).join() === 'one', 3000, 20);
    const pending = request(portico.httpPort, '/slow', { host: 'app.test' });
    await sleep(200);
    portico.write('slices.yaml', slices(two.port));
    await waitFor('moved', async () => (await names(4)).join() === 'two', 3000, 20);
    expect(await pending).toMatchObject({ status: 200, body: 'one' });
  });

  it('no endpoint left: 503 at once; back: served', async () => {
    portico.write('slices.yaml', toYaml(endpointSlice('app', [{ at: `127.0.0.1:${two.port}`, ready: false }])));
    await waitFor('503', async () => (await request(portico.httpPort, '/', { host: 'app.test' })).status === 503, 3000, 20);
    portico.write('slices.yaml', slices(two.port));
    await waitFor('200', async () => (await request(portico.httpPort, '/', { host: 'app.test' })).status === 200, 3000, 20);
  });

  it('a restarted worker gets the table with the latest endpoints', async () => {
    const [pid] = await portico.workerPids();
    process.kill(pid, 'SIGKILL');
    await waitFor('respawn', async () => (await portico.workerPids()).length === 2 && !(await portico.workerPids()).includes(pid), 10_000);
    expect(await names(10)).toEqual(['two']);
  });
});
