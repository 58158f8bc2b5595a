// Gateway API status through the Kubernetes API: the leader writes what the translator computes
// for GatewayClass, Gateway and HTTPRoute to their status subresources, also while the published
// Service's load balancer is pending (Ingress status then waits), and keeps the route status
// entries of other controllers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, service } from './helpers/manifests.ts';
import { waitFor } from './helpers/portico.ts';
import { startKubePortico, type KubePortico } from './kube-launch.ts';

const GW = 'gateway.networking.k8s.io/v1';
type Cond = { type: string; status: string; reason: string; observedGeneration?: number };
const conditions = (o: any): Cond[] => o?.status?.conditions ?? [];
const condition = (list: Cond[], type: string) => list.find((c) => c.type === type);

describe('Gateway API status through the API server', () => {
  let api: FakeApiServer;
  let p: KubePortico;
  let web: { server: Server; port: number };

  beforeAll(async () => {
    api = await startFakeApiServer({ gatewayApiCrds: true });
    const server = createServer((req, res) => res.end(`web ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    web = { server, port: (server.address() as AddressInfo).port };
    api.create(service('web'));
    api.create(endpointSlice('web', [`127.0.0.1:${web.port}`]));
    api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb', namespace: 'ingress' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
    api.create({ apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'portico.dev/gateway-controller' } });
    p = await startKubePortico(api.kubeconfigPath, ['--publish-service', 'ingress/lb'], { PORTICO_LEADER_TIMINGS: '1500,1000,200' });
    api.create({ apiVersion: GW, kind: 'Gateway', metadata: { name: 'web', namespace: 'default' }, spec: { gatewayClassName: 'portico', listeners: [{ name: 'http', port: p.httpPort, protocol: 'HTTP' }] } });
    const route = api.create({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'web', namespace: 'default' }, spec: { parentRefs: [{ name: 'web' }], hostnames: ['gw.example'], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] } });
    // Another implementation's entry for its own parent, which Portico must keep.
    api.updateStatus({ ...route, status: { parents: [{ parentRef: { name: 'theirs' }, controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] }] } });
    await p.waitReady();
  }, 40_000);

  afterAll(async () => {
    await p?.stop();
    await api?.close();
    web?.server.close();
  });

  it('serves the HTTPRoute and writes GatewayClass, Gateway and HTTPRoute status while the load balancer is pending', async () => {
    await waitFor('the route served', async () => (await request(p.httpPort, '/x', { host: 'gw.example', timeoutMs: 2000 }).catch(() => undefined))?.body?.toString() === 'web /x', 10_000);
    await waitFor('GatewayClass Accepted', () => condition(conditions(api.get(GW, 'GatewayClass', undefined, 'portico')), 'Accepted')?.status === 'True', 10_000);
    const gw = await waitFor('Gateway status', () => {
      const o = api.get(GW, 'Gateway', 'default', 'web');
      return condition(conditions(o), 'Accepted') !== undefined ? o : undefined;
    }, 10_000);
    expect(condition(conditions(gw), 'Accepted')).toMatchObject({ status: 'True', observedGeneration: gw.metadata.generation });
    const parents = await waitFor('HTTPRoute status', () => {
      const list = api.get(GW, 'HTTPRoute', 'default', 'web')?.status?.parents as any[] | undefined;
      return list?.some((x) => x.controllerName === 'portico.dev/gateway-controller') ? list : undefined;
    }, 10_000);
    const ours = parents.find((x) => x.controllerName === 'portico.dev/gateway-controller');
    expect(ours.parentRef).toMatchObject({ name: 'web' });
    expect(condition(ours.conditions, 'Accepted')?.status).toBe('True');
    expect(condition(ours.conditions, 'ResolvedRefs')?.status).toBe('True');
    expect(parents.find((x) => x.controllerName === 'example.com/other')?.parentRef).toEqual({ name: 'theirs' });
    // Written with merge patches on the status subresource.
    const patches = api.requests.filter((r: any) => r.method === 'PATCH' && String(r.path).includes('/httproutes/'));
    expect(patches.length).toBeGreaterThan(0);
    for (const r of patches as any[]) expect(r.path).toMatch(/\/status$/);
  });

  it('the Gateway gets the load balancer address once it has one', async () => {
    api.updateStatus({ ...api.get('v1', 'Service', 'ingress', 'lb'), status: { loadBalancer: { ingress: [{ ip: '192.0.2.20' }] } } });
    await waitFor('Gateway addresses', () => JSON.stringify(api.get(GW, 'Gateway', 'default', 'web')?.status?.addresses ?? []).includes('192.0.2.20'), 10_000);
  });
});
