// Status Portico no longer owns is released through the API server (QA-8): a route's parents
// entry of ours goes when its parentRef moves to another controller's Gateway or its Portico
// Gateway is deleted (other controllers' entries stay), and a Gateway or GatewayClass that moved
// to another owner loses the conditions, listeners and addresses Portico wrote. No write loops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { endpointSlice, service } from './helpers/manifests.ts';
import { sleep, waitFor } from './helpers/portico.ts';
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
    const gateway = (name: string, cls: string) => ({ apiVersion: GW, kind: 'Gateway', metadata: { name, namespace: 'default' }, spec: { gatewayClassName: cls, listeners: [{ name: 'http', port: p.httpPort, hostname: `${name}.example`, protocol: 'HTTP' }] } });
    api.create(gateway('web', 'portico'));
    api.create(gateway('doomed', 'portico'));
    api.create(gateway('switcher', 'portico'));
    api.create(gateway('other-gw', 'other'));
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
