// Parsing and validation of TLS certificates, chiefly from Secrets of type kubernetes.io/tls
// (`tls.crt`: PEM chain, leaf first; `tls.key`: PEM private key). Runs in the primary, which
// turns the result into certificate store entries; every failure is a reason string, never a throw.

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import tls from 'node:tls';

export interface CertificateInfo {
  /** Host names the certificate covers, lowercased: SAN DNS entries, or the CN when there is no SAN. */
  names: string[];
  namesFrom: 'san' | 'cn' | 'none';
  /** SAN IP addresses (not used for routing, reported for completeness). */
  ipAddresses: string[];
  subject: string;
  issuer: string;
  /** Hex serial number as Node prints it (uppercase, no separators). */
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
  /** Certificates in tls.crt, leaf included. */
  chainLength: number;
  keyType: string;
}

export interface ParsedCertificate {
  ok: true;
  /** The chain re-encoded as clean PEM (text around the blocks dropped), leaf first. */
  certPem: string;
  /** The key re-encoded as unencrypted PKCS#8 PEM. */
  keyPem: string;
  info: CertificateInfo;
  /** Problems that do not stop the certificate from being served (expiry, chain order...). */
  warnings: string[];
}

export interface CertificateProblem {
  ok: false;
  reason: string;
}

export interface ParseOptions {
  /** Prefix of every reason and warning, e.g. "Secret ns/name". */
  label?: string;
  /** Clock for expiry checks. */
  now?: Date;
  /** Field names used in messages. */
  certField?: string;
  keyField?: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

interface PemBlock {
  label: string;
  text: string;
}

function pemBlocks(pem: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) out.push({ label: m[1], text: m[0] });
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Validates a PEM chain and key; see ParsedCertificate. */
export function parseCertificateAndKey(certPem: string, keyPem: string, options: ParseOptions = {}): ParsedCertificate | CertificateProblem {
  const label = options.label ?? 'certificate';
  const certField = options.certField ?? 'tls.crt';
  const keyField = options.keyField ?? 'tls.key';
  const problem = (reason: string): CertificateProblem => ({ ok: false, reason: `${label}: ${reason}` });
  if (typeof certPem !== 'string' || typeof keyPem !== 'string') return problem('certificate and key must be strings');

  const certBlocks = pemBlocks(certPem).filter((b) => b.label === 'CERTIFICATE');
  if (certBlocks.length === 0) {
    if (/PRIVATE KEY-----/.test(certPem)) return problem(`no certificate in ${certField} (it holds a private key: are ${certField} and ${keyField} swapped?)`);
    return problem(`no certificate in ${certField}`);
  }
  const chain: X509Certificate[] = [];
  for (let i = 0; i < certBlocks.length; i++) {
    try {
      chain.push(new X509Certificate(certBlocks[i].text));
    } catch (err) {
      return problem(`certificate #${i + 1} in ${certField} does not parse: ${errorMessage(err)}`);
    }
  }
  const leaf = chain[0];

  const keyBlocks = pemBlocks(keyPem).filter((b) => /PRIVATE KEY$/.test(b.label));
  if (keyBlocks.length === 0) {
    if (/BEGIN CERTIFICATE-----/.test(keyPem)) return problem(`no private key in ${keyField} (it holds a certificate: are ${certField} and ${keyField} swapped?)`);
    return problem(`no private key in ${keyField}`);
  }
  if (keyBlocks.length > 1) return problem(`${keyField} holds ${keyBlocks.length} private keys; expected one`);
  if (keyBlocks[0].label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(keyBlocks[0].text)) {
    return problem(`${keyField} is encrypted; passphrase-protected keys are not supported`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyBlocks[0].text);
  } catch (err) {
    return problem(`${keyField} does not parse: ${errorMessage(err)}`);
  }

  let matches = false;
  try {
    matches = leaf.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) {
    const other = chain.findIndex((c, i) => i > 0 && safeCheckKey(c, key));
    if (other > 0) return problem(`${keyField} matches certificate #${other + 1} in ${certField}, not the first: the leaf certificate must come first`);
    return problem(`${keyField} does not match ${certField}`);
  }

  const normalisedCert = chain.map((c) => c.toString().trim()).join('\n') + '\n';
  const normalisedKey = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  // The real judge is OpenSSL: a key too weak for its security level, for one, only shows here.
  try {
    tls.createSecureContext({ cert: normalisedCert, key: normalisedKey });
  } catch (err) {
    return problem(`${certField}/${keyField} cannot be used for TLS: ${errorMessage(err)}`);
  }

  const warnings: string[] = [];
  const warn = (w: string): void => {
    warnings.push(`${label}: ${w}`);
  };
  const now = options.now ?? new Date();
  const notBefore = leaf.validFromDate;
  const notAfter = leaf.validToDate;
  if (notAfter.getTime() < now.getTime()) warn(`certificate expired on ${notAfter.toISOString()}`);
  if (notBefore.getTime() > now.getTime()) warn(`certificate is not valid before ${notBefore.toISOString()}`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1])) warn(`certificate #${i + 2} in ${certField} did not issue #${i + 1}: chain out of order or incomplete`);
  }

  const san = parseSubjectAltName(leaf.subjectAltName);
  let names: string[];
  let namesFrom: CertificateInfo['namesFrom'];
  if (leaf.subjectAltName !== undefined) {
    names = san.dns;
    namesFrom = 'san';
    if (names.length === 0) warn('certificate has a subjectAltName without DNS names: it covers no host name');
  } else {
    const cn = commonName(leaf.subject);
    names = cn !== undefined ? [cn.toLowerCase()] : [];
    namesFrom = cn !== undefined ? 'cn' : 'none';
    if (cn === undefined) warn('certificate has neither subjectAltName nor CN: it covers no host name');
  }
  names = [...new Set(names)];

  return {
    ok: true,
    certPem: normalisedCert,
    keyPem: normalisedKey,
    warnings,
    info: {
      names,
      namesFrom,
      ipAddresses: san.ip,
      subject: dnToString(leaf.subject),
      issuer: dnToString(leaf.issuer),
      serialNumber: leaf.serialNumber,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      fingerprint256: leaf.fingerprint256,
      chainLength: chain.length,
      keyType: key.asymmetricKeyType ?? 'unknown',
    },
  };
}

function safeCheckKey(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

export interface TlsSecretLike {
  metadata?: { namespace?: string; name?: string };
  type?: string;
  data?: Record<string, unknown> | null;
  stringData?: Record<string, unknown> | null;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Validates a Secret of type kubernetes.io/tls: `data` values are base64 (as the API serves
 * them); `stringData` values (allowed in manifest files) are plain text and take precedence,
 * as the API server would merge them on write.
 */
export function parseTlsSecret(secret: unknown, options: { now?: Date } = {}): ParsedCertificate | CertificateProblem {
  if (secret === null || typeof secret !== 'object') return { ok: false, reason: 'Secret: not an object' };
  const s = secret as TlsSecretLike;
  const ns = typeof s.metadata?.namespace === 'string' ? s.metadata.namespace : 'default';
  const name = typeof s.metadata?.name === 'string' ? s.metadata.name : '(unnamed)';
  const label = `Secret ${ns}/${name}`;
  const field = (key: string): string | CertificateProblem => {
    const plain = s.stringData?.[key];
    if (typeof plain === 'string') return plain;
    const encoded = s.data?.[key];
    if (encoded === undefined || encoded === null) return { ok: false, reason: `${label}: missing ${key}` };
    if (typeof encoded !== 'string') return { ok: false, reason: `${label}: ${key} is not a string` };
    const compact = encoded.replace(/\s+/g, '');
    if (compact.length % 4 === 1 || !BASE64.test(compact)) return { ok: false, reason: `${label}: ${key} is not valid base64` };
    return Buffer.from(compact, 'base64').toString('utf8');
  };
  // Only kubernetes.io/tls Secrets are certificates (the API then guarantees both keys); any other
  // type is refused, as a mistake to report. A Secret with no type (a hand-written manifest) is
  // read, since the API server would have defaulted it to Opaque only on a real write.
  if (s.type !== undefined && s.type !== 'kubernetes.io/tls') {
    return { ok: false, reason: `${label}: type is ${JSON.stringify(s.type)}, not kubernetes.io/tls` };
  }
  const crt = field('tls.crt');
  if (typeof crt !== 'string') return crt;
  const key = field('tls.key');
  if (typeof key !== 'string') return key;
  const parsed = parseCertificateAndKey(crt, key, { label, now: options.now });
  return parsed;
}

/**
 * Parses Node's subjectAltName string ("DNS:a.test, DNS:\"x\\u002cy\", IP Address:127.0.0.1").
 * Node JSON-quotes values that contain separators, so a name cannot smuggle in a second entry.
 */
export function parseSubjectAltName(san: string | undefined): { dns: string[]; ip: string[] } {
  const dns: string[] = [];
  const ip: string[] = [];
  if (san === undefined) return { dns, ip };
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        value = '';
      }
      next = j + 1;
    } else {
      const sep = san.indexOf(', ', colon + 1);
      next = sep < 0 ? san.length : sep;
      value = san.slice(colon + 1, next);
    }
    if (type === 'DNS' && value !== '') dns.push(value.toLowerCase());
    else if (type === 'IP Address' && value !== '') ip.push(value);
    i = san.startsWith(', ', next) ? next + 2 : next + 1;
  }
  return { dns, ip };
}

/** Lines of Node's DN string, with escapes undone: [["CN", "a.test"], ["O", "Acme"]]. */
function dnEntries(dn: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of dn.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const raw = line.slice(eq + 1);
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw;
      }
    } else {
      value = raw.replace(/\\(.)/g, '$1');
    }
    out.push([line.slice(0, eq), value]);
  }
  return out;
}

function commonName(dn: string): string | undefined {
  // With several CNs the last is the most specific one.
  const cns = dnEntries(dn).filter(([k]) => k === 'CN');
  return cns.length > 0 ? cns[cns.length - 1][1] : undefined;
}

function dnToString(dn: string): string {
  return dnEntries(dn)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/**
 * Whether a certificate with these names covers `host`. Exact names match case-insensitively;
 * `*.example.com` covers exactly one extra label (`a.example.com`, not `example.com` nor
 * `a.b.example.com`). Partial-label wildcards (`w*.example.com`) are not honoured.
 */
export function hostnameCovered(certNames: readonly string[], host: string): boolean {
  let h = host.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === '') return false;
  const dot = h.indexOf('.');
  const parent = dot > 0 ? h.slice(dot + 1) : undefined;
  for (const raw of certNames) {
    const name = raw.toLowerCase();
    if (name === h) return true;
    if (parent !== undefined && parent !== '' && name.startsWith('*.') && name.slice(2) === parent) return true;
  }
  return false;
}
