import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SERVE_FLAGS, UsageError, applyConfigFile, parseServeOptions } from '../src/options.ts';

const BIN = fileURLToPath(new URL('../bin/portico.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('portico command line', () => {
  it('serve --help lists the contract flags', () => {
    const r = run('serve', '--help');
    expect(r.status).toBe(0);
    for (const flag of ['--manifests', '--http-port', '--https-port', '--admin-port', '--workers', '--ingress-class', '--log-level']) expect(r.stdout).toContain(flag);
  });

  it('serve --help: every description is at least two spaces from its flag, or on the next line', () => {
    const r = run('serve', '--help');
    const lines = r.stdout.split('\n');
    for (const f of [...SERVE_FLAGS, { name: 'help', value: '', help: 'show this help' }]) {
      const flag = `  --${f.name}${f.value ? ' ' + f.value : ''}`;
      const i = lines.findIndex((l) => l === flag || l.startsWith(flag + ' '));
      expect(i, flag).toBeGreaterThanOrEqual(0);
      const line = lines[i];
      if (line === flag) {
        // Wrapped: the description starts the next line, in the description column.
        expect(lines[i + 1], flag).toBe(' '.repeat(34) + f.help);
      } else {
        expect(line.slice(flag.length), flag).toMatch(/^ {2,}\S/);
        expect(line.trimEnd().endsWith(f.help), flag).toBe(true);
        expect(line.indexOf(f.help), flag).toBe(34);
      }
    }
    // The long ones the audit found glued to their description.
    expect(r.stdout).toContain('  --forwarded-for-header X-Forwarded-For\n');
    expect(r.stdout).toContain('  --compute-full-forwarded-for false\n');
    expect(r.stdout).toContain('  --default-ssl-certificate NS/NAME\n');
    expect(r.stdout).not.toMatch(/X-Forwarded-Forheader|falsesend|NS\/NAMETLS/);
  });

  it('serve --help says that --use-forwarded-headers makes the X-Forwarded-For chain trusted', () => {
    const help = run('serve', '--help').stdout;
    const line = help.split('\n').find((l) => l.startsWith('  --use-forwarded-headers'));
    expect(line).toMatch(/trust the X-Forwarded-For chain/);
    expect(line).toMatch(/proxy-real-ip-cidr/);
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

  it('refuses settings that could only fail later: shared ports, a bad address, bad names', () => {
    const same = run('serve', '--manifests', '.', '--http-port', '18181', '--https-port', '18181');
    expect(same.status).toBe(2);
    expect(same.stderr).toMatch(/--http-port and --https-port are both 18181/);
    expect(run('serve', '--manifests', '.', '--http-port', '8080', '--admin-port', '8080').status).toBe(2);
    expect(run('serve', '--manifests', '.', '--http-port', '80.5').stderr).toMatch(/whole number/);
    expect(run('serve', '--manifests', '.', '--bind-address', 'notanip').stderr).toMatch(/--bind-address/);
    expect(run('serve', '--manifests', '.', '--workers', '1.5').status).toBe(2);
    expect(run('serve', '--manifests', '.', '--ingress-class', 'Bad Class!').stderr).toMatch(/--ingress-class/);
  });

  it.each([false, true])('exits non-zero, instead of respawning workers forever, when a traffic port cannot be bound (held with reusePort: %s, which a reusePort bind would silently share)', async (reusePort) => {
    const net = await import('node:net');
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen({ port: 0, host: '127.0.0.1', reusePort }, r));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    try {
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, [BIN, 'serve', '--manifests', dir, '--bind-address', '127.0.0.1', '--http-port', String(port), '--https-port', '0', '--admin-port', '0', '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 15_000);
        child.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect(code).toBe(1);
      expect(out).toMatch(/cannot listen/);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});

describe('serve options', () => {
  it('repeated list flags accumulate; other flags keep the last value', () => {
    const o = parseServeOptions([
      '--manifests', '.',
      '--proxy-real-ip-cidr', '10.0.0.0/8',
      '--proxy-real-ip-cidr', '192.168.0.0/16,fd00::/8',
      '--proxy-protocol-trusted-cidrs', '10.0.1.0/24',
      '--proxy-protocol-trusted-cidrs', '10.0.2.0/24',
      '--whitelist-source-range', '127.0.0.2',
      '--whitelist-source-range', '127.0.0.3',
      '--publish-status-address', 'a.example',
      '--publish-status-address', 'b.example',
      '--http-port', '81',
      '--http-port', '82',
    ]);
    expect(o.realIp['proxy-real-ip-cidr']).toBe('10.0.0.0/8,192.168.0.0/16,fd00::/8');
    expect(o.realIp['proxy-protocol-trusted-cidrs']).toBe('10.0.1.0/24,10.0.2.0/24');
    expect(o.realIp['whitelist-source-range']).toBe('127.0.0.2,127.0.0.3');
    expect(o.publishStatusAddresses).toEqual(['a.example', 'b.example']);
    expect(o.httpPort).toBe(82);
    // A single flag is unchanged.
    expect(parseServeOptions(['--manifests', '.', '--proxy-real-ip-cidr', '10.0.0.0/8']).realIp['proxy-real-ip-cidr']).toBe('10.0.0.0/8');
  });

  it('repeated list flags reach the parsed settings whole, and win over the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    try {
      const file = join(dir, 'portico.yaml');
      writeFileSync(file, 'use-forwarded-headers: "true"\nproxy-real-ip-cidr: "172.16.0.0/12"\n');
      const { options } = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file, '--proxy-real-ip-cidr', '10.0.0.0/8', '--proxy-real-ip-cidr', '::1']));
      expect(options.realIp['proxy-real-ip-cidr']).toBe('10.0.0.0/8,::1/128');
      await expect(applyConfigFile(parseServeOptions(['--manifests', '.', '--proxy-real-ip-cidr', '10.0.0.0/8', '--proxy-real-ip-cidr', 'nope']))).rejects.toThrow(UsageError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ingress-nginx's ssl-redirect, proxy-read-timeout and proxy-connect-timeout keys are applied; a flag wins", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    try {
      const file = join(dir, 'portico.yaml');
      writeFileSync(file, 'kind: ConfigMap\ndata:\n  ssl-redirect: "false"\n  proxy-read-timeout: "30"\n  proxy-connect-timeout: "3"\n');
      const { options, warnings } = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]));
      expect(options.sslRedirect).toBe(false);
      expect(options.upstreamTimeoutMs).toBe(30_000);
      expect(options.upstreamConnectTimeoutMs).toBe(3_000);
      expect(warnings.join('\n')).not.toMatch(/ignoring keys/);
      const flagged = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file, '--upstream-timeout', '7']));
      expect(flagged.options.upstreamTimeoutMs).toBe(7_000);
      expect(flagged.warnings.join('\n')).toMatch(/proxy-read-timeout is overridden by --upstream-timeout/);
      // Without the file: redirects on, as ingress-nginx.
      expect((await applyConfigFile(parseServeOptions(['--manifests', '.']))).options.sslRedirect).toBe(true);
      for (const bad of ['ssl-redirect: "yes"', 'proxy-read-timeout: "30s"', 'proxy-connect-timeout: "0"']) {
        writeFileSync(file, `${bad}\n`);
        await expect(applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]))).rejects.toThrow(UsageError);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('config keys Portico does not know: one warning naming them, not an error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    try {
      const file = join(dir, 'portico.yaml');
      writeFileSync(file, 'use-proxy-protocl: "true"\nproxy-body-size: 8m\nwhitelist-source-range: "10.0.0.0/8"\n');
      const { options, warnings } = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]));
      expect(options.realIp['use-proxy-protocol']).toBe('false');
      expect(options.realIp['whitelist-source-range']).toBe('10.0.0.0/8');
      const unknown = warnings.filter((w) => w.includes('does not know'));
      expect(unknown).toEqual([`config file ${file}: ignoring keys Portico does not know: use-proxy-protocl (did you mean use-proxy-protocol?)`]);
      // A limit Portico does not apply is said so on its own line.
      expect(warnings).toContain(`config file ${file}: proxy-body-size is not applied: Portico has no request body size limit, bodies of any size are proxied`);
      writeFileSync(file, 'use-proxy-protocol: "false"\n');
      expect((await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]))).warnings).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ingress-nginx keys that deny clients stop start-up; ssl-protocols and ssl-ciphers are applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    try {
      const file = join(dir, 'cm.yaml');
      for (const key of ['block-cidrs: "127.0.0.0/8"', 'block-user-agents: curl', 'block-referers: evil', 'global-auth-url: http://auth/']) {
        writeFileSync(file, `${key}\nhsts: "true"\n`);
        await expect(applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file])), key).rejects.toThrow(/restricts access and Portico cannot apply it/);
      }
      writeFileSync(file, 'ssl-protocols: TLSv1.3\nssl-ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n');
      const strict = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]));
      expect(strict.options.tlsMinVersion).toBe('TLSv1.3');
      expect(strict.options.tlsCiphers).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');
      expect(strict.warnings).toEqual([]);
      // The flag wins over the file for ciphers; the stricter minimum wins.
      const flags = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file, '--tls-ciphers', 'ECDHE-RSA-AES128-GCM-SHA256']));
      expect(flags.options.tlsCiphers).toBe('ECDHE-RSA-AES128-GCM-SHA256');
      expect(flags.warnings).toEqual([`config file ${file}: ssl-ciphers is overridden by --tls-ciphers`]);
      writeFileSync(file, 'ssl-protocols: "TLSv1 TLSv1.1 TLSv1.2"\n');
      const old = await applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]));
      expect(old.options.tlsMinVersion).toBe('TLSv1.2');
      expect(old.warnings).toEqual([`config file ${file}: ssl-protocols: TLSv1, TLSv1.1 not served (TLSv1.2 and TLSv1.3 only)`]);
      writeFileSync(file, 'ssl-protocols: "TLSv1 TLSv1.1"\n');
      await expect(applyConfigFile(parseServeOptions(['--manifests', '.', '--config', file]))).rejects.toThrow(/TLSv1.2 and TLSv1.3 only/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
