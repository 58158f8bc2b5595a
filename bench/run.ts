// `npm run bench`: the same small GET to the same backend, through Portico and through nginx,
// with the same number of workers; reports req/s, latency and CPU time per request of each proxy.
//
//   npm run bench -- [--workers 1] [--duration 10] [--warmup 3] [--connections 50] [--threads 1]
//                    [--rounds 3] [--backend-workers 1] [--tool auto|wrk|autocannon]
//                    [--scenarios http-keepalive] [--no-install] [--keep-temp]
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
  freePort,
  httpGet,
  installCleanupHandlers,
  runCommand,
  sampleCpu,
  sampleSystemCpu,
  sleep,
  startProcess,
  stopAll,
  treeRssBytes,
  waitUntil,
  type ManagedProcess,
} from './lib/processes.ts';
import { BENCH_HOST, SCENARIOS, type ProxyPorts, type Scenario, type ScenarioContext } from './lib/scenarios.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PORTICO_BIN = join(ROOT, 'bin', 'portico.js');
const BACKEND_TS = fileURLToPath(new URL('./lib/backend.ts', import.meta.url));
/** Machine-wide busy cores, with our load stopped, above which a run is flagged as disturbed. */
const NOISY_CORES = 0.15;
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
}

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
  return {
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
  };
}

// ---- measurement -------------------------------------------------------------------------------

type ProxyName = 'portico' | 'nginx';

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
  /** Average cores the proxy used: CPU seconds / wall seconds. */
  readonly cpuCores: number;
  readonly proxyProcesses: number;
  readonly backendCpuUsPerRequest: number;
  readonly rssBytes: number;
  /** Cores busy machine-wide in a 0.5 s pause before the run (other programs): should be ~0. */
  readonly otherBusyCores: number;
}

interface ProxySummary {
  readonly requestsPerSec: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly cpuUsPerRequest: number;
  readonly cpuCores: number;
  readonly backendCpuUsPerRequest: number;
  readonly rssMB: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly runs: RunResult[];
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function summarize(runs: RunResult[]): ProxySummary {
  return {
    requestsPerSec: median(runs.map((r) => r.requestsPerSec)),
    latencyP50Ms: median(runs.map((r) => r.latencyMs.p50)),
    latencyP99Ms: median(runs.map((r) => r.latencyMs.p99)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
    cpuCores: median(runs.map((r) => r.cpuCores)),
    backendCpuUsPerRequest: median(runs.map((r) => r.backendCpuUsPerRequest)),
    rssMB: Math.max(...runs.map((r) => r.rssBytes)) / (1024 * 1024),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    runs,
  };
}

async function measure(load: LoadGenerator, o: Options, target: { url: string; headers: Record<string, string> }, proxy: ManagedProcess, backend: ManagedProcess, round: number): Promise<RunResult> {
  if (o.warmupSec > 0) await load.run({ ...target, connections: o.connections, threads: o.threads, durationSec: o.warmupSec });
  // With no load of ours running, whatever keeps the machine busy is someone else's.
  const quiet0 = sampleSystemCpu();
  await sleep(500);
  const otherBusyCores = busyCoresBetween(quiet0, sampleSystemCpu());
  const before = sampleCpu([proxy.pid]);
  const backendBefore = sampleCpu([backend.pid]);
  const r = await load.run({ ...target, connections: o.connections, threads: o.threads, durationSec: o.durationSec });
  const after = sampleCpu([proxy.pid]);
  const backendAfter = sampleCpu([backend.pid]);
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
    cpuCores: cpu.cpuSeconds / wallSec,
    proxyProcesses: cpu.processes,
    backendCpuUsPerRequest: r.requests > 0 ? (backendCpu.cpuSeconds * 1e6) / r.requests : NaN,
    rssBytes,
    otherBusyCores,
  };
}

// ---- proxies -----------------------------------------------------------------------------------

async function checkServes(name: string, port: number, proc: ManagedProcess): Promise<void> {
  let last = '';
  const why = await waitUntil(
    async () => {
      const r = await httpGet(port, '/', BENCH_HOST);
      last = `${r.status} ${JSON.stringify(r.body.slice(0, 80))}`;
      return r.status === 200 && r.body === 'ok';
    },
    15_000,
    100,
    () => (proc.exitCode() !== 'running' ? `exited with ${proc.exitCode()}` : undefined),
  );
  if (why !== undefined) throw new Error(`${name} does not proxy GET / to the backend (${why}; last answer: ${last})\n${proc.output.slice(-15).join('\n')}`);
}

async function startPortico(o: Options, scenario: Scenario, ctx: ScenarioContext, ports: ProxyPorts, dir: string): Promise<ManagedProcess> {
  const manifests = join(dir, `portico-${scenario.name}`);
  mkdirSync(manifests, { recursive: true });
  writeFileSync(join(manifests, 'bench.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: scenario.porticoManifests(ctx) }, null, 2));
  const adminPort = await freePort();
  const args = [
    PORTICO_BIN, 'serve', '--manifests', manifests,
    '--http-port', String(ports.http), '--https-port', String(ports.https), '--admin-port', String(adminPort),
    '--workers', String(o.workers), '--bind-address', '127.0.0.1', '--admin-address', '127.0.0.1', '--log-level', 'warn',
    ...scenario.porticoArgs(ctx, ports),
  ];
  const proc = await startProcess('portico', process.execPath, args);
  const why = await waitUntil(
    async () => (await httpGet(adminPort, '/readyz', undefined, 2000)).status === 200,
    30_000,
    100,
    () => (proc.exitCode() !== 'running' ? `exited with ${proc.exitCode()}` : undefined),
  );
  if (why !== undefined) throw new Error(`portico did not become ready: ${why}\n${proc.output.slice(-15).join('\n')}`);
  await checkServes('portico', ports.http, proc);
  return proc;
}

// ---- output ------------------------------------------------------------------------------------

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');

function printScenario(name: string, results: Partial<Record<ProxyName, ProxySummary>>, ratios: { rps?: number; cpu?: number }): void {
  const rows: string[][] = [['', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'CPU cores', 'backend µs/req', 'RSS MB', 'non-2xx', 'errors']];
  for (const p of ['portico', 'nginx'] as const) {
    const s = results[p];
    if (s === undefined) continue;
    rows.push([p, f0(s.requestsPerSec), f2(s.latencyP50Ms), f2(s.latencyP99Ms), f1(s.cpuUsPerRequest), f2(s.cpuCores), f1(s.backendCpuUsPerRequest), f0(s.rssMB), String(s.non2xx), String(s.errors)]);
  }
  if (ratios.rps !== undefined) rows.push(['portico/nginx', `${f2(ratios.rps)}x`, '', '', `${f2(ratios.cpu ?? NaN)}x`, '', '', '', '', '']);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(`\n${name} (medians)\n`);
  for (const r of rows) process.stdout.write(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n');
  for (const p of ['portico', 'nginx'] as const) {
    const s = results[p];
    if (s !== undefined && (s.non2xx > 0 || s.errors > 0)) process.stdout.write(`warning: ${p} had ${s.non2xx} non-2xx responses and ${s.errors} socket errors: its numbers are suspect\n`);
  }
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
  process.stdout.write(`Portico vs nginx: ${o.workers} worker(s) each, ${load?.name ?? 'no load generator'} -t${o.threads} -c${o.connections}, ${o.warmupSec}s warm-up + ${o.durationSec}s measured, ${o.rounds} round(s)\n`);
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

    for (const name of o.scenarios) {
      const scenario = SCENARIOS.find((s) => s.name === name)!;
      const unavailable = scenario.available();
      if (unavailable !== undefined) {
        skipped[name] = unavailable;
        process.stdout.write(`\n${name}: skipped (${unavailable})\n`);
        continue;
      }
      const ctx: ScenarioContext = { backendPort, dir };
      const porticoPorts: ProxyPorts = { http: await freePort(), https: await freePort() };
      const nginxPorts: ProxyPorts = { http: await freePort(), https: await freePort() };
      process.stdout.write(`\n${name}: ${scenario.description}\n`);
      const procs: Partial<Record<ProxyName, ManagedProcess>> = {};
      const targets: Partial<Record<ProxyName, { url: string; headers: Record<string, string> }>> = {};
      try {
        procs.portico = await startPortico(o, scenario, ctx, porticoPorts, dir);
        targets.portico = scenario.target(porticoPorts);
        if (tools.nginx && nginxVer) {
          procs.nginx = await startNginx(tools.nginx, nginxVer, { name: `proxy-${name}`, dir, workers: o.workers, http: scenario.nginxHttp(ctx, nginxPorts) });
          await checkServes('nginx', nginxPorts.http, procs.nginx);
          targets.nginx = scenario.target(nginxPorts);
        }
        const runs: Record<ProxyName, RunResult[]> = { portico: [], nginx: [] };
        for (let round = 0; round < o.rounds; round++) {
          // Alternate who goes first, so drift (thermal, noisy neighbours) does not favour one.
          const order: ProxyName[] = round % 2 === 0 ? ['portico', 'nginx'] : ['nginx', 'portico'];
          for (const p of order) {
            const proc = procs[p];
            const target = targets[p];
            if (proc === undefined || target === undefined) continue;
            const r = await measure(load, o, target, proc, backend, round + 1);
            runs[p].push(r);
            process.stdout.write(`  round ${round + 1} ${p.padEnd(7)} ${f0(r.requestsPerSec).padStart(8)} req/s  p50 ${f2(r.latencyMs.p50)} ms  p99 ${f2(r.latencyMs.p99)} ms  ${f1(r.cpuUsPerRequest)} CPU µs/req (${f2(r.cpuCores)} cores, ${r.proxyProcesses} processes)\n`);
            if (r.otherBusyCores > NOISY_CORES) {
              const msg = `round ${r.round} ${p}: other programs kept ${f2(r.otherBusyCores)} cores busy just before the run; numbers are unreliable`;
              notes.push(msg);
              process.stdout.write(`  warning: ${msg}\n`);
            }
          }
        }
        const summaries: Partial<Record<ProxyName, ProxySummary>> = {};
        if (runs.portico.length > 0) summaries.portico = summarize(runs.portico);
        if (runs.nginx.length > 0) summaries.nginx = summarize(runs.nginx);
        const ratios = summaries.portico && summaries.nginx
          ? { rps: summaries.portico.requestsPerSec / summaries.nginx.requestsPerSec, cpu: summaries.portico.cpuUsPerRequest / summaries.nginx.cpuUsPerRequest }
          : {};
        printScenario(name, summaries, ratios);
        scenarioResults[name] = {
          description: scenario.description,
          target: { path: '/', host: BENCH_HOST },
          ...summaries,
          ratioPorticoToNginx: { requestsPerSec: ratios.rps ?? null, cpuUsPerRequest: ratios.cpu ?? null },
        };
      } finally {
        await Promise.all([procs.portico?.stop(), procs.nginx?.stop()]);
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
  process.stdout.write(`\nresults: bench/results/http-${stamp}.json (and bench/results/latest-http.json)\n`);
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
