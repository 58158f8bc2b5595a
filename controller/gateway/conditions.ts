// metav1.Condition as the Gateway API uses it. Translation is a function of the snapshot, but
// lastTransitionTime must only move when a condition's status flips: the times are remembered
// in the caller's TranslatorState (a fresh state gives the translation clock).

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

export type ConditionInput = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

/** Remembered transition times, by object + scope + condition type. */
export type ConditionClock = Map<string, { status: string; time: string }>;

export function timestamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class ConditionStamper {
  private readonly clock: ConditionClock;
  private readonly now: string;
  private readonly seen = new Set<string>();

  constructor(clock: ConditionClock, now: Date) {
    this.clock = clock;
    this.now = timestamp(now);
  }

  /** `scope` names the object and the place (listener, parent) the conditions belong to. */
  stamp(scope: string, generation: number | undefined, list: readonly ConditionInput[]): Condition[] {
    return list.map((c) => {
      const key = `${scope}|${c.type}`;
      this.seen.add(key);
      const prev = this.clock.get(key);
      const time = prev !== undefined && prev.status === c.status ? prev.time : this.now;
      this.clock.set(key, { status: c.status, time });
      return { type: c.type, status: c.status, reason: c.reason, message: c.message, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime: time };
    });
  }

  /** Forgets conditions not produced by this translation (their objects are gone). */
  sweep(): void {
    for (const key of [...this.clock.keys()]) if (!this.seen.has(key)) this.clock.delete(key);
  }
}

export const cond = (type: string, ok: boolean, reason: string, message = ''): ConditionInput => ({ type, status: ok ? 'True' : 'False', reason, message });
