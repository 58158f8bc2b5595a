// `npm run bench`: the same small GET to the same backend, interleaved in one run, through
// Portico (its fast HTTP/1.1 engine and its node:http one), nginx and a minimal node:http + undici
// proxy, with the same number of workers; reports req/s, latency and CPU time per request of each
// proxy, pinned (proxy on CPU 0, wrk and the backend on CPU 1) and unpinned, with access logs
// off and (for http-keepalive) on.
//
//   npm run bench -- [--workers 1] [--duration 10] [--warmup 3] [--connections 50] [--threads 1]
//                    [--rounds 3] [--backend-workers 1] [--tool auto|wrk|autocannon]
//                    [--scenarios http-keepalive,http-newconn,https-keepalive,tls-handshake]
//                    [--engines fast,node] [--pinning both|pinned|unpinned]
//                    [--access-log both|on|off] [--access-log-scenarios http-keepalive]
//                    [--no-baseline] [--wait-quiet S] [--no-install] [--keep-temp]
//
// See bench/README.md for what each number means. Benchmarks report; they never assert.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findLoadGenerator, type LoadGenerator, type LoadResult } from './lib/load.ts';
import { ensureTools, nginxVersion, startNginx } from './lib/nginx.ts';
import {
  busyCoresBetween,
  cpuSecondsBetween,
  processCpuSeconds,
  freePort,
  httpGet,
  installCleanupHandlers,
  runCommand,
  sampleCpu,
  sampleSystemCpu,
  setAffinity,
  findExecutable,
  sleep,
  startProcess,
  stopAll,
  treeRssBytes,
  waitUntil,
  type ManagedProcess,
} from './lib/processes.ts';
import { BENCH_HOST, SCENARIOS, type LoadTarget, type Probe, type ProxyPorts, type Scenario, type ScenarioContext } from './lib/scenarios.ts';
import { httpsGet, negotiatedTls, type NegotiatedTls } from './lib/tls.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PORTICO_BIN = join(ROOT, 'bin', 'portico.js');
const BACKEND_TS = fileURLToPath(new URL('./lib/backend.ts', import.meta.url));
const BASELINE_TS = fileURLToPath(new URL('./lib/node-baseline.ts', import.meta.url));
const RELAY_TS = fileURLToPath(new URL('./lib/node-relay.ts', import.meta.url));
/** Machine-wide busy cores, with our load stopped, above which a run is flagged as disturbed. */
const NOISY_CORES = 0.15;
/**
 * Load generator cores per --threads above which it, not the proxy, limited the rate. Its CPU is
 * polled every 200 ms and the last poll misses the end of the run, so it reads a little low.
 */
const SATURATED_LOAD_CORES = 0.85;
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

interface Options {
  workers: number;
  durationSec: number;
  warmupSec: number;
  connections: number;
  threads: number;
  rounds: number;
  backendWorkers: number;
  tool: 'auto' | 'wrk' | 'autocannon';
  scenarios: string[];
  install: boolean;
  keepTemp: boolean;
  baseline: boolean;
  waitQuietSec: number;
  engines: Engine[];
  pinning: PinMode[];
  accessLog: ('off' | 'on')[];
  accessLogScenarios: string[];
}

type Engine = 'fast' | 'node';
type PinMode = 'unpinned' | 'pinned';

const USAGE = `Usage: npm run bench -- [flags]

  --workers N           worker processes for each proxy (default 1)
  --duration S          seconds per measured run (default 10)
  --warmup S            seconds of warm-up load before each measured run (default 3; 0 = none)
  --connections C       concurrent client connections (default 50)
  --threads T           load generator threads (default 1)
  --rounds R            measured runs per proxy, alternating which goes first (default 3; medians reported)
  --backend-workers N   nginx workers of the common backend (default 1)
  --tool T              auto | wrk | autocannon (default auto: wrk if installed)
  --scenarios LIST      comma-separated (default: all available): ${SCENARIOS.map((s) => s.name).join(', ')}
  --wait-quiet S        before each run, wait up to S seconds for other programs to go idle (default 0)
  --no-baseline         leave out the minimal Node proxy (node:http + undici, nothing else)
  --engines LIST        Portico HTTP/1.1 engines to measure: fast, node (default both)
  --pinning P           both | pinned | unpinned (default both; pinned: the proxy on CPU 0, wrk and
                        the backend on CPU 1, with taskset)
  --access-log A        both | on | off (default both): access logs written to a file by both proxies
  --access-log-scenarios LIST   scenarios that also run with access logs on (default http-keepalive)
  --no-install          do not apt-get install nginx/wrk when missing
  --keep-temp           keep the temporary directory (configs, logs)
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workers: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      rounds: { type: 'string' },
      'backend-workers': { type: 'string' },
      tool: { type: 'string' },
      scenarios: { type: 'string' },
      'no-install': { type: 'boolean' },
      'keep-temp': { type: 'boolean' },
      baseline: { type: 'boolean' },
      'no-baseline': { type: 'boolean' },
      engines: { type: 'string' },
      pinning: { type: 'string' },
      'access-log': { type: 'string' },
      'access-log-scenarios': { type: 'string' },
      'wait-quiet': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: ${JSON.stringify(raw)} is not an integer between ${min} and ${max}`);
    return n;
  };
  const tool = values.tool ?? 'auto';
  if (tool !== 'auto' && tool !== 'wrk' && tool !== 'autocannon') throw new Error('--tool: auto, wrk or autocannon');
  const scenarios = values.scenarios ? values.scenarios.split(',').map((s) => s.trim()).filter(Boolean) : SCENARIOS.map((s) => s.name);
  for (const s of scenarios) if (!SCENARIOS.some((x) => x.name === s)) throw new Error(`--scenarios: unknown scenario ${s}`);
  const engines = (values.engines ?? 'fast,node').split(',').map((e) => e.trim()) as Engine[];
  for (const e of engines) if (e !== 'fast' && e !== 'node') throw new Error('--engines: fast and/or node');
  const pin = values.pinning ?? 'both';
  if (pin !== 'both' && pin !== 'pinned' && pin !== 'unpinned') throw new Error('--pinning: both, pinned or unpinned');
  const log = values['access-log'] ?? 'both';
  if (log !== 'both' && log !== 'on' && log !== 'off') throw new Error('--access-log: both, on or off');
  return {
    engines,
    pinning: pin === 'both' ? ['unpinned', 'pinned'] : [pin],
    accessLog: log === 'both' ? ['off', 'on'] : [log],
    accessLogScenarios: (values['access-log-scenarios'] ?? 'http-keepalive').split(',').map((x) => x.trim()).filter(Boolean),
    workers: int('workers', values.workers, 1, 1, 64),
    durationSec: int('duration', values.duration, 10, 1, 600),
    warmupSec: int('warmup', values.warmup, 3, 0, 120),
    connections: int('connections', values.connections, 50, 1, 10_000),
    threads: int('threads', values.threads, 1, 1, 64),
    rounds: int('rounds', values.rounds, 3, 1, 20),
    backendWorkers: int('backend-workers', values['backend-workers'], 1, 1, 64),
    tool,
    scenarios,
    install: !values['no-install'],
    keepTemp: values['keep-temp'] ?? false,
    baseline: !(values['no-baseline'] ?? false),
    waitQuietSec: int('wait-quiet', values['wait-quiet'], 0, 0, 3600),
  };
}

// ---- measurement -------------------------------------------------------------------------------

type ProxyName = 'portico-fast' | 'portico-node' | 'nginx' | 'node-baseline' | 'node-relay';
const PROXIES: readonly ProxyName[] = ['portico-fast', 'portico-node', 'nginx', 'node-baseline', 'node-relay'];
const PORTICOS = ['portico-fast', 'portico-node'] as const;

interface RunResult {
  readonly round: number;
  readonly requestsPerSec: number;
  readonly requests: number;
  readonly durationSec: number;
  readonly latencyMs: LoadResult['latencyMs'];
  readonly non2xx: number;
  readonly errors: number;
  /** CPU seconds of the proxy's process tree during the run. */
  readonly cpuSeconds: number;
  readonly cpuUsPerRequest: number;
  /** The user-space part of cpuUsPerRequest (the rest is the kernel's, for the proxy). */
  readonly userUsPerRequest: number;
  /** Average cores the proxy used: CPU seconds / wall seconds. */
  readonly cpuCores: number;
  readonly proxyProcesses: number;
  readonly backendCpuUsPerRequest: number;
  readonly rssBytes: number;
  /** Cores busy machine-wide in a 0.5 s pause before the run (other programs): should be ~0. */
  readonly otherBusyCores: number;
  readonly loadGeneratorCores: number;
  /** Machine-wide busy cores during the run minus the proxy, the backend and the load generator. */
  readonly otherBusyCoresDuring: number;
}

interface ProxySummary {
  readonly requestsPerSec: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly userUsPerRequest: number;
  readonly cpuCores: number;
  readonly backendCpuUsPerRequest: number;
  /** Cores the load generator used: near --threads means it, not the proxy, set the rate. */
  readonly loadGeneratorCores: number;
  readonly rssMB: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Best round (highest req/s, lowest CPU µs/req): noise only ever makes numbers worse. */
  readonly best: { readonly requestsPerSec: number; readonly cpuUsPerRequest: number };
  /** Rounds the medians are over: those no other program disturbed (all when none was clean). */
  readonly roundsSummarized: number[];
  readonly allRoundsNoisy: boolean;
  readonly runs: RunResult[];
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function isNoisy(r: RunResult): boolean {
  return r.otherBusyCores > NOISY_CORES || r.otherBusyCoresDuring > NOISY_CORES;
}

/** Medians over the rounds no other program disturbed; over all rounds when every one was. */
function summarize(all: RunResult[]): ProxySummary {
  const clean = all.filter((r) => !isNoisy(r));
  const runs = clean.length > 0 ? clean : all;
  return {
    requestsPerSec: median(runs.map((r) => r.requestsPerSec)),
    latencyP50Ms: median(runs.map((r) => r.latencyMs.p50)),
    latencyP99Ms: median(runs.map((r) => r.latencyMs.p99)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
    userUsPerRequest: median(runs.map((r) => r.userUsPerRequest)),
    cpuCores: median(runs.map((r) => r.cpuCores)),
    backendCpuUsPerRequest: median(runs.map((r) => r.backendCpuUsPerRequest)),
    loadGeneratorCores: median(runs.map((r) => r.loadGeneratorCores)),
    rssMB: Math.max(...runs.map((r) => r.rssBytes)) / (1024 * 1024),
    non2xx: all.reduce((s, r) => s + r.non2xx, 0),
    errors: all.reduce((s, r) => s + r.errors, 0),
    best: { requestsPerSec: Math.max(...all.map((r) => r.requestsPerSec)), cpuUsPerRequest: Math.min(...all.map((r) => r.cpuUsPerRequest)) },
    roundsSummarized: runs.map((r) => r.round),
    allRoundsNoisy: clean.length === 0,
    runs: all,
  };
}

/** Cores other programs keep busy, measured over 0.5 s while none of our load runs. */
async function otherBusyCoresNow(): Promise<number> {
  const a = sampleSystemCpu();
  await sleep(500);
  return busyCoresBetween(a, sampleSystemCpu());
}

/** Waits (at most `maxSec`) until the machine is idle apart from us; returns the last reading. */
async function waitForQuiet(maxSec: number): Promise<number> {
  const deadline = Date.now() + maxSec * 1000;
  let busy = await otherBusyCoresNow();
  if (busy > NOISY_CORES) process.stdout.write(`  waiting up to ${maxSec}s for other programs to go idle (${f2(busy)} cores busy)...\n`);
  while (busy > NOISY_CORES && Date.now() < deadline) busy = await otherBusyCoresNow();
  return busy;
}

async function measure(load: LoadGenerator, o: Options, target: LoadTarget, proxy: ManagedProcess, backend: ManagedProcess, round: number): Promise<RunResult> {
  if (o.waitQuietSec > 0) await waitForQuiet(o.waitQuietSec);
  if (o.warmupSec > 0) await load.run({ ...target, connections: o.connections, threads: o.threads, durationSec: o.warmupSec });
  // With no load of ours running, whatever keeps the machine busy is someone else's.
  const otherBusyCores = o.waitQuietSec > 0 ? await waitForQuiet(o.waitQuietSec) : await otherBusyCoresNow();
  const before = sampleCpu([proxy.pid]);
  const backendBefore = sampleCpu([backend.pid]);
  const sysBefore = sampleSystemCpu();
  // The load generator's CPU, sampled while it runs (the last <200 ms are missed).
  let loadPid: number | undefined;
  let loadCpuSeconds = 0;
  const poll = setInterval(() => {
    const cpu = loadPid === undefined ? undefined : processCpuSeconds(loadPid);
    if (cpu !== undefined) loadCpuSeconds = cpu;
  }, 200);
  let r: LoadResult;
  try {
    r = await load.run({ ...target, connections: o.connections, threads: o.threads, durationSec: o.durationSec, onSpawn: (pid) => (loadPid = pid) });
  } finally {
    clearInterval(poll);
  }
  const after = sampleCpu([proxy.pid]);
  const backendAfter = sampleCpu([backend.pid]);
  const machineCores = busyCoresBetween(sysBefore, sampleSystemCpu());
  const rssBytes = treeRssBytes(proxy.pid);
  const cpu = cpuSecondsBetween(before, after);
  const backendCpu = cpuSecondsBetween(backendBefore, backendAfter);
  const wallSec = (after.at - before.at) / 1000;
  return {
    round,
    requestsPerSec: r.requestsPerSec,
    requests: r.requests,
    durationSec: r.durationSec,
    latencyMs: r.latencyMs,
    non2xx: r.non2xx,
    errors: r.errors,
    cpuSeconds: cpu.cpuSeconds,
    cpuUsPerRequest: r.requests > 0 ? (cpu.cpuSeconds * 1e6) / r.requests : NaN,
    userUsPerRequest: r.requests > 0 ? (cpu.userSeconds * 1e6) / r.requests : NaN,
    cpuCores: cpu.cpuSeconds / wallSec,
    proxyProcesses: cpu.processes,
    backendCpuUsPerRequest: r.requests > 0 ? (backendCpu.cpuSeconds * 1e6) / r.requests : NaN,
    rssBytes,
    otherBusyCores,
    loadGeneratorCores: loadCpuSeconds / wallSec,
    otherBusyCoresDuring: Math.max(0, machineCores - (cpu.cpuSeconds + backendCpu.cpuSeconds + loadCpuSeconds) / wallSec),
  };
}

// ---- proxies -----------------------------------------------------------------------------------

/** The scenario's readiness probes; by default plain HTTP on the http port. */
function probesFor(scenario: Scenario, ports: ProxyPorts, ctx: ScenarioContext): Probe[] {
  return scenario.probes?.(ports, ctx) ?? [{ port: ports.http }];
}

/**
 * Waits until every probe's GET / (Host: BENCH_HOST) answers 200 "ok"; over HTTPS the proxy must
 * also present the expected certificate (the SNI is the probe's, '' for none).
 */
async function checkServes(name: string, probes: readonly Probe[], proc: ManagedProcess): Promise<void> {
  for (const probe of probes) {
    let last = '';
    const what = probe.tls === undefined ? `http port ${probe.port}` : `https port ${probe.port}, SNI ${probe.tls.servername === '' ? 'none' : probe.tls.servername}`;
    const why = await waitUntil(
      async () => {
        if (probe.tls === undefined) {
          const r = await httpGet(probe.port, '/', BENCH_HOST);
          last = `${r.status} ${JSON.stringify(r.body.slice(0, 80))}`;
          return r.status === 200 && r.body === 'ok';
        }
        const r = await httpsGet(probe.port, '/', BENCH_HOST, probe.tls.servername);
        const sameCert = r.fingerprint256 === probe.tls.fingerprint256;
        last = `${r.status} ${JSON.stringify(r.body.slice(0, 80))} over ${r.protocol}, ${sameCert ? 'the bench certificate' : `certificate ${r.fingerprint256}, not the bench one`}`;
        return r.status === 200 && r.body === 'ok' && sameCert;
      },
      15_000,
      100,
      () => (proc.exitCode() !== 'running' ? `exited with ${proc.exitCode()}` : undefined),
    );
    if (why !== undefined) throw new Error(`${name} does not proxy GET / to the backend on ${what} (${why}; last answer: ${last})\n${proc.output.slice(-15).join('\n')}`);
  }
}

async function startPortico(o: Options, scenario: Scenario, ctx: ScenarioContext, ports: ProxyPorts, dir: string, engine: Engine, accessLog: boolean): Promise<ManagedProcess> {
  const manifests = join(dir, `portico-${scenario.name}`);
  mkdirSync(manifests, { recursive: true });
  writeFileSync(join(manifests, 'bench.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: scenario.porticoManifests(ctx) }, null, 2));
  const adminPort = await freePort();
  const args = [
    PORTICO_BIN, 'serve', '--manifests', manifests,
    '--http-port', String(ports.http), '--https-port', String(ports.https), '--admin-port', String(adminPort),
    '--workers', String(o.workers), '--bind-address', '127.0.0.1', '--admin-address', '127.0.0.1',
    // Access logs are written at info; warn turns them off.
    '--log-level', accessLog ? 'info' : 'warn', '--http1-engine', engine,
    ...scenario.porticoArgs(ctx, ports),
  ];
  const proc = await startProcess(`portico-${engine}`, process.execPath, args, undefined, join(dir, `portico-${engine}-${scenario.name}${accessLog ? '-access' : ''}.log`));
  const why = await waitUntil(
    async () => (await httpGet(adminPort, '/readyz', undefined, 2000)).status === 200,
    30_000,
    100,
    () => (proc.exitCode() !== 'running' ? `exited with ${proc.exitCode()}` : undefined),
  );
  if (why !== undefined) throw new Error(`portico did not become ready: ${why}\n${proc.output.slice(-15).join('\n')}`);
  await checkServes('portico', probesFor(scenario, ports, ctx), proc);
  return proc;
}

function contenders(procs: Partial<Record<ProxyName, ManagedProcess>>): ManagedProcess[] {
  return PROXIES.map((p) => procs[p]).filter((p): p is ManagedProcess => p !== undefined);
}

// ---- output ------------------------------------------------------------------------------------

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');

function printScenario(name: string, unit: string, threads: number, workers: number, results: Partial<Record<ProxyName, ProxySummary>>): string[] {
  const notes: string[] = [];
  const rows: string[][] = [['', `${unit}/s`, 'p50 ms', 'p99 ms', `CPU µs/${unit}`, 'of it user', 'CPU cores', 'backend µs/req', 'RSS MB', 'non-2xx', 'errors']];
  for (const p of PROXIES) {
    const s = results[p];
    if (s === undefined) continue;
    rows.push([p, f0(s.requestsPerSec), f2(s.latencyP50Ms), f2(s.latencyP99Ms), f1(s.cpuUsPerRequest), f1(s.userUsPerRequest), f2(s.cpuCores), f1(s.backendCpuUsPerRequest), f0(s.rssMB), String(s.non2xx), String(s.errors)]);
  }
  for (const p of PORTICOS) {
    const portico = results[p];
    for (const other of ['nginx', 'node-baseline', 'node-relay'] as const) {
      const o = results[other];
      if (portico === undefined || o === undefined) continue;
      rows.push([`${p}/${other}`, `${f2(portico.requestsPerSec / o.requestsPerSec)}x`, '', '', `${f2(portico.cpuUsPerRequest / o.cpuUsPerRequest)}x`, '', '', '', '', '', '']);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const used = PROXIES.filter((p) => results[p] !== undefined).map((p) => `${p} ${results[p]!.allRoundsNoisy ? 'all rounds (every one disturbed)' : `round ${results[p]!.roundsSummarized.join(', ')}`}`);
  process.stdout.write(`\n${name}: medians over undisturbed rounds (${used.join('; ')})\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd() + '\n');
  const best = PROXIES.filter((p) => results[p] !== undefined).map((p) => `${p} ${f0(results[p]!.best.requestsPerSec)} ${unit}/s, ${f1(results[p]!.best.cpuUsPerRequest)} µs/${unit}`);
  process.stdout.write(`best rounds: ${best.join('; ')}\n`);
  for (const p of PROXIES) {
    const s = results[p];
    if (s !== undefined && (s.non2xx > 0 || s.errors > 0)) process.stdout.write(`warning: ${p} had ${s.non2xx} non-2xx responses and ${s.errors} socket errors: its numbers are suspect\n`);
    if (s !== undefined && s.loadGeneratorCores > SATURATED_LOAD_CORES * threads) {
      const proxyBusy = s.cpuCores > SATURATED_LOAD_CORES * workers;
      const msg = proxyBusy
        ? `${name} ${p}: the load generator (${f2(s.loadGeneratorCores)} cores of its ${threads} thread(s)) and ${p} (${f2(s.cpuCores)} cores of its ${workers} worker(s)) were both at their limit: the ${unit}/s is partly the client's; compare CPU µs/${unit}`
        : `${name} ${p}: the load generator used ${f2(s.loadGeneratorCores)} cores of its ${threads} thread(s) while ${p} used ${f2(s.cpuCores)}: the client, not ${p}, set the ${unit}/s; compare CPU µs/${unit}`;
      notes.push(msg);
      process.stdout.write(`note: ${msg}\n`);
    }
  }
  return notes;
}

/** The README table: one row per scenario variant and contender, CPU ratios to nginx. */
function markdownTable(scenarios: Record<string, Record<string, unknown>>, commit: string | null, at: Date): string {
  const lines = [
    `<!-- written by npm run bench, ${at.toISOString()}, commit ${commit ?? '?'} -->`,
    '| scenario | pinning | access log | proxy | req/s | p50 ms | p99 ms | CPU µs/req | of it user | CPU vs nginx | rounds |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const [key, sc] of Object.entries(scenarios)) {
    const nginx = sc.nginx as ProxySummary | undefined;
    for (const p of PROXIES) {
      const s = sc[p] as ProxySummary | undefined;
      if (s === undefined) continue;
      const vs = nginx !== undefined && p !== 'nginx' ? `${f2(s.cpuUsPerRequest / nginx.cpuUsPerRequest)}x` : '';
      const rounds = s.allRoundsNoisy ? 'all disturbed' : s.roundsSummarized.join(',');
      lines.push(`| ${sc.scenario as string} | ${key.endsWith('@pinned') ? 'pinned' : 'unpinned'} | ${sc.accessLog === true ? 'on' : 'off'} | ${p} | ${f0(s.requestsPerSec)} | ${f2(s.latencyP50Ms)} | ${f2(s.latencyP99Ms)} | ${f1(s.cpuUsPerRequest)} | ${f1(s.userUsPerRequest)} | ${vs} | ${rounds} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function gitCommit(): Promise<string | undefined> {
  const r = await runCommand('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], 5000);
  if (r.code !== 0) return undefined;
  const dirty = await runCommand('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], 5000);
  return r.stdout.trim() + (dirty.stdout.trim() !== '' ? '-dirty' : '');
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  installCleanupHandlers();
  const started = new Date();

  const tools = await ensureTools(o.install);
  for (const line of tools.installLog) process.stderr.write(`bench: ${line}\n`);
  const load = await findLoadGenerator(o.tool);
  const nginxVer = tools.nginx ? await nginxVersion(tools.nginx) : undefined;
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    availableParallelism: os.availableParallelism(),
    memoryGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    nginx: nginxVer ?? null,
    loadGenerator: load ? load.version : null,
    porticoCommit: (await gitCommit()) ?? null,
  };
  const config = { ...o, host: BENCH_HOST, backend: tools.nginx ? `nginx ${nginxVer} (return 200 "ok", ${o.backendWorkers} worker)` : 'node bench/lib/backend.ts (nginx unavailable)' };
  process.stdout.write(`Portico (${o.engines.join(', ')}) vs nginx${o.baseline ? ' vs node-baseline' : ''}, ${o.pinning.join(' and ')}: ${o.workers} worker(s) each, ${load?.name ?? 'no load generator'} -t${o.threads} -c${o.connections}, ${o.warmupSec}s warm-up + ${o.durationSec}s measured, ${o.rounds} round(s)\n`);
  process.stdout.write(`machine: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, nginx ${machine.nginx ?? '-'}, ${machine.loadGenerator ?? '-'}\n`);

  const skipped: Record<string, string> = {};
  const scenarioResults: Record<string, unknown> = {};
  const notes: string[] = [];
  if (load === undefined) {
    skipped.all = 'no load generator: install wrk (apt-get install wrk) or autocannon (npm i autocannon)';
    process.stdout.write(`skipped: ${skipped.all}\n`);
  }

  const dir = mkdtempSync(join(os.tmpdir(), 'portico-bench-'));
  chmodSync(dir, 0o755); // nginx workers may run as another user
  process.on('exit', () => {
    if (!o.keepTemp) rmSync(dir, { recursive: true, force: true });
  });

  if (load !== undefined) {
    // The common backend: nginx returning a fixed 2-byte body, so it costs both proxies the same
    // and is never the bottleneck; a Node server only when nginx is unavailable.
    const backendPort = await freePort();
    let backend: ManagedProcess;
    if (tools.nginx && nginxVer) {
      backend = await startNginx(tools.nginx, nginxVer, {
        name: 'backend',
        dir,
        workers: o.backendWorkers,
        http: `    server {\n        listen 127.0.0.1:${backendPort} backlog=4096;\n        location / {\n            default_type text/plain;\n            return 200 "ok";\n        }\n    }`,
      });
    } else {
      notes.push('nginx unavailable: Portico measured alone, against a Node backend');
      backend = await startProcess('backend', process.execPath, [BACKEND_TS, String(backendPort)]);
    }
    const backendUp = await waitUntil(async () => (await httpGet(backendPort, '/', undefined, 2000)).status === 200, 10_000, 100, () => (backend.exitCode() !== 'running' ? 'exited' : undefined));
    if (backendUp !== undefined) throw new Error(`backend did not start: ${backendUp}\n${backend.output.slice(-10).join('\n')}`);

    const cpus = os.availableParallelism();
    const allCpus = `0-${cpus - 1}`;
    const pinnable = cpus >= 2 && findExecutable('taskset') !== undefined;
    const pinModes = o.pinning.filter((m) => m === 'unpinned' || pinnable);
    if (pinModes.length < o.pinning.length) {
      skipped.pinned = cpus < 2 ? 'pinning needs at least 2 CPUs' : 'pinning needs taskset (util-linux)';
      process.stdout.write(`pinned runs skipped: ${skipped.pinned}\n`);
    }
    /** Pinned: the proxy on CPU 0; the backend and this process (so wrk, its child) on CPU 1. */
    const pin = async (mode: PinMode, proxies: ManagedProcess[]): Promise<void> => {
      for (const p of proxies) await setAffinity(p.pid, mode === 'pinned' ? '0' : allCpus);
      await setAffinity(backend.pid, mode === 'pinned' ? '1' : allCpus);
      // This process alone: its children are the proxies (pinned above) and wrk, started later,
      // which inherits CPU 1. Pinning its tree moved every proxy onto CPU 1 as well.
      await setAffinity(process.pid, mode === 'pinned' ? '1' : allCpus, false);
    };

    for (const name of o.scenarios) {
      const scenario = SCENARIOS.find((s) => s.name === name)!;
      const unavailable = scenario.available();
      if (unavailable !== undefined) {
        skipped[name] = unavailable;
        process.stdout.write(`\n${name}: skipped (${unavailable})\n`);
        continue;
      }
      const ctx: ScenarioContext = { backendPort, dir };
      const logModes = o.accessLog.filter((m) => m === 'off' || o.accessLogScenarios.includes(name));
      for (const logMode of logModes) {
        const accessLog = logMode === 'on';
        process.stdout.write(`\n${name}${accessLog ? ' (access logs on)' : ''}: ${scenario.description}\n`);
        const procs: Partial<Record<ProxyName, ManagedProcess>> = {};
        const targets: Partial<Record<ProxyName, LoadTarget>> = {};
        const negotiated: Partial<Record<ProxyName, NegotiatedTls>> = {};
        const unit = scenario.unit ?? 'req';
        /** What wrk negotiates (same OpenSSL, same SNI) with a proxy that serves HTTPS. */
        const recordTls = async (p: ProxyName, probes: Probe[]): Promise<void> => {
          const tlsProbe = probes.find((x) => x.tls !== undefined);
          if (tlsProbe === undefined) return;
          const n = await negotiatedTls(tlsProbe.port, '127.0.0.1');
          if (n !== undefined) {
            negotiated[p] = n;
            process.stdout.write(`  ${p}: ${n.protocol}, ${n.cipher}, ${n.group}, ${n.signature} (what wrk's OpenSSL negotiates, SNI 127.0.0.1)\n`);
          }
        };
        try {
          for (const engine of o.engines) {
            const p: ProxyName = `portico-${engine}`;
            const porticoPorts: ProxyPorts = { http: await freePort(), https: await freePort() };
            procs[p] = await startPortico(o, scenario, ctx, porticoPorts, dir, engine, accessLog);
            targets[p] = scenario.target(porticoPorts, ctx);
            await recordTls(p, probesFor(scenario, porticoPorts, ctx));
          }
          if (tools.nginx && nginxVer) {
            const ports: ProxyPorts = { http: await freePort(), https: await freePort() };
            procs.nginx = await startNginx(tools.nginx, nginxVer, { name: `proxy-${name}${accessLog ? '-log' : ''}`, dir, workers: o.workers, http: scenario.nginxHttp(ctx, ports), ...(accessLog ? { accessLog: join(dir, `nginx-${name}-access.log`) } : {}) });
            await checkServes('nginx', probesFor(scenario, ports, ctx), procs.nginx);
            targets.nginx = scenario.target(ports, ctx);
            await recordTls('nginx', probesFor(scenario, ports, ctx));
          }
          // The minimal proxy writes no logs at all: it is the floor, with logs off only.
          if (o.baseline && scenario.nodeBaseline && !accessLog) {
            const ports: ProxyPorts = { http: await freePort(), https: await freePort() };
            procs['node-baseline'] = await startProcess('node-baseline', process.execPath, [BASELINE_TS, String(ports.http), String(backendPort), String(o.workers)]);
            await checkServes('node-baseline', probesFor(scenario, ports, ctx), procs['node-baseline']);
            targets['node-baseline'] = scenario.target(ports, ctx);
            // The byte relay: Node's floor, no parsing (bench/lib/node-relay.ts).
            const relayPorts: ProxyPorts = { http: await freePort(), https: await freePort() };
            procs['node-relay'] = await startProcess('node-relay', process.execPath, [RELAY_TS, String(relayPorts.http), String(backendPort), String(o.workers)]);
            await checkServes('node-relay', probesFor(scenario, relayPorts, ctx), procs['node-relay']);
            targets['node-relay'] = scenario.target(relayPorts, ctx);
          }
          const names = PROXIES.filter((p) => procs[p] !== undefined);
          for (const pinMode of pinModes) {
            const key = `${name}${accessLog ? '+access-log' : ''}@${pinMode}`;
            await pin(pinMode, contenders(procs));
            process.stdout.write(`  ${key}\n`);
            const runs: Partial<Record<ProxyName, RunResult[]>> = {};
            for (let round = 0; round < o.rounds; round++) {
              // Rotate who goes first, so drift (thermal, noisy neighbours) does not favour one.
              const order = names.map((_, i) => names[(i + round) % names.length]);
              for (const p of order) {
                const r = await measure(load, o, targets[p]!, procs[p]!, backend, round + 1);
                (runs[p] ??= []).push(r);
                process.stdout.write(`  round ${round + 1} ${p.padEnd(13)} ${f0(r.requestsPerSec).padStart(8)} ${unit}/s  p50 ${f2(r.latencyMs.p50)} ms  p99 ${f2(r.latencyMs.p99)} ms  ${f1(r.cpuUsPerRequest)} CPU µs/${unit} (${f1(r.userUsPerRequest)} user; ${f2(r.cpuCores)} cores, ${r.proxyProcesses} processes; ${load.name} ${f2(r.loadGeneratorCores)} cores)\n`);
                const other = Math.max(r.otherBusyCores, r.otherBusyCoresDuring);
                if (other > NOISY_CORES) {
                  const msg = `${key} round ${r.round} ${p}: other programs kept ${f2(other)} cores busy ${r.otherBusyCoresDuring > NOISY_CORES ? 'during' : 'just before'} the run; numbers are unreliable`;
                  notes.push(msg);
                  process.stdout.write(`  warning: ${msg}\n`);
                }
              }
            }
            const summaries: Partial<Record<ProxyName, ProxySummary>> = {};
            for (const p of names) summaries[p] = summarize(runs[p] ?? []);
            notes.push(...printScenario(key, unit, o.threads, o.workers, summaries));
            const ratio = (a: ProxySummary | undefined, b: ProxySummary | undefined) =>
              a && b ? { requestsPerSec: a.requestsPerSec / b.requestsPerSec, cpuUsPerRequest: a.cpuUsPerRequest / b.cpuUsPerRequest } : null;
            const shape = targets['portico-fast'] ?? targets['portico-node'] ?? targets.nginx;
            scenarioResults[key] = {
              scenario: name,
              description: scenario.description,
              accessLog,
              pinning: pinMode === 'pinned' ? { proxy: 'CPU 0', loadGeneratorAndBackend: 'CPU 1' } : 'none',
              unit,
              target: { scheme: shape ? new URL(shape.url).protocol.slice(0, -1) : null, path: '/', host: BENCH_HOST, headers: shape?.headers ?? null, clientEnv: shape?.env ?? null },
              ...(scenario.setup ? { setup: scenario.setup(ctx) } : {}),
              ...(Object.keys(negotiated).length > 0 ? { negotiatedTls: negotiated } : {}),
              ...summaries,
              ratios: Object.fromEntries(PORTICOS.filter((p) => summaries[p] !== undefined).map((p) => [p, { toNginx: ratio(summaries[p], summaries.nginx), toNodeBaseline: ratio(summaries[p], summaries['node-baseline']), toNodeRelay: ratio(summaries[p], summaries['node-relay']) }])),
            };
          }
        } finally {
          await pin('unpinned', []);
          await Promise.all(contenders(procs).map((p) => p.stop()));
        }
      }
    }
    await backend.stop();
  }

  const result = {
    benchmark: 'http-proxy',
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    config,
    scenarios: scenarioResults,
    skipped,
    notes,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = JSON.stringify(result, null, 2) + '\n';
  writeFileSync(join(RESULTS_DIR, `http-${stamp}.json`), json);
  writeFileSync(join(RESULTS_DIR, 'latest-http.json'), json);
  writeFileSync(join(RESULTS_DIR, 'latest-http.md'), markdownTable(result.scenarios as Record<string, Record<string, unknown>>, machine.porticoCommit, started));
  process.stdout.write(`\nresults: bench/results/http-${stamp}.json (and bench/results/latest-http.json, latest-http.md)\n`);
  return 0;
}

main()
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exit(1);
  });
