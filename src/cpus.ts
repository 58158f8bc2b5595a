// How many CPUs this process may really use: the default for --workers. In a container the CPU
// count (os.availableParallelism) is the node's, but a CPU limit is a CFS quota in the cgroup;
// a pod limited to 1 CPU with one worker per node core would spend its quota on contention.

import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';

export interface CpuSources {
  /** Where the cgroup filesystem is mounted; '/sys/fs/cgroup' by default. */
  readonly cgroupRoot?: string;
  /** This process's cgroup membership file; '/proc/self/cgroup' by default. */
  readonly procSelfCgroup?: string;
  /** os.availableParallelism() by default (it already honours a cpuset). */
  readonly available?: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup path of this process for a v1 controller, or the v2 unified path ('0::'). */
function membership(procSelfCgroup: string, controller: string | undefined): string | undefined {
  for (const line of (read(procSelfCgroup) ?? '').split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    if (controller === undefined ? m[1] === '0' && m[2] === '' : m[2].split(',').includes(controller)) return m[3];
  }
  return undefined;
}

/**
 * The directories to read, innermost first: the process's own cgroup and its ancestors up to the
 * mount point (a parent's quota caps its children). Inside a container the mount usually shows
 * the container's own cgroup at its root, and the path in /proc/self/cgroup is then either '/'
 * (cgroup namespace) or a host path that does not exist under the mount; then only the root is read.
 */
function levels(mount: string, path: string | undefined): string[] {
  const out: string[] = [];
  let p = path !== undefined && path.startsWith('/') ? posix.normalize(path) : '/';
  if (p !== '/' && !existsSync(join(mount, p))) p = '/';
  for (;;) {
    out.push(join(mount, p));
    if (p === '/') return out;
    p = posix.dirname(p);
  }
}

function ratio(quota: number, period: number): number | undefined {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? quota / period : undefined;
}

/** cgroup v2: `cpu.max` is "max 100000" (no limit) or "QUOTA PERIOD". */
function v2Limit(root: string, procSelfCgroup: string): number | undefined {
  let limit: number | undefined;
  for (const dir of levels(root, membership(procSelfCgroup, undefined))) {
    const [quota, period] = (read(join(dir, 'cpu.max')) ?? '').trim().split(/\s+/);
    const r = quota === 'max' ? undefined : ratio(Number(quota), Number(period));
    if (r !== undefined) limit = limit === undefined ? r : Math.min(limit, r);
  }
  return limit;
}

/** cgroup v1: `cpu.cfs_quota_us` (-1 = no limit) over `cpu.cfs_period_us`, in the cpu controller's hierarchy. */
function v1Limit(root: string, procSelfCgroup: string): number | undefined {
  const mount = ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'].map((d) => join(root, d)).find((d) => read(join(d, 'cpu.cfs_period_us')) !== undefined);
  if (mount === undefined) return undefined;
  let limit: number | undefined;
  for (const dir of levels(mount, membership(procSelfCgroup, 'cpu'))) {
    const r = ratio(Number((read(join(dir, 'cpu.cfs_quota_us')) ?? '').trim()), Number((read(join(dir, 'cpu.cfs_period_us')) ?? '').trim()));
    if (r !== undefined) limit = limit === undefined ? r : Math.min(limit, r);
  }
  return limit;
}

/** The cgroup CPU limit in CPUs (fractional), or undefined when there is none or no cgroup to read. */
export function cgroupCpuLimit(sources: CpuSources = {}): number | undefined {
  const root = sources.cgroupRoot ?? '/sys/fs/cgroup';
  const proc = sources.procSelfCgroup ?? '/proc/self/cgroup';
  // v2 has cgroup.controllers at its root; a v1 mount does not.
  return read(join(root, 'cgroup.controllers')) !== undefined ? v2Limit(root, proc) : v1Limit(root, proc);
}

/**
 * Whole CPUs this process may use: the cgroup limit rounded up (1.5 CPUs → 2, 0.5 → 1), never
 * more than availableParallelism (a cpuset or the machine), at least 1.
 */
export function usableCpus(sources: CpuSources = {}): number {
  const available = Math.max(1, sources.available ?? availableParallelism());
  const limit = cgroupCpuLimit(sources);
  if (limit === undefined) return available;
  // A hair of float error (quota/period) must not round 2.0000000001 up to 3.
  return Math.min(available, Math.max(1, Math.ceil(limit - 1e-9)));
}
