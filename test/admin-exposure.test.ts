// /status and /debug/* list every endpoint address: loopback clients only unless --admin-allow-cidr
// opens them; /healthz, /readyz and /metrics stay open to probes and scrapers.
import type http from 'node:http';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { CidrSet } from '../router/cidr.ts';
import { adminDebugAllowed, startAdminServer } from '../src/admin.ts';
import type { WorkerMetrics } from '../src/cluster-metrics.ts';
import { parseServeOptions, UsageError } from '../src/options.ts';
import type { PrimaryState } from '../src/primary.ts';
import { request } from './helpers/http.ts';
import { freePort } from './helpers/portico.ts';
import client from 'prom-client';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const state = {
  ready: () => true,
  shuttingDown: () => false,
  source: () => ({ kind: 'manifests', synced: true, stale: false }),
  registry: new client.Registry(),
  statuses: () => [],
  problems: () => [],
  certificates: () => [],
  table: () => undefined,
} as unknown as PrimaryState;
const workerMetrics = { metrics: async () => '' } as unknown as WorkerMetrics;

/** A non-loopback IPv4 address of this machine, if it has one. */
const external = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

describe('adminDebugAllowed', () => {
  const none = new CidrSet();
  it('allows loopback in every spelling, nothing else by default', () => {
    for (const ip of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1']) expect(adminDebugAllowed(ip, none), ip).toBe(true);
    for (const ip of ['10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'fe80::1', '::', '0.0.0.0', 'junk', '']) expect(adminDebugAllowed(ip, none), ip).toBe(false);
    expect(adminDebugAllowed(undefined, none)).toBe(false);
  });
  it('allows the configured ranges, mapped IPv4 included', () => {
    const set = CidrSet.from(['10.0.0.0/8']);
    expect(adminDebugAllowed('10.1.2.3', set)).toBe(true);
    expect(adminDebugAllowed('::ffff:10.1.2.3', set)).toBe(true);
    expect(adminDebugAllowed('11.0.0.1', set)).toBe(false);
  });
});

describe('--admin-allow-cidr', () => {
  it('parses repeated and comma-separated ranges, rejects bad ones', () => {
    expect(parseServeOptions(['--manifests', '/tmp']).adminAllowCidrs).toEqual([]);
    expect(parseServeOptions(['--manifests', '/tmp', '--admin-allow-cidr', '10.0.0.0/8,192.0.2.1', '--admin-allow-cidr', 'fd00::/8']).adminAllowCidrs).toEqual(['10.0.0.0/8', '192.0.2.1/32', 'fd00::/8']);
    expect(() => parseServeOptions(['--manifests', '/tmp', '--admin-allow-cidr', '10.0.0.0/08'])).toThrow(UsageError);
  });
});

describe('admin server exposure', () => {
  let server: http.Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function start(extra: string[] = []): Promise<number> {
    const port = await freePort();
    const options = parseServeOptions(['--manifests', '/tmp', '--admin-port', String(port), '--admin-address', '0.0.0.0', ...extra]);
    server = await startAdminServer(options, state, workerMetrics, silent);
    return port;
  }

  it('serves /status and /debug/routes to loopback', async () => {
    const port = await start();
    expect((await request(port, '/status')).status).toBe(200);
    expect((await request(port, '/debug/routes')).status).toBe(200);
  });

  it.skipIf(external === undefined)('answers 403 to a non-loopback client, keeps probes and /metrics open', async () => {
    const port = await start();
    const from = { address: external!, localAddress: external! };
    for (const p of ['/status', '/debug/routes', '/debug/certificates', '/status?x=1']) {
      const r = await request(port, p, { ...from, headers: { 'x-forwarded-for': '127.0.0.1' } });
      expect(r.status, p).toBe(403);
      expect(r.body).toMatch(/loopback/);
    }
    for (const p of ['/healthz', '/readyz', '/metrics']) expect((await request(port, p, from)).status, p).toBe(200);
  });

  it.skipIf(external === undefined)('serves a non-loopback client inside --admin-allow-cidr', async () => {
    const port = await start(['--admin-allow-cidr', `${external}/32`]);
    expect((await request(port, '/status', { address: external!, localAddress: external! })).status).toBe(200);
  });
});
