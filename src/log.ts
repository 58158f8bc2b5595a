// Structured logs (pino, JSON lines). Access logs are at info, so --log-level warn silences them.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown>, sync = true): Logger {
  // Workers write access logs on the hot path: an asynchronous destination keeps writes off it.
  const destination = pino.destination({ dest: 1, sync, minLength: sync ? 0 : 4096 });
  return pino({ level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
