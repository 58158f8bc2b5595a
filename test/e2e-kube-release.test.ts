// Status Portico no longer owns is released through the API server (QA-8): a route's parents
// entry of ours goes when its parentRef moves to another controller's Gateway or its Portico
// Gateway is deleted (other controllers' entries stay), and a Gateway or GatewayClass that moved
// to another owner loses the conditions, listeners and addresses Portico wrote. No write loops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig, makeKubeClient } from '../controller/kube/client.ts';
import { StatusWriter, released, releasedStatus } from '../controller/kube/status-writer.ts';
import type { StatusItem } from '../controller/status.ts';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { endpointSlice, service } from './helpers/manifests.ts';
import { freePort, sleep, waitFor } from './helpers/portico.ts';
import { startKubePortico, type KubePortico } from './kube-launch.ts';

const GW = 'gateway.networking.k8s.io/v1';
const OURS = 'portico.dev/gateway-controller';
const THEIRS = 'example.com/other';
type Parent = { controllerName: string; parentRef: { name: string }; conditions: { type: string; status: string }[] };
const parents = (api: FakeApiServer, name: string): Parent[] | undefined => api.get(GW, 'HTTPRoute', 'default', name)?.status?.parents;
const ourParents = (api: FakeApiServer, name: string): Parent[] => (parents(api, name) ?? []).filter((p) => p.controllerName === OURS);
const theirEntry = (name: string) => ({ parentRef: { name }, controllerName: THEIRS, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] });
const statusPatches = (api: FakeApiServer): number => api.requests.filter((r: any) => r.method === 'PATCH' && String(r.path).endsWith('/status')).length;

describe('releasing status Portico no longer owns', () => {
  let api: FakeApiServer;
  let p: KubePortico;

  beforeAll(async () => {
    api = await startFakeApiServer({ gatewayApiCrds: true });
    api.create(service('web'));
    api.create(endpointSlice('web', ['127.0.0.1:9']));
    api.create({ apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: OURS } });
    api.create({ apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico-b' }, spec: { controllerName: OURS } });
    api.create({ apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'other' }, spec: { controllerName: THEIRS } });
    p = await startKubePortico(api.kubeconfigPath, ['--publish-status-address', '192.0.2.30'], { PORTICO_LEADER_TIMINGS: '1500,1000,200' });
    // Each on a port of its own: two Gateways on one socket conflict (the younger is not accepted).
    const gateway = (name: string, cls: string, port: number) => ({ apiVersion: GW, kind: 'Gateway', metadata: { name, namespace: 'default' }, spec: { gatewayClassName: cls, listeners: [{ name: 'http', port, hostname: `${name}.example`, protocol: 'HTTP' }] } });
    api.create(gateway('web', 'portico', p.httpPort));
    api.create(gateway('doomed', 'portico', await freePort()));
    api.create(gateway('switcher', 'portico', await freePort()));
    api.create(gateway('other-gw', 'other', p.httpPort));
    const route = (name: string, refs: string[], host: string) => api.create({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name, namespace: 'default' }, spec: { parentRefs: refs.map((n) => ({ name: n })), hostnames: [host], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] } });
    const moving = route('moving', ['web', 'other-gw'], 'web.example');
    // The other controller's entry for its own Gateway, which Portico must keep.
    api.updateStatus({ ...moving, status: { parents: [theirEntry('other-gw')] } });
    route('orphan', ['doomed'], 'doomed.example');
    await p.waitReady();
  }, 40_000);

  afterAll(async () => {
    await p?.stop();
    await api?.close();
  });

  it('writes our status first', async () => {
    await waitFor('moving has our entry', () => ourParents(api, 'moving').some((x) => x.parentRef.name === 'web'), 10_000);
    await waitFor('orphan has our entry', () => ourParents(api, 'orphan').length === 1, 10_000);
    await waitFor('switcher accepted', () => api.get(GW, 'Gateway', 'default', 'switcher')?.status?.conditions?.some((c: any) => c.type === 'Accepted' && c.status === 'True'), 10_000);
    await waitFor('portico-b accepted', () => api.get(GW, 'GatewayClass', undefined, 'portico-b')?.status?.conditions?.some((c: any) => c.type === 'Accepted' && c.status === 'True'), 10_000);
    expect(parents(api, 'moving')!.find((x) => x.controllerName === THEIRS)?.parentRef).toEqual({ name: 'other-gw' });
  });

  it("removes our entry when the route's parentRefs name only another controller's Gateway, keeping theirs", async () => {
    const live = api.get(GW, 'HTTPRoute', 'default', 'moving');
    api.update({ ...live, spec: { ...live.spec, parentRefs: [{ name: 'other-gw' }] } });
    await waitFor('our entry removed', () => ourParents(api, 'moving').length === 0, 10_000);
    expect(parents(api, 'moving')).toEqual([theirEntry('other-gw')]);
  });

  it('removes our entry when the route\'s only Portico Gateway is deleted', async () => {
    api.delete(GW, 'Gateway', 'default', 'doomed');
    await waitFor('orphan entry removed', () => ourParents(api, 'orphan').length === 0, 10_000);
    expect(parents(api, 'orphan')).toEqual([]);
  });

  it('clears the status of a Gateway moved to another class, and of a GatewayClass that is no longer ours', async () => {
    const gw = api.get(GW, 'Gateway', 'default', 'switcher');
    expect(gw.status.listeners?.length).toBe(1);
    expect(gw.status.addresses).toEqual([{ type: 'IPAddress', value: '192.0.2.30' }]);
    api.update({ ...gw, spec: { ...gw.spec, gatewayClassName: 'other' } });
    await waitFor('switcher status cleared', () => api.get(GW, 'Gateway', 'default', 'switcher')?.status?.conditions === undefined, 10_000);
    const cleared = api.get(GW, 'Gateway', 'default', 'switcher').status ?? {};
    expect(cleared.listeners).toBeUndefined();
    expect(cleared.addresses).toBeUndefined();
    // Gateways still ours keep theirs.
    expect(api.get(GW, 'Gateway', 'default', 'web').status.conditions.some((c: any) => c.type === 'Accepted' && c.status === 'True')).toBe(true);

    // spec.controllerName is immutable on a real API server; this fake lets it change, as a
    // class Portico stops owning (say --gateway-controller-name changed) would look.
    const cls = api.get(GW, 'GatewayClass', undefined, 'portico-b');
    api.update({ ...cls, spec: { controllerName: THEIRS } });
    await waitFor('portico-b status cleared', () => api.get(GW, 'GatewayClass', undefined, 'portico-b')?.status?.conditions === undefined, 10_000);
    expect(api.get(GW, 'GatewayClass', undefined, 'portico-b').status?.supportedFeatures).toBeUndefined();
    expect(api.get(GW, 'GatewayClass', undefined, 'portico').status.conditions.some((c: any) => c.type === 'Accepted' && c.status === 'True')).toBe(true);
  });

  it('then writes nothing more while nothing changes', async () => {
    await sleep(1500);
    const before = statusPatches(api);
    await sleep(1500);
    expect(statusPatches(api)).toBe(before);
    expect(p.logs.filter((l) => l.includes('released status')).length).toBe(4);
  });
});

describe('what is released', () => {
  const cond = (type: string, observedGeneration?: number) => ({ type, status: 'True', reason: type, message: '', lastTransitionTime: '2026-01-01T00:00:00Z', ...(observedGeneration !== undefined ? { observedGeneration } : {}) });
  const addresses = [{ type: 'IPAddress', value: '192.0.2.40' }];
  const stale = { conditions: [cond('Accepted', 1), cond('Programmed', 1)], listeners: [{ name: 'http', attachedRoutes: 0, conditions: [cond('Accepted', 1)] }], addresses };

  it('a route keeps the other controllers\' entries; nothing of ours left is nothing to do', () => {
    const live = { parents: [{ controllerName: THEIRS, parentRef: { name: 'a' } }, { controllerName: OURS, parentRef: { name: 'b' } }] };
    expect(releasedStatus('HTTPRoute', live, 2, OURS)).toEqual({ parents: [{ controllerName: THEIRS, parentRef: { name: 'a' } }] });
    expect(releasedStatus('TLSRoute', { parents: [live.parents[0]] }, 2, OURS)).toBeUndefined();
    expect(releasedStatus('HTTPRoute', {}, 2, OURS)).toBeUndefined();
  });

  it('a Gateway loses what was written for an older generation; a new owner\'s fresh conditions keep their listeners and addresses', () => {
    expect(releasedStatus('Gateway', stale, 2, OURS)).toEqual({ conditions: null, listeners: null, addresses: null });
    const theirs = { ...stale, conditions: [cond('Accepted', 2), cond('ResolvedRefs', 1)] };
    expect(releasedStatus('Gateway', theirs, 2, OURS)).toEqual({ conditions: [cond('Accepted', 2)] });
    // The CRD's default Pending conditions (no observedGeneration) are nobody's: left as they are.
    const pending = { conditions: [{ type: 'Accepted', status: 'Unknown', reason: 'Pending', message: 'Waiting for controller', lastTransitionTime: '1970-01-01T00:00:00Z' }] };
    expect(releasedStatus('Gateway', pending, 2, OURS)).toBeUndefined();
    expect(releasedStatus('GatewayClass', { ...pending, supportedFeatures: [{ name: 'Gateway' }] }, 2, OURS)).toEqual({ supportedFeatures: null });
  });

  it('after a restart (nothing remembered) a Gateway is ours to release only with stale conditions and the addresses Portico publishes', () => {
    const gw = (name: string, status: object, generation = 2) => ({ apiVersion: GW, kind: 'Gateway', metadata: { namespace: 'default', name, generation, uid: name }, spec: {}, status });
    const item: StatusItem = { apiVersion: GW, kind: 'Gateway', metadata: { namespace: 'default', name: 'mine', generation: 1 }, status: { addresses, conditions: [] } };
    const objects = [gw('mine', stale, 1), gw('moved', stale), gw('foreign', { ...stale, addresses: [{ type: 'IPAddress', value: '198.51.100.1' }] }), gw('current', { ...stale, conditions: [cond('Accepted', 2)] })];
    expect(released(objects as any, [item], OURS, new Map()).map((r) => r.item.metadata.name)).toEqual(['moved']);
    // Remembered as written by this process (same uid): released whatever its addresses.
    expect(released(objects as any, [item], OURS, new Map([['Gateway/default/foreign', 'foreign']])).map((r) => r.item.metadata.name)).toEqual(['moved', 'foreign']);
    // Portico publishing no address: an empty list is nobody's signature.
    const bare = [gw('moved', { ...stale, addresses: [] }), gw('none', { conditions: stale.conditions })];
    expect(released(bare as any, [{ ...item, status: { addresses: [], conditions: [] } }], OURS, new Map())).toEqual([]);
    // Re-created under the same name (another uid): not what we wrote.
    expect(released(objects as any, [item], OURS, new Map([['Gateway/default/foreign', 'old-uid']])).map((r) => r.item.metadata.name)).toEqual(['moved']);
  });

  it('writes a release only if the object is still the generation the cache saw', async () => {
    const api = await startFakeApiServer({ gatewayApiCrds: true });
    try {
      const route = api.create({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'x' }] } });
      api.updateStatus({ ...route, status: { parents: [{ ...theirEntry('x'), controllerName: OURS }] } });
      const cached = api.get(GW, 'HTTPRoute', 'default', 'r');
      const results: string[] = [];
      const w = new StatusWriter({ client: makeKubeClient(loadKubeConfig(api.kubeconfigPath)), log: { info() {}, warn() {} }, controllerName: OURS, onResult: (_k, r) => results.push(r) });
      // Changed meanwhile (generation 2): the cache's view is old, nothing written.
      api.update({ ...cached, spec: { parentRefs: [{ name: 'y' }] } });
      await w.update([], { objects: [cached] });
      expect(results).toEqual(['stale']);
      expect(ourParents(api, 'r').length).toBe(1);
      await w.update([], { objects: [api.get(GW, 'HTTPRoute', 'default', 'r')] });
      expect(results.at(-1)).toBe('cleared');
      expect(parents(api, 'r')).toEqual([]);
      // Done: the same view again sends nothing.
      const before = api.requests.length;
      await w.update([], { objects: [api.get(GW, 'HTTPRoute', 'default', 'r')] });
      expect(api.requests.length).toBe(before);
    } finally {
      await api.close();
    }
  });
});
