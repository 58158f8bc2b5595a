// One interface for every source of objects (manifest directory, Kubernetes API), so the primary
// and translation never care where objects came from.

import type { SourceSnapshot } from './objects.ts';

export interface SourceHealth {
  /** True once a complete snapshot has been delivered. */
  readonly synced: boolean;
  /** When the source stopped being current (e.g. a watch is down), as epoch ms; absent when current. */
  readonly staleSince?: number;
  readonly detail?: string;
}

export interface Source {
  /** Delivers a first snapshot (or fails), then a new one after every coalesced change. */
  start(onSnapshot: (s: SourceSnapshot) => void): Promise<void>;
  stop(): void | Promise<void>;
  health(): SourceHealth;
}

/**
 * Coalesces bursts: `trigger()` runs `fn` after `delayMs` of quiet, but never later than `maxMs`
 * after the first trigger of the burst, so a steady stream of events still produces tables.
 */
export class Coalescer {
  private timer: NodeJS.Timeout | undefined;
  private first = 0;
  private readonly fn: () => void;
  private readonly delayMs: number;
  private readonly maxMs: number;
  constructor(fn: () => void, delayMs: number, maxMs: number) {
    this.fn = fn;
    this.delayMs = delayMs;
    this.maxMs = maxMs;
  }

  trigger(): void {
    const now = Date.now();
    if (this.timer === undefined) this.first = now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.delayMs, this.first + this.maxMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fn();
    }, wait);
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
