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

/** The status and time of the condition of `type` in an observed conditions list, if well formed. */
function observedTime(observed: unknown, type: string): { status: string; time: string } | undefined {
  if (!Array.isArray(observed)) return undefined;
  for (const c of observed) {
    if (c === null || typeof c !== 'object') continue;
    const { type: t, status, lastTransitionTime: time } = c as Record<string, unknown>;
    if (t === type && typeof status === 'string' && typeof time === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(time)) return { status, time };
  }
  return undefined;
}

/** The conditions an object's status holds at `path` (status.conditions, a listener's, a route parent's). */
export function observedConditions(object: { status?: unknown }, pick?: (status: Record<string, unknown>) => unknown): unknown {
  const st = object.status;
  if (st === null || typeof st !== 'object') return undefined;
  const at = pick === undefined ? st : pick(st as Record<string, unknown>);
  if (at === null || typeof at !== 'object') return undefined;
  return (at as Record<string, unknown>).conditions;
}

export class ConditionStamper {
  private readonly clock: ConditionClock;
  private readonly now: string;
  private readonly seen = new Set<string>();

  constructor(clock: ConditionClock, now: Date) {
    this.clock = clock;
    this.now = timestamp(now);
  }

  /**
   * `scope` names the object and the place (listener, parent) the conditions belong to.
   * `observed` is what the object's status says now (the API server's copy): a condition this
   * state has not seen yet (after a restart) keeps its time there when its status is unchanged.
   */
  stamp(scope: string, generation: number | undefined, list: readonly ConditionInput[], observed?: unknown): Condition[] {
    return list.map((c) => {
      const key = `${scope}|${c.type}`;
      this.seen.add(key);
      const prev = this.clock.get(key) ?? observedTime(observed, c.type);
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
