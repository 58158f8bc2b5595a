// Self-signed fallback certificate made at start (like ingress-nginx's "Kubernetes Ingress
// Controller Fake Certificate"), without an openssl binary: the X.509 v3 certificate (RFC 5280
// section 4.1) is encoded in DER here and signed with node:crypto.

import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

export interface SelfSignedOptions {
  commonName?: string;
  /** subjectAltName DNS names; wildcards like `*.example.com` allowed. */
  dnsNames?: string[];
  /** subjectAltName IP addresses (IPv4 or IPv6 text form). */
  ipAddresses?: string[];
  organization?: string;
  /** Validity in days from now. Default 365. */
  days?: number;
  /** Clock, for tests. */
  now?: Date;
}

export interface SelfSigned {
  certPem: string;
  keyPem: string;
}

export const FAKE_CERTIFICATE_CN = 'Portico Ingress Controller Fake Certificate';

// --- DER encoding (X.690), only what a certificate needs ---

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octetString = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b); // 0 unused bits
const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
const boolTrue = (): Buffer => Buffer.from([0x01, 0x01, 0xff]);

/** INTEGER from unsigned big-endian bytes: minimal, with a 0x00 pad when the top bit is set. */
function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let b = bytes.subarray(i);
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in Z, no fractions. */
function time(d: Date): Buffer {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  if (y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`, 'ascii'));
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

function name(commonName: string, organization?: string): Buffer {
  const rdn = (type: string, value: string): Buffer => set(sequence(oid(type), utf8String(value)));
  return organization !== undefined ? sequence(rdn(OID.organization, organization), rdn(OID.commonName, commonName)) : sequence(rdn(OID.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolTrue(), octetString(value)) : sequence(oid(id), octetString(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: turn a trailing dotted quad into two groups, expand "::", pack eight 16-bit groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    ip = ip.slice(0, quad.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const DNS_NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * Generates an EC P-256 key and a self-signed server certificate for it. Throws a TypeError for
 * invalid arguments (a programming error, not bad input from users).
 */
export function generateSelfSigned(options: SelfSignedOptions = {}): SelfSigned {
  const commonName = options.commonName ?? FAKE_CERTIFICATE_CN;
  const dnsNames = (options.dnsNames ?? []).map((n) => n.toLowerCase());
  const ipAddresses = options.ipAddresses ?? [];
  const days = options.days ?? 365;
  if (!(days > 0)) throw new TypeError('days must be positive');
  for (const n of dnsNames) if (n.length > 253 || !DNS_NAME.test(n)) throw new TypeError(`invalid DNS name ${JSON.stringify(n)}`);
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new TypeError(`invalid IP address ${JSON.stringify(ip)}`);
  if (commonName.length === 0) throw new TypeError('commonName must not be empty');

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = options.now ?? new Date();
  // Backdated an hour so clients with a slightly slow clock accept it at once.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  const notAfter = new Date(Math.floor(now.getTime() / 1000) * 1000 + days * 86400_000);

  // RFC 5280 4.1.2.2: positive, at most 20 octets. 16 random bytes, top bit clear, non-zero lead.
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01;

  const sigAlg = sequence(oid(OID.ecdsaWithSha256)); // parameters absent for ECDSA (RFC 5758)
  const subject = name(commonName, options.organization);
  const extensions: Buffer[] = [];
  if (dnsNames.length > 0 || ipAddresses.length > 0) {
    const general = [
      ...dnsNames.map((n) => tlv(0x82, Buffer.from(n, 'ascii'))), // dNSName [2] IA5String
      ...ipAddresses.map((ip) => tlv(0x87, ipBytes(ip))), // iPAddress [7] OCTET STRING
    ];
    extensions.push(extension(OID.subjectAltName, false, sequence(...general)));
  }
  extensions.push(extension(OID.basicConstraints, true, sequence())); // cA defaults to FALSE
  extensions.push(extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x07, 0x80])))); // digitalSignature
  extensions.push(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))));

  const tbs = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(serial),
    sigAlg,
    subject, // issuer: self-signed
    sequence(time(notBefore), time(notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, privateKey as KeyObject); // DER ECDSA-Sig-Value
  const cert = sequence(tbs, sigAlg, bitString(signature));
  return {
    certPem: toPem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
