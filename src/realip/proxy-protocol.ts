// PROXY protocol v1 (text) and v2 (binary) framing and parsing, per HAProxy's proxy-protocol.txt.
//
// Framing is done here, not by proxy-protocol-js: the library parses whatever it is handed, so
// given a whole TCP segment it reads past the header (v2 TLVs run to the end of the buffer, v1
// has no 107-byte limit) and given a partial header it returns NaN ports instead of asking for
// more. So this module finds the exact header bytes first, hands only those to the library for
// the fixed fields and addresses, then validates what it returns (addresses, port ranges) and
// decodes the v2 TLVs itself. No exception leaves this module.

import { IPv4ProxyAddress, IPv6ProxyAddress, V1BinaryProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { formatIpBytes, ipFamily, normalizeIp } from './cidr.ts';

export type ProxyCommand = 'PROXY' | 'LOCAL';
/**
 * What the addresses describe. Only TCP4/TCP6 with command PROXY replace the socket peer;
 * UNKNOWN covers v1 `UNKNOWN` and v2 UNSPEC (the receiver then uses the socket addresses).
 */
export type ProxyProtocolFamily = 'TCP4' | 'TCP6' | 'UDP4' | 'UDP6' | 'UNIX' | 'UNKNOWN';

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** LOCAL (v2 only): the sender's own connection, e.g. a health check; use the socket address. */
  readonly command: ProxyCommand;
  readonly protocol: ProxyProtocolFamily;
  /** Normalised (mapped IPv4 folded to IPv4); set for TCP4/TCP6/UDP4/UDP6. */
  readonly sourceAddress?: string;
  readonly sourcePort?: number;
  readonly destinationAddress?: string;
  readonly destinationPort?: number;
  /** Every v2 TLV in order (copied out of the connection's buffer). */
  readonly tlvs: readonly ProxyTlv[];
  /** PP2_TYPE_ALPN (0x01), e.g. `h2`. */
  readonly alpn?: string;
  /** PP2_TYPE_AUTHORITY (0x02): the SNI / host name the client asked for. */
  readonly authority?: string;
  /** PP2_TYPE_AWS (0xEA) subtype PP2_SUBTYPE_AWS_VPCE_ID (0x01): the VPC endpoint id. */
  readonly awsVpceId?: string;
  /** PP2_TYPE_SSL (0x20) with PP2_CLIENT_SSL: the client reached the sender over TLS. */
  readonly sslClient?: boolean;
}

export type ProxyReadResult =
  | { readonly state: 'need-more' }
  | { readonly state: 'done'; readonly header: ProxyHeader; readonly consumed: number }
  | { readonly state: 'invalid'; readonly reason: string };

/** The 12-byte v2 signature `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** A v1 header is at most 107 bytes including its CRLF. */
export const V1_MAX_LENGTH = 107;
/** 16-byte fixed part plus the largest declarable length. */
export const V2_MAX_LENGTH = 16 + 0xffff;

export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;
export const PP2_TYPE_SSL = 0x20;
export const PP2_TYPE_AWS = 0xea;
export const PP2_SUBTYPE_AWS_VPCE_ID = 0x01;

const NEED_MORE: ProxyReadResult = Object.freeze({ state: 'need-more' });
const NO_TLVS: readonly ProxyTlv[] = Object.freeze([]);
const EMPTY = Buffer.alloc(0);

function invalid(reason: string): ProxyReadResult {
  return { state: 'invalid', reason };
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Reads a PROXY header from the start of `input`, which may hold only part of it (TCP can split
 * anywhere) or more than it (the request that follows). Never looks past the header's own end:
 * v1 ends at its CRLF (at most 107 bytes), v2 at 16 + its declared length. `maxV2Length` caps
 * what a v2 header may declare (default: the protocol maximum).
 */
export function readProxyHeader(input: Uint8Array, maxV2Length = V2_MAX_LENGTH): ProxyReadResult {
  try {
    const buf = asBuffer(input);
    const n = buf.length;
    if (n === 0) return NEED_MORE;
    if (buf[0] === 0x0d) return frameV2(buf, maxV2Length);
    if (buf[0] === 0x50 /* P */) return frameV1(buf);
    return invalid('not a PROXY protocol header');
  } catch (err) {
    // Defensive: the framing above is not expected to throw on any input.
    return invalid(`unexpected parser error: ${(err as Error)?.message ?? String(err)}`);
  }
}

function frameV1(buf: Buffer): ProxyReadResult {
  const n = buf.length;
  const m = Math.min(n, V1_PREFIX.length);
  for (let i = 0; i < m; i++) if (buf[i] !== V1_PREFIX[i]) return invalid('not a PROXY protocol header');
  if (n < V1_PREFIX.length) return NEED_MORE;
  // The CR may sit at index 105 at most, so that CRLF ends within 107 bytes.
  const limit = Math.min(n, V1_MAX_LENGTH - 1);
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const c = buf[i];
    if (c === 0x0d) {
      if (i + 1 >= n) return NEED_MORE;
      if (buf[i + 1] !== 0x0a) return invalid('v1 header: CR not followed by LF');
      return parseV1(buf.subarray(0, i + 2));
    }
    if (c < 0x20 || c > 0x7e) return invalid('v1 header: unexpected byte before CRLF');
  }
  if (n >= V1_MAX_LENGTH - 1) return invalid('v1 header: no CRLF within 107 bytes');
  return NEED_MORE;
}

function parseV1(line: Buffer): ProxyReadResult {
  const consumed = line.length;
  // `PROXY UNKNOWN` may be followed by anything up to CRLF, which the receiver ignores. The
  // library insists on addresses after UNKNOWN, so this case is handled here.
  if (line.toString('latin1', 6, 13) === 'UNKNOWN' && (consumed === 15 || line[13] === 0x20)) {
    return { state: 'done', consumed, header: { version: 1, command: 'PROXY', protocol: 'UNKNOWN', tlvs: NO_TLVS } };
  }
  let parsed: V1BinaryProxyProtocol;
  try {
    parsed = V1BinaryProxyProtocol.parse(line);
  } catch (err) {
    return invalid(`v1 header: ${errorMessage(err)}`);
  }
  const proto = String(parsed.inetProtocol);
  if (proto !== 'TCP4' && proto !== 'TCP6') return invalid('v1 header: protocol must be TCP4, TCP6 or UNKNOWN');
  // We passed exactly the header: anything the library calls data means it split the line wrongly.
  if (parsed.data !== undefined && parsed.data.length > 0) return invalid('v1 header: trailing bytes');
  const want = proto === 'TCP4' ? 4 : 6;
  const src = v1Address(parsed.source.ipAddress, want);
  const dst = v1Address(parsed.destination.ipAddress, want);
  if (src === undefined || dst === undefined) return invalid(`v1 header: addresses are not ${proto} addresses`);
  const sport = parsed.source.port;
  const dport = parsed.destination.port;
  if (!isPort(sport) || !isPort(dport)) return invalid('v1 header: port out of range');
  // "Heading zeroes are not permitted in front of numbers" (proxy-protocol.txt 2.1, for
  // addresses and ports alike); the library reads `00080` as 80, so the text is checked here.
  const fields = line.toString('latin1', 0, consumed - 2).split(' ');
  if (fields.length !== 6 || !V1_PORT.test(fields[4]) || !V1_PORT.test(fields[5])) return invalid('v1 header: ports must be decimal numbers without leading zeros');
  return {
    state: 'done',
    consumed,
    header: { version: 1, command: 'PROXY', protocol: proto, sourceAddress: src, sourcePort: sport, destinationAddress: dst, destinationPort: dport, tlvs: NO_TLVS },
  };
}

/** TCP4 wants a plain dotted quad; TCP6 an IPv6 text (which may be a mapped IPv4). */
function v1Address(text: string, want: 4 | 6): string | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) return undefined;
  // Brackets and zones are not part of the v1 grammar; normalizeIp would accept them.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 58) || c === 46 || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return undefined;
  }
  const hasColon = text.indexOf(':') >= 0;
  if (want === 4 ? hasColon : !hasColon) return undefined;
  if (ipFamily(text) === 0) return undefined;
  return normalizeIp(text);
}

/** 0..99999 as v1 may write it: no sign, no leading zero (the range is checked by isPort). */
const V1_PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 65535;
}

function errorMessage(err: unknown): string {
  const m = (err as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : String(err);
}

/** Address block length per v2 family nibble: UNSPEC, INET, INET6, UNIX. */
const V2_ADDRESS_LENGTH = [0, 12, 36, 216];

function frameV2(buf: Buffer, maxV2Length: number): ProxyReadResult {
  const n = buf.length;
  const m = Math.min(n, 12);
  for (let i = 0; i < m; i++) if (buf[i] !== V2_SIGNATURE[i]) return invalid('not a PROXY protocol header');
  // Reject a wrong version as soon as its byte arrives rather than waiting for a length.
  if (n > 12 && buf[12] >> 4 !== 2) return invalid(`v2 header: unsupported version ${buf[12] >> 4}`);
  if (n < 16) return NEED_MORE;
  const total = 16 + buf.readUInt16BE(14);
  if (total > maxV2Length) return invalid(`v2 header: declared length ${total - 16} exceeds the limit`);
  if (n < total) return NEED_MORE;
  return parseV2(buf.subarray(0, total));
}

function parseV2(h: Buffer): ProxyReadResult {
  const total = h.length;
  const cmd = h[12] & 0x0f;
  const fam = h[13] >> 4;
  const transport = h[13] & 0x0f;
  if (cmd === 0x0) {
    // LOCAL: the spec says to ignore the address block, family included. TLVs, if they are
    // readable, are kept (they cost nothing and help debugging); unreadable ones are dropped.
    const addrLen = fam < 4 ? V2_ADDRESS_LENGTH[fam] : -1;
    let tlvs: TlvFields | string = EMPTY_FIELDS;
    if (addrLen >= 0 && total - 16 >= addrLen) tlvs = readTlvs(h, 16 + addrLen);
    const fields = typeof tlvs === 'string' ? EMPTY_FIELDS : tlvs;
    return { state: 'done', consumed: total, header: { version: 2, command: 'LOCAL', protocol: 'UNKNOWN', ...fields } };
  }
  if (cmd !== 0x1) return invalid(`v2 header: unknown command ${cmd}`);
  if (fam > 3) return invalid(`v2 header: unknown address family ${fam}`);
  if (transport > 2) return invalid(`v2 header: unknown transport ${transport}`);
  const addrLen = V2_ADDRESS_LENGTH[fam];
  if (total - 16 < addrLen) return invalid('v2 header: declared length shorter than the address block');

  let parsed: V2ProxyProtocol;
  try {
    parsed = V2ProxyProtocol.parse(h);
  } catch (err) {
    return invalid(`v2 header: ${errorMessage(err)}`);
  }
  const tlvs = readTlvs(h, 16 + addrLen);
  if (typeof tlvs === 'string') return invalid(`v2 header: ${tlvs}`);

  const pa = parsed.proxyAddress;
  let protocol: ProxyProtocolFamily = 'UNKNOWN';
  let src: string | undefined;
  let dst: string | undefined;
  let sport: number | undefined;
  let dport: number | undefined;
  if (transport !== 0 && (pa instanceof IPv4ProxyAddress || pa instanceof IPv6ProxyAddress)) {
    src = formatIpBytes(pa.sourceAddress.address);
    dst = formatIpBytes(pa.destinationAddress.address);
    sport = pa.sourcePort;
    dport = pa.destinationPort;
    if (src === undefined || dst === undefined || !isPort(sport) || !isPort(dport)) return invalid('v2 header: unreadable address block');
    const v4 = pa instanceof IPv4ProxyAddress;
    protocol = transport === 1 ? (v4 ? 'TCP4' : 'TCP6') : v4 ? 'UDP4' : 'UDP6';
  } else if (fam === 3) {
    protocol = 'UNIX';
  }
  const header: ProxyHeader =
    src === undefined
      ? { version: 2, command: 'PROXY', protocol, ...tlvs }
      : { version: 2, command: 'PROXY', protocol, sourceAddress: src, sourcePort: sport, destinationAddress: dst, destinationPort: dport, ...tlvs };
  return { state: 'done', consumed: total, header };
}

interface TlvFields {
  tlvs: readonly ProxyTlv[];
  alpn?: string;
  authority?: string;
  awsVpceId?: string;
  sslClient?: boolean;
}
const EMPTY_FIELDS: TlvFields = { tlvs: NO_TLVS };

/** Decodes the TLVs in h[start, end); a string is the reason they are malformed. */
function readTlvs(h: Buffer, start: number): TlvFields | string {
  const end = h.length;
  if (start === end) return EMPTY_FIELDS;
  const out: TlvFields = { tlvs: [] };
  const list: ProxyTlv[] = [];
  let off = start;
  while (off < end) {
    if (off + 3 > end) return 'truncated TLV';
    const type = h[off];
    const len = h.readUInt16BE(off + 1);
    const vs = off + 3;
    const ve = vs + len;
    if (ve > end) return `TLV 0x${type.toString(16)} runs past the header`;
    // Copied so that keeping the header does not keep the whole first read buffer alive.
    const value = len === 0 ? EMPTY : Buffer.from(h.subarray(vs, ve));
    list.push({ type, value });
    switch (type) {
      case PP2_TYPE_ALPN:
        out.alpn = value.toString('latin1');
        break;
      case PP2_TYPE_AUTHORITY:
        out.authority = value.toString('utf8');
        break;
      case PP2_TYPE_CRC32C: {
        if (len !== 4) return 'CRC32C TLV must be 4 bytes';
        if (crc32cWithHole(h, vs) !== value.readUInt32BE(0)) return 'CRC32C checksum mismatch';
        break;
      }
      case PP2_TYPE_SSL:
        // client bits (1 byte), verify (4 bytes), then sub-TLVs kept raw.
        if (len >= 1) out.sslClient = (value[0] & 0x01) !== 0;
        break;
      case PP2_TYPE_AWS:
        if (len >= 1 && value[0] === PP2_SUBTYPE_AWS_VPCE_ID) out.awsVpceId = value.toString('latin1', 1);
        break;
      default:
        break;
    }
    off = ve;
  }
  out.tlvs = list;
  return out;
}

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, for PP2_TYPE_CRC32C.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of the whole header with the 4 checksum bytes at `hole` taken as zero (as specified). */
function crc32cWithHole(h: Buffer, hole: number): number {
  let c = 0xffffffff;
  for (let i = 0; i < h.length; i++) {
    const b = i >= hole && i < hole + 4 ? 0 : h[i];
    c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32C of `data` (exported for tests and for building headers). */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The address that replaces the socket peer: the source of a PROXY-command TCP4/TCP6 header,
 * else undefined (LOCAL, UNKNOWN, UDP, UNIX: the socket address stands).
 */
export function proxySourceAddress(h: Pick<ProxyHeader, 'command' | 'protocol' | 'sourceAddress'> | undefined): string | undefined {
  if (h === undefined || h.command !== 'PROXY' || (h.protocol !== 'TCP4' && h.protocol !== 'TCP6')) return undefined;
  return h.sourceAddress;
}

export type ConnectionStart = 'proxy-v1' | 'proxy-v2' | 'tls' | 'http' | 'unknown' | 'need-more';

/** Longest request-method token waited for before calling the bytes 'unknown'. */
const MAX_METHOD = 24;

/**
 * What a connection's first bytes look like, to tell a PROXY header from a client speaking
 * HTTP or TLS directly. 'need-more' only while the bytes so far could still be either.
 */
export function classifyConnectionStart(input: Uint8Array): ConnectionStart {
  const n = input.length;
  if (n === 0) return 'need-more';
  const b0 = input[0];
  if (b0 === 0x0d) {
    const m = Math.min(n, 12);
    for (let i = 0; i < m; i++) if (input[i] !== V2_SIGNATURE[i]) return 'unknown';
    return n >= 12 ? 'proxy-v2' : 'need-more';
  }
  if (b0 === 0x16) {
    // TLS record: handshake (22), then the record-layer major version 3.
    if (n < 2) return 'need-more';
    return input[1] === 0x03 ? 'tls' : 'unknown';
  }
  let proxyPrefix = true;
  const m = Math.min(n, V1_PREFIX.length);
  for (let i = 0; i < m; i++) {
    if (input[i] !== V1_PREFIX[i]) {
      proxyPrefix = false;
      break;
    }
  }
  if (proxyPrefix && n >= V1_PREFIX.length) return 'proxy-v1';
  // HTTP/1.x request line or the HTTP/2 preface (`PRI * ...`): an uppercase token, then a space.
  if (b0 < 0x41 || b0 > 0x5a) return 'unknown';
  const limit = Math.min(n, MAX_METHOD + 1);
  for (let i = 1; i < limit; i++) {
    const c = input[i];
    if (c === 0x20) return proxyPrefix ? 'need-more' : 'http';
    if (!((c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f)) return 'unknown';
  }
  return n > MAX_METHOD ? 'unknown' : 'need-more';
}
