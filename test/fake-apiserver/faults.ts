// Injected faults: failures, conflicts and delays matched by path prefix and method, consumed in order.

export interface FaultDecision { delayMs: number; failStatus?: number; conflict?: boolean }

interface Rule { left: number; status: number; pathPrefix?: string; method?: string }

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class FaultPlan {
  private fails: Rule[] = [];
  private conflicts: Rule[] = [];
  private delays: { ms: number; pathPrefix?: string }[] = [];

  failNext(count: number, opts: { status?: number; pathPrefix?: string; method?: string } = {}): void {
    if (count > 0) this.fails.push({ left: count, status: opts.status ?? 500, pathPrefix: opts.pathPrefix, method: opts.method?.toUpperCase() });
  }
  conflictNext(count: number, opts: { pathPrefix?: string } = {}): void {
    if (count > 0) this.conflicts.push({ left: count, status: 409, pathPrefix: opts.pathPrefix });
  }
  /** Every later matching request waits `ms` first; `delay(0)` with the same prefix removes it. */
  delay(ms: number, opts: { pathPrefix?: string } = {}): void {
    this.delays = this.delays.filter((d) => d.pathPrefix !== opts.pathPrefix);
    if (ms > 0) this.delays.push({ ms, pathPrefix: opts.pathPrefix });
  }
  clear(): void {
    this.fails = [];
    this.conflicts = [];
    this.delays = [];
  }

  decide(method: string, path: string): FaultDecision {
    const matches = (r: { pathPrefix?: string; method?: string }): boolean => (!r.pathPrefix || path.startsWith(r.pathPrefix)) && (!r.method || r.method === method);
    const delayMs = this.delays.filter(matches).reduce((a, d) => Math.max(a, d.ms), 0);
    const take = (rules: Rule[]): Rule | undefined => {
      const r = rules.find(matches);
      if (r && --r.left <= 0) rules.splice(rules.indexOf(r), 1);
      return r;
    };
    const fail = take(this.fails);
    if (fail) return { delayMs, failStatus: fail.status };
    if (WRITES.has(method) && take(this.conflicts)) return { delayMs, conflict: true };
    return { delayMs };
  }
}
