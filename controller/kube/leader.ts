// Leader election over a coordination.k8s.io/v1 Lease, as client-go does it: expiry is judged by
// when this replica last saw the record change (local clock), not by renewTime, so clock skew
// between nodes does not matter. Only the leader writes status; every replica serves traffic.

import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { errorCode } from './client.ts';
import { accessFor } from './resources.ts';

export interface LeaderTimings {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryMs: number;
}

export const DEFAULT_LEADER_TIMINGS: LeaderTimings = { leaseMs: 15_000, renewDeadlineMs: 10_000, retryMs: 2_000 };

/** `PORTICO_LEADER_TIMINGS=lease,renew,retry` in ms: short durations for tests only. */
export function leaderTimingsFromEnv(v: string | undefined): LeaderTimings {
  if (!v) return DEFAULT_LEADER_TIMINGS;
  const [leaseMs, renewDeadlineMs, retryMs] = v.split(',').map(Number);
  if (![leaseMs, renewDeadlineMs, retryMs].every((n) => Number.isFinite(n) && n > 0) || !(leaseMs > renewDeadlineMs && renewDeadlineMs > retryMs * 1.2)) {
    throw new Error(`PORTICO_LEADER_TIMINGS ${JSON.stringify(v)}: want lease>renew>1.2*retry, all ms > 0`);
  }
  return { leaseMs, renewDeadlineMs, retryMs };
}

export function defaultIdentity(): string {
  return process.env.POD_NAME || `${hostname()}_${process.pid}`;
}

export interface LeaderLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface LeaderElectorOptions {
  readonly api: k8s.CoordinationV1Api;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly timings?: LeaderTimings;
  readonly log: LeaderLog;
  readonly onChange: (leading: boolean) => void;
}

interface Observed {
  raw: string;
  at: number;
}

// Lease spec times must carry exactly 6 fractional digits (the API's MicroTime layout).
function microNow(): Date {
  return new k8s.V1MicroTime();
}

export class LeaderElector {
  private readonly o: LeaderElectorOptions;
  private readonly t: LeaderTimings;
  private leading = false;
  private lastRenew = 0;
  private observed: Observed | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: LeaderElectorOptions) {
    this.o = options;
    this.t = options.timings ?? DEFAULT_LEADER_TIMINGS;
    accessFor('Lease'); // the Lease verbs are declared in KUBE_ACCESS
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops trying; a leader releases the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      const now = microNow();
      lease.spec = { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: now, acquireTime: now };
      await this.o.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: lease });
    } catch {
      // Best effort: the Lease expires by itself.
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    // Jittered as client-go's acquire loop (factor 1.2) so replicas do not retry in lockstep.
    const delay = this.leading ? this.t.retryMs : this.t.retryMs * (1 + Math.random() * 0.2);
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.log.warn({ lease: `${this.o.namespace}/${this.o.name}`, code: errorCode(err), err: (err as Error).message }, 'leader election: Lease request failed');
    }
    if (this.stopped) return;
    if (ok) {
      this.lastRenew = Date.now();
      this.setLeading(true);
    } else if (this.leading && Date.now() - this.lastRenew > this.t.renewDeadlineMs) {
      this.setLeading(false); // could not renew in time: another replica may take over
    }
    this.schedule();
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.o.log.info({ identity: this.o.identity, lease: `${this.o.namespace}/${this.o.name}` }, v ? 'became leader: writing status' : 'stopped leading: not writing status');
    this.o.onChange(v);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.o;
    const now = microNow();
    const durationS = Math.ceil(this.t.leaseMs / 1000);
    let lease: k8s.V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (errorCode(err) !== 404) throw err;
      await api.createNamespacedLease({
        namespace,
        body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const raw = JSON.stringify(spec);
    if (this.observed?.raw !== raw) this.observed = { raw, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const leaseMs = (spec.leaseDurationSeconds ?? durationS) * 1000;
    if (holder !== '' && holder !== identity && this.observed.at + leaseMs > Date.now()) return false;
    const mine = holder === identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationS,
      renewTime: now,
      // Times read back are strings; re-send them as MicroTime, or set anew on a takeover.
      acquireTime: mine && spec.acquireTime ? new k8s.V1MicroTime(String(spec.acquireTime)) : now,
      leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    };
    // PUT with the read resourceVersion: a racing replica gets 409 and loses.
    await api.replaceNamespacedLease({ name, namespace, body: lease });
    this.observed = { raw: JSON.stringify(lease.spec), at: Date.now() };
    return true;
  }
}
