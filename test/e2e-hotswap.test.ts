import http from 'node:http';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, waitFor, type Portico } from './helpers/portico.ts';

let backend: EchoBackend;
let portico: Portico;

beforeAll(async () => {
  backend = await startEchoBackend('stable', '127.0.0.2', 0);
  portico = await startPortico({
    workers: 2,
    logLevel: 'warn',
    files: {
      'base.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), ingress('stable', 'swap.test', [{ path: '/stable', service: 'app' }])),
      'dynamic.yaml': toYaml(ingress('dynamic', 'swap.test', [{ path: '/v0', service: 'app' }])),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

describe('hot swap', () => {
  it('serves every request while the manifest directory changes 200+ times', async () => {
    const startVersion = (await portico.json('/debug/routes')).version as number;
    const swapsBefore = (await portico.metric('portico_table_swaps_total')) ?? 0;
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const client = async () => {
      for (let i = 0; running && i < 1_000_000; i++) {
        try {
          const r = await request(portico.httpPort, '/stable', { host: 'swap.test', agent });
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}: ${r.body}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);

    const SWAPS = 210;
    for (let i = 1; i <= SWAPS; i++) {
      portico.write('dynamic.yaml', toYaml(ingress('dynamic', 'swap.test', [{ path: `/v${i}`, service: 'app' }])));
      await portico.waitVersion(startVersion + i);
    }
    running = false;
    await Promise.all(clients);
    agent.destroy();

    const version = (await portico.json('/debug/routes')).version as number;
    expect(version).toBeGreaterThanOrEqual(startVersion + SWAPS);
    // Every worker swapped in every version (the counter sums workers).
    await waitFor('workers to ack', async () => ((await portico.metric('portico_table_swaps_total')) ?? 0) - swapsBefore >= 2 * SWAPS);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(200);
    // The last change is what is served; earlier ones are gone.
    expect((await request(portico.httpPort, `/v${SWAPS}`, { host: 'swap.test' })).status).toBe(200);
    expect((await request(portico.httpPort, '/v1', { host: 'swap.test' })).status).toBe(404);
  }, 120_000);

  it('a file rewritten in place (truncate, then write) never drops its routes; a file emptied for good does', async () => {
    const path = join(portico.dir, 'inplace.yaml');
    const content = (i: number) => toYaml(ingress('inplace', 'inplace.test', [{ path: '/', service: 'app' }, { path: `/v${i}`, service: 'app' }]));
    writeFileSync(path, content(0));
    await waitFor('route', async () => (await request(portico.httpPort, '/', { host: 'inplace.test' })).status === 200);
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const client = async () => {
      for (let i = 0; running && i < 1_000_000; i++) {
        const r = await request(portico.httpPort, '/', { host: 'inplace.test', agent }).catch((err: Error) => ({ status: 0, body: err.message }));
        if (r.status === 200) ok++;
        else failures.push(`status ${r.status}: ${r.body}`);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    // A slow writer: the file stays empty for longer than the watcher's 20 ms debounce, so it is
    // read empty.
    const REWRITES = 30;
    for (let i = 1; i <= REWRITES; i++) {
      truncateSync(path);
      await sleep(40);
      writeFileSync(path, content(i));
      await sleep(25);
    }
    await waitFor('last rewrite served', async () => (await request(portico.httpPort, `/v${REWRITES}`, { host: 'inplace.test' })).status === 200);
    running = false;
    await Promise.all(clients);
    agent.destroy();
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(REWRITES);

    const emptied = Date.now();
    truncateSync(path);
    await waitFor('routes of the emptied file removed', async () => (await request(portico.httpPort, '/', { host: 'inplace.test' })).status === 404, 5000, 10);
    // Kept while it might be a slow in-place rewrite (the source's 1 s settle), then dropped.
    const took = Date.now() - emptied;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(4000);
    portico.remove('inplace.yaml');
  }, 60_000);

  it('a change is served within one second, without restarting workers', async () => {
    const pids = await portico.workerPids();
    const started = Date.now();
    portico.write('fast.yaml', toYaml(ingress('fast', 'fast.test', [{ path: '/', service: 'app' }])));
    await waitFor('new route', async () => (await request(portico.httpPort, '/', { host: 'fast.test' })).status === 200, 5000, 10);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await portico.workerPids()).sort()).toEqual(pids.sort());
  });

  it('a request in flight finishes on the table it started with', async () => {
    const slow = http.createServer((req, res) => setTimeout(() => res.end('slow done\n'), 800));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.3', r));
    const port = (slow.address() as { port: number }).port;
    try {
      portico.write('inflight.yaml', toYaml(service('slow'), endpointSlice('slow', [`127.0.0.3:${port}`]), ingress('inflight', 'inflight.test', [{ path: '/', service: 'slow' }])));
      await waitFor('route', async () => (await portico.json('/debug/routes')).virtualHosts.some((v: { hostname: string }) => v.hostname === 'inflight.test'));
      const pending = request(portico.httpPort, '/', { host: 'inflight.test' });
      await sleep(200);
      portico.remove('inflight.yaml');
      await waitFor('route removed', async () => (await request(portico.httpPort, '/', { host: 'inflight.test' })).status === 404);
      const r = await pending;
      expect(r.status).toBe(200);
      expect(r.body).toBe('slow done\n');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });
});

describe('workers', () => {
  it('a killed worker is respawned, given the current table, and serves', async () => {
    const before = await portico.workerPids();
    expect(before).toHaveLength(2);
    const version = (await portico.json('/debug/routes')).version as number;
    const served = async () => {
      const text = await (await fetch(`http://127.0.0.1:${portico.adminPort}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith('portico_requests_total{')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    await Promise.all(Array.from({ length: 40 }, () => request(portico.httpPort, '/stable', { host: 'swap.test' })));
    const servedBefore = await served();
    expect(servedBefore).toBeGreaterThanOrEqual(40);
    process.kill(before[0], 'SIGKILL');
    const after = await waitFor('respawned worker', async () => {
      const pids = await portico.workerPids();
      return pids.length === 2 && !pids.includes(before[0]) ? pids : undefined;
    }, 10_000);
    await portico.waitReady();
    const fresh = after.find((p) => !before.includes(p))!;
    // Many requests on new connections reach both workers, including the new one.
    const results = await Promise.all(Array.from({ length: 40 }, () => request(portico.httpPort, '/stable', { host: 'swap.test' })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(await portico.metric('portico_worker_restarts_total')).toBeGreaterThanOrEqual(1);
    // Counters never go backwards: the dead worker's counts are kept.
    expect(await served()).toBeGreaterThanOrEqual(servedBefore + 40);
    expect(await portico.metric('portico_table_version')).toBeGreaterThanOrEqual(version);
    const status = readFileSync(`/proc/${fresh}/status`, 'utf8');
    expect(status).toMatch(/State:\s+[SR]/);
  }, 30_000);
});

describe('shutdown', () => {
  it('SIGTERM stops accepting, finishes in-flight requests, then exits', async () => {
    const slow = http.createServer((req, res) => setTimeout(() => res.end('finished\n'), 700));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.3', r));
    const port = (slow.address() as { port: number }).port;
    const p = await startPortico({ workers: 1, files: { 'all.yaml': toYaml(ingressClass(), service('slow'), endpointSlice('slow', [`127.0.0.3:${port}`]), ingress('slow', 'slow.test', [{ path: '/', service: 'slow' }])) } });
    try {
      const pending = request(p.httpPort, '/', { host: 'slow.test' });
      await sleep(200);
      p.proc.kill('SIGTERM');
      const r = await pending;
      expect(r.status).toBe(200);
      expect(r.body).toBe('finished\n');
      await waitFor('exit', () => p.proc.exitCode !== null, 10_000);
      expect(p.proc.exitCode).toBe(0);
    } finally {
      await p.stop();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('SIGTERM drains keep-alive connections: responses say Connection: close, and the process exits long before the grace period', async () => {
    const slow = http.createServer((req, res) => setTimeout(() => res.end('finished\n'), 500));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.3', r));
    const port = (slow.address() as { port: number }).port;
    const p = await startPortico({ workers: 1, args: ['--shutdown-grace', '20'], files: { 'all.yaml': toYaml(ingressClass(), service('slow'), endpointSlice('slow', [`127.0.0.3:${port}`]), ingress('slow', 'slow.test', [{ path: '/', service: 'slow' }])) } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      // Four kept-alive connections, each busy with a request when SIGTERM arrives.
      const first = Array.from({ length: 4 }, () => request(p.httpPort, '/', { host: 'slow.test', agent }));
      await sleep(200);
      const signalled = Date.now();
      p.proc.kill('SIGTERM');
      const answers = await Promise.all(first);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(answers.map((a) => a.headers.connection)).toEqual(['close', 'close', 'close', 'close']);
      await waitFor('exit', () => p.proc.exitCode !== null, 15_000);
      expect(p.proc.exitCode).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(5000);
    } finally {
      agent.destroy();
      await p.stop();
      slow.closeAllConnections();
      slow.close();
    }
  });
});
