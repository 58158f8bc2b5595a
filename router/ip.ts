// IP addresses: parsing and canonical text for the addresses Portico reads from sockets, PROXY
// headers and client-controlled headers, so every parser here returns undefined on garbage and
// never throws. Pure (no Node APIs) so controller/ can use it. The CIDR parser and matcher
// (cidr.ts) share the scratch buffers below.
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded into IPv4 everywhere: a dual-stack socket reports
// IPv4 peers in that form, and one spelling per client keeps allowlists and logs consistent.

/** Family of the last address parsed into `scratch` (0 = not an address). */
export type Family = 0 | 4 | 6;

// Parse results land here instead of in fresh objects: trust checks run on every request.
// IPv4 uses word 0; IPv6 uses words 0..3 (big-endian 32-bit words of the 128-bit address).
export const scratch = new Uint32Array(4);
const groups = new Uint16Array(8);

export function isDigit(c: number): boolean {
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
export function parseInto(s: string): Family {
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

export function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text of an IPv6 address given as 4 words: lowercase, longest zero run as '::'. */
export function formatV6(w: Uint32Array): string {
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

