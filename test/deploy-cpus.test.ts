// src/cpus.ts: the --workers default from cgroup CPU limits, read from fake cgroup trees.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cgroupCpuLimit, usableCpus } from '../src/cpus.ts';
import { parseServeOptions } from '../src/options.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fake filesystem: { 'sys/fs/cgroup/cpu.max': 'max 100000', 'proc/self/cgroup': '0::/' }. */
function fake(files: Record<string, string>): { cgroupRoot: string; procSelfCgroup: string } {
  const root = mkdtempSync(join(tmpdir(), 'portico-cgroup-'));
  dirs.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  mkdirSync(join(root, 'sys/fs/cgroup'), { recursive: true });
  return { cgroupRoot: join(root, 'sys/fs/cgroup'), procSelfCgroup: join(root, 'proc/self/cgroup') };
}

const v2 = (cpuMax: string, extra: Record<string, string> = {}) =>
  fake({ 'sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n', 'sys/fs/cgroup/cpu.max': cpuMax, 'proc/self/cgroup': '0::/\n', ...extra });

const v1 = (quota: string, period: string, dir = 'cpu,cpuacct') =>
  fake({ [`sys/fs/cgroup/${dir}/cpu.cfs_quota_us`]: quota, [`sys/fs/cgroup/${dir}/cpu.cfs_period_us`]: period, 'proc/self/cgroup': '4:cpu,cpuacct:/kubepods/pod1/abc\n3:memory:/kubepods/pod1/abc\n' });

describe('usable CPUs from cgroups', () => {
  it('cgroup v2: cpu.max quota/period, rounded up', () => {
    expect(usableCpus({ ...v2('100000 100000\n'), available: 16 })).toBe(1);
    expect(usableCpus({ ...v2('150000 100000\n'), available: 16 })).toBe(2);
    expect(usableCpus({ ...v2('50000 100000\n'), available: 16 })).toBe(1); // 0.5 CPU: at least 1
    expect(usableCpus({ ...v2('400000 100000\n'), available: 16 })).toBe(4);
    expect(cgroupCpuLimit(v2('250000 100000\n'))).toBe(2.5);
  });

  it('cgroup v2 without a limit, or unreadable: the available parallelism', () => {
    expect(usableCpus({ ...v2('max 100000\n'), available: 6 })).toBe(6);
    expect(usableCpus({ ...v2('garbage'), available: 6 })).toBe(6);
    expect(usableCpus({ ...fake({}), available: 6 })).toBe(6); // no cgroup filesystem at all
  });

  it('never more than availableParallelism (a cpuset or the machine)', () => {
    expect(usableCpus({ ...v2('800000 100000\n'), available: 2 })).toBe(2);
    expect(usableCpus({ ...v1('800000', '100000'), available: 3 })).toBe(3);
  });

  it('cgroup v2 without a cgroup namespace: the process\'s own cgroup and its ancestors, the tightest wins', () => {
    const s = v2('max 100000\n', {
      'proc/self/cgroup': '0::/kubepods.slice/pod1/ctr\n',
      'sys/fs/cgroup/kubepods.slice/cpu.max': 'max 100000\n',
      'sys/fs/cgroup/kubepods.slice/pod1/cpu.max': '300000 100000\n',
      'sys/fs/cgroup/kubepods.slice/pod1/ctr/cpu.max': '200000 100000\n',
    });
    expect(cgroupCpuLimit(s)).toBe(2);
    const parentTighter = v2('max 100000\n', {
      'proc/self/cgroup': '0::/a/b\n',
      'sys/fs/cgroup/a/cpu.max': '100000 100000\n',
      'sys/fs/cgroup/a/b/cpu.max': 'max 100000\n',
    });
    expect(usableCpus({ ...parentTighter, available: 8 })).toBe(1);
  });

  it('cgroup v1: cfs_quota_us / cfs_period_us, -1 is no limit; the path in /proc/self/cgroup may not exist under the mount', () => {
    expect(usableCpus({ ...v1('200000', '100000'), available: 16 })).toBe(2);
    expect(usableCpus({ ...v1('150000', '100000', 'cpu'), available: 16 })).toBe(2);
    expect(usableCpus({ ...v1('-1', '100000'), available: 5 })).toBe(5);
    expect(usableCpus({ ...v1('0', '0'), available: 5 })).toBe(5);
  });

  it('this machine: a whole number between 1 and availableParallelism', () => {
    const n = usableCpus();
    expect(Number.isInteger(n)).toBe(true);
    expect(n).toBeGreaterThanOrEqual(1);
  });

  it('portico serve --workers defaults to it; an explicit --workers wins', () => {
    expect(parseServeOptions(['--manifests', '/x']).workers).toBe(usableCpus());
    expect(parseServeOptions(['--manifests', '/x', '--workers', '3']).workers).toBe(3);
  });
});
