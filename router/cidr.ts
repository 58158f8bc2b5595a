// IP addresses and CIDR sets: the one parser for every range Portico reads (Ingress allowlists in
// translation, real-IP trusted CIDRs and whitelist-source-range at start-up, the data-plane
// matcher), so a range is valid in all of them or in none. Pure (no Node APIs) so controller/ can
// use it. Addresses come from sockets, PROXY headers and client-controlled headers, so every
// parser here returns undefined on garbage and never throws.
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded into IPv4 everywhere: a dual-stack socket reports
// IPv4 peers in that form, and one spelling per client keeps allowlists and logs consistent.

/** Family of the last address parsed into `scratch` (0 = not an address). */
type Family = 0 | 4 | 6;

// Parse results land here instead of in fresh objects: trust checks run on every request.
// IPv4 uses word 0; IPv6 uses words 0..3 (big-endian 32-bit words of the 128-bit address).
const scratch = new Uint32Array(4);
const groups = new Uint16Array(8);

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Strict dotted-quad s[start, end) -> unsigned 32-bit value, or -1. Leading zeros are refused:
 * some resolvers read `010` as octal, so such a string cannot be trusted to mean one address.
 */
function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (parts < 4) {
    if (i >= end || !isDigit(s.charCodeAt(i))) return -1;
    const first = i;
    let octet = 0;
    while (i < end && isDigit(s.charCodeAt(i))) {
      octet = octet * 10 + (s.charCodeAt(i) - 48);
      i++;
      if (i - first > 3) return -1;
    }
    if (octet > 255 || (i - first > 1 && s.charCodeAt(first) === 48)) return -1;
    value = value * 256 + octet;
    parts++;
    if (parts < 4) {
      if (i >= end || s.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

/** IPv6 text s[start, end) (no brackets, no zone) into `groups`; false when not an address. */
function parseV6(s: string, start: number, end: number): boolean {
  if (end - start < 2 || end - start > 45) return false;
  let n = 0; // groups written
  let gap = -1; // index in groups where '::' stands
  let i = start;
  if (s.charCodeAt(i) === 58 /* : */) {
    if (s.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
    if (i === end) {
      groups.fill(0);
      return true;
    }
  }
  while (i < end) {
    if (n === 8) return false;
    // An embedded IPv4 tail (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) fills the last two groups.
    let j = i;
    let sawDot = false;
    while (j < end && s.charCodeAt(j) !== 58) {
      if (s.charCodeAt(j) === 46) sawDot = true;
      j++;
    }
    if (sawDot) {
      if (j !== end || n > 6) return false;
      const v4 = parseV4(s, i, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j - i < 1 || j - i > 4) return false;
    let g = 0;
    for (let k = i; k < j; k++) {
      const h = hexValue(s.charCodeAt(k));
      if (h < 0) return false;
      g = (g << 4) | h;
    }
    groups[n++] = g;
    i = j;
    if (i === end) break;
    // s[i] is ':'; '::' marks the gap (only once), a single ':' must be followed by a group.
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    if (n > 7) return false;
    const tail = n - gap;
    for (let k = 7; k >= 8 - tail; k--) groups[k] = groups[k - (8 - n)];
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  return true;
}

function isMappedV4(): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
}

/**
 * Parses an address into `scratch`: brackets ([::1]) and zone ids (fe80::1%eth0) are stripped,
 * surrounding whitespace ignored, mapped IPv4 folded into IPv4.
 */
function parseInto(s: string): Family {
  if (typeof s !== 'string') return 0;
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  if (end - start < 2 || end - start > 100) {
    return 0;
  }
  if (s.charCodeAt(start) === 91 /* [ */) {
    if (s.charCodeAt(end - 1) !== 93 /* ] */) return 0;
    start++;
    end--;
  }
  const v4 = parseV4(s, start, end);
  if (v4 >= 0) {
    scratch[0] = v4;
    return 4;
  }
  const zone = s.indexOf('%', start);
  if (zone >= 0 && zone < end) {
    if (zone === end - 1) return 0;
    end = zone;
  }
  if (!parseV6(s, start, end)) return 0;
  if (isMappedV4()) {
    scratch[0] = ((groups[6] << 16) | groups[7]) >>> 0;
    return 4;
  }
  scratch[0] = ((groups[0] << 16) | groups[1]) >>> 0;
  scratch[1] = ((groups[2] << 16) | groups[3]) >>> 0;
  scratch[2] = ((groups[4] << 16) | groups[5]) >>> 0;
  scratch[3] = ((groups[6] << 16) | groups[7]) >>> 0;
  return 6;
}

function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text of an IPv6 address given as 4 words: lowercase, longest zero run as '::'. */
function formatV6(w: Uint32Array): string {
  const g = [w[0] >>> 16, w[0] & 0xffff, w[1] >>> 16, w[1] & 0xffff, w[2] >>> 16, w[2] & 0xffff, w[3] >>> 16, w[3] & 0xffff];
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

function formatScratch(family: Family): string {
  return family === 4 ? formatV4(scratch[0]) : formatV6(scratch);
}

/**
 * Canonical text of an IP address, or undefined when `s` is not one. `::ffff:1.2.3.4` ->
 * `1.2.3.4`, `[2001:DB8::1]` -> `2001:db8::1`, `fe80::1%eth0` -> `fe80::1`. Ports are not
 * accepted here (see normalizeNode).
 */
export function normalizeIp(s: string): string | undefined {
  // Node's own spelling of an IPv4 peer on a dual-stack socket: skip the general parser.
  if (typeof s === 'string' && s.length > 13 && s.length <= 22 && s.startsWith('::ffff:') && s.indexOf(':', 7) < 0) {
    const v4 = parseV4(s, 7, s.length);
    if (v4 >= 0) return s.slice(7);
  }
  const family = parseInto(s);
  if (family === 0) return undefined;
  // A strict dotted quad is already canonical: skip the allocation.
  if (family === 4 && s.length <= 15 && isDigit(s.charCodeAt(0)) && isDigit(s.charCodeAt(s.length - 1)) && s.indexOf(':') < 0) return s;
  return formatScratch(family);
}

/** 4, 6, or 0 when `s` is not an address (mapped IPv4 counts as 4). */
export function ipFamily(s: string): 0 | 4 | 6 {
  return parseInto(s);
}

/**
 * An address as found in forwarding headers: like normalizeIp, but also accepts a port
 * (`1.2.3.4:567`, `[::1]:80`, RFC 7239 obfuscated `[::1]:_abc`) and surrounding double quotes.
 * `unknown`, obfuscated identifiers (`_hidden`) and anything else give undefined.
 */
export function normalizeNode(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  let t = s.trim();
  if (t.length >= 2 && t.charCodeAt(0) === 34 && t.charCodeAt(t.length - 1) === 34) t = t.slice(1, -1).trim();
  if (t.length === 0) return undefined;
  if (t.charCodeAt(0) === 91 /* [ */) {
    const close = t.indexOf(']');
    if (close < 0) return undefined;
    if (close !== t.length - 1 && !isPort(t, close + 1)) return undefined;
    const family = parseInto(t.slice(1, close));
    return family === 0 ? undefined : formatScratch(family);
  }
  const colon = t.indexOf(':');
  if (colon > 0 && t.indexOf(':', colon + 1) < 0) {
    // One colon: IPv4 with a port (a bare IPv6 address has at least two).
    if (!isPort(t, colon)) return undefined;
    const v4 = parseV4(t, 0, colon);
    return v4 < 0 ? undefined : formatV4(v4);
  }
  return normalizeIp(t);
}

/** s[at] is ':' followed by a decimal port (1-5 digits) or an RFC 7239 obfuscated port. */
function isPort(s: string, at: number): boolean {
  if (s.charCodeAt(at) !== 58 || at + 1 >= s.length) return false;
  if (s.charCodeAt(at + 1) === 95 /* _ */) {
    for (let i = at + 2; i < s.length; i++) if (!isObfChar(s.charCodeAt(i))) return false;
    return at + 2 < s.length;
  }
  if (s.length - at - 1 > 5) return false;
  for (let i = at + 1; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

function isObfChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45;
}

/** Text of 4 (IPv4) or 16 (IPv6) address bytes, normalised like normalizeIp. */
export function formatIpBytes(b: ArrayLike<number>): string | undefined {
  if (b.length === 4) return formatV4((((b[0] & 255) << 24) | ((b[1] & 255) << 16) | ((b[2] & 255) << 8) | (b[3] & 255)) >>> 0);
  if (b.length !== 16) return undefined;
  for (let i = 0; i < 4; i++) scratch[i] = (((b[i * 4] & 255) << 24) | ((b[i * 4 + 1] & 255) << 16) | ((b[i * 4 + 2] & 255) << 8) | (b[i * 4 + 3] & 255)) >>> 0;
  if (scratch[0] === 0 && scratch[1] === 0 && scratch[2] === 0xffff) return formatV4(scratch[3]);
  return formatV6(scratch);
}

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
