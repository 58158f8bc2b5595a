// Child processes for the benchmarks: started in their own process group so that stopping one
// stops everything it forked (Portico's workers, nginx's workers), tracked so that an error or
// Ctrl-C still cleans them up, and measured through /proc (CPU ticks, RSS) as a process tree.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { delimiter, join } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** The last lines of stdout and stderr, for error messages. */
  readonly output: string[];
  exitCode(): number | null | 'running';
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ManagedProcess>();
/** Process groups of short-lived commands (runCommand) still running. */
const transient = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Starts `cmd` as the leader of a new process group, capturing its output. */
export async function startProcess(name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv, stdoutFile?: string): Promise<ManagedProcess> {
  // A proxy's access log goes to a file when asked (as nginx's does), not through a pipe to us.
  const out = stdoutFile === undefined ? 'pipe' : openSync(stdoutFile, 'a');
  const proc = spawn(cmd, [...args], { detached: true, stdio: ['ignore', out, 'pipe'], env: env ?? process.env });
  if (typeof out === 'number') closeSync(out);
  const output: string[] = [];
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') output.push(line);
    if (output.length > 400) output.splice(0, output.length - 200);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  let exited: number | null | 'running' = 'running';
  const exitedPromise = new Promise<void>((resolve) => {
    proc.once('exit', (code, signal) => {
      exited = code ?? (signal ? null : 0);
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    proc.once('spawn', () => resolve());
    proc.once('error', (err) => reject(new Error(`${name}: cannot start ${cmd}: ${err.message}`)));
  });
  const pid = proc.pid!;
  const managed: ManagedProcess = {
    name,
    pid,
    proc,
    output,
    exitCode: () => exited,
    stop: async (graceMs = 5000) => {
      if (exited === 'running') {
        killGroup(pid, 'SIGTERM');
        await Promise.race([exitedPromise, sleep(graceMs)]);
      }
      // Whatever is left of the group (the leader, or children that outlived it) is killed.
      killGroup(pid, 'SIGKILL');
      await Promise.race([exitedPromise, sleep(2000)]);
      live.delete(managed);
    },
  };
  live.add(managed);
  return managed;
}

/** Stops every process still running. Safe to call more than once. */
export async function stopAll(): Promise<void> {
  for (const pid of transient) killGroup(pid, 'SIGKILL');
  await Promise.all([...live].map((p) => p.stop()));
}

let handlersInstalled = false;

/**
 * Cleans up on Ctrl-C, SIGTERM and exit (including an uncaught error): SIGTERM first with a short
 * grace period when possible, SIGKILL to every group on the way out in any case.
 */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping benchmark processes\n`);
    void Promise.race([stopAll(), sleep(8000)]).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => {
    for (const p of live) killGroup(p.pid, 'SIGKILL');
    for (const pid of transient) killGroup(pid, 'SIGKILL');
  });
}

/** Runs a command to completion (bounded by timeoutMs), capturing output. Never throws. */
export function runCommand(cmd: string, args: readonly string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv, onSpawn?: (pid: number) => void): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const proc = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, detached: true });
    const finish = (r: { code: number | null; error?: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (proc.pid !== undefined) transient.delete(proc.pid);
      resolve({ ...r, stdout, stderr });
    };
    if (proc.pid !== undefined) {
      transient.add(proc.pid);
      onSpawn?.(proc.pid);
    }
    const timer = setTimeout(() => {
      if (proc.pid !== undefined) killGroup(proc.pid, 'SIGKILL');
      finish({ code: null, error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.once('error', (err) => finish({ code: null, error: err.message }));
    proc.once('close', (code) => finish({ code }));
  });
}

/** Finds an executable on PATH or in the sbin directories (nginx lives in /usr/sbin). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const full = join(dir, name);
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

export { freePort } from '../../test/helpers/portico.ts';

/** One GET on a fresh connection. */
export function httpGet(port: number, path: string, host: string | undefined, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: host ? { host } : {}, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` until it returns true, at most `timeoutMs`. Returns the last error on failure. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100, abort?: () => string | undefined): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not ready';
  while (Date.now() < deadline) {
    const why = abort?.();
    if (why !== undefined) return why;
    try {
      if (await check()) return undefined;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(everyMs);
  }
  return `timed out after ${timeoutMs} ms (${last})`;
}

// ---- /proc accounting ------------------------------------------------------------------------

let clockTicksPerSecond: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on Linux in practice). */
export function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

interface ProcStat {
  readonly ppid: number;
  /** utime + stime of every thread of the process, in clock ticks. */
  readonly cpuTicks: number;
  /** utime alone: the rest is the kernel's work for the process (system calls, its network stack). */
  readonly userTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]), userTicks: Number(rest[11]) };
}

/** utime + stime of one process (all its threads), in seconds; undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const st = readStat(pid);
  return st === undefined ? undefined : st.cpuTicks / clockTicks();
}

/** The pid and all its descendants (found through the ppid field of every /proc/<pid>/stat). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [rootPid];
  }
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (st === undefined) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out;
}

export interface CpuSample {
  readonly ticks: ReadonlyMap<number, number>;
  readonly userTicks: ReadonlyMap<number, number>;
  readonly at: number;
}

/** CPU ticks of every process in the tree rooted at each pid. */
export function sampleCpu(rootPids: readonly number[]): CpuSample {
  const ticks = new Map<number, number>();
  const userTicks = new Map<number, number>();
  for (const root of rootPids) {
    for (const pid of processTree(root)) {
      const st = readStat(pid);
      if (st === undefined) continue;
      ticks.set(pid, st.cpuTicks);
      userTicks.set(pid, st.userTicks);
    }
  }
  return { ticks, userTicks, at: performance.now() };
}

/**
 * CPU seconds the trees used between two samples. Processes that appeared in between count from
 * zero; processes that exited in between are lost (none should: the proxies are steady).
 */
export function cpuSecondsBetween(before: CpuSample, after: CpuSample): { cpuSeconds: number; userSeconds: number; processes: number; vanished: number } {
  let ticks = 0;
  let user = 0;
  for (const [pid, t] of after.ticks) ticks += t - (before.ticks.get(pid) ?? 0);
  for (const [pid, t] of after.userTicks) user += t - (before.userTicks.get(pid) ?? 0);
  let vanished = 0;
  for (const pid of before.ticks.keys()) if (!after.ticks.has(pid)) vanished++;
  return { cpuSeconds: ticks / clockTicks(), userSeconds: user / clockTicks(), processes: after.ticks.size, vanished };
}

/** Resident memory of a process tree, in bytes (VmRSS of each process; shared pages count twice). */
export function treeRssBytes(rootPid: number): number {
  let total = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

export interface SystemCpuSample {
  readonly busyTicks: number;
  readonly at: number;
}

/** Busy ticks of the whole machine (all CPUs), from the first line of /proc/stat. */
export function sampleSystemCpu(): SystemCpuSample {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: busy is everything but idle and iowait.
    const total = f.slice(0, 8).reduce((s, x) => s + x, 0);
    return { busyTicks: total - f[3] - (f[4] ?? 0), at: performance.now() };
  } catch {
    return { busyTicks: NaN, at: performance.now() };
  }
}

/** Average cores busy machine-wide between two samples. */
export function busyCoresBetween(a: SystemCpuSample, b: SystemCpuSample): number {
  return (b.busyTicks - a.busyTicks) / clockTicks() / ((b.at - a.at) / 1000);
}

// ---- CPU affinity --------------------------------------------------------------------------

/**
 * Pins a process tree (every thread of every process) to `cpus` (taskset's list syntax, e.g.
 * "0" or "0-1"), or with `tree: false` the process alone (its threads, not its children).
 * Processes forked later inherit the affinity of their parent. Returns false when taskset is
 * missing or refuses.
 */
export async function setAffinity(rootPid: number, cpus: string, tree = true): Promise<boolean> {
  const taskset = findExecutable('taskset');
  if (taskset === undefined) return false;
  let ok = true;
  for (const pid of tree ? processTree(rootPid) : [rootPid]) {
    const r = await runCommand(taskset, ['-a', '-p', '-c', cpus, String(pid)], 5000);
    if (r.code !== 0) ok = false;
  }
  return ok;
}
