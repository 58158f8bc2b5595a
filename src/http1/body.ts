// Finds where a message body ends while its bytes are relayed unchanged: by Content-Length, by
// chunked framing, or (responses only) by the connection closing.

import { ChunkedFramer, type ChunkedProgress } from './chunked.ts';
import type { BodyFraming } from './response-head.ts';

export class BodyFramer {
  readonly framing: BodyFraming;
  private remaining: number;
  readonly chunked: ChunkedFramer | undefined;
  /** Body bytes passed (framing included for chunked). */
  bytes = 0;
  private finished: boolean;

  constructor(framing: BodyFraming, contentLength: number) {
    this.framing = framing;
    this.remaining = framing === 'length' ? contentLength : 0;
    this.chunked = framing === 'chunked' ? new ChunkedFramer() : undefined;
    this.finished = framing === 'none' || (framing === 'length' && contentLength <= 0);
  }

  get done(): boolean {
    return this.finished;
  }

  /** Consumes what belongs to this body from buf[start..]. Close-delimited bodies take everything. */
  feed(buf: Buffer, start: number): ChunkedProgress {
    if (this.finished) return { consumed: 0, done: true };
    const avail = buf.length - start;
    switch (this.framing) {
      case 'length': {
        const n = Math.min(avail, this.remaining);
        this.remaining -= n;
        this.bytes += n;
        if (this.remaining === 0) this.finished = true;
        return { consumed: n, done: this.finished };
      }
      case 'chunked': {
        const r = this.chunked!.feed(buf, start);
        this.bytes += r.consumed;
        if (r.done) this.finished = true;
        return r;
      }
      default:
        this.bytes += avail;
        return { consumed: avail, done: false };
    }
  }

  /** The peer closed: a close-delimited body is complete; any other is truncated. */
  endOfInput(): boolean {
    if (this.framing === 'close') this.finished = true;
    return this.finished;
  }
}
