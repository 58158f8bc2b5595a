// The status writer against the fake API server: merge patch on /status, only what changed,
// conflicts retried, a newer observedGeneration never overwritten; the Coalescer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig, makeKubeClient } from '../controller/kube/client.ts';
import { KUBE_ACCESS, accessFor, resourcePath } from '../controller/kube/resources.ts';
import { StatusWriter, covers, liveIsNewer, mergeOwned } from '../controller/kube/status-writer.ts';
import { Coalescer } from '../controller/source.ts';
import type { StatusItem } from '../controller/status.ts';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { sleep } from './helpers/portico.ts';

const quiet = { info() {}, warn() {} };
const GW = 'gateway.networking.k8s.io/v1';

describe('status writer', () => {
  let api: FakeApiServer;
  beforeAll(async () => {
    api = await startFakeApiServer({ https: true });
  });
  afterAll(async () => api?.close());

  const route = (gen: number): StatusItem => ({
    apiVersion: GW,
    kind: 'HTTPRoute',
    metadata: { namespace: 'default', name: 'r', generation: gen },
    status: { parents: [{ parentRef: { name: 'gw' }, controllerName: 'portico.dev/gateway-controller', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', observedGeneration: gen, lastTransitionTime: '2026-01-01T00:00:00Z' }] }] },
  });

  it('patches /status with a merge patch, retries conflicts, and skips unchanged status', async () => {
    api.create({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }] } });
    const results: string[] = [];
    const w = new StatusWriter({ client: makeKubeClient(loadKubeConfig(api.kubeconfigPath)), log: quiet, onResult: (_k, r) => results.push(r) });
    api.faults.conflictNext(2, { pathPrefix: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/r/status' });
    await w.update([route(1)]);
    expect(api.get(GW, 'HTTPRoute', 'default', 'r').status.parents[0].conditions[0].observedGeneration).toBe(1);
    expect(results.filter((r) => r === 'conflict').length).toBe(2);
    expect(results.at(-1)).toBe('written');
    const patches = api.requests.filter((r) => r.method === 'PATCH' && r.status < 300);
    expect(patches.length).toBe(1);
    expect(patches[0].contentType).toContain('application/merge-patch+json');
    expect(patches[0].path).toBe('/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/r/status');
    // Same status again: no request at all (remembered), and after a reset only a read.
    const before = api.requests.length;
    await w.update([route(1)]);
    expect(api.requests.length).toBe(before);
    w.reset();
    await w.update([route(1)]);
    expect(api.requests.slice(before).map((r) => r.method)).toEqual(['GET']);
  });

  it('never overwrites a condition with a newer observedGeneration', async () => {
    const w = new StatusWriter({ client: makeKubeClient(loadKubeConfig(api.kubeconfigPath)), log: quiet });
    const live = api.get(GW, 'HTTPRoute', 'default', 'r');
    api.updateStatus({ ...live, status: route(5).status });
    await w.update([route(3)]);
    expect(api.get(GW, 'HTTPRoute', 'default', 'r').status.parents[0].conditions[0].observedGeneration).toBe(5);
  });

  it("keeps other controllers' parents and conditions it does not compute", () => {
    const merged = mergeOwned(
      { parents: [{ controllerName: 'other.io/x', parentRef: { name: 'g2' } }, { controllerName: 'portico.dev/gateway-controller', parentRef: { name: 'old' } }], conditions: [{ type: 'Foreign' }, { type: 'Accepted', status: 'False' }] },
      { parents: [{ controllerName: 'portico.dev/gateway-controller', parentRef: { name: 'gw' } }], conditions: [{ type: 'Accepted', status: 'True' }] },
    );
    expect(merged.parents).toEqual([{ controllerName: 'other.io/x', parentRef: { name: 'g2' } }, { controllerName: 'portico.dev/gateway-controller', parentRef: { name: 'gw' } }]);
    expect(merged.conditions).toEqual([{ type: 'Foreign' }, { type: 'Accepted', status: 'True' }]);
  });

  it('compares only the fields it computes', () => {
    expect(covers({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } })).toBe(true);
    expect(covers({ b: { c: 2 } }, { b: { c: 3 } })).toBe(false);
    expect(covers({ loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } }, { loadBalancer: { ingress: [{ ip: '1.2.3.4' }, { ip: '1.2.3.5' }] } })).toBe(false);
    expect(liveIsNewer({ conditions: [{ type: 'Accepted', observedGeneration: 2 }] }, { conditions: [{ type: 'Accepted', observedGeneration: 1 }] })).toBe(true);
    expect(liveIsNewer({ conditions: [{ type: 'Accepted', observedGeneration: 1 }] }, { conditions: [{ type: 'Accepted', observedGeneration: 1 }] })).toBe(false);
  });
});

describe('KUBE_ACCESS', () => {
  it('declares status access for every kind with a status subresource it writes, and builds the paths used', () => {
    for (const kind of ['Ingress', 'GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'TLSRoute']) expect(accessFor(kind, 'status').verbs).toContain('patch');
    expect(resourcePath(accessFor('Ingress', 'status'), 'ns', 'x')).toBe('/apis/networking.k8s.io/v1/namespaces/ns/ingresses/x/status');
    expect(resourcePath(accessFor('Secret'))).toBe('/api/v1/secrets');
    expect(KUBE_ACCESS.find((a) => a.kind === 'Lease')?.verbs).toEqual(['get', 'create', 'update']);
  });
});

describe('Coalescer', () => {
  it('gives one run for a burst, and still runs within the maximum under a steady stream', async () => {
    let runs = 0;
    const c = new Coalescer(() => runs++, 30, 120);
    for (let i = 0; i < 10; i++) c.trigger();
    await sleep(80);
    expect(runs).toBe(1);
    runs = 0;
    const start = Date.now();
    while (Date.now() - start < 400) {
      c.trigger();
      await sleep(10);
    }
    c.cancel();
    expect(runs).toBeGreaterThanOrEqual(2);
  });
});
