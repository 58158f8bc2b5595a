// Incremental TLS ClientHello parser: reads SNI (RFC 6066) and ALPN (RFC 7301) from the first
// flight of a TLS connection without terminating it, for TLS passthrough.
//
// Layout (RFC 8446 section 5.1 and 4.1.2, RFC 5246 section 6.2 and 7.4.1.2):
//   record:    type(1)=22 | legacy_record_version(2) | length(2, <= 2^14) | fragment
//   handshake: msg_type(1)=1 | length(3) | body            (may be split over several records)
//   body:      legacy_version(2) | random(32) | session_id<0..32> | cipher_suites<2..2^16-2>
//              | compression_methods<1..2^8-1> | [extensions<0..2^16-1>]
//   extension: type(2) | length(2) | data
//
// The parser never throws and never reads past what it holds: every read is bounds-checked
// against both the bytes received and the lengths the message declares.

import type { Socket } from 'node:net';

export type ClientHelloErrorReason =
  | 'not-tls' // the first bytes are not a TLS handshake record carrying a ClientHello
  | 'malformed' // lengths or fields that contradict each other or the RFCs
  | 'invalid-sni' // a server_name that is not a valid host name per RFC 6066
  | 'too-large' // more bytes than the cap before the ClientHello completed
  | 'truncated' // (peek only) the peer closed before a complete ClientHello
  | 'no-data' // (peek only) the peer closed without sending anything
  | 'timeout' // (peek only) no complete ClientHello within the time limit
  | 'socket-error'; // (peek only) the socket failed while reading

export interface ClientHelloOk {
  ok: true;
  /** Lowercased host name from the server_name extension; absent when the client sent none. */
  serverName?: string;
  /** ALPN protocol names in client preference order; empty when the client sent none. */
  alpn: string[];
  /** Bytes of input up to the end of the record that completed the ClientHello. */
  consumedBytes: number;
  /** legacy_version of the ClientHello, e.g. 0x0303. */
  legacyVersion: number;
  /** Whether a supported_versions extension offers TLS 1.3 (0x0304). */
  offersTls13: boolean;
}

export interface ClientHelloFailure {
  ok: false;
  error: ClientHelloErrorReason;
  /** Human-readable explanation, for logs; never fed back to the peer. */
  detail: string;
}

export type ClientHelloResult = 'need-more' | ClientHelloOk | ClientHelloFailure;

/** Plenty for every real ClientHello (post-quantum key shares are ~1.2 KiB) plus a full record. */
export const DEFAULT_MAX_CLIENTHELLO_BYTES = 32 * 1024;

const RECORD_HEADER = 5;
const MAX_RECORD_PAYLOAD = 1 << 14;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
// version(2) random(32) session_id len(1) cipher_suites len(2)+one suite(2) compression len(1)+one(1)
const MIN_CLIENT_HELLO_BODY = 41;

function fail(error: ClientHelloErrorReason, detail: string): ClientHelloFailure {
  return { ok: false, error, detail };
}

/** Growable byte buffer: appending one byte at a time stays amortised O(1). */
class ByteBuffer {
  bytes: Buffer;
  length = 0;
  constructor(initial: number) {
    this.bytes = Buffer.allocUnsafe(initial);
  }
  append(chunk: Uint8Array, start = 0, end = chunk.length): void {
    const n = end - start;
    if (n <= 0) return;
    if (this.length + n > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + n));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    this.bytes.set(chunk.subarray(start, end), this.length);
    this.length += n;
  }
  view(): Buffer {
    return this.bytes.subarray(0, this.length);
  }
}

/**
 * Feed it the bytes of a connection as they arrive; each push answers 'need-more' until the
 * ClientHello is complete (ok) or provably bad (error). Once decided, the answer is final and
 * later pushes only add to `buffered()`.
 */
export class ClientHelloParser {
  readonly maxBytes: number;
  private readonly raw: ByteBuffer;
  private readonly handshake: ByteBuffer;
  /** Offset in `raw` of the next record header not yet consumed. */
  private recordOffset = 0;
  /** Payload bytes of the record at recordOffset already appended to `handshake`. */
  private recordTaken = 0;
  private readonly reader: HelloReader;
  private decided: ClientHelloOk | ClientHelloFailure | undefined;

  constructor(maxBytes = DEFAULT_MAX_CLIENTHELLO_BYTES) {
    // Below one full record the parser could refuse legitimate hellos, so keep a floor.
    this.maxBytes = Math.max(Math.floor(maxBytes) || 0, RECORD_HEADER + MAX_RECORD_PAYLOAD);
    this.raw = new ByteBuffer(1024);
    this.handshake = new ByteBuffer(1024);
    this.reader = new HelloReader(this.maxBytes);
  }

  /** Everything pushed so far, in order: the bytes to replay to the backend. */
  buffered(): Buffer {
    return this.raw.view();
  }

  result(): ClientHelloResult {
    return this.decided ?? 'need-more';
  }

  push(chunk: Uint8Array): ClientHelloResult {
    this.raw.append(chunk);
    if (this.decided !== undefined) return this.decided;
    const r = this.advance();
    if (r !== 'need-more') {
      this.decided = r;
      return r;
    }
    if (this.raw.length >= this.maxBytes) {
      this.decided = fail('too-large', `no complete ClientHello within ${this.maxBytes} bytes`);
      return this.decided;
    }
    return r;
  }

  private advance(): ClientHelloResult {
    const raw = this.raw.bytes;
    // Only the first maxBytes bytes count, so the answer never depends on how input was chunked.
    const total = Math.min(this.raw.length, this.maxBytes);
    // Walk the records; check each header as soon as its bytes are in so garbage (an HTTP
    // request on a TLS port) is refused on its first byte rather than after a timeout.
    for (;;) {
      const at = this.recordOffset;
      const first = at === 0;
      const avail = total - at;
      if (avail >= 1 && raw[at] !== CONTENT_HANDSHAKE) {
        if (first) {
          const b = raw[at];
          const hint = b >= 0x80 ? ' (SSLv2-style hello is not supported)' : b >= 0x20 && b < 0x7f ? ' (plain text?)' : '';
          return fail('not-tls', `first byte 0x${hex2(b)} is not a TLS handshake record${hint}`);
        }
        return fail('malformed', `record of content type ${raw[at]} before the ClientHello was complete`);
      }
      if (avail >= 2 && raw[at + 1] !== 3) {
        return fail(first ? 'not-tls' : 'malformed', `record version major ${raw[at + 1]} is not 3`);
      }
      if (avail < RECORD_HEADER) return 'need-more';
      const len = (raw[at + 3] << 8) | raw[at + 4];
      if (len === 0) return fail('malformed', 'zero-length handshake record');
      if (len > MAX_RECORD_PAYLOAD) return fail('malformed', `record length ${len} exceeds 2^14`);
      // Refuse at the header a record that can never fit under the cap.
      if (at + RECORD_HEADER + len > this.maxBytes) return fail('too-large', `record would end past the ${this.maxBytes}-byte cap`);
      // Payload is taken as it arrives, so a bad field is refused without waiting for the rest
      // of a large record.
      const got = Math.min(len, avail - RECORD_HEADER);
      if (got > this.recordTaken) {
        this.handshake.append(raw, at + RECORD_HEADER + this.recordTaken, at + RECORD_HEADER + got);
        this.recordTaken = got;
      }
      const complete = got === len;
      const r = this.reader.run(this.handshake.view());
      if (r !== 'need-more') {
        if (r.ok) r.consumedBytes = at + RECORD_HEADER + len;
        return r;
      }
      if (!complete) return 'need-more';
      this.recordOffset = at + RECORD_HEADER + len;
      this.recordTaken = 0;
    }
  }
}

/** One-shot parse of a buffer that starts at the first byte of the connection. */
export function parseClientHello(data: Uint8Array, maxBytes = DEFAULT_MAX_CLIENTHELLO_BYTES): ClientHelloResult {
  return new ClientHelloParser(maxBytes).push(data);
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

// Parse stages of HelloReader (a const object: enums are not erasable syntax).
const STAGE = {
  header: 0,
  fixed: 1,
  sessionId: 2,
  cipherSuites: 3,
  compression: 4,
  extensionsLength: 5,
  extensions: 6,
} as const;
type Stage = (typeof STAGE)[keyof typeof STAGE];

/**
 * Resumable reader of the handshake stream (record payloads concatenated): each run continues
 * where the last stopped and consumes only whole fields, so feeding a hello one byte at a time
 * costs O(bytes + fields) in total, and the answer depends on the bytes only, never on how they
 * were chunked. A field that runs past the declared ClientHello length is malformed; one that
 * runs past the bytes received so far is 'need-more'.
 */
class HelloReader {
  private readonly maxBytes: number;
  private stage: Stage = STAGE.header;
  /** Next unread offset in the handshake stream. */
  private p = 0;
  /** End of the ClientHello body in the handshake stream. */
  private end = 0;
  /** Length prefix read for the field the current stage consumes. */
  private pending = 0;
  private legacyVersion = 0;
  private readonly seen = new Set<number>();
  private serverName: string | undefined;
  private alpn: string[] = [];
  private offersTls13 = false;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  private done(): ClientHelloOk {
    const base = { ok: true as const, alpn: this.alpn, consumedBytes: 0, legacyVersion: this.legacyVersion, offersTls13: this.offersTls13 };
    return this.serverName === undefined ? base : { ...base, serverName: this.serverName };
  }

  /** 'ok' when buf holds n more bytes at p, else whether they overrun the message or just have not arrived. */
  private need(n: number, avail: number): 'ok' | 'need-more' | 'overflow' {
    return this.p + n > this.end ? 'overflow' : this.p + n > avail ? 'need-more' : 'ok';
  }

  run(buf: Buffer): ClientHelloResult {
    const avail = buf.length;
    for (;;) {
      switch (this.stage) {
        case STAGE.header: {
          if (avail >= 1 && buf[0] !== HANDSHAKE_CLIENT_HELLO) return fail('not-tls', `first handshake message is type ${buf[0]}, not client_hello`);
          if (avail < 4) return 'need-more';
          const bodyLen = (buf[1] << 16) | (buf[2] << 8) | buf[3];
          if (bodyLen < MIN_CLIENT_HELLO_BODY) return fail('malformed', `ClientHello length ${bodyLen} is below the minimum`);
          if (bodyLen + 4 > this.maxBytes) return fail('too-large', `ClientHello length ${bodyLen} exceeds the ${this.maxBytes}-byte cap`);
          this.p = 4;
          this.end = 4 + bodyLen;
          this.stage = STAGE.fixed;
          break;
        }
        case STAGE.fixed: {
          // legacy_version, random, session id length; the minimum body length guarantees room.
          if (this.need(35, avail) !== 'ok') return 'need-more';
          const p = this.p;
          this.legacyVersion = (buf[p] << 8) | buf[p + 1];
          if (buf[p] !== 3) return fail('not-tls', `ClientHello version 0x${this.legacyVersion.toString(16)} is not TLS`);
          this.pending = buf[p + 34];
          if (this.pending > 32) return fail('malformed', `session id length ${this.pending} exceeds 32`);
          this.p += 35;
          this.stage = STAGE.sessionId;
          break;
        }
        case STAGE.sessionId: {
          const c = this.need(this.pending + 2, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', 'session id overruns the ClientHello') : 'need-more';
          this.p += this.pending;
          this.pending = (buf[this.p] << 8) | buf[this.p + 1];
          this.p += 2;
          if (this.pending < 2 || this.pending % 2 !== 0) return fail('malformed', `cipher_suites length ${this.pending} is invalid`);
          this.stage = STAGE.cipherSuites;
          break;
        }
        case STAGE.cipherSuites: {
          const c = this.need(this.pending + 1, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', 'cipher_suites overrun the ClientHello') : 'need-more';
          this.p += this.pending;
          this.pending = buf[this.p];
          this.p += 1;
          if (this.pending < 1) return fail('malformed', 'empty compression_methods');
          this.stage = STAGE.compression;
          break;
        }
        case STAGE.compression: {
          const c = this.need(this.pending, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', 'compression_methods overrun the ClientHello') : 'need-more';
          this.p += this.pending;
          // TLS 1.2 and earlier allow a ClientHello without an extensions block.
          if (this.p === this.end) return this.done();
          this.stage = STAGE.extensionsLength;
          break;
        }
        case STAGE.extensionsLength: {
          const c = this.need(2, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', 'one stray byte after compression_methods') : 'need-more';
          const extLen = (buf[this.p] << 8) | buf[this.p + 1];
          this.p += 2;
          if (this.p + extLen !== this.end) return fail('malformed', `extensions length ${extLen} does not match the ClientHello length`);
          this.stage = STAGE.extensions;
          break;
        }
        case STAGE.extensions: {
          if (this.p === this.end) return this.done();
          let c = this.need(4, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', 'extension header overruns the extensions block') : 'need-more';
          const p = this.p;
          const type = (buf[p] << 8) | buf[p + 1];
          const len = (buf[p + 2] << 8) | buf[p + 3];
          // RFC 8446 4.2: at most one extension of a given type.
          if (this.seen.has(type)) return fail('malformed', `extension ${type} appears twice`);
          c = this.need(4 + len, avail);
          if (c !== 'ok') return c === 'overflow' ? fail('malformed', `extension ${type} overruns the extensions block`) : 'need-more';
          const r = this.extension(buf, type, p + 4, p + 4 + len);
          if (r !== undefined) return r;
          this.seen.add(type);
          this.p = p + 4 + len;
          break;
        }
      }
    }
  }

  /** Reads one complete extension; a failure ends the parse. */
  private extension(buf: Buffer, type: number, from: number, to: number): ClientHelloFailure | undefined {
    if (type === EXT_SERVER_NAME) {
      const r = parseServerName(buf, from, to);
      if (typeof r !== 'string') return r;
      this.serverName = r;
    } else if (type === EXT_ALPN) {
      const r = parseAlpn(buf, from, to);
      if (!Array.isArray(r)) return r;
      this.alpn = r;
    } else if (type === EXT_SUPPORTED_VERSIONS) {
      // ClientHello form: versions<2..254> of 2-byte entries.
      const n = to > from ? buf[from] : -1;
      if (n < 2 || n % 2 !== 0 || n + 1 !== to - from) return fail('malformed', 'supported_versions is malformed');
      for (let i = from + 1; i < to; i += 2) if (buf[i] === 3 && buf[i + 1] === 4) this.offersTls13 = true;
    }
    return undefined;
  }
}

/** server_name extension data in buf[from, to): ServerNameList<1..2^16-1>. */
function parseServerName(buf: Buffer, from: number, to: number): string | ClientHelloFailure {
  if (to - from < 2) return fail('malformed', 'server_name extension is too short');
  const listLen = (buf[from] << 8) | buf[from + 1];
  if (listLen === 0 || from + 2 + listLen !== to) return fail('malformed', 'server_name list length is wrong');
  let p = from + 2;
  let host: string | undefined;
  while (p < to) {
    const nameType = buf[p];
    // Only host_name(0) is defined; its 2-byte length is how every known entry is framed, and an
    // unknown type cannot be skipped reliably, so it is refused rather than guessed at.
    if (nameType !== 0) return fail('malformed', `server_name entry of unknown type ${nameType}`);
    if (p + 3 > to) return fail('malformed', 'server_name entry overruns its list');
    const n = (buf[p + 1] << 8) | buf[p + 2];
    p += 3;
    if (n === 0 || p + n > to) return fail('malformed', 'server_name host_name length is wrong');
    // RFC 6066 section 3: at most one name per name_type.
    if (host !== undefined) return fail('malformed', 'server_name lists two host names');
    const problem = hostNameProblem(buf, p, p + n);
    if (problem !== undefined) return fail('invalid-sni', problem);
    host = buf.toString('latin1', p, p + n).toLowerCase();
    p += n;
  }
  return host as string;
}

/**
 * RFC 6066: "the fully qualified DNS hostname ... ASCII ... without a trailing dot"; literal IP
 * addresses are not permitted. Labels are letters, digits, '-' and '_' (seen in the wild).
 */
function hostNameProblem(buf: Buffer, from: number, to: number): string | undefined {
  const len = to - from;
  if (len > 253) return `server_name of ${len} bytes exceeds 253`;
  let labelStart = from;
  let allDigitsOrDots = true;
  for (let i = from; i <= to; i++) {
    const ch = i < to ? buf[i] : 0x2e;
    if (ch === 0x2e) {
      const labelLen = i - labelStart;
      if (labelLen === 0) return i === to ? 'server_name has a trailing dot' : 'server_name has an empty label';
      if (labelLen > 63) return 'server_name has a label over 63 bytes';
      if (buf[labelStart] === 0x2d || buf[i - 1] === 0x2d) return 'server_name has a label starting or ending with "-"';
      labelStart = i + 1;
      continue;
    }
    const lower = ch | 0x20;
    const isDigit = ch >= 0x30 && ch <= 0x39;
    if (!isDigit) allDigitsOrDots = false;
    if (!(isDigit || (lower >= 0x61 && lower <= 0x7a) || ch === 0x2d || ch === 0x5f)) {
      return ch >= 0x80 ? 'server_name is not ASCII' : `server_name contains byte 0x${hex2(ch)}`;
    }
  }
  if (allDigitsOrDots) return 'server_name is an IP address literal';
  return undefined;
}

/** ALPN extension data: ProtocolNameList<2..2^16-1> of ProtocolName<1..2^8-1>. */
function parseAlpn(buf: Buffer, from: number, to: number): string[] | ClientHelloFailure {
  if (to - from < 2) return fail('malformed', 'ALPN extension is too short');
  const listLen = (buf[from] << 8) | buf[from + 1];
  if (listLen < 2 || from + 2 + listLen !== to) return fail('malformed', 'ALPN list length is wrong');
  const out: string[] = [];
  let p = from + 2;
  while (p < to) {
    const n = buf[p];
    p += 1;
    if (n === 0 || p + n > to) return fail('malformed', 'ALPN protocol name length is wrong');
    // Protocol names are opaque bytes; latin1 keeps each byte as one char, so nothing is lost.
    out.push(buf.toString('latin1', p, p + n));
    p += n;
  }
  return out;
}

export interface PeekOptions {
  /** Give up after this long without a decision. Default 10 s. */
  timeoutMs?: number;
  /** Cap on buffered bytes before a decision. Default 32 KiB; never below one full record. */
  maxBytes?: number;
}

export type PeekResult = (ClientHelloOk | ClientHelloFailure) & { buffered: Buffer };

/**
 * Reads from `socket` until the ClientHello can be judged, then leaves the socket paused with no
 * listeners of ours attached. `buffered` holds every byte read: write it to the backend (or
 * `socket.unshift` it to terminate TLS locally) before resuming the socket. Never rejects.
 *
 * The caller must attach its own 'error' listener right after the await (no I/O event can run in
 * between, so none is lost).
 */
export function peekClientHello(socket: Socket, options: PeekOptions = {}): Promise<PeekResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const parser = new ClientHelloParser(options.maxBytes ?? DEFAULT_MAX_CLIENTHELLO_BYTES);
  return new Promise<PeekResult>((resolve) => {
    let done = false;
    const finish = (r: ClientHelloOk | ClientHelloFailure): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve({ ...r, buffered: parser.buffered() });
    };
    const onData = (chunk: Buffer): void => {
      let r: ClientHelloResult;
      try {
        r = parser.push(chunk);
      } catch (err) {
        // Defensive only: the parser is written (and fuzzed) never to throw.
        r = fail('malformed', `parser failure: ${(err as Error).message}`);
      }
      if (r !== 'need-more') finish(r);
    };
    const closedEarly = (): void => {
      if (parser.buffered().length === 0) finish(fail('no-data', 'peer closed before sending anything'));
      else finish(fail('truncated', `peer closed after ${parser.buffered().length} bytes, before a complete ClientHello`));
    };
    const onEnd = (): void => closedEarly();
    const onClose = (): void => closedEarly();
    const onError = (err: Error): void => finish(fail('socket-error', err.message));
    const timer = setTimeout(() => finish(fail('timeout', `no complete ClientHello within ${timeoutMs} ms`)), timeoutMs);
    timer.unref?.();
    if (socket.destroyed) {
      finish(fail('socket-error', 'socket already destroyed'));
      return;
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
  });
}
