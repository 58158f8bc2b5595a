// The fake API server against real clients: kubectl 1.32 and @kubernetes/client-node 2.x.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { sleep, waitFor } from './helpers/portico.ts';

const NET = 'networking.k8s.io/v1';
const ing = (name: string, labels: Record<string, string> = {}, host = `${name}.example.com`) => ({
  apiVersion: NET, kind: 'Ingress', metadata: { name, namespace: 'default', labels },
  spec: { rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
});

// Asynchronous on purpose: the server runs in this process and must keep answering.
function kubectl(s: FakeApiServer, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', s.kubeconfigPath, ...args], { encoding: 'utf8', timeout: 30_000 }, (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

function clientFor(s: FakeApiServer): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(s.kubeconfigPath);
  return kc;
}

async function raw(s: FakeApiServer, path: string, init: { method?: string; body?: string; contentType?: string; token?: string } = {}): Promise<{ status: number; type: string | null; json: any }> {
  const { Agent, fetch } = await import('undici');
  const dispatcher = new Agent({ connect: { ca: s.caPem || undefined } });
  const r = await fetch(s.url + path, {
    method: init.method ?? 'GET', body: init.body, dispatcher,
    headers: { authorization: `Bearer ${init.token ?? s.token}`, ...(init.contentType ? { 'content-type': init.contentType } : {}) },
  });
  const text = await r.text();
  await dispatcher.close();
  return { status: r.status, type: r.headers.get('content-type'), json: text ? JSON.parse(text) : undefined };
}

describe('fake API server with kubectl', () => {
  let s: FakeApiServer;
  beforeAll(async () => { s = await startFakeApiServer(); });
  afterAll(async () => { await s.close(); });

  it('applies, gets, patches status and deletes an Ingress', async () => {
    const file = join(tmpdir(), `fake-apiserver-ing-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(ing('web', { app: 'web' })));
    const created = await kubectl(s, 'apply', '-f', file);
    expect(created.err).toBe('');
    expect(created.out).toContain('ingress.networking.k8s.io/web created');
    expect((await kubectl(s, 'apply', '-f', file)).out).toContain('unchanged');
    const changed = ing('web', { app: 'web', tier: 'front' }, 'other.example.com');
    writeFileSync(file, JSON.stringify(changed));
    expect((await kubectl(s, 'apply', '-f', file)).out).toContain('configured');
    const stored = s.get(NET, 'Ingress', 'default', 'web');
    expect(stored.spec.rules[0].host).toBe('other.example.com');
    expect(stored.metadata.generation).toBe(2);
    expect(stored.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toContain('other.example.com');

    const got = await kubectl(s, 'get', 'ingress', 'web', '-o', 'json');
    expect(JSON.parse(got.out).metadata.uid).toBe(stored.metadata.uid);
    expect((await kubectl(s, 'get', 'ing', '-l', 'tier=front', '-o', 'name')).out.trim()).toBe('ingress.networking.k8s.io/web');
    expect((await kubectl(s, 'get', 'ing', '-l', 'tier!=front', '-o', 'name')).out.trim()).toBe('');

    const patched = await kubectl(s, 'patch', 'ingress', 'web', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.1"}]}}}');
    expect(patched.out).toContain('patched');
    const after = s.get(NET, 'Ingress', 'default', 'web');
    expect(after.status.loadBalancer.ingress).toEqual([{ ip: '192.0.2.1' }]);
    expect(after.metadata.generation).toBe(2); // status writes never bump generation
    expect(s.requests.some((r) => r.method === 'PATCH' && r.path.endsWith('/web/status') && r.contentType === 'application/merge-patch+json')).toBe(true);

    writeFileSync(file, JSON.stringify({ ...changed, bogus: 1 }));
    const strict = await kubectl(s, 'apply', '-f', file);
    expect(strict.code).not.toBe(0);
    expect(strict.err).toContain('unknown field "bogus"');

    expect((await kubectl(s, 'delete', 'ingress', 'web')).out).toContain('deleted');
    expect(s.get(NET, 'Ingress', 'default', 'web')).toBeUndefined();
    const missing = await kubectl(s, 'get', 'ingress', 'web');
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain('ingresses.networking.k8s.io "web" not found');
  });

  it('applies a Gateway API HTTPRoute (merge patch for CRDs)', async () => {
    const route = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['a.example.com'] } };
    const file = join(tmpdir(), `fake-apiserver-route-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(route));
    expect((await kubectl(s, 'apply', '-f', file)).out).toContain('httproute.gateway.networking.k8s.io/r created');
    writeFileSync(file, JSON.stringify({ ...route, spec: { ...route.spec, hostnames: ['b.example.com'] } }));
    expect((await kubectl(s, 'apply', '-f', file)).out).toContain('configured');
    expect(s.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'default', 'r').spec.hostnames).toEqual(['b.example.com']);
    expect(s.requests.some((r) => r.method === 'PATCH' && r.path.endsWith('/httproutes/r') && r.contentType === 'application/merge-patch+json')).toBe(true);
  });

  it('takes kubectl patch as strategic merge (keyed lists), JSON patch and merge patch', async () => {
    s.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80 }] } });
    expect((await kubectl(s, 'patch', 'service', 'svc', '-p', '{"spec":{"ports":[{"name":"https","port":443}]}}')).out).toContain('patched');
    expect(s.get('v1', 'Service', 'default', 'svc').spec.ports.map((p: { port: number }) => p.port)).toEqual([80, 443]);
    expect(s.requests.at(-1)).toMatchObject({ method: 'PATCH', contentType: 'application/strategic-merge-patch+json', status: 200 });
    expect((await kubectl(s, 'patch', 'service', 'svc', '--type=json', '-p', '[{"op":"remove","path":"/spec/ports/0"}]')).out).toContain('patched');
    expect(s.get('v1', 'Service', 'default', 'svc').spec.ports).toEqual([{ name: 'https', port: 443 }]);
    const bad = await kubectl(s, 'patch', 'service', 'svc', '--type=json', '-p', '[{"op":"remove","path":"/spec/nothing"}]');
    expect(bad.code).not.toBe(0);
    expect((await kubectl(s, 'patch', 'service', 'svc', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.example.net"}]}}}')).out).toContain('patched');
    expect(s.get('v1', 'Service', 'default', 'svc').status.loadBalancer.ingress).toEqual([{ hostname: 'lb.example.net' }]);
  });

  it('streams changes to kubectl get --watch', async () => {
    s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first', namespace: 'default' }, data: { a: '1' } });
    const child = spawn('kubectl', ['--kubeconfig', s.kubeconfigPath, 'get', 'configmaps', '--watch', '-o', 'name'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    try {
      await waitFor('initial list', () => out.includes('configmap/first'), 20_000);
      await waitFor('watch open', () => s.requests.some((r) => r.path === '/api/v1/namespaces/default/configmaps' && r.query.includes('watch=true')), 20_000);
      s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'second', namespace: 'default' } });
      await waitFor('watched event', () => out.includes('configmap/second'), 20_000);
    } finally {
      child.kill();
    }
  });
});

describe('fake API server with client-node', () => {
  let s: FakeApiServer;
  let kc: k8s.KubeConfig;
  beforeAll(async () => { s = await startFakeApiServer({ bookmarkIntervalMs: 100 }); kc = clientFor(s); });
  afterAll(async () => { await s.close(); });

  it('lists with resourceVersion and label and field selectors over HTTPS', async () => {
    s.create(ing('l1', { app: 'a', tier: 'x' }));
    s.create(ing('l2', { app: 'b' }));
    const net = kc.makeApiClient(k8s.NetworkingV1Api);
    const all = await net.listNamespacedIngress({ namespace: 'default' });
    expect(Number(all.metadata?.resourceVersion)).toBeGreaterThan(0);
    const names = async (labelSelector?: string, fieldSelector?: string) => (await net.listIngressForAllNamespaces({ labelSelector, fieldSelector })).items.map((i) => i.metadata!.name).sort();
    expect(await names('app=a')).toEqual(['l1']);
    expect(await names('app==b')).toEqual(['l2']);
    expect(await names('app in (a,b),tier')).toEqual(['l1']);
    expect(await names('app notin (a),!tier')).toEqual(['l2']);
    expect(await names(undefined, 'metadata.name=l2')).toEqual(['l2']);
    expect(await names(undefined, 'metadata.namespace!=default')).toEqual([]);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==', 'tls.key': 'eA==' } } });
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'plain' }, stringData: { a: 'b' } } });
    const tls = await core.listSecretForAllNamespaces({ fieldSelector: 'type=kubernetes.io/tls' });
    expect(tls.items.map((i) => i.metadata!.name)).toEqual(['tls']);
    expect(s.get('v1', 'Secret', 'default', 'plain').data).toEqual({ a: 'Yg==' });
    const bad = await raw(s, '/apis/networking.k8s.io/v1/ingresses?fieldSelector=spec.foo%3Dx');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ kind: 'Status', reason: 'BadRequest' });
  });

  it('answers 401, 404 and 409 AlreadyExists/Conflict as Status objects', async () => {
    const unauth = await raw(s, '/api/v1/namespaces', { token: 'wrong' });
    expect(unauth.status).toBe(401);
    expect(unauth.type).toBe('application/json');
    const net = kc.makeApiClient(k8s.NetworkingV1Api);
    const err = async (p: Promise<unknown>) => { try { await p; } catch (e) { return e as k8s.ApiException<string>; } throw new Error('no error'); };
    const nf = await err(net.readNamespacedIngress({ name: 'nope', namespace: 'default' }));
    expect(nf.code).toBe(404);
    expect(JSON.parse(nf.body)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'ingresses.networking.k8s.io "nope" not found' });
    await net.createNamespacedIngress({ namespace: 'default', body: ing('dup') });
    const ae = await err(net.createNamespacedIngress({ namespace: 'default', body: ing('dup') }));
    expect(ae.code).toBe(409);
    expect(JSON.parse(ae.body).reason).toBe('AlreadyExists');
    const cur = await net.readNamespacedIngress({ name: 'dup', namespace: 'default' });
    await net.replaceNamespacedIngress({ name: 'dup', namespace: 'default', body: { ...cur, spec: { ...cur.spec, ingressClassName: 'a' } } });
    const stale = await err(net.replaceNamespacedIngress({ name: 'dup', namespace: 'default', body: { ...cur, spec: { ...cur.spec, ingressClassName: 'b' } } }));
    expect(stale.code).toBe(409);
    expect(JSON.parse(stale.body).reason).toBe('Conflict');
    const noNs = await err(net.createNamespacedIngress({ namespace: 'absent', body: { ...ing('x'), metadata: { name: 'x' } } }));
    expect(noNs.code).toBe(404);
  });

  it('patches status by merge patch with an explicit Content-Type; main writes ignore status', async () => {
    const net = kc.makeApiClient(k8s.NetworkingV1Api);
    const created = await net.createNamespacedIngress({ namespace: 'default', body: ing('st') });
    const patched = await net.patchNamespacedIngressStatus(
      { name: 'st', namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } }, spec: { ingressClassName: 'ignored' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    expect(patched.status?.loadBalancer?.ingress?.[0].ip).toBe('192.0.2.10');
    expect(patched.spec?.ingressClassName).toBeUndefined();
    expect(patched.metadata?.generation).toBe(created.metadata?.generation);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    const req = s.requests.findLast((r) => r.method === 'PATCH' && r.path.endsWith('/ingresses/st/status'))!;
    expect(req.contentType).toBe('application/merge-patch+json');
    // A main-resource write cannot change status, and a spec change bumps generation.
    const replaced = await net.replaceNamespacedIngress({ name: 'st', namespace: 'default', body: { ...patched, spec: { ...patched.spec, ingressClassName: 'c' }, status: {} } });
    expect(replaced.status?.loadBalancer?.ingress?.[0].ip).toBe('192.0.2.10');
    expect(replaced.metadata?.generation).toBe((created.metadata?.generation ?? 0) + 1);
    // JSON patch (client-node's default Content-Type) on status.
    const jp = await net.patchNamespacedIngressStatus({ name: 'st', namespace: 'default', body: [{ op: 'replace', path: '/status/loadBalancer/ingress/0/ip', value: '192.0.2.11' }] });
    expect(jp.status?.loadBalancer?.ingress?.[0].ip).toBe('192.0.2.11');
    // A resourceVersion in a merge patch is a precondition.
    const r = await raw(s, '/apis/networking.k8s.io/v1/namespaces/default/ingresses/st/status', { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({ metadata: { resourceVersion: '1' }, status: {} }) });
    expect(r.status).toBe(409);
    // Strategic merge patch is refused for CRDs, as the API server does.
    s.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'g', namespace: 'default' }, spec: { gatewayClassName: 'portico', listeners: [] } });
    const smp = await raw(s, '/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/g/status', { method: 'PATCH', contentType: 'application/strategic-merge-patch+json', body: '{"status":{}}' });
    expect(smp.status).toBe(415);
    const co = kc.makeApiClient(k8s.CustomObjectsApi);
    const gs = await co.patchNamespacedCustomObjectStatus({ group: 'gateway.networking.k8s.io', version: 'v1', namespace: 'default', plural: 'gateways', name: 'g', body: { status: { addresses: [{ type: 'IPAddress', value: '192.0.2.1' }] } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    expect(gs.status.addresses[0].value).toBe('192.0.2.1');
    expect(gs.metadata.generation).toBe(1);
  });

  it('watches from a resourceVersion with BOOKMARKs, selectors and timeoutSeconds', async () => {
    const net = kc.makeApiClient(k8s.NetworkingV1Api);
    const list = await net.listNamespacedIngress({ namespace: 'default' });
    const events: { type: string; name?: string; rv: string }[] = [];
    let done = false;
    const w = new k8s.Watch(kc);
    const ac = await w.watch('/apis/networking.k8s.io/v1/namespaces/default/ingresses', { resourceVersion: list.metadata!.resourceVersion, allowWatchBookmarks: true, labelSelector: 'watch=yes', timeoutSeconds: 3 },
      (type, obj) => events.push({ type, name: obj.metadata?.name, rv: obj.metadata.resourceVersion }), () => { done = true; });
    s.create(ing('w1', { watch: 'yes' }));
    s.create(ing('w2', { watch: 'no' }));
    const w1 = s.get(NET, 'Ingress', 'default', 'w1');
    s.update({ ...w1, metadata: { ...w1.metadata, labels: { watch: 'no' } } }); // leaves the selector: DELETED
    const w2 = s.get(NET, 'Ingress', 'default', 'w2');
    s.update({ ...w2, metadata: { ...w2.metadata, labels: { watch: 'yes' } } }); // enters it: ADDED
    s.delete(NET, 'Ingress', 'default', 'w2');
    await waitFor('bookmark', () => events.some((e) => e.type === 'BOOKMARK'), 10_000);
    expect(events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED w1', 'DELETED w1', 'ADDED w2', 'DELETED w2']);
    const lastEvent = events.findLast((e) => e.type !== 'BOOKMARK')!;
    await waitFor('bookmark after the last event', () => events.at(-1)!.type === 'BOOKMARK' && Number(events.at(-1)!.rv) >= Number(lastEvent.rv), 5_000);
    await waitFor('timeoutSeconds ends the stream', () => done, 10_000);
    ac.abort();
    const replay: string[] = [];
    const ac2 = await w.watch('/apis/networking.k8s.io/v1/namespaces/default/ingresses', { resourceVersion: list.metadata!.resourceVersion, fieldSelector: 'metadata.name=w1' }, (type, obj) => replay.push(`${type} ${obj.metadata.name}`), () => {});
    await waitFor('replay from resourceVersion', () => replay.length === 2, 5_000);
    expect(replay).toEqual(['ADDED w1', 'MODIFIED w1']);
    ac2.abort();
  });

  it('an informer recovers from 410 Gone (HTTP and in-stream) by re-listing', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const path = '/api/v1/namespaces/default/configmaps';
    for (const mode of ['http', 'event'] as const) {
      s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `old-${mode}`, namespace: 'default', labels: { inf: mode } } });
      const inf = k8s.makeInformer(kc, path, () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: `inf=${mode}` }), `inf=${mode}`);
      const seen: string[] = [];
      inf.on('add', (o) => seen.push(`add ${o.metadata!.name}`));
      inf.on('delete', (o) => seen.push(`delete ${o.metadata!.name}`));
      inf.on('error', () => seen.push('error'));
      await inf.start();
      await waitFor('initial add', () => seen.includes(`add old-${mode}`), 10_000);
      const lists = () => s.requests.filter((r) => r.path === path && !r.query.includes('watch=') && r.query.includes(`inf%3D${mode}`)).length;
      const listsBefore = lists();
      // The watch reconnect is held back while changes happen and history expires under it.
      s.faults.delay(300, { pathPrefix: path });
      s.faults.endWatches();
      s.delete('v1', 'ConfigMap', 'default', `old-${mode}`);
      s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `new-${mode}`, namespace: 'default', labels: { inf: mode } } });
      s.faults.expireHistory({ watchStart: mode });
      await waitFor('caught up after re-list', () => seen.includes(`add new-${mode}`) && seen.includes(`delete old-${mode}`), 15_000);
      s.faults.delay(0, { pathPrefix: path });
      expect(lists()).toBeGreaterThan(listsBefore);
      expect(seen).not.toContain('error');
      const gone = s.requests.filter((r) => r.path === path && r.query.includes('watch=true'));
      if (mode === 'http') expect(gone.some((r) => r.status === 410)).toBe(true);
      await inf.stop();
    }
  });

  it('an abrupt watch cut stops an informer with an error; start() catches up from its resourceVersion', async () => {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const path = '/api/v1/namespaces/default/configmaps';
    const inf = k8s.makeInformer(kc, path, () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'inf=cut' }), 'inf=cut');
    const seen: string[] = [];
    inf.on('add', (o) => seen.push(`add ${o.metadata!.name}`));
    inf.on('error', () => seen.push('error'));
    await inf.start();
    const watches = () => s.requests.filter((r) => r.path === path && r.query.includes('watch=true') && r.query.includes('inf%3Dcut')).length;
    await waitFor('watch open', () => watches() === 1, 5_000);
    s.faults.cutWatches();
    await waitFor('error', () => seen.includes('error'), 10_000);
    s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'during-cut', namespace: 'default', labels: { inf: 'cut' } } });
    await inf.start();
    await waitFor('caught up', () => seen.includes('add during-cut'), 10_000);
    expect(watches()).toBe(2);
    await inf.stop();
  });
});

describe('fake API server: Leases and in-cluster config', () => {
  let s: FakeApiServer;
  beforeAll(async () => { s = await startFakeApiServer(); });
  afterAll(async () => { await s.close(); });

  it('takes Leases with six-digit MicroTimes and refuses a JS Date', async () => {
    // The in-cluster path: service-account files under a prefix, HTTPS verified against the CA.
    const dir = mkdtempSync(join(tmpdir(), 'fake-apiserver-sa-'));
    const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), s.caPem);
    writeFileSync(join(sa, 'token'), s.token);
    writeFileSync(join(sa, 'namespace'), 'kube-system');
    const u = new URL(s.url);
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = u.hostname;
    process.env.KUBERNETES_SERVICE_PORT = u.port;
    const kc = new k8s.KubeConfig();
    try { kc.loadFromCluster(dir); } finally {
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST; else process.env.KUBERNETES_SERVICE_HOST = saved.host;
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT; else process.env.KUBERNETES_SERVICE_PORT = saved.port;
    }
    const co = kc.makeApiClient(k8s.CoordinationV1Api);
    const now = new k8s.V1MicroTime();
    const lease = await co.createNamespacedLease({ namespace: 'kube-system', body: { metadata: { name: 'portico' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0 } } });
    expect(lease.spec?.holderIdentity).toBe('a');
    expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
    const bad = await co.replaceNamespacedLease({ name: 'portico', namespace: 'kube-system', body: { ...lease, spec: { ...lease.spec, renewTime: new Date() as k8s.V1MicroTime } } }).catch((e: k8s.ApiException<string>) => e);
    expect((bad as k8s.ApiException<string>).code).toBe(400);
    const renewed = await co.replaceNamespacedLease({ name: 'portico', namespace: 'kube-system', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b', renewTime: new k8s.V1MicroTime() } } });
    expect(renewed.spec?.holderIdentity).toBe('b');
    const stale = await co.replaceNamespacedLease({ name: 'portico', namespace: 'kube-system', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'c' } } }).catch((e: k8s.ApiException<string>) => e);
    expect((stale as k8s.ApiException<string>).code).toBe(409);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('fake API server faults, discovery and restarts', () => {
  let s: FakeApiServer;
  beforeAll(async () => { s = await startFakeApiServer({ https: false, gatewayApiCrds: false, token: 'secret', tlsRouteV1alpha2: true }); });
  afterAll(async () => { await s.close(); });

  it('serves plain HTTP with a kubeconfig client-node accepts', async () => {
    expect(s.url.startsWith('http://127.0.0.1:')).toBe(true);
    expect(s.caPem).toBe('');
    const core = clientFor(s).makeApiClient(k8s.CoreV1Api);
    const ns = await core.listNamespace();
    expect(ns.items.map((n) => n.metadata!.name)).toEqual(['default', 'kube-public', 'kube-system']);
    expect(s.requests.at(-1)).toMatchObject({ method: 'GET', path: '/api/v1/namespaces', status: 200 });
  });

  it('shows Gateway API kinds only while their CRDs are installed', async () => {
    const groups = async () => (await raw(s, '/apis')).json.groups.map((g: { name: string }) => g.name);
    expect(await groups()).not.toContain('gateway.networking.k8s.io');
    expect((await raw(s, '/apis/gateway.networking.k8s.io/v1/httproutes')).status).toBe(404);
    s.installCrds('gateway.networking.k8s.io');
    expect(await groups()).toContain('gateway.networking.k8s.io');
    const g = (await raw(s, '/apis/gateway.networking.k8s.io')).json;
    expect(g.preferredVersion.version).toBe('v1');
    expect(g.versions.map((v: { version: string }) => v.version)).toEqual(['v1', 'v1beta1', 'v1alpha2']);
    const v1 = (await raw(s, '/apis/gateway.networking.k8s.io/v1')).json;
    expect(v1.resources.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['gatewayclasses', 'gateways/status', 'httproutes', 'grpcroutes', 'tlsroutes', 'referencegrants']));
    expect((await raw(s, '/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes')).json).toMatchObject({ kind: 'TLSRouteList', items: [] });
    expect((await raw(s, '/apis/gateway.networking.k8s.io/v1beta1/referencegrants')).status).toBe(200);
    s.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'example.com/portico' } });
    expect(s.get('gateway.networking.k8s.io/v1beta1', 'GatewayClass', undefined, 'portico').apiVersion).toBe('gateway.networking.k8s.io/v1beta1');
    let ended = false;
    const kc = clientFor(s);
    const ac = await new k8s.Watch(kc).watch('/apis/gateway.networking.k8s.io/v1/gatewayclasses', {}, () => {}, () => { ended = true; });
    await waitFor('watch open', () => s.requests.some((r) => r.path.endsWith('/gatewayclasses') && r.query.includes('watch=true') && r.status === 200), 5_000);
    s.removeCrds('gateway.networking.k8s.io');
    await waitFor('watch ended with the CRD', () => ended, 5_000);
    ac.abort();
    expect((await raw(s, '/apis/gateway.networking.k8s.io/v1/httproutes')).status).toBe(404);
    s.installCrds('gateway.networking.k8s.io');
    expect((await raw(s, '/apis/gateway.networking.k8s.io/v1/gatewayclasses')).json.items).toEqual([]);
    s.removeCrds('gateway.networking.k8s.io');
    expect((await raw(s, '/api')).json.versions).toEqual(['v1']);
  });

  it('fails, conflicts and delays on demand', async () => {
    s.faults.failNext(2, { pathPrefix: '/api/v1/namespaces/default/configmaps', method: 'GET' });
    const p = '/api/v1/namespaces/default/configmaps';
    expect((await raw(s, p)).status).toBe(500);
    expect((await raw(s, p)).json).toMatchObject({ kind: 'Status', code: 500 });
    expect((await raw(s, p)).status).toBe(200);
    s.faults.failNext(1, { status: 503 });
    expect((await raw(s, '/api/v1/secrets')).status).toBe(503);
    s.faults.conflictNext(1, { pathPrefix: p });
    expect((await raw(s, p)).status).toBe(200); // reads are not writes
    const body = JSON.stringify({ metadata: { name: 'c' } });
    expect((await raw(s, p, { method: 'POST', body, contentType: 'application/json' })).json.reason).toBe('Conflict');
    expect((await raw(s, p, { method: 'POST', body, contentType: 'application/json' })).status).toBe(201);
    s.faults.delay(400, { pathPrefix: p });
    const t0 = Date.now();
    expect((await raw(s, p)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    s.faults.delay(0, { pathPrefix: p });
  });

  it('pages lists with limit/continue, 410s an expired token or Exact version, and streams initial events', async () => {
    for (const n of ['p1', 'p2', 'p3']) s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n, namespace: 'kube-public' } });
    const p = '/api/v1/namespaces/kube-public/configmaps';
    const first = (await raw(s, `${p}?limit=2`)).json;
    expect(first.items.map((i: any) => i.metadata.name)).toEqual(['p1', 'p2']);
    expect(first.items[0].kind).toBeUndefined(); // built-in list items carry no kind
    expect(first.metadata.remainingItemCount).toBe(1);
    const rest = (await raw(s, `${p}?limit=2&continue=${first.metadata.continue}`)).json;
    expect(rest.items.map((i: any) => i.metadata.name)).toEqual(['p3']);
    expect(rest.metadata.continue).toBeUndefined();
    expect((await raw(s, `${p}?resourceVersion=${first.metadata.resourceVersion}&resourceVersionMatch=Exact`)).status).toBe(200);
    s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'p4', namespace: 'kube-public' } });
    s.faults.expireHistory();
    const gone = await raw(s, `${p}?limit=2&continue=${first.metadata.continue}`);
    expect(gone.status).toBe(410);
    expect(gone.json).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
    expect((await raw(s, `${p}?resourceVersion=${first.metadata.resourceVersion}&resourceVersionMatch=Exact`)).status).toBe(410);
    const stale = await raw(s, `${p}?watch=true&resourceVersion=${first.metadata.resourceVersion}`);
    expect(stale.status).toBe(410);
    const events: any[] = [];
    const ac = await new k8s.Watch(clientFor(s)).watch(p, { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', allowWatchBookmarks: true }, (type, obj) => events.push({ type, obj }), () => {});
    await waitFor('initial events end', () => events.some((e) => e.obj.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true'), 5_000);
    expect(events.slice(0, 4).map((e) => `${e.type} ${e.obj.metadata.name}`)).toEqual(['ADDED p1', 'ADDED p2', 'ADDED p3', 'ADDED p4']);
    ac.abort();
  });

  it('cuts watch streams and keeps state across a restart', async () => {
    const kc = clientFor(s);
    let ended = 0;
    const ac = await new k8s.Watch(kc).watch('/api/v1/namespaces', {}, () => {}, () => { ended++; });
    await waitFor('watch open', () => s.requests.some((r) => r.path === '/api/v1/namespaces' && r.query.includes('watch=true')), 5_000);
    s.faults.cutWatches();
    await waitFor('stream ended', () => ended === 1, 5_000);
    ac.abort();
    s.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kept' } });
    const url = s.url;
    await s.restart();
    expect(s.url).toBe(url);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    expect((await core.readNamespace({ name: 'kept' })).status?.phase).toBe('Active');
    await sleep(10);
  });
});
