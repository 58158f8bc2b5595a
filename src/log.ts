// Structured logs (pino, JSON lines). Access logs are at info, so --log-level warn silences them.
import { write as fsWrite, writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

/** pino's isoTime, with the ISO string made once per millisecond (a Date per line cost ~1 µs). */
let lastMs = -1;
let lastTime = '';
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * A line destination for the workers, where access logs are on the hot path: lines are copied
 * into a byte buffer and written asynchronously in batches (at 8 KiB, and at least every
 * 250 ms), one write in flight at a time. pino's own asynchronous destination (sonic-boom)
 * costs about 4 µs of CPU per line here against well under 1 for this. A log reader that stops
 * reading (a full pipe) never blocks serving or grows memory without bound: past `maxBuffered`
 * bytes lines are dropped and counted, and a line says how many once writing resumes.
 */
export class BufferedLineDestination {
  private buf: Buffer;
  private len = 0;
  /** The batch being written, and how much of it is out. */
  private out: Buffer | undefined;
  private outOff = 0;
  private outLen = 0;
  private dropped = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  private readonly fd: number;
  private readonly minLength: number;
  private readonly maxBuffered: number;

  constructor(fd: number, minLength = 8192, maxBuffered = 16 << 20) {
    this.fd = fd;
    this.minLength = minLength;
    this.maxBuffered = maxBuffered;
    this.buf = Buffer.allocUnsafe(Math.min(64 * 1024, maxBuffered));
  }

  write(line: string): boolean {
    const need = Buffer.byteLength(line);
    if (this.len + need > this.maxBuffered) {
      this.dropped++;
      return false;
    }
    if (this.len + need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxBuffered, Math.max(this.buf.length * 2, this.len + need)));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    this.len += this.buf.write(line, this.len);
    if (this.len >= this.minLength) this.flush();
    return true;
  }

  /** Starts writing what is buffered, unless a write is already out (it continues when that ends). */
  flush(): void {
    if (this.out !== undefined || this.retryTimer !== undefined || this.len === 0) return;
    this.out = this.buf.subarray(0, this.len);
    this.outOff = 0;
    this.outLen = this.len;
    // The next lines go to a fresh buffer while this one is out; first, what was dropped.
    this.buf = Buffer.allocUnsafe(Math.min(this.maxBuffered, Math.max(64 * 1024, Math.min(this.buf.length, 1 << 20))));
    this.len = 0;
    if (this.dropped > 0) this.noteDropped();
    this.writeOut();
  }

  private writeOut(): void {
    const out = this.out!;
    fsWrite(this.fd, out, this.outOff, this.outLen - this.outOff, null, (err, written) => {
      if (err) {
        // A non-blocking pipe that is full: try again shortly. Anything else: the batch is lost.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.writeOut();
          }, 5);
          this.retryTimer.unref();
          return;
        }
        this.out = undefined;
        return;
      }
      this.outOff += written;
      if (this.outOff < this.outLen) return this.writeOut();
      this.out = undefined;
      if (this.len >= this.minLength) this.flush();
    });
  }

  private noteDropped(): void {
    const line = `${JSON.stringify({ level: 40, time: new Date().toISOString(), pid: process.pid, msg: `log output blocked: ${this.dropped} lines dropped` })}\n`;
    this.dropped = 0;
    this.len += this.buf.write(line, this.len);
  }

  /** At exit: everything still buffered or out, written synchronously (a bounded number of tries). */
  flushSync(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    const parts: Buffer[] = [];
    if (this.out !== undefined) parts.push(this.out.subarray(this.outOff, this.outLen));
    if (this.len > 0) parts.push(this.buf.subarray(0, this.len));
    this.out = undefined;
    this.len = 0;
    for (const part of parts) {
      let off = 0;
      for (let tries = 0; off < part.length && tries < 1000; tries++) {
        try {
          off += writeSync(this.fd, part, off, part.length - off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    }
  }
}

/**
 * `buffered` is for workers, which write access logs on the hot path: lines are batched and
 * written asynchronously, flushed at least every 250 ms and on exit.
 */
export function createLogger(level: string, bindings: Record<string, unknown>, buffered = false): Logger {
  if (!buffered) return pino({ level, base: bindings, timestamp: isoTimeCached }, pino.destination({ dest: 1, sync: true }));
  const destination = new BufferedLineDestination(1);
  const log = pino({ level, base: bindings, timestamp: isoTimeCached }, destination);
  setInterval(() => destination.flush(), 250).unref();
  process.on('exit', () => destination.flushSync());
  return log;
}
