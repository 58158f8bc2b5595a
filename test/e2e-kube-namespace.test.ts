// --watch-namespace limits what is served, but the --publish-service usually lives in the
// controller's own namespace: it is watched by name there, so status still gets its address.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service } from './helpers/manifests.ts';
import { waitFor } from './helpers/portico.ts';
import { startKubePortico, type KubePortico } from './kube-launch.ts';

describe('--watch-namespace with a --publish-service in another namespace', () => {
  let api: FakeApiServer;
  let p: KubePortico;
  let backend: Server;

  beforeAll(async () => {
    backend = createServer((req, res) => res.end(`app ${req.url}`));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as AddressInfo).port;
    api = await startFakeApiServer({ gatewayApiCrds: false });
    api.create(ingressClass());
    for (const ns of ['team-a', 'team-b']) {
      api.create(service('web', 80, ns));
      api.create(endpointSlice('web', [`127.0.0.1:${port}`], ns));
      api.create(ingress('web', `${ns}.example`, [{ path: '/', service: 'web' }], { namespace: ns }));
    }
    api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb', namespace: 'portico-system' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.20' }] } } });
    api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'other', namespace: 'portico-system' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
    p = await startKubePortico(api.kubeconfigPath, ['--watch-namespace', 'team-a', '--publish-service', 'portico-system/lb'], { PORTICO_LEADER_TIMINGS: '1500,1000,200' });
    await p.waitReady();
  }, 40_000);

  afterAll(async () => {
    await p?.stop();
    await api?.close();
    backend?.close();
  });

  const lb = (ns: string): unknown => api.get('networking.k8s.io/v1', 'Ingress', ns, 'web')?.status?.loadBalancer?.ingress;

  it('serves only the watched namespace and writes the published address to its Ingresses', async () => {
    expect((await request(p.httpPort, '/', { host: 'team-a.example', timeoutMs: 2000 })).status).toBe(200);
    expect((await request(p.httpPort, '/', { host: 'team-b.example', timeoutMs: 2000 })).status).toBe(404);
    await waitFor('status written from the Service in portico-system', () => JSON.stringify(lb('team-a')) === '[{"ip":"192.0.2.20"}]', 8000);
    expect(lb('team-b')).toBeUndefined();
    // The named watch is for that Service alone: by field selector, in its namespace.
    const watches = api.requests.filter((r: any) => String(r.path).startsWith('/api/v1/namespaces/portico-system/services'));
    expect(watches.length).toBeGreaterThan(0);
    for (const r of watches as any[]) expect(new URLSearchParams(String(r.query)).get('fieldSelector')).toBe('metadata.name=lb');
  });

  it('follows the published Service as its address changes', async () => {
    api.updateStatus({ ...api.get('v1', 'Service', 'portico-system', 'lb'), status: { loadBalancer: { ingress: [{ hostname: 'lb.example.net' }] } } });
    await waitFor('status follows the Service', () => JSON.stringify(lb('team-a')) === '[{"hostname":"lb.example.net"}]', 8000);
  });
});
