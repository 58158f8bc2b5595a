// TLS for the benchmarks: one certificate per run (openssl CLI, ECDSA P-256) that both proxies
// serve, an LD_PRELOAD shim that stops wrk from resuming TLS sessions, and the probes that check
// what each proxy actually serves (certificate, protocol, cipher, key exchange group).

import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { findExecutable, runCommand } from './processes.ts';

const SHIM_SOURCE = fileURLToPath(new URL('./wrk-no-resume.c', import.meta.url));

export interface BenchCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 fingerprint as Node prints it (`AB:CD:...`), to check what a proxy serves. */
  readonly fingerprint256: string;
  readonly subject: string;
  readonly subjectAltName: string;
  readonly keyType: string;
}

const certificates = new Map<string, BenchCertificate>();

/**
 * A self-signed ECDSA P-256 certificate for `host` (SAN DNS:host), made once per directory with
 * the openssl CLI: `<dir>/bench-tls.crt` and `<dir>/bench-tls.key` (PKCS#8, unencrypted).
 */
export function benchCertificate(dir: string, host: string): BenchCertificate {
  const cached = certificates.get(dir);
  if (cached !== undefined) return cached;
  const openssl = findExecutable('openssl');
  if (openssl === undefined) throw new Error('openssl is not installed (apt-get install openssl)');
  const certPath = join(dir, 'bench-tls.crt');
  const keyPath = join(dir, 'bench-tls.key');
  execFileSync(
    openssl,
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-days', '7', '-keyout', keyPath, '-out', certPath, '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
  );
  const certPem = readFileSync(certPath, 'utf8');
  const keyPem = readFileSync(keyPath, 'utf8');
  const x509 = new X509Certificate(certPem);
  const cert: BenchCertificate = {
    certPath,
    keyPath,
    certPem,
    keyPem,
    fingerprint256: x509.fingerprint256,
    subject: x509.subject,
    subjectAltName: x509.subjectAltName ?? '',
    keyType: `${x509.publicKey.asymmetricKeyType} ${x509.publicKey.asymmetricKeyDetails?.namedCurve ?? ''}`.trim(),
  };
  certificates.set(dir, cert);
  return cert;
}

/** Why the no-resumption shim cannot be built here, or undefined when it can. */
export function noResumeShimUnavailable(): string | undefined {
  if (compiler() === undefined) return 'needs a C compiler (cc or gcc) to build bench/lib/wrk-no-resume.c, without which wrk resumes TLS sessions: apt-get install gcc';
  return undefined;
}

function compiler(): string | undefined {
  return findExecutable('cc') ?? findExecutable('gcc');
}

const shims = new Map<string, string>();

/** Builds bench/lib/wrk-no-resume.c into `<dir>/wrk-no-resume.so` (once per directory). */
export function noResumeShim(dir: string): string {
  const cached = shims.get(dir);
  if (cached !== undefined) return cached;
  const cc = compiler();
  if (cc === undefined) throw new Error(noResumeShimUnavailable());
  const out = join(dir, 'wrk-no-resume.so');
  try {
    execFileSync(cc, ['-shared', '-fPIC', '-O2', '-o', out, SHIM_SOURCE, '-ldl'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot build ${SHIM_SOURCE}: ${e.stderr?.toString().trim() || e.message}`);
  }
  if (!existsSync(out)) throw new Error(`cannot build ${SHIM_SOURCE}: ${out} is missing`);
  shims.set(dir, out);
  return out;
}

export interface HttpsAnswer {
  readonly status: number;
  readonly body: string;
  readonly fingerprint256: string;
  readonly protocol: string;
}

/**
 * One GET over HTTPS on a fresh connection to 127.0.0.1:port, with the given SNI ('' sends none)
 * and no certificate verification (the bench certificate is self-signed), no ALPN (HTTP/1.1).
 */
export function httpsGet(port: number, path: string, host: string, servername: string, timeoutMs = 5000): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { host }, servername, rejectUnauthorized: false, agent: false, timeout: timeoutMs },
      (res) => {
        const socket = res.socket as TLSSocket;
        const fingerprint256 = socket.getPeerCertificate().fingerprint256 ?? '';
        const protocol = socket.getProtocol() ?? '';
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), fingerprint256, protocol }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface NegotiatedTls {
  readonly protocol: string;
  readonly cipher: string;
  /** Key exchange group ("Server Temp Key" / "Negotiated TLS1.3 group"). */
  readonly group: string;
  readonly signature: string;
  readonly client: string;
}

/**
 * What a client with this machine's OpenSSL defaults (the library wrk links) negotiates with
 * 127.0.0.1:port, sending SNI `servername` as wrk does: `openssl s_client -brief`.
 */
export async function negotiatedTls(port: number, servername: string): Promise<NegotiatedTls | undefined> {
  const openssl = findExecutable('openssl');
  if (openssl === undefined) return undefined;
  const r = await runCommand(openssl, ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-brief'], 10_000);
  const out = r.stdout + r.stderr;
  const field = (re: RegExp): string => re.exec(out)?.[1]?.trim() ?? '';
  const version = await runCommand(openssl, ['version'], 5000);
  return {
    protocol: field(/Protocol version:\s*(.+)/),
    cipher: field(/Ciphersuite:\s*(.+)/),
    group: field(/(?:Server Temp Key|Negotiated TLS1\.3 group):\s*(.+)/),
    signature: field(/Signature type:\s*(.+)/),
    client: `openssl s_client (${version.stdout.trim()})`,
  };
}
