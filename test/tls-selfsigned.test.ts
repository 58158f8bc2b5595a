import { execFile, spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_CERTIFICATE_CN, generateSelfSigned, type SelfSigned } from '../tls/selfsigned.ts';

const run = promisify(execFile);
let dir: string;
let cert: SelfSigned;
let server: tls.Server;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portico-ss-'));
  cert = generateSelfSigned({ dnsNames: ['localhost', 'fake.test', '*.wild.test'], ipAddresses: ['127.0.0.1', '::1'], days: 30 });
  writeFileSync(join(dir, 'cert.pem'), cert.certPem);
  server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end('hello over tls\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('generateSelfSigned', () => {
  it('makes a certificate Node parses, for the generated key, with the requested fields', () => {
    const x = new X509Certificate(cert.certPem);
    expect(x.checkPrivateKey(createPrivateKey(cert.keyPem))).toBe(true);
    expect(x.subject).toBe(`CN=${FAKE_CERTIFICATE_CN}`);
    expect(x.issuer).toBe(x.subject);
    expect(x.subjectAltName).toBe('DNS:localhost, DNS:fake.test, DNS:*.wild.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // Node reports extKeyUsage here: serverAuth
    expect(x.verify(x.publicKey)).toBe(true); // the signature checks out
    expect(x.checkHost('a.wild.test')).toBe('*.wild.test');
    expect(x.checkHost('a.b.wild.test')).toBeUndefined();
    const days = (x.validToDate.getTime() - x.validFromDate.getTime()) / 86400_000;
    expect(days).toBeCloseTo(30 + 1 / 24, 3);
    expect(x.validFromDate.getTime()).toBeLessThan(Date.now());
  });

  it('uses a positive serial of at most 20 octets, different every time', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const x = new X509Certificate(generateSelfSigned({ commonName: 'x' }).certPem);
      expect(x.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
      serials.add(x.serialNumber);
    }
    expect(serials.size).toBe(5);
  });

  it('encodes far-future dates as GeneralizedTime and honours a given clock', () => {
    const now = new Date('2049-06-01T00:00:00Z');
    const x = new X509Certificate(generateSelfSigned({ commonName: 'x', days: 365, now }).certPem);
    expect(x.validFromDate.toISOString()).toBe('2049-05-31T23:00:00.000Z');
    expect(x.validToDate.toISOString()).toBe('2050-06-01T00:00:00.000Z');
  });

  it('refuses bad arguments', () => {
    expect(() => generateSelfSigned({ dnsNames: ['bad name'] })).toThrow(TypeError);
    expect(() => generateSelfSigned({ ipAddresses: ['999.1.1.1'] })).toThrow(TypeError);
    expect(() => generateSelfSigned({ days: 0 })).toThrow(TypeError);
  });

  it('openssl x509 accepts it and prints the v3 extensions', async () => {
    const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-text']);
    expect(stdout).toMatch(/Version: 3 \(0x2\)/);
    expect(stdout).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(stdout).toMatch(/DNS:localhost, DNS:fake.test, DNS:\*\.wild\.test, IP Address:127.0.0.1/);
    expect(stdout).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(stdout).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(stdout).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    // Strict DER check: asn1parse fails on any encoding error.
    await run('openssl', ['asn1parse', '-in', join(dir, 'cert.pem')]);
  });

  it('serves a TLS handshake to node:tls, which can also verify it against itself as CA', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'fake.test', ca: cert.certPem });
    const body = await new Promise<string>((resolve, reject) => {
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(body).toBe('hello over tls\n');
    expect(socket.authorized).toBe(true);
  });

  it('serves a TLS handshake to openssl s_client', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'fake.test', '-CAfile', join(dir, 'cert.pem'), '-verify_return_error', '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      child.on('error', reject);
      child.on('close', () => resolve(text));
      child.stdin.end();
      setTimeout(() => child.kill(), 10_000).unref();
    });
    expect(out).toMatch(/Verify return code: 0 \(ok\)/);
    expect(out).toMatch(/hello over tls/);
  });
});
