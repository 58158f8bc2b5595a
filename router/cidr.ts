// CIDR sets: the one parser for every range Portico reads (Ingress allowlists in translation,
// real-IP trusted CIDRs and whitelist-source-range at start-up, the data-plane matcher), so a
// range is valid in all of them or in none. Pure (no Node APIs) so controller/ can use it.

import { formatV4, formatV6, isDigit, parseInto, scratch } from './ip.ts';

export { formatIpBytes, ipFamily, normalizeIp, normalizeNode } from './ip.ts';

/** One parsed CIDR (a plain address is a /32 or /128). */
export interface Cidr {
  readonly family: 4 | 6;
  readonly prefix: number;
  /** Canonical text, e.g. `10.0.0.0/8`, `2001:db8::/32`. */
  readonly text: string;
  /** Network words (1 for IPv4, 4 for IPv6), host bits cleared. */
  readonly network: readonly number[];
  readonly mask: readonly number[];
}

function maskWord(prefix: number, word: number): number {
  const bits = Math.max(0, Math.min(32, prefix - word * 32));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * Why `s` is not a range, or undefined when it is one. Strict on purpose (as Go's net.ParseCIDR,
 * which ingress-nginx uses): no surrounding or inner whitespace (list splitters trim around
 * commas), no brackets, no zone, the prefix length plain decimal without leading zeros (`/08`
 * is refused: some tools read it as octal), at most 32 or 128. A plain address is a /32 or /128.
 * Host bits set below the prefix are accepted and cleared (`10.1.2.3/8` is `10.0.0.0/8`), as Go
 * and nginx do.
 */
export function cidrProblem(s: string): string | undefined {
  if (typeof s !== 'string' || s.length === 0) return 'empty';
  if (s.length > 100) return 'too long';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 32 || c >= 127) return 'contains whitespace or a non-ASCII character';
    if (c === 91 || c === 93) return 'brackets are not allowed in a range';
    if (c === 37) return 'a zone is not allowed in a range';
  }
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (p.length === 0) return 'missing prefix length after "/"';
    for (let i = 0; i < p.length; i++) if (!isDigit(p.charCodeAt(i))) return `prefix length ${JSON.stringify(p)} is not a decimal number`;
    if (p.length > 1 && p.charCodeAt(0) === 48) return `prefix length ${JSON.stringify(p)} has a leading zero`;
  }
  const addr = slash >= 0 ? s.slice(0, slash) : s;
  if (parseInto(addr) === 0) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  if (slash >= 0) {
    const bits = addr.indexOf(':') >= 0 ? 128 : 32;
    const p = s.slice(slash + 1);
    if (p.length > 3 || Number(p) > bits) return `prefix length ${p} is longer than ${bits}`;
  }
  return undefined;
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, `192.168.1.7` (= /32), `::1` (= /128); undefined when
 * cidrProblem finds a fault. A mapped range `::ffff:10.0.0.0/104` becomes the IPv4
 * `10.0.0.0/8`, since mapped addresses are matched as IPv4.
 */
export function parseCidr(s: string): Cidr | undefined {
  if (cidrProblem(s) !== undefined) return undefined;
  const slash = s.indexOf('/');
  const addr = slash >= 0 ? s.slice(0, slash) : s;
  let prefix = slash >= 0 ? Number(s.slice(slash + 1)) : -1;
  const rawFamily = parseInto(addr);
  if (rawFamily === 0) return undefined;
  const wasMapped = rawFamily === 4 && addr.indexOf(':') >= 0;
  let family: 4 | 6 = rawFamily;
  if (wasMapped) {
    // Written as IPv6: the prefix counts 128 bits; only the mapped /96 and narrower fold to IPv4.
    if (prefix < 0) prefix = 128;
    if (prefix < 96) {
      family = 6;
      scratch[3] = scratch[0];
      scratch[0] = 0;
      scratch[1] = 0;
      scratch[2] = 0xffff;
    } else {
      prefix -= 96;
    }
  }
  const bits = family === 4 ? 32 : 128;
  if (prefix < 0) prefix = bits;
  if (prefix > bits) return undefined;
  const words = family === 4 ? 1 : 4;
  const network: number[] = [];
  const mask: number[] = [];
  for (let w = 0; w < words; w++) {
    const m = maskWord(prefix, w);
    mask.push(m);
    network.push((scratch[w] & m) >>> 0);
  }
  const net = family === 4 ? formatV4(network[0]) : formatV6(Uint32Array.from(network));
  return { family, prefix, text: `${net}/${prefix}`, network, mask };
}

/**
 * A comma-separated list of ranges (the allowlist annotation's form): entries trimmed, empty
 * entries skipped. Returns the canonical texts, or the entries that are not ranges with why.
 */
export function parseCidrList(list: string): { cidrs: string[]; errors: string[] } {
  const cidrs: string[] = [];
  const errors: string[] = [];
  for (const raw of list.split(',')) {
    const e = raw.trim();
    if (e === '') continue;
    const c = parseCidr(e);
    if (c === undefined) errors.push(`${JSON.stringify(e)}: ${cidrProblem(e) ?? 'not a range'}`);
    else if (!cidrs.includes(c.text)) cidrs.push(c.text);
  }
  return { cidrs, errors };
}

/**
 * A set of CIDRs with a fast `contains`. Build with CidrSet.parse (reports bad entries) or
 * CidrSet.from (skips them).
 */
export class CidrSet {
  /** IPv4 networks and masks, parallel arrays. */
  private readonly v4net: Uint32Array;
  private readonly v4mask: Uint32Array;
  /** IPv6: 4 network words then 4 mask words per entry. */
  private readonly v6: Uint32Array;
  private readonly anyV4: boolean;
  private readonly anyV6: boolean;
  readonly cidrs: readonly Cidr[];

  constructor(cidrs: readonly Cidr[] = []) {
    this.cidrs = cidrs;
    const v4 = cidrs.filter((c) => c.family === 4);
    const v6 = cidrs.filter((c) => c.family === 6);
    this.v4net = Uint32Array.from(v4, (c) => c.network[0]);
    this.v4mask = Uint32Array.from(v4, (c) => c.mask[0]);
    this.v6 = new Uint32Array(v6.length * 8);
    v6.forEach((c, i) => {
      for (let w = 0; w < 4; w++) {
        this.v6[i * 8 + w] = c.network[w];
        this.v6[i * 8 + 4 + w] = c.mask[w];
      }
    });
    this.anyV4 = v4.some((c) => c.prefix === 0);
    this.anyV6 = v6.some((c) => c.prefix === 0);
  }

  /** Parses every entry; bad ones are reported in `errors` and left out. */
  static parse(entries: Iterable<string>): { set: CidrSet; errors: string[] } {
    const cidrs: Cidr[] = [];
    const errors: string[] = [];
    for (const e of entries) {
      const c = parseCidr(e);
      if (c === undefined) errors.push(`${JSON.stringify(e)} is not a valid CIDR or IP address`);
      else if (!cidrs.some((x) => x.text === c.text)) cidrs.push(c);
    }
    return { set: new CidrSet(cidrs), errors };
  }

  /** Like parse, silently skipping bad entries. */
  static from(entries: Iterable<string>): CidrSet {
    return CidrSet.parse(entries).set;
  }

  get size(): number {
    return this.cidrs.length;
  }

  get isEmpty(): boolean {
    return this.cidrs.length === 0;
  }

  /** True when `ip` (any form normalizeIp accepts) is inside one of the ranges. */
  contains(ip: string | undefined): boolean {
    if (this.cidrs.length === 0 || ip === undefined) return false;
    const family = parseInto(ip);
    if (family === 4) {
      if (this.anyV4) return true;
      const a = scratch[0];
      const nets = this.v4net;
      const masks = this.v4mask;
      for (let i = 0; i < nets.length; i++) if (((a & masks[i]) >>> 0) === nets[i]) return true;
      return false;
    }
    if (family === 6) {
      if (this.anyV6) return true;
      const t = this.v6;
      for (let i = 0; i < t.length; i += 8) {
        if (((scratch[0] & t[i + 4]) >>> 0) === t[i] && ((scratch[1] & t[i + 5]) >>> 0) === t[i + 1] && ((scratch[2] & t[i + 6]) >>> 0) === t[i + 2] && ((scratch[3] & t[i + 7]) >>> 0) === t[i + 3]) return true;
      }
    }
    return false;
  }

  /** True when the set covers every IPv4 or every IPv6 address (0.0.0.0/0, ::/0). */
  get coversEverything(): boolean {
    return this.anyV4 || this.anyV6;
  }

  toJSON(): string[] {
    return this.cidrs.map((c) => c.text);
  }

  toString(): string {
    return this.toJSON().join(',');
  }
}
