// Load generators: wrk (preferred: C, multi-threaded, cheap per request) or autocannon (Node,
// when wrk is missing). Both are run as child processes and their output parsed into one shape.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { findExecutable, runCommand } from './processes.ts';

export interface LoadOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly threads: number;
  readonly durationSec: number;
  /** Extra environment for wrk (e.g. LD_PRELOAD of the no-resumption shim); autocannon ignores it. */
  readonly env?: Readonly<Record<string, string>>;
  /** Called with the load generator's pid once it runs (to sample its CPU time). */
  readonly onSpawn?: (pid: number) => void;
}

export interface LoadResult {
  readonly tool: string;
  readonly requests: number;
  readonly durationSec: number;
  readonly requestsPerSec: number;
  readonly latencyMs: { readonly avg: number; readonly p50: number; readonly p75?: number; readonly p90?: number; readonly p99: number; readonly max: number };
  /** Responses that were not 2xx/3xx. */
  readonly non2xx: number;
  /** Connect/read/write errors and timeouts. */
  readonly errors: number;
  readonly raw: string;
}

export interface LoadGenerator {
  readonly name: string;
  readonly version: string;
  run(o: LoadOptions): Promise<LoadResult>;
}

// ---- wrk ---------------------------------------------------------------------------------------

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseTimeMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * UNIT_MS[m[2]];
}

/** Parses `wrk --latency` output (no Lua script). */
export function parseWrk(out: string): Omit<LoadResult, 'tool' | 'raw'> {
  const lat = /Latency\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out);
    return m ? parseTimeMs(m[1]) : NaN;
  };
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests: total ? Number(total[1]) : NaN,
    durationSec: total ? (Number(total[2]) * UNIT_MS[total[3]]) / 1000 : NaN,
    requestsPerSec: rps ? Number(rps[1]) : NaN,
    latencyMs: { avg: lat ? parseTimeMs(lat[1]) : NaN, p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99'), max: lat ? parseTimeMs(lat[3]) : NaN },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0,
  };
}

async function wrkGenerator(bin: string): Promise<LoadGenerator> {
  const v = await runCommand(bin, ['-v'], 5000);
  const version = ((v.stdout + v.stderr).split('\n')[0] ?? '').replace(/\s*Copyright.*$/, '').trim() || 'unknown';
  return {
    name: 'wrk',
    version,
    run: async (o) => {
      const args = ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.durationSec}s`, '--timeout', '5s', '--latency'];
      for (const [k, val] of Object.entries(o.headers)) args.push('-H', `${k}: ${val}`);
      args.push(o.url);
      const env = o.env === undefined ? undefined : { ...process.env, ...o.env };
      const r = await runCommand(bin, args, (o.durationSec + 30) * 1000, env, o.onSpawn);
      if (r.code !== 0) throw new Error(`wrk failed (${r.error ?? `exit ${r.code}`}): ${r.stderr || r.stdout}`);
      return { tool: 'wrk', raw: r.stdout, ...parseWrk(r.stdout) };
    },
  };
}

// ---- autocannon --------------------------------------------------------------------------------

function autocannonBin(): { bin: string; version: string } | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve('autocannon/package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string; bin?: Record<string, string> | string };
    const rel = typeof pkg.bin === 'string' ? pkg.bin : (pkg.bin?.autocannon ?? 'autocannon.js');
    return { bin: join(dirname(pkgPath), rel), version: `autocannon ${pkg.version}` };
  } catch {
    return undefined;
  }
}

interface AutocannonJson {
  requests: { total: number; average: number };
  latency: { average: number; p50: number; p75?: number; p90?: number; p99: number; max: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

function autocannonGenerator(found: { bin: string; version: string }): LoadGenerator {
  return {
    name: 'autocannon',
    version: found.version,
    run: async (o) => {
      // autocannon is single-threaded JavaScript: `threads` > 1 maps to its worker threads. `env`
      // is not passed on: Node's TLS client never offers an old session unless told to.
      const args = [found.bin, '-c', String(o.connections), '-d', String(o.durationSec), '-t', '5', '-j'];
      if (o.threads > 1) args.push('-w', String(o.threads));
      for (const [k, val] of Object.entries(o.headers)) args.push('-H', `${k}=${val}`);
      args.push(o.url);
      const r = await runCommand(process.execPath, args, (o.durationSec + 30) * 1000, undefined, o.onSpawn);
      const line = r.stdout.split('\n').reverse().find((l) => l.trim().startsWith('{'));
      if (r.code !== 0 || line === undefined) throw new Error(`autocannon failed (${r.error ?? `exit ${r.code}`}): ${r.stderr || r.stdout}`);
      const j = JSON.parse(line) as AutocannonJson;
      const durationSec = j.duration;
      return {
        tool: 'autocannon',
        raw: line,
        requests: j.requests.total,
        durationSec,
        requestsPerSec: j.requests.total / durationSec,
        latencyMs: { avg: j.latency.average, p50: j.latency.p50, p75: j.latency.p75, p90: j.latency.p90, p99: j.latency.p99, max: j.latency.max },
        non2xx: j.non2xx,
        errors: j.errors + j.timeouts,
      };
    },
  };
}

/** wrk if installed, else autocannon if resolvable from the project, else undefined. */
export async function findLoadGenerator(prefer: 'auto' | 'wrk' | 'autocannon'): Promise<LoadGenerator | undefined> {
  const wrk = prefer === 'autocannon' ? undefined : findExecutable('wrk');
  if (wrk !== undefined) return wrkGenerator(wrk);
  if (prefer === 'wrk') return undefined;
  const ac = autocannonBin();
  return ac === undefined ? undefined : autocannonGenerator(ac);
}
