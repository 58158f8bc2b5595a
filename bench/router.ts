// `npm run bench:router`: the routing table on its own, no network.
//   - lookups/s on compiled tables of 10, 1k, 10k and 100k routes, over a fixed, shuffled set of
//     requests (existing and missing hosts and paths, wildcard and catch-all hosts);
//   - bytes allocated per lookup (the design goal is zero);
//   - compile time and retained heap of each table;
//   - 10k Ingresses x 5 paths through the real translator: translate time, compile time, heap.
// Results: bench/results/router-latest.json. Benchmarks report; they never assert.
//
//   npm run bench:router -- [--quick]     (--quick: fewer samples, for a smoke run)

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { newTranslatorState, translate } from '../controller/translate.ts';
import type { KubeObject, SourceSnapshot } from '../controller/objects.ts';
import { busyCoresBetween, sampleSystemCpu } from './lib/processes.ts';
import { compileTable, type RequestAttributes, type RoutingTable } from '../router/index.ts';
import type { BackendIR, RouteIR, RoutingIR, VirtualHostIR } from '../router/types.ts';
import { prng } from '../test/helpers/prng.ts';

// Heap measurements need gc(): re-run this file under --expose-gc when it is not available.
if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const gc = globalThis.gc as () => void;

const QUICK = process.argv.includes('--quick');
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SIZES = [10, 1_000, 10_000, 100_000];
/** Requests in the lookup set: a power of two, cycled through with a mask. */
const LOOKUP_SET = 8192;
/**
 * Distinct Host header values in a lookup set. The router caches Host normalisation for up to
 * 4096 values (router/host.ts); a set above that would measure cache churn, not routing.
 */
const MAX_DISTINCT_HOSTS = 3000;

// ---- helpers -----------------------------------------------------------------------------------


function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

const pick = <T>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)];

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

/** Retained heap after a full collection. */
function settledHeap(): number {
  gc();
  gc();
  return heapUsed();
}

const MB = 1024 * 1024;
const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

// ---- synthetic routing tables ------------------------------------------------------------------

const WORDS = ['shop', 'api', 'auth', 'blog', 'docs', 'media', 'search', 'billing', 'admin', 'status', 'mail', 'cdn', 'app', 'portal', 'metrics', 'chat', 'files', 'news', 'store', 'account'];
const ZONES = ['example.com', 'example.org', 'acme.io', 'corp.internal', 'prod.example.net', 'eu.example.com', 'us.example.com', 'shop.example'];
const PREFIXES = ['/', '/api', '/api/v1', '/api/v2', '/api/v1/users', '/api/v1/orders', '/api/v2/items', '/static', '/assets/img', '/auth', '/admin', '/docs', '/graphql', '/ws', '/uploads', '/v1', '/v2/catalog/products'];
const EXACTS = ['/login', '/logout', '/healthz', '/readyz', '/metrics', '/favicon.ico', '/robots.txt', '/api/v1/status'];
const SEGMENTS = ['users', 'orders', 'items', '42', '1337', 'a1b2c3', 'profile', 'settings', 'images', 'logo.png', 'index.html', 'v3', 'search', 'cart', 'checkout'];

function backendFor(key: string, i: number): BackendIR {
  return { name: key, protocol: 'http', endpoints: [{ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 8080 }, { address: `10.${128 + ((i >> 16) & 127)}.${(i >> 8) & 255}.${i & 255}`, port: 8080 }] };
}

/** Paths for one virtual host: a realistic mix of Prefix and Exact, unique per host. */
function hostPaths(count: number, rand: () => number, hostIndex: number): { pathType: 'Exact' | 'Prefix'; path: string }[] {
  const out: { pathType: 'Exact' | 'Prefix'; path: string }[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; out.length < count && attempt < count * 20; attempt++) {
    const r = rand();
    let pathType: 'Exact' | 'Prefix';
    let path: string;
    if (r < 0.2) [pathType, path] = ['Exact', pick(EXACTS, rand)];
    else if (r < 0.8) [pathType, path] = ['Prefix', pick(PREFIXES, rand)];
    else [pathType, path] = ['Prefix', `/${pick(WORDS, rand)}-${hostIndex % 97}/${pick(SEGMENTS, rand)}`];
    const key = `${pathType} ${path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pathType, path });
  }
  // Unique fallbacks so the count is always reached.
  for (let k = 0; out.length < count; k++) out.push({ pathType: 'Prefix', path: `/svc-${hostIndex}-${k}` });
  return out;
}

/**
 * About `total` routes: many hosts with 1-8 paths each (4.5 on average), 5% of the hosts
 * one-label wildcards, plus a catch-all host ('*') with a few paths of its own.
 */
function syntheticIR(total: number, seed: number): RoutingIR {
  const rand = prng(seed);
  const virtualHosts: VirtualHostIR[] = [];
  const backends: Record<string, BackendIR> = {};
  const source = (ns: string, name: string) => ({ kind: 'Ingress', namespace: ns, name });
  let routes = 0;
  const catchAllCount = Math.max(1, Math.min(20, Math.round(total * 0.01)));
  {
    const key = 'default/default-backend:80';
    backends[key] = backendFor(key, 0);
    const paths = hostPaths(catchAllCount, rand, 0);
    if (!paths.some((p) => p.pathType === 'Prefix' && p.path === '/') && paths.length > 1) paths[0] = { pathType: 'Prefix', path: '/' };
    virtualHosts.push({ hostname: '*', routes: paths.map((p, j) => ({ id: `default/catch-all#0.${j}`, ...p, backends: [{ backend: key, weight: 1 }], source: source('default', 'catch-all') })) });
    routes += paths.length;
  }
  const usedHosts = new Set<string>();
  for (let i = 1; routes < total; i++) {
    const ns = `ns-${i % 50}`;
    const wildcard = rand() < 0.05;
    const hostname = wildcard ? `*.tenant-${i}.${pick(ZONES, rand)}` : `${pick(WORDS, rand)}-${i}.${pick(ZONES, rand)}`;
    if (usedHosts.has(hostname)) continue;
    usedHosts.add(hostname);
    const count = Math.min(total - routes, 1 + Math.floor(rand() * 8));
    const key = `${ns}/svc-${i}:80`;
    backends[key] = backendFor(key, i);
    const paths = hostPaths(count, rand, i);
    const vhRoutes: RouteIR[] = paths.map((p, j) => ({ id: `${ns}/ing-${i}#0.${j}`, ...p, backends: [{ backend: key, weight: 1 }], source: source(ns, `ing-${i}`) }));
    virtualHosts.push({ hostname, routes: vhRoutes });
    routes += vhRoutes.length;
  }
  virtualHosts.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return { virtualHosts, backends };
}

// ---- lookup sets -------------------------------------------------------------------------------

interface LookupSet {
  readonly hosts: string[];
  readonly targets: string[];
  readonly distinctHosts: number;
  readonly mix: Record<string, number>;
}

/** A request target that the route matches: Exact as is, Prefix with extra segments, some with a query. */
function targetFor(route: RouteIR, rand: () => number): string {
  let path = route.path;
  if (route.pathType === 'Prefix' && rand() < 0.6) {
    const extra = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < extra; k++) path = (path.endsWith('/') ? path : path + '/') + pick(SEGMENTS, rand);
  }
  return rand() < 0.25 ? `${path}?page=${Math.floor(rand() * 10)}&sort=desc` : path;
}

/**
 * LOOKUP_SET requests built from any IR, shuffled: 70% existing host + matching path, 10% existing
 * host + unknown path, 10% names under wildcard hosts, 10% unknown hosts (catch-all or 404).
 * No path needs normalising here (those allocate by design; measured separately).
 */
function lookupSet(ir: RoutingIR, seed: number): LookupSet {
  const rand = prng(seed);
  const exact = ir.virtualHosts.filter((v) => v.hostname !== '*' && !v.hostname.startsWith('*.') && v.routes.length > 0);
  const wild = ir.virtualHosts.filter((v) => v.hostname.startsWith('*.') && v.routes.length > 0);
  // Bound the distinct Host values (see MAX_DISTINCT_HOSTS): sample the hosts requests go to.
  const exactPool = shuffle([...exact], rand).slice(0, Math.floor(MAX_DISTINCT_HOSTS * 0.75));
  const wildPool = shuffle([...wild], rand).slice(0, Math.floor(MAX_DISTINCT_HOSTS * 0.1));
  const hosts: string[] = [];
  const targets: string[] = [];
  const mix: Record<string, number> = { existing: 0, missingPath: 0, wildcard: 0, missingHost: 0 };
  for (let i = 0; i < LOOKUP_SET; i++) {
    const r = rand();
    if (r < 0.7 && exactPool.length > 0) {
      const vh = pick(exactPool, rand);
      // Some clients send a port or upper case: distinct raw Host values, same virtual host.
      const v = rand();
      hosts.push(v < 0.05 ? `${vh.hostname}:443` : v < 0.08 ? vh.hostname.toUpperCase() : vh.hostname);
      targets.push(targetFor(pick(vh.routes, rand), rand));
      mix.existing++;
    } else if (r < 0.8 && exactPool.length > 0) {
      hosts.push(pick(exactPool, rand).hostname);
      targets.push(`/no/such/${pick(SEGMENTS, rand)}${rand() < 0.3 ? '?q=1' : ''}`);
      mix.missingPath++;
    } else if (r < 0.9 && wildPool.length > 0) {
      const vh = pick(wildPool, rand);
      hosts.push(`${pick(WORDS, rand)}${Math.floor(rand() * 4)}.${vh.hostname.slice(2)}`);
      targets.push(targetFor(pick(vh.routes, rand), rand));
      mix.wildcard++;
    } else {
      hosts.push(`unknown-${Math.floor(rand() * 200)}.${pick(ZONES, rand)}`);
      targets.push(rand() < 0.5 ? '/' : `/${pick(SEGMENTS, rand)}/${pick(SEGMENTS, rand)}`);
      mix.missingHost++;
    }
  }
  // Shuffle requests (host and target together).
  const order = shuffle([...Array(LOOKUP_SET).keys()], rand);
  return { hosts: order.map((i) => hosts[i]), targets: order.map((i) => targets[i]), distinctHosts: new Set(hosts).size, mix };
}

/** Targets that need normalising (dot segments, double slashes, escapes): the allocating path. */
function normalizingSet(base: LookupSet, seed: number): LookupSet {
  const rand = prng(seed);
  const targets = base.targets.map((t) => {
    const q = t.indexOf('?');
    const path = q === -1 ? t : t.slice(0, q);
    const r = rand();
    // Each rewrite normalises back to the same path: `/./a`, `//a`, `/x/../%61`.
    const bent = r < 0.33 ? `/.${path}` : r < 0.66 ? `/${path}` : `/x/..${path}`.replace(/(?<=\/\.\.\/)[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
    return q === -1 ? bent : bent + t.slice(q);
  });
  return { ...base, targets };
}

// ---- measurement -------------------------------------------------------------------------------

// The proxy always passes its request adapter; routes here have no conditions, so it is never read.
const ATTRS: RequestAttributes = { method: 'GET', header: () => undefined, queryParam: () => undefined };

/** The measured loop. Returns a checksum so the work cannot be optimised away. */
function lookups(table: RoutingTable, set: LookupSet, count: number): number {
  const hosts = set.hosts;
  const targets = set.targets;
  const mask = hosts.length - 1;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const j = i & mask;
    const route = table.match(hosts[j], targets[j], ATTRS);
    if (route !== undefined) sum += route.id.length;
  }
  return sum;
}

let sink = 0;

/**
 * Cores other programs kept busy during `fn`: machine-wide busy time minus this process's CPU.
 * On a shared machine this is what makes a run unreliable.
 */
function withNoise<T>(fn: () => T): { value: T; otherBusyCores: number } {
  const sys0 = sampleSystemCpu();
  const own0 = process.cpuUsage();
  const value = fn();
  const sys1 = sampleSystemCpu();
  const own = process.cpuUsage(own0);
  const wallSec = (sys1.at - sys0.at) / 1000;
  return { value, otherBusyCores: Math.max(0, busyCoresBetween(sys0, sys1) - (own.user + own.system) / 1e6 / wallSec) };
}
const NOISY_CORES = 0.15;
const noisy: string[] = [];

/** Median lookups/s over several timed runs of ~200 ms each, after a warm-up. */
function lookupsPerSecond(table: RoutingTable, set: LookupSet): { perSecond: number; nsPerLookup: number; samples: number[] } {
  sink += lookups(table, set, 200_000);
  const t0 = performance.now();
  sink += lookups(table, set, 100_000);
  const per = (performance.now() - t0) / 100_000;
  const count = Math.max(100_000, Math.min(50_000_000, Math.round((QUICK ? 50 : 200) / per)));
  const samples: number[] = [];
  for (let s = 0; s < (QUICK ? 3 : 7); s++) {
    const start = performance.now();
    sink += lookups(table, set, count);
    samples.push(count / ((performance.now() - start) / 1000));
  }
  const perSecond = median(samples);
  return { perSecond, nsPerLookup: 1e9 / perSecond, samples: samples.map((x) => Math.round(x)) };
}

// Minor GCs (scavenges) seen, with their start time: a scavenge inside a measured batch frees
// memory and makes that batch's heap growth undercount, so such batches are left out.
const scavengeTimes: number[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) scavengeTimes.push(e.startTime);
});
gcObserver.observe({ entryTypes: ['gc'] });

/**
 * Bytes allocated per lookup: heap growth over batches of lookups, each starting after a full GC.
 * Batches during which a scavenge ran are discarded (GC entries arrive asynchronously, hence the
 * wait at the end). With no allocation in the lookup path this is ~0 (what remains is a constant
 * of a few tens of KB per batch from V8 itself, hence large batches).
 */
async function bytesPerLookup(table: RoutingTable, set: LookupSet, batches: number, batch: number): Promise<{ bytesPerLookup: number; lookups: number; discardedBatches: number }> {
  sink += lookups(table, set, Math.max(batch, 200_000)); // warm: host cache filled, code optimised
  const windows: { t0: number; t1: number; grown: number }[] = [];
  for (let b = 0; b < batches; b++) {
    gc();
    const t0 = performance.now();
    const h0 = heapUsed();
    sink += lookups(table, set, batch);
    const grown = heapUsed() - h0;
    windows.push({ t0, t1: performance.now(), grown });
  }
  await new Promise((r) => setTimeout(r, 100));
  const clean = windows.filter((w) => !scavengeTimes.some((t) => t >= w.t0 && t <= w.t1));
  const grown = clean.reduce((sum, w) => sum + w.grown, 0);
  const counted = clean.length * batch;
  return { bytesPerLookup: counted > 0 ? Math.max(0, grown) / counted : NaN, lookups: counted, discardedBatches: windows.length - clean.length };
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

// ---- 10k Ingresses through the translator ------------------------------------------------------

/** 10k Ingresses x 5 paths, with their Services and EndpointSlices, as a source would deliver them. */
function ingressSnapshot(count: number, pathsEach: number, seed: number): SourceSnapshot {
  const rand = prng(seed);
  const objects: KubeObject[] = [
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico' }, spec: { controller: 'portico.dev/ingress-controller' } },
  ];
  const base = Date.parse('2024-01-01T00:00:00Z');
  for (let i = 0; i < count; i++) {
    const namespace = `team-${i % 100}`;
    const name = `app-${i}`;
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'metrics', port: 9090, targetPort: 9090 }] },
    });
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-x${(i * 7919).toString(36)}`, namespace, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9090 }],
      endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.${k}.${(i >> 8) & 255}.${i & 255}`], conditions: { ready: k !== 3 || rand() < 0.9 } })),
    });
    // Every tenth Ingress adds paths to the previous one's host (several Ingresses per host).
    const sharesHost = i % 10 === 9;
    const hostIndex = sharesHost ? i - 1 : i;
    const host = hostIndex % 100 === 50 ? `*.app-${hostIndex}.example.com` : `app-${hostIndex}.${ZONES[hostIndex % ZONES.length]}`;
    const paths = sharesHost
      ? Array.from({ length: pathsEach }, (_, k) => ({ path: `/team-${i}/${SEGMENTS[k % SEGMENTS.length]}`, pathType: 'Prefix' }))
      : [
          { path: '/', pathType: 'Prefix' },
          { path: '/api', pathType: 'Prefix' },
          { path: '/api/v1/users', pathType: 'Prefix' },
          { path: '/static', pathType: 'ImplementationSpecific' },
          { path: '/healthz', pathType: 'Exact' },
          ...Array.from({ length: Math.max(0, pathsEach - 5) }, (_, k) => ({ path: `/extra-${k}`, pathType: 'Prefix' })),
        ].slice(0, pathsEach);
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace, generation: 1, creationTimestamp: new Date(base + i * 1000).toISOString(), ...(i % 3 === 0 ? { annotations: { 'portico.dev/proxy-read-timeout': '30' } } : {}) },
      spec: {
        ingressClassName: 'portico',
        rules: [{ host, http: { paths: paths.map((p, k) => ({ ...p, backend: { service: { name, port: k % 2 === 0 ? { number: 80 } : { name: 'http' } } } })) } }],
      },
    });
  }
  return { objects: objects.map((object) => ({ object, origin: 'bench' })), problems: [] };
}

// ---- main --------------------------------------------------------------------------------------

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const started = new Date();
  process.stdout.write(`router benchmark: node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}${QUICK ? ' (--quick)' : ''}\n\n`);
  const sizes: Record<string, unknown>[] = [];
  const header = ['routes', 'hosts', 'compile ms', 'table heap MB', 'lookups/s', 'ns/lookup', 'bytes/lookup', 'normalizing lookups/s', 'bytes/lookup'];
  const rows: string[][] = [header];
  for (const size of SIZES) {
    const ir = syntheticIR(size, size);
    const routeCount = ir.virtualHosts.reduce((s, v) => s + v.routes.length, 0);
    const wildcardHosts = ir.virtualHosts.filter((v) => v.hostname.startsWith('*.')).length;
    const set = lookupSet(ir, size + 1);
    const h0 = settledHeap();
    const first = timed(() => compileTable(ir, 1));
    const tableBytes = Math.max(0, settledHeap() - h0);
    const compileRuns = [first.ms];
    for (let k = 0; k < (size >= 100_000 ? 2 : 4); k++) compileRuns.push(timed(() => compileTable(ir, k + 2)).ms);
    const table = first.value;
    const measured = withNoise(() => lookupsPerSecond(table, set));
    const speed = measured.value;
    if (measured.otherBusyCores > NOISY_CORES) noisy.push(`${size} routes: other programs kept ${measured.otherBusyCores.toFixed(2)} cores busy during the lookups`);
    const alloc = await bytesPerLookup(table, set, QUICK ? 2 : 3, 1_000_000);
    const normSet = normalizingSet(set, size + 2);
    const normSpeed = lookupsPerSecond(table, normSet);
    // Allocating lookups: batches small enough to fit between two scavenges.
    const normAlloc = await bytesPerLookup(table, normSet, QUICK ? 20 : 50, 2_000);
    // Each normalising request should route as its plain twin does: counted, not asserted.
    let normMismatches = 0;
    for (let k = 0; k < LOOKUP_SET; k++) if (table.match(set.hosts[k], set.targets[k], ATTRS) !== table.match(normSet.hosts[k], normSet.targets[k], ATTRS)) normMismatches++;
    sizes.push({
      routes: routeCount,
      virtualHosts: ir.virtualHosts.length,
      wildcardHosts,
      backends: Object.keys(ir.backends).length,
      compileMs: { first: round(first.ms), median: round(median(compileRuns)) },
      tableHeapMB: round(tableBytes / MB),
      lookupSet: { size: LOOKUP_SET, distinctHosts: set.distinctHosts, mix: set.mix },
      lookupsPerSecond: Math.round(speed.perSecond),
      nsPerLookup: round(speed.nsPerLookup, 1),
      samples: speed.samples,
      otherBusyCores: round(measured.otherBusyCores),
      bytesPerLookup: round(alloc.bytesPerLookup, 3),
      allocationLookups: alloc.lookups,
      allocationBatchesDiscarded: alloc.discardedBatches,
      normalizingPaths: { lookupsPerSecond: Math.round(normSpeed.perSecond), nsPerLookup: round(normSpeed.nsPerLookup, 1), bytesPerLookup: round(normAlloc.bytesPerLookup, 1), allocationLookups: normAlloc.lookups, routedDifferently: normMismatches },
    });
    const allocText = (a: { bytesPerLookup: number }): string => a.bytesPerLookup.toFixed(a.bytesPerLookup < 10 ? 3 : 1);
    rows.push([fmt(routeCount), fmt(ir.virtualHosts.length), median(compileRuns).toFixed(1), (tableBytes / MB).toFixed(1), fmt(speed.perSecond), speed.nsPerLookup.toFixed(1), allocText(alloc), fmt(normSpeed.perSecond), allocText(normAlloc)]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write('Compiled table, synthetic IR (hosts with 1-8 paths, 5% wildcard hosts, a catch-all host)\n');
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padStart(widths[i])).join('  ') + '\n');
  process.stdout.write(`lookup set: ${LOOKUP_SET} shuffled requests, 70% existing host+path, 10% existing host+missing path, 10% wildcard, 10% unknown host; at most ${MAX_DISTINCT_HOSTS} distinct Host values\n`);

  // -- 10k Ingresses x 5 paths through the translator --
  const INGRESSES = 10_000;
  const PATHS = 5;
  process.stdout.write(`\n${fmt(INGRESSES)} Ingresses x ${PATHS} paths (+ ${fmt(INGRESSES)} Services, ${fmt(INGRESSES)} EndpointSlices) through translate() and compileTable()\n`);
  const h0 = settledHeap();
  const snapshot = ingressSnapshot(INGRESSES, PATHS, 42);
  const h1 = settledHeap();
  const state = newTranslatorState();
  const tr = timed(() => translate(snapshot, { ingressClass: 'portico', publishAddresses: ['203.0.113.10'] }, state));
  const h2 = settledHeap();
  const ir = tr.value.ir;
  const comp = timed(() => compileTable(ir, 1));
  const h3 = settledHeap();
  const warmTranslate: number[] = [];
  const warmCompile: number[] = [];
  for (let k = 0; k < (QUICK ? 1 : 3); k++) {
    warmTranslate.push(timed(() => translate(snapshot, { ingressClass: 'portico', publishAddresses: ['203.0.113.10'] }, state)).ms);
    warmCompile.push(timed(() => compileTable(ir, k + 2)).ms);
  }
  // The primary serialises the IR to detect no-op changes; the IPC channel serialises it again
  // and every worker parses it.
  const str = timed(() => JSON.stringify(ir));
  const parse = timed(() => JSON.parse(str.value) as RoutingIR);
  const ingTable = comp.value;
  const ingSet = lookupSet(ir, 7);
  const ingMeasured = withNoise(() => lookupsPerSecond(ingTable, ingSet));
  const ingSpeed = ingMeasured.value;
  if (ingMeasured.otherBusyCores > NOISY_CORES) noisy.push(`10k Ingresses: other programs kept ${ingMeasured.otherBusyCores.toFixed(2)} cores busy during the lookups`);
  const ingAlloc = await bytesPerLookup(ingTable, ingSet, QUICK ? 2 : 3, 1_000_000);
  const routes = ir.virtualHosts.reduce((s, v) => s + v.routes.length, 0);
  const ingress = {
    ingresses: INGRESSES,
    pathsPerIngress: PATHS,
    objects: snapshot.objects.length,
    routes,
    virtualHosts: ir.virtualHosts.length,
    backends: Object.keys(ir.backends).length,
    problems: tr.value.problems.length,
    translateMs: { first: round(tr.ms), warmMedian: round(median(warmTranslate)) },
    compileMs: { first: round(comp.ms), warmMedian: round(median(warmCompile)) },
    irJson: { bytes: str.value.length, stringifyMs: round(str.ms), parseMs: round(parse.ms) },
    heapMB: { inputObjects: round((h1 - h0) / MB), translation: round((h2 - h1) / MB), compiledTable: round((h3 - h2) / MB) },
    lookupsPerSecond: Math.round(ingSpeed.perSecond),
    nsPerLookup: round(ingSpeed.nsPerLookup, 1),
    bytesPerLookup: round(ingAlloc.bytesPerLookup, 3),
    allocationLookups: ingAlloc.lookups,
  };
  const lines = [
    ['routes / virtual hosts / backends', `${fmt(routes)} / ${fmt(ingress.virtualHosts)} / ${fmt(ingress.backends)} (${ingress.problems} problems)`],
    ['translate (first, warm median)', `${tr.ms.toFixed(0)} ms, ${median(warmTranslate).toFixed(0)} ms`],
    ['compile (first, warm median)', `${comp.ms.toFixed(0)} ms, ${median(warmCompile).toFixed(0)} ms`],
    ['IR as JSON (size, stringify, parse)', `${(str.value.length / MB).toFixed(1)} MB, ${str.ms.toFixed(0)} ms, ${parse.ms.toFixed(0)} ms`],
    ['heap: input objects', `${((h1 - h0) / MB).toFixed(1)} MB`],
    ['heap: translation (IR + state)', `${((h2 - h1) / MB).toFixed(1)} MB`],
    ['heap: compiled table', `${((h3 - h2) / MB).toFixed(1)} MB`],
    ['lookups on this table', `${fmt(ingSpeed.perSecond)}/s (${ingSpeed.nsPerLookup.toFixed(1)} ns), ${ingAlloc.bytesPerLookup.toFixed(3)} bytes/lookup`],
  ];
  for (const [k, v] of lines) process.stdout.write(`  ${k.padEnd(38)} ${v}\n`);
  gcObserver.disconnect();
  for (const n of noisy) process.stdout.write(`warning: ${n}; numbers are unreliable\n`);

  const result = {
    benchmark: 'router',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, kernel: `${os.type()} ${os.release()} ${os.arch()}`, quick: QUICK },
    lookupSet: { size: LOOKUP_SET, maxDistinctHosts: MAX_DISTINCT_HOSTS, mix: '70% existing host+path, 10% existing host+missing path, 10% wildcard, 10% unknown host' },
    sizes,
    ingress10k: ingress,
    notes: noisy,
    checksum: sink,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = JSON.stringify(result, null, 2) + '\n';
  writeFileSync(join(RESULTS_DIR, 'router-latest.json'), json);
  writeFileSync(join(RESULTS_DIR, `router-${started.toISOString().replace(/[:.]/g, '-')}.json`), json);
  process.stdout.write(`\nresults: bench/results/router-latest.json\n`);
}

await main();
