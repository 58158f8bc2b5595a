// `portico serve --kubernetes` end to end against the fake API server: objects created through
// the API are served, changes within a second, status by merge patch, faults ridden through.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service } from './helpers/manifests.ts';
import { sleep, waitFor } from './helpers/portico.ts';
import { startKubePortico, type KubePortico } from './kube-launch.ts';

async function upstream(name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => res.end(`${name} ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

const body = async (p: KubePortico, host: string, path: string): Promise<string> => {
  const r = await request(p.httpPort, path, { host, timeoutMs: 2000 });
  return `${r.status} ${r.status === 200 ? r.body.toString() : ''}`.trim();
};

const lbStatus = (api: FakeApiServer, name: string): unknown => api.get('networking.k8s.io/v1', 'Ingress', 'default', name)?.status?.loadBalancer?.ingress;

describe('Kubernetes API source', () => {
  let api: FakeApiServer;
  let p: KubePortico;
  let a: { server: Server; port: number };
  let b: { server: Server; port: number };

  beforeAll(async () => {
    api = await startFakeApiServer({ gatewayApiCrds: false });
    a = await upstream('a');
    b = await upstream('b');
    api.create(ingressClass());
    api.create(service('web'));
    api.create(endpointSlice('web', [`127.0.0.1:${a.port}`]));
    api.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb', namespace: 'ingress' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
    api.create(ingress('web', 'web.example', [{ path: '/', service: 'web' }]));
    api.create(ingress('other', 'other.example', [{ path: '/', service: 'web' }], { className: 'someone-else' }));
    p = await startKubePortico(api.kubeconfigPath, ['--publish-service', 'ingress/lb', '--log-level', 'info'], { PORTICO_LEADER_TIMINGS: '1500,1000,200' });
    await p.waitReady();
  }, 40_000);

  afterAll(async () => {
    await p?.stop();
    await api?.close();
    a?.server.close();
    b?.server.close();
  });

  it('serves an Ingress created through the API, and its update and deletion within a second', async () => {
    expect(await body(p, 'web.example', '/x')).toBe('200 a /x');
    api.create(ingress('late', 'late.example', [{ path: '/', service: 'web' }]));
    await waitFor('new Ingress served', async () => (await body(p, 'late.example', '/')) === '200 a /', 1000, 20);
    const late = api.get('networking.k8s.io/v1', 'Ingress', 'default', 'late');
    api.update({ ...late, spec: { ...late.spec, rules: [{ host: 'late2.example', http: late.spec.rules[0].http }] } });
    await waitFor('updated Ingress served', async () => (await body(p, 'late2.example', '/')) === '200 a /', 1000, 20);
    api.delete('networking.k8s.io/v1', 'Ingress', 'default', 'late');
    await waitFor('deleted Ingress gone', async () => (await body(p, 'late2.example', '/')).startsWith('404'), 1000, 20);
    expect(await body(p, 'other.example', '/')).toMatch(/^404/);
  });

  it('follows an EndpointSlice change within a second, without a new routing table', async () => {
    const version = await p.metric('portico_published_table_version');
    const updates = (await p.metric('portico_translations_total', { result: 'endpoints' })) ?? 0;
    const s = endpointSlice('web', [`127.0.0.1:${b.port}`]);
    api.update({ ...api.get('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'web-1'), endpoints: s.endpoints, ports: s.ports });
    await waitFor('new endpoint', async () => (await body(p, 'web.example', '/')) === '200 b /', 1000, 20);
    expect(await p.metric('portico_published_table_version')).toBe(version);
    expect(await p.metric('portico_translations_total', { result: 'endpoints' })).toBe(updates + 1);
  });

  it('writes Ingress status by merge patch only for served Ingresses, following the published Service', async () => {
    // Pending load balancer: nothing written.
    await sleep(500);
    expect(lbStatus(api, 'web')).toBeUndefined();
    expect(await p.metric('portico_publish_service_pending')).toBe(1);
    const lb = api.get('v1', 'Service', 'ingress', 'lb');
    api.updateStatus({ ...lb, status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } });
    await waitFor('status written', () => JSON.stringify(lbStatus(api, 'web')) === '[{"ip":"192.0.2.10"}]', 5000);
    const patches = api.requests.filter((r: any) => r.method === 'PATCH' && String(r.path).includes('/ingresses/'));
    expect(patches.length).toBeGreaterThan(0);
    for (const r of patches as any[]) {
      expect(r.path).toMatch(/\/status$/);
      expect(String(r.contentType ?? r.headers?.['content-type'])).toContain('application/merge-patch+json');
    }
    expect(lbStatus(api, 'other')).toBeUndefined();
    api.updateStatus({ ...api.get('v1', 'Service', 'ingress', 'lb'), status: { loadBalancer: { ingress: [{ hostname: 'lb.example.net' }] } } });
    await waitFor('status follows the Service', () => JSON.stringify(lbStatus(api, 'web')) === '[{"hostname":"lb.example.net"}]', 5000);
    // No longer served (class changed): cleared.
    const web2 = api.create(ingress('web2', 'web2.example', [{ path: '/', service: 'web' }]));
    await waitFor('web2 status', () => lbStatus(api, 'web2') !== undefined, 5000);
    api.update({ ...api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web2'), spec: { ...web2.spec, ingressClassName: 'someone-else' } });
    await waitFor('web2 status cleared', () => lbStatus(api, 'web2') === undefined, 5000);
  });

  it('clears our address from an Ingress it does not serve (served before a restart)', async () => {
    const o = api.create(ingress('left', 'left.example', [{ path: '/', service: 'web' }], { className: 'someone-else' }));
    api.updateStatus({ ...api.get('networking.k8s.io/v1', 'Ingress', 'default', 'left'), status: { loadBalancer: { ingress: [{ hostname: 'lb.example.net' }] } } });
    expect(o.metadata.name).toBe('left');
    await waitFor('stale status cleared', () => lbStatus(api, 'left') === undefined, 5000);
    expect(JSON.stringify(lbStatus(api, 'web'))).toBe('[{"hostname":"lb.example.net"}]');
  });

  it('keeps serving through watch cuts, 500s and 410, and catches up afterwards', async () => {
    api.faults.failNext(6, { status: 500, pathPrefix: '/apis/networking.k8s.io/v1/ingresses' });
    api.faults.cutWatches();
    api.faults.expireHistory();
    api.create(ingress('during', 'during.example', [{ path: '/', service: 'web' }]));
    const source = async () => ((await (await fetch(`http://127.0.0.1:${p.adminPort}/status`)).json()) as { source: unknown }).source as { kind: string; stale: boolean; staleSince?: string; detail?: string };
    const stale = await waitFor('the stale source in /status', async () => {
      const s = await source();
      return s.stale ? s : undefined;
    }, 5000, 20);
    expect(stale).toMatchObject({ kind: 'kubernetes', detail: expect.stringMatching(/^watch down for [a-z]/) });
    expect(Date.parse(stale.staleSince!)).toBeGreaterThan(Date.now() - 60_000);
    // The last table keeps serving while the watch is down.
    expect(await body(p, 'web.example', '/')).toBe('200 b /');
    expect((await fetch(`http://127.0.0.1:${p.adminPort}/readyz`)).status).toBe(200);
    await waitFor('change made meanwhile served', async () => (await body(p, 'during.example', '/')) === '200 b /', 15_000, 50);
    expect(p.logs.some((l) => l.includes('watch stopped'))).toBe(true);
    await waitFor('source current again', async () => (await p.metric('portico_source_stale_since_seconds')) === 0, 10_000);
    expect((await source()).stale).toBe(false);
  }, 30_000);

  it('rides through an API server restart', async () => {
    await api.restart();
    expect(await body(p, 'web.example', '/')).toBe('200 b /');
    api.create(ingress('after', 'after.example', [{ path: '/', service: 'web' }]));
    await waitFor('change after the restart served', async () => (await body(p, 'after.example', '/')) === '200 b /', 15_000, 50);
  }, 30_000);

  it('an invalid Ingress does not remove served routes', async () => {
    const web = api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web');
    api.update({ ...web, spec: { ...web.spec, rules: [{ host: 'web.example', http: { paths: [{ path: 'no-slash', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] } });
    await sleep(600);
    expect(await body(p, 'web.example', '/')).toBe('200 b /');
  });
});
