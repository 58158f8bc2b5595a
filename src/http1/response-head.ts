// The upstream side of the fast path: parse a response head only as far as relaying needs (status,
// the header fields to pass on, and the framing of the body), strict enough that a backend cannot
// make the client and Portico read different message boundaries (RFC 9112 6.3).

import { FIELD, TCHAR, commonName, digits, isNamed, tokens } from './head-parser.ts';

export interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  readonly versionMinor: 0 | 1;
  /** Names and values as sent, alternating (made on first use: the relay copies fields as bytes). */
  readonly rawHeaders: string[];
  /** The bytes the head was parsed from (buf[start..start+headLength]). */
  readonly buf: Buffer;
  /** Field names as sent, in order. */
  readonly names: readonly string[];
  /**
   * Per field, FIELD_STRIDE offsets into buf: name start, value start, value end (before
   * trailing whitespace), line end (after its CRLF).
   */
  readonly fields: readonly number[];
  /** Content-Length, or -1 when none. */
  readonly contentLength: number;
  /** Transfer-Encoding is (exactly) chunked. */
  readonly chunked: boolean;
  /** The upstream allows another request on this connection after this response. */
  readonly keepAlive: boolean;
  /** Lower-case tokens of the Connection header. */
  readonly connectionTokens: string[];
  /** Bytes of the head, including the final CRLF CRLF. */
  readonly headLength: number;
}

export type ResponseParse =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly reason: string }
  | { readonly kind: 'ok'; readonly head: ResponseHead };

const INCOMPLETE: ResponseParse = { kind: 'incomplete' };

export const FIELD_STRIDE = 4;

class ParsedResponseHead implements ResponseHead {
  readonly status: number;
  readonly reason: string;
  readonly versionMinor: 0 | 1;
  readonly buf: Buffer;
  readonly names: readonly string[];
  readonly fields: readonly number[];
  readonly contentLength: number;
  readonly chunked: boolean;
  readonly keepAlive: boolean;
  readonly connectionTokens: string[];
  readonly headLength: number;
  private raw: string[] | undefined;

  constructor(status: number, reason: string, versionMinor: 0 | 1, buf: Buffer, names: string[], fields: number[], contentLength: number, chunked: boolean, keepAlive: boolean, connectionTokens: string[], headLength: number) {
    this.status = status;
    this.reason = reason;
    this.versionMinor = versionMinor;
    this.buf = buf;
    this.names = names;
    this.fields = fields;
    this.contentLength = contentLength;
    this.chunked = chunked;
    this.keepAlive = keepAlive;
    this.connectionTokens = connectionTokens;
    this.headLength = headLength;
  }

  get rawHeaders(): string[] {
    if (this.raw === undefined) {
      const raw: string[] = [];
      const f = this.fields;
      for (let i = 0; i < this.names.length; i++) raw.push(this.names[i], this.buf.toString('latin1', f[i * FIELD_STRIDE + 1], f[i * FIELD_STRIDE + 2]));
      this.raw = raw;
    }
    return this.raw;
  }
}

/** A field value as a string: the usual Connection values are constants. */
function valueString(buf: Buffer, start: number, end: number): string {
  if (end - start === 10 && same(buf, start, KEEP_ALIVE)) return 'keep-alive';
  if (end - start === 5 && same(buf, start, CLOSE)) return 'close';
  return buf.toString('latin1', start, end);
}
const KEEP_ALIVE = Buffer.from('keep-alive');
const CLOSE = Buffer.from('close');

function same(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}
// As node:http's default maxHeadersCount, so both engines take the same heads (the size limit
// is what bounds memory: --max-header-size).
const MAX_HEADERS = 2000;

const L_CONTENT_LENGTH = Buffer.from('content-length');
const L_TRANSFER_ENCODING = Buffer.from('transfer-encoding');
const L_CONNECTION = Buffer.from('connection');

function fail(reason: string): ResponseParse {
  return { kind: 'error', reason };
}

/** Parses a response head from buf[start..]; a head larger than maxSize is an error. */
export function parseResponseHead(buf: Buffer, start: number, maxSize: number): ResponseParse {
  const end = buf.length;
  let p = start;
  // Status line: HTTP/1.x SP 3DIGIT SP reason CRLF (the reason may be empty; some servers omit the SP).
  if (end - p < 12) return prefixOk(buf, p, end) ? INCOMPLETE : fail('malformed status line');
  if (buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 5] !== 49 || buf[p + 6] !== 46 ||
      (buf[p + 7] !== 48 && buf[p + 7] !== 49) || buf[p + 8] !== 32 || !isDigit(buf[p + 9]) || !isDigit(buf[p + 10]) || !isDigit(buf[p + 11])) {
    return fail('malformed status line');
  }
  const minor = (buf[p + 7] - 48) as 0 | 1;
  const status = (buf[p + 9] - 48) * 100 + (buf[p + 10] - 48) * 10 + (buf[p + 11] - 48);
  if (status < 100) return fail('malformed status code');
  p += 12;
  let reason = '';
  if (p < end && buf[p] === 32) {
    const rs = ++p;
    while (p < end && FIELD[buf[p]] === 1) p++;
    reason = p - rs === 2 && buf[rs] === 79 && buf[rs + 1] === 75 ? 'OK' : buf.toString('latin1', rs, p);
  }
  if (p + 1 >= end) return end - start > maxSize ? fail('response head too large') : INCOMPLETE;
  if (buf[p] !== 13 || buf[p + 1] !== 10) return fail('malformed status line');
  p += 2;

  const names: string[] = [];
  const fields: number[] = [];
  // Names that are not common constants are cut from one decode of the head once it is complete
  // (names[i] is '' until then): a buf.toString each is a native call.
  let uncommon = 0;
  let contentLength = -1;
  let te: string | undefined;
  let connection = '';
  for (;;) {
    if (p >= end) return end - start > maxSize ? fail('response head too large') : INCOMPLETE;
    if (buf[p] === 13) {
      if (p + 1 >= end) return INCOMPLETE;
      if (buf[p + 1] !== 10) return fail('bare CR');
      p += 2;
      break;
    }
    if (buf[p] === 32 || buf[p] === 9) return fail('obs-fold in a response header');
    const nameStart = p;
    while (p < end && TCHAR[buf[p]] === 1) p++;
    if (p === end) return end - start > maxSize ? fail('response head too large') : INCOMPLETE;
    if (buf[p] !== 58 || p === nameStart) return fail('malformed response header name');
    const nameEnd = p;
    const name = commonName(buf, nameStart, nameEnd);
    if (name === undefined) uncommon++;
    p++;
    while (p < end && (buf[p] === 32 || buf[p] === 9)) p++;
    const valueStart = p;
    while (p < end && FIELD[buf[p]] === 1) p++;
    if (p + 1 >= end) return end - start > maxSize ? fail('response head too large') : INCOMPLETE;
    if (buf[p] !== 13 || buf[p + 1] !== 10) return fail('control character or bare LF in a response header');
    let valueEnd = p;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
    p += 2;
    if (p - start > maxSize) return fail('response head too large');
    if (names.length >= MAX_HEADERS) return fail('too many response header fields');
    names.push(name ?? '');
    fields.push(nameStart, valueStart, valueEnd, p);
    // Only the framing fields' values are read here; the others are relayed as bytes.
    const n = nameEnd - nameStart;
    // A common name is its constant (the exact spellings): compared by identity, not byte by byte.
    if (n === 14 && (name !== undefined ? name === 'Content-Length' || name === 'content-length' : isNamed(buf, nameStart, L_CONTENT_LENGTH))) {
      // A repeated identical value is tolerated (RFC 9110 8.6 allows folding it); differing ones are not.
      const len = digits(buf, valueStart, valueEnd);
      if (len < 0) return fail('malformed Content-Length in the response');
      if (contentLength !== -1 && contentLength !== len) return fail('conflicting Content-Length in the response');
      contentLength = len;
    } else if (n === 17 && (name !== undefined ? name === 'Transfer-Encoding' || name === 'transfer-encoding' : isNamed(buf, nameStart, L_TRANSFER_ENCODING))) {
      const value = buf.toString('latin1', valueStart, valueEnd);
      te = te === undefined ? value : `${te}, ${value}`;
    } else if (n === 10 && (name !== undefined ? name === 'Connection' || name === 'connection' : isNamed(buf, nameStart, L_CONNECTION))) {
      const value = valueString(buf, valueStart, valueEnd);
      connection = connection === '' ? value : `${connection},${value}`;
    }
  }
  if (uncommon > 0) {
    const text = buf.toString('latin1', start, p);
    for (let i = 0; i < names.length; i++) {
      if (names[i] !== '') continue;
      // A name is tchar, which has no colon: it ends at the first one.
      const from = fields[i * FIELD_STRIDE] - start;
      names[i] = text.slice(from, text.indexOf(':', from));
    }
  }
  let chunked = false;
  if (te !== undefined) {
    // Anything but exactly `chunked` leaves the body close-delimited with a coding the client would
    // have to undo: refused rather than guessed at.
    if (te.trim().toLowerCase() !== 'chunked') return fail(`unsupported response Transfer-Encoding ${te}`);
    chunked = true;
  }
  const connectionTokens = connection === '' ? [] : tokens(connection);
  const keepAlive = minor === 1 ? !connectionTokens.includes('close') : connectionTokens.includes('keep-alive');
  return { kind: 'ok', head: new ParsedResponseHead(status, reason, minor, buf, names, fields, contentLength, chunked, keepAlive, connectionTokens, p - start) };
}

const PREFIX = Buffer.from('HTTP/1.');

function prefixOk(buf: Buffer, p: number, end: number): boolean {
  const n = Math.min(end - p, PREFIX.length);
  return buf.compare(PREFIX, 0, n, p, p + n) === 0;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** How a response body is delimited (RFC 9112 6.3). */
export type BodyFraming = 'none' | 'length' | 'chunked' | 'close';

export function responseFraming(head: ResponseHead, requestMethod: string): BodyFraming {
  const s = head.status;
  if (requestMethod === 'HEAD' || s < 200 || s === 204 || s === 304) return 'none';
  // Transfer-Encoding overrides Content-Length (RFC 9112 6.3 item 3); the relay drops the length.
  if (head.chunked) return 'chunked';
  if (head.contentLength >= 0) return head.contentLength === 0 ? 'none' : 'length';
  return 'close';
}
