// Launches `portico serve --kubernetes` against a fake API server, for the e2e-kube tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, sleep, waitFor } from './helpers/portico.ts';

const BIN = fileURLToPath(new URL('../bin/portico.js', import.meta.url));

export interface KubePortico {
  readonly proc: ChildProcess;
  readonly logs: string[];
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  waitReady(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startKubePortico(kubeconfig: string, args: string[] = [], env: Record<string, string> = {}): Promise<KubePortico> {
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const adminPort = await freePort();
  const proc = spawn(process.execPath, [BIN, 'serve', '--kubernetes', '--kubeconfig', kubeconfig, '--http-port', String(httpPort), '--https-port', String(httpsPort), '--admin-port', String(adminPort), '--bind-address', '127.0.0.1', '--admin-address', '127.0.0.1', '--workers', '1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORTICO_KUBE_TEST_TIMINGS: '20,200,300,100', ...env },
  });
  const logs: string[] = [];
  const collect = (c: Buffer): void => {
    for (const l of c.toString().split('\n')) if (l) logs.push(l);
    if (logs.length > 20000) logs.splice(0, logs.length - 20000);
  };
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  const base = `http://127.0.0.1:${adminPort}`;
  return {
    proc,
    logs,
    httpPort,
    httpsPort,
    adminPort,
    metric: async (name, labels = {}) => {
      const text = await (await fetch(base + '/metrics')).text();
      for (const line of text.split('\n')) {
        const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
      }
      return undefined;
    },
    waitReady: async () => {
      await waitFor('portico /readyz', async () => {
        if (proc.exitCode !== null) throw new Error(`portico exited ${proc.exitCode}:\n${logs.slice(-20).join('\n')}`);
        return (await fetch(base + '/readyz')).status === 200;
      }, 20_000);
    },
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(8000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
    },
  };
}
