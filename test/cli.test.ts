import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/portico.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('portico command line', () => {
  it('serve --help lists the contract flags', () => {
    const r = run('serve', '--help');
    expect(r.status).toBe(0);
    for (const flag of ['--manifests', '--http-port', '--https-port', '--admin-port', '--workers', '--ingress-class', '--log-level']) expect(r.stdout).toContain(flag);
  });

  it('--help names the serve command', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/serve/);
  });

  it('rejects missing or bad flags with a usage error', () => {
    expect(run('serve').stderr).toMatch(/--manifests DIR is required/);
    expect(run('serve').status).toBe(2);
    expect(run('serve', '--manifests', '.', '--http-port', 'eighty').stderr).toMatch(/--http-port/);
    expect(run('serve', '--manifests', '.', '--log-level', 'loud').status).toBe(2);
    expect(run('serve', '--manifests', '.', '--no-such-flag', 'x').status).toBe(2);
    expect(run('launch').status).toBe(2);
  });
});
