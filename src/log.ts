// Structured logs (pino, JSON lines). Access logs are at info, so --log-level warn silences them.
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * `buffered` is for workers, which write access logs on the hot path: lines are batched and
 * written asynchronously, flushed at least every 250 ms and on exit.
 */
export function createLogger(level: string, bindings: Record<string, unknown>, buffered = false): Logger {
  const destination = pino.destination({ dest: 1, sync: !buffered, minLength: buffered ? 8192 : 0 });
  const log = pino({ level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  if (buffered) {
    setInterval(() => destination.flush(), 250).unref();
    process.on('exit', () => {
      try {
        destination.flushSync();
      } catch {
        // nothing more can be done for logs at exit
      }
    });
  }
  return log;
}
