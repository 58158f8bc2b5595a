// Runs `portico serve` as a real process tree (primary + workers) on a temporary manifest
// directory, for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/portico.js', import.meta.url));

// Ports handed out by this test process. The kernel may give the same ephemeral port to two
// listen(0) calls in a row once the first is closed, and two listeners of one Portico on one port
// is a usage error (exit 2): never hand out a port twice.
const handedOut = new Set<number>();

function probePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probePort(host);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no fresh free port after 50 tries');
}

/** The first error line (a usage error's reason comes before the usage text) and the last lines. */
function exitReport(logs: readonly string[]): string {
  const first = logs.find((l) => /^portico serve: |"level":(50|60)|error/i.test(l));
  const tail = logs.slice(-20);
  return (first !== undefined && !tail.includes(first) ? [first, '...', ...tail] : tail).join('\n');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface Portico {
  readonly dir: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  readonly proc: ChildProcess;
  readonly logs: string[];
  readonly url: string;
  write(file: string, content: string): void;
  remove(file: string): void;
  admin(path: string): Promise<Response>;
  json<T = any>(path: string): Promise<T>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  workerPids(): Promise<number[]>;
  waitReady(): Promise<void>;
  waitVersion(min: number): Promise<number>;
  stop(): Promise<void>;
}

export interface StartOptions {
  files?: Record<string, string>;
  workers?: number;
  args?: string[];
  logLevel?: string;
  ready?: boolean;
  env?: Record<string, string>;
}

/** What every launched `portico serve` offers, whatever its source. */
export interface LaunchedPortico {
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  readonly proc: ChildProcess;
  readonly logs: string[];
  admin(path: string): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  waitReady(): Promise<void>;
  /** Signals the process (SIGTERM by default) and waits for it to exit, SIGKILL after 8 s. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `portico serve` with the given source flags (`--manifests DIR` or `--kubernetes ...`) on
 * free loopback ports, collecting its log lines.
 */
export async function launchPortico(sourceArgs: readonly string[], opts: { workers?: number; logLevel?: string; args?: readonly string[]; env?: Record<string, string> } = {}): Promise<LaunchedPortico> {
  const httpPort = await freePort();
  const adminPort = await freePort();
  const httpsPort = await freePort();
  const args = [BIN, 'serve', ...sourceArgs, '--http-port', String(httpPort), '--https-port', String(httpsPort), '--admin-port', String(adminPort), '--bind-address', '127.0.0.1', '--admin-address', '127.0.0.1', '--workers', String(opts.workers ?? 2), '--log-level', opts.logLevel ?? 'info',
    // Tests stop Portico often: no load-balancer delay unless a test asks for one (a later flag wins).
    '--shutdown-delay', '0', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
  const logs: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) logs.push(line);
    if (logs.length > 20000) logs.splice(0, logs.length - 20000);
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const base = `http://127.0.0.1:${adminPort}`;
  return {
    httpPort,
    httpsPort,
    adminPort,
    proc,
    logs,
    admin: (path) => fetch(base + path),
    metric: async (name, labels = {}) => {
      const text = await (await fetch(base + '/metrics')).text();
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
      }
      return undefined;
    },
    waitReady: async () => {
      await waitFor('portico /readyz', async () => {
        if (proc.exitCode !== null) throw new Error(`portico exited with ${proc.exitCode}:\n${exitReport(logs)}`);
        return (await fetch(base + '/readyz')).status === 200;
      }, 20_000);
    },
    kill: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(8000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
    },
  };
}

export async function startPortico(opts: StartOptions = {}): Promise<Portico> {
  const dir = mkdtempSync(join(tmpdir(), 'portico-test-'));
  const write = (file: string, content: string) => {
    // Write-then-rename, as editors and ConfigMap mounts do, so no half-written file is read.
    const tmp = join(dir, `.${file}.tmp`);
    writeFileSync(tmp, content);
    renameSync(tmp, join(dir, file));
  };
  for (const [f, c] of Object.entries(opts.files ?? {})) write(f, c);
  const l = await launchPortico(['--manifests', dir], opts);
  const p: Portico = {
    dir,
    httpPort: l.httpPort,
    httpsPort: l.httpsPort,
    adminPort: l.adminPort,
    proc: l.proc,
    logs: l.logs,
    url: `http://127.0.0.1:${l.httpPort}`,
    write,
    remove: (file) => unlinkSync(join(dir, file)),
    admin: l.admin,
    json: async (path) => (await (await l.admin(path)).json()) as any,
    metric: l.metric,
    workerPids: async () => {
      const { execFileSync } = await import('node:child_process');
      const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(l.proc.pid)]).toString();
      return out.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
    },
    waitReady: l.waitReady,
    waitVersion: async (min) => waitFor(`table version >= ${min}`, async () => {
      const v = ((await (await l.admin('/debug/routes')).json()) as { version: number }).version;
      return v >= min ? v : undefined;
    }, 10_000, 10),
    stop: async () => {
      await l.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.ready !== false) await p.waitReady();
  return p;
}
