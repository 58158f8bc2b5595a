import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { hostnameCovered, parseCertificateAndKey, parseSubjectAltName, parseTlsSecret } from '../tls/certificate.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { OpensslFixtures, type Pem } from '../tls/testing/openssl.ts';

let fx: OpensslFixtures;
let rsa: Pem; // RSA, SAN with two names and an IP
let wildcard: Pem;
let cnOnly: Pem;
let ca: Pem;
let intermediate: Pem;
let leaf: Pem; // signed by intermediate

beforeAll(() => {
  fx = new OpensslFixtures();
  rsa = fx.selfSigned({ cn: 'rsa.test', sans: ['DNS:RSA.test', 'DNS:www.rsa.test', 'IP:127.0.0.1'], keyType: 'rsa' });
  wildcard = fx.selfSigned({ cn: 'wild', sans: ['DNS:*.example.com'] });
  cnOnly = fx.selfSigned({ cn: 'Legacy.Example.org' });
  ca = fx.selfSigned({ cn: 'Portico Test Root', ca: true });
  intermediate = fx.signed(ca, { cn: 'Portico Test Intermediate', ca: true });
  leaf = fx.signed(intermediate, { cn: 'shop.test', sans: ['DNS:shop.test'] });
});
afterAll(() => fx?.cleanup());

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const secret = (crt: string, key: string, extra: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'v1',
  kind: 'Secret',
  type: 'kubernetes.io/tls',
  metadata: { namespace: 'shop', name: 'tls' },
  data: { 'tls.crt': b64(crt), 'tls.key': b64(key) },
  ...extra,
});

describe('parseCertificateAndKey / parseTlsSecret', () => {
  it('reads names (SAN, lowercased), serial, validity and subject of an RSA certificate', () => {
    const r = parseTlsSecret(secret(rsa.certPem, rsa.keyPem));
    if (!r.ok) throw new Error(r.reason);
    expect(r.info.names).toEqual(['rsa.test', 'www.rsa.test']);
    expect(r.info.namesFrom).toBe('san');
    expect(r.info.ipAddresses).toEqual(['127.0.0.1']);
    expect(r.info.subject).toBe('CN=rsa.test');
    expect(r.info.keyType).toBe('rsa');
    expect(r.info.serialNumber).toMatch(/^[0-9A-F]+$/);
    expect(new Date(r.info.notAfter).getTime()).toBeGreaterThan(Date.now());
    expect(new Date(r.info.notBefore).getTime()).toBeLessThanOrEqual(Date.now());
    expect(r.warnings).toEqual([]);
    expect(r.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('keeps wildcard names as they are', () => {
    const r = parseCertificateAndKey(wildcard.certPem, wildcard.keyPem);
    expect(r.ok && r.info.names).toEqual(['*.example.com']);
  });

  it('falls back to the CN only when there is no subjectAltName', () => {
    const r = parseCertificateAndKey(cnOnly.certPem, cnOnly.keyPem);
    expect(r.ok && r.info).toMatchObject({ names: ['legacy.example.org'], namesFrom: 'cn' });
  });

  it('accepts a chain leaf-first and drops text around the PEM blocks', () => {
    const chain = `Bag Attributes: junk\n${leaf.certPem}subject=/CN=intermediate\n${intermediate.certPem}`;
    const r = parseCertificateAndKey(chain, leaf.keyPem, { label: 'Secret shop/chain' });
    if (!r.ok) throw new Error(r.reason);
    expect(r.info.chainLength).toBe(2);
    expect(r.info.names).toEqual(['shop.test']);
    expect(r.info.issuer).toBe('CN=Portico Test Intermediate');
    expect(r.certPem).not.toMatch(/junk|subject=/);
    expect(r.warnings).toEqual([]);
  });

  it('warns when the chain is out of order, and explains a key that matches a later certificate', () => {
    const shuffled = parseCertificateAndKey(leaf.certPem + ca.certPem, leaf.keyPem, { label: 'Secret shop/x' });
    expect(shuffled.ok && shuffled.warnings).toEqual(['Secret shop/x: certificate #2 in tls.crt did not issue #1: chain out of order or incomplete']);
    const reversed = parseCertificateAndKey(intermediate.certPem + leaf.certPem, leaf.keyPem, { label: 'Secret shop/x' });
    expect(reversed).toEqual({ ok: false, reason: 'Secret shop/x: tls.key matches certificate #2 in tls.crt, not the first: the leaf certificate must come first' });
  });

  it('says when tls.key does not match tls.crt', () => {
    const r = parseTlsSecret(secret(rsa.certPem, wildcard.keyPem));
    expect(r).toEqual({ ok: false, reason: 'Secret shop/tls: tls.key does not match tls.crt' });
  });

  it('says when there is no certificate, or fields are swapped, missing, or not base64', () => {
    expect(parseTlsSecret(secret('hello', rsa.keyPem))).toEqual({ ok: false, reason: 'Secret shop/tls: no certificate in tls.crt' });
    expect(parseTlsSecret(secret(rsa.keyPem, rsa.certPem))).toMatchObject({ ok: false, reason: expect.stringMatching(/no certificate in tls.crt \(it holds a private key: are tls.crt and tls.key swapped\?\)/) });
    expect(parseTlsSecret(secret(rsa.certPem, rsa.certPem))).toMatchObject({ ok: false, reason: expect.stringMatching(/no private key in tls.key \(it holds a certificate/) });
    expect(parseTlsSecret({ metadata: { namespace: 'a', name: 'b' }, data: { 'tls.crt': b64(rsa.certPem) } })).toEqual({ ok: false, reason: 'Secret a/b: missing tls.key' });
    expect(parseTlsSecret({ metadata: { namespace: 'a', name: 'b' }, data: { 'tls.crt': '%%%notbase64', 'tls.key': 'AAAA' } })).toEqual({ ok: false, reason: 'Secret a/b: tls.crt is not valid base64' });
    expect(parseTlsSecret(null)).toMatchObject({ ok: false });
    expect(parseTlsSecret({ data: { 'tls.crt': 5, 'tls.key': 'x' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/tls.crt is not a string/) });
  });

  it('says when a certificate block does not parse', () => {
    const broken = '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n';
    expect(parseCertificateAndKey(broken, rsa.keyPem)).toMatchObject({ ok: false, reason: expect.stringMatching(/^certificate: certificate #1 in tls.crt does not parse/) });
    expect(parseCertificateAndKey(rsa.certPem, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toMatchObject({ ok: false, reason: expect.stringMatching(/tls.key does not parse/) });
  });

  it('refuses an encrypted key with a clear reason', () => {
    fx.write('plain.key', rsa.keyPem);
    const encrypted = fx.run(['pkcs8', '-topk8', '-in', 'plain.key', '-passout', 'pass:secret', '-v2', 'aes-256-cbc']);
    expect(parseCertificateAndKey(rsa.certPem, encrypted)).toEqual({ ok: false, reason: 'certificate: tls.key is encrypted; passphrase-protected keys are not supported' });
  });

  it('accepts traditional (non-PKCS#8) key encodings', () => {
    fx.write('ec.key', wildcard.keyPem);
    const sec1 = fx.run(['ec', '-in', 'ec.key']);
    expect(sec1).toMatch(/BEGIN EC PRIVATE KEY/);
    expect(parseCertificateAndKey(wildcard.certPem, sec1).ok).toBe(true);
  });

  it('warns (without refusing) when the certificate expired or is not yet valid', () => {
    const later = new Date(Date.now() + 10 * 86400_000);
    const r = parseTlsSecret(secret(rsa.certPem, rsa.keyPem), { now: later });
    expect(r.ok).toBe(true);
    expect(r.ok && r.warnings).toEqual([expect.stringMatching(/^Secret shop\/tls: certificate expired on \d{4}-/)]);
    const early = parseCertificateAndKey(rsa.certPem, rsa.keyPem, { now: new Date(Date.now() - 86400_000) });
    expect(early.ok && early.warnings).toEqual([expect.stringMatching(/not valid before/)]);
  });

  it('reads stringData (manifest files); refuses a Secret of another type; reads one with no type', () => {
    const untyped = parseTlsSecret({ metadata: { namespace: 'n', name: 's' }, stringData: { 'tls.crt': wildcard.certPem, 'tls.key': wildcard.keyPem } });
    expect(untyped.ok && untyped.warnings).toEqual([]);
    const r = parseTlsSecret({ type: 'Opaque', metadata: { namespace: 'n', name: 's' }, stringData: { 'tls.crt': wildcard.certPem, 'tls.key': wildcard.keyPem } });
    expect(r).toEqual({ ok: false, reason: 'Secret n/s: type is "Opaque", not kubernetes.io/tls' });
  });

  it('works with the self-signed generator too', () => {
    const ss = generateSelfSigned({ commonName: 'fake', dnsNames: ['Fake.Test', '*.fake.test'] });
    const r = parseCertificateAndKey(ss.certPem, ss.keyPem);
    expect(r.ok && r.info).toMatchObject({ names: ['fake.test', '*.fake.test'], subject: 'CN=fake', keyType: 'ec' });
  });
});

describe('parseSubjectAltName', () => {
  it('splits entries and undoes Node quoting, so a comma inside a name cannot forge an entry', () => {
    expect(parseSubjectAltName('DNS:"weird\\u002cDNS:evil.test", DNS:Upper.Test, IP Address:127.0.0.1, email:a@b.c')).toEqual({
      dns: ['weird,dns:evil.test', 'upper.test'],
      ip: ['127.0.0.1'],
    });
    expect(parseSubjectAltName(undefined)).toEqual({ dns: [], ip: [] });
  });
});

describe('hostnameCovered', () => {
  const names = ['example.com', '*.example.com', 'Other.Test'];
  const cases: [string, boolean][] = [
    ['example.com', true],
    ['EXAMPLE.com', true],
    ['example.com.', true],
    ['a.example.com', true],
    ['A.Example.Com', true],
    ['a.b.example.com', false],
    ['.example.com', false],
    ['example.org', false],
    ['other.test', true],
    ['x.other.test', false],
    ['', false],
    ['com', false],
  ];
  for (const [host, covered] of cases) {
    it(`${JSON.stringify(host)} ${covered ? 'is' : 'is not'} covered`, () => expect(hostnameCovered(names, host)).toBe(covered));
  }
  it('a wildcard does not cover its own apex', () => expect(hostnameCovered(['*.example.com'], 'example.com')).toBe(false));
});
