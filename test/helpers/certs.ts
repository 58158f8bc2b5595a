// Test certificates made with the openssl CLI, and TLS Secret manifests holding them.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Obj } from './manifests.ts';

export interface TestCert {
  certPem: string;
  keyPem: string;
  /** As openssl prints it: upper-case hex. */
  serial: string;
}

export function makeCert(commonName: string, dnsNames: string[] = [commonName]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'portico-cert-'));
  try {
    const san = dnsNames.map((n) => `DNS:${n}`).join(',');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', `/CN=${commonName}`, '-days', '2', ...(san ? ['-addext', `subjectAltName=${san}`] : [])], { stdio: 'pipe' });
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const serial = execFileSync('openssl', ['x509', '-noout', '-serial'], { input: certPem }).toString().trim().replace(/^serial=/, '').toUpperCase();
    return { certPem, keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'), serial };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const tlsSecret = (name: string, cert: Pick<TestCert, 'certPem' | 'keyPem'>, namespace = 'default'): Obj => ({
  apiVersion: 'v1',
  kind: 'Secret',
  type: 'kubernetes.io/tls',
  metadata: { name, namespace },
  data: { 'tls.crt': Buffer.from(cert.certPem).toString('base64'), 'tls.key': Buffer.from(cert.keyPem).toString('base64') },
});

/**
 * Runs openssl s_client and returns what it printed plus the served certificate's serial and
 * subject. Asynchronous: backends in the test process must keep answering meanwhile.
 */
export async function sClient(port: number, opts: { servername?: string; alpn?: string; extra?: string[] } = {}): Promise<{ out: string; serial?: string; subject?: string }> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, ...(opts.servername ? ['-servername', opts.servername] : ['-noservername']), ...(opts.alpn ? ['-alpn', opts.alpn] : []), ...(opts.extra ?? [])];
  const out = await new Promise<string>((resolve) => {
    const child = execFile('openssl', args, { timeout: 10_000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
    child.stdin?.end();
  });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out)?.[0];
  if (!pem) return { out };
  const info = execFileSync('openssl', ['x509', '-noout', '-serial', '-subject'], { input: pem }).toString();
  return { out, serial: /serial=(\S+)/.exec(info)?.[1]?.toUpperCase(), subject: /subject=(.*)/.exec(info)?.[1]?.trim() };
}

/** curl, asynchronously (see sClient). */
export function curl(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('curl', ['-sk', '--max-time', '10', ...args], { timeout: 15_000 }, (err, stdout) => resolve(err ? `curl failed: ${err.message}` : stdout));
  });
}
