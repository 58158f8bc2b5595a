// Framing of a chunked body (RFC 9112 7.1) for relaying: the bytes pass through unchanged, this
// only finds where the message ends and refuses framing two readers could split differently
// (a size that overflows, a missing CRLF, control bytes in an extension, bare CR or LF).

const S = { Size: 0, SizeLF: 1, Ext: 2, Data: 3, DataCR: 4, DataLF: 5, TrailerStart: 6, TrailerLine: 7, TrailerLF: 8, FinalLF: 9, Done: 10 } as const;

// 15 hex digits stay below 2^60, a safe integer; more is refused as an overflow.
const MAX_SIZE_DIGITS = 15;
const MAX_TRAILER_BYTES = 16384;
const MAX_EXT_BYTES = 4096;

export interface ChunkedProgress {
  /** Bytes of the input that belong to this message. */
  readonly consumed: number;
  readonly done: boolean;
  readonly error?: string;
}

export class ChunkedFramer {
  private state: number = S.Size;
  private digits = 0;
  private size = 0;
  private remaining = 0;
  private side = 0; // bytes of extension or trailer seen, bounded
  private inName = false; // inside a trailer field name (before its colon)
  /** Data bytes seen so far (the decoded body length). */
  bodyBytes = 0;
  /** When set, receives the chunk data (without framing): for a reader that cannot take chunked. */
  onData: ((buf: Uint8Array, start: number, end: number) => void) | undefined;

  get done(): boolean {
    return this.state === S.Done;
  }

  /** Advances over buf[start..]; stops at the end of the message. */
  feed(buf: Uint8Array, start = 0): ChunkedProgress {
    let p = start;
    const end = buf.length;
    while (p < end) {
      const c = buf[p];
      switch (this.state) {
        case S.Size: {
          const h = hex(c);
          if (h >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail(p, start, 'chunk size overflow');
            this.size = this.size * 16 + h;
            p++;
            continue;
          }
          if (this.digits === 0) return this.fail(p, start, 'malformed chunk size');
          if (c === 13) this.state = S.SizeLF;
          else if (c === 59 /* ; */) { this.state = S.Ext; this.side = 0; }
          else return this.fail(p, start, 'malformed chunk size');
          p++;
          continue;
        }
        case S.Ext:
          // chunk-ext is ignored but held to tokens, '=', ';' and quotes (no whitespace or CTL, as llhttp).
          if (c === 13) this.state = S.SizeLF;
          else if (!isTchar(c) && c !== 59 && c !== 61 && c !== 34) return this.fail(p, start, 'malformed chunk extension');
          else if (++this.side > MAX_EXT_BYTES) return this.fail(p, start, 'chunk extension too long');
          p++;
          continue;
        case S.SizeLF:
          if (c !== 10) return this.fail(p, start, 'bare CR in a chunk size line');
          p++;
          this.digits = 0;
          if (this.size === 0) { this.state = S.TrailerStart; this.side = 0; } else { this.remaining = this.size; this.state = S.Data; }
          this.size = 0;
          continue;
        case S.Data: {
          const n = Math.min(this.remaining, end - p);
          if (this.onData !== undefined && n > 0) this.onData(buf, p, p + n);
          p += n;
          this.remaining -= n;
          this.bodyBytes += n;
          if (this.remaining === 0) this.state = S.DataCR;
          continue;
        }
        case S.DataCR:
          if (c !== 13) return this.fail(p, start, 'chunk data not followed by CRLF');
          this.state = S.DataLF;
          p++;
          continue;
        case S.DataLF:
          if (c !== 10) return this.fail(p, start, 'chunk data not followed by CRLF');
          this.state = S.Size;
          p++;
          continue;
        case S.TrailerStart:
          if (c === 13) { this.state = S.FinalLF; p++; continue; }
          // A trailer field line: name ":" value; obs-fold refused as in the head.
          if (c === 32 || c === 9 || !isTchar(c)) return this.fail(p, start, 'malformed trailer field');
          this.state = S.TrailerLine;
          this.inName = true;
          continue;
        case S.TrailerLine:
          if (this.inName) {
            // A trailer field name is a token ending at its colon, as a header name.
            if (c === 58) this.inName = false;
            else if (!isTchar(c)) return this.fail(p, start, 'malformed trailer field name');
          } else if (c === 13) this.state = S.TrailerLF;
          else if ((c < 32 && c !== 9) || c === 127) return this.fail(p, start, 'control character in a trailer field');
          if (++this.side > MAX_TRAILER_BYTES) return this.fail(p, start, 'trailer section too large');
          p++;
          continue;
        case S.TrailerLF:
          if (c !== 10) return this.fail(p, start, 'bare CR in a trailer field');
          this.state = S.TrailerStart;
          p++;
          continue;
        case S.FinalLF:
          if (c !== 10) return this.fail(p, start, 'bare CR after the last chunk');
          this.state = S.Done;
          p++;
          return { consumed: p - start, done: true };
        case S.Done:
          return { consumed: p - start, done: true };
      }
    }
    return { consumed: p - start, done: this.state === S.Done };
  }

  private fail(p: number, start: number, error: string): ChunkedProgress {
    return { consumed: p - start, done: false, error };
  }
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

function isTchar(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}
