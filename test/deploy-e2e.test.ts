// deploy/ end to end, as far as a machine without a cluster allows: `portico serve` runs with the
// rendered Deployment's own args and downward-API env against the fake API server, holding the
// objects deploy/ creates (namespace, classes, the published Service). It must become ready,
// lead through the Lease the Role names, serve an Ingress and an HTTPRoute, and write their
// status with the Service's address; and every request it made must be one the rendered RBAC
// allows (checked request by request, apart from the KUBE_ACCESS comparison in deploy.test.ts).

import { createServer, type Server } from 'node:http';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { endpointSlice, ingress, service } from './helpers/manifests.ts';
import { launchPortico, waitFor, type LaunchedPortico } from './helpers/portico.ts';
import { boundRules, find, HAVE_KUBECTL, render, TARGETS, workloads, type Obj, type Workload } from './deploy-render.ts';
import type { Manifest } from './deploy-validate.ts';

const GW = 'gateway.networking.k8s.io/v1';
const LB_IP = '192.0.2.50';

interface ApiCall {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

/** The RBAC view of one API request, or undefined for discovery (allowed to every authenticated client). */
function apiCall(method: string, path: string, query: string): ApiCall | undefined {
  const parts = path.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 3) [group, rest] = [parts[1], parts.slice(3)];
  else return undefined; // /api, /apis, /apis/<group>, /version, /openapi: non-resource discovery
  if (rest.length === 0) return undefined; // /api/v1, /apis/<group>/<version>: discovery
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [res, name, sub] = rest;
  const watch = /(^|&)watch=(true|1)(&|$)/.test(query);
  const verb = { GET: name ? 'get' : watch ? 'watch' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' }[method] ?? method.toLowerCase();
  return { verb, group, resource: sub ? `${res}/${sub}` : res, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) };
}

/** Whether a rule list grants the call (resourceNames honoured: they cannot match list, watch or create). */
function allows(rules: Obj[], c: ApiCall): boolean {
  return rules.some((r) =>
    (r.apiGroups as string[]).includes(c.group) &&
    (r.resources as string[]).includes(c.resource) &&
    (r.verbs as string[]).includes(c.verb) &&
    (r.resourceNames === undefined || (c.name !== undefined && (r.resourceNames as string[]).includes(c.name))),
  );
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}


const POD_NAME = 'portico-6d4b9c7f8-x2x9q';

/**
 * Starts portico serve with the workload's container args as they are, but the listener ports
 * (free loopback ones, added by launchPortico) and the fake server's kubeconfig instead of the
 * in-cluster config; the downward-API env as the kubelet would fill it.
 */
async function launch(w: Workload, api: FakeApiServer): Promise<{ args: string[]; env: Record<string, string> }> {
  const args = (w.c.args as string[]).slice(1).filter((a) => !/^--(http|https|admin)-port=/.test(a));
  const env: Record<string, string> = {};
  for (const e of w.c.env as Obj[]) {
    const path = e.valueFrom?.fieldRef?.fieldPath as string;
    env[e.name] = path === 'metadata.namespace' ? w.o.metadata.namespace! : path === 'metadata.name' ? POD_NAME : (e.value as string);
  }
  portico = await launchPortico([...args, '--kubeconfig', api.kubeconfigPath], { workers: 1, env: { ...env, PORTICO_KUBE_TEST_TIMINGS: '20,200,300,100' } });
  await portico.waitReady();
  return { args, env };
}

/** What `kubectl apply -k` creates that the controller reads, as rendered (the kinds the fake server serves). */
function applyRendered(api: FakeApiServer, objects: Manifest[]): void {
  for (const kind of ['Namespace', 'IngressClass', 'GatewayClass', 'Service']) for (const o of find(objects, kind)) api.create(o);
  for (const svc of find(objects, 'Service').filter((x) => (x as Obj).spec.type === 'LoadBalancer')) api.updateStatus({ ...svc, status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } });
}

/** A loopback backend behind Service `web` and an Ingress for web.example, in namespace `ns`. */
async function startBackend(api: FakeApiServer, ns = 'default'): Promise<void> {
  backend = createServer((_req, res) => res.end('backend'));
  await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', () => r()));
  if (api.get('v1', 'Namespace', undefined, ns) === undefined) api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  api.create(service('web', 80, ns));
  api.create(endpointSlice('web', [`127.0.0.1:${(backend.address() as { port: number }).port}`], ns));
  api.create(ingress('web', 'web.example', [{ path: '/', service: 'web' }], { namespace: ns }));
}

/** The requests the rendered RBAC would refuse. */
function denied(api: FakeApiServer, objects: Manifest[], w: Workload): ApiCall[] {
  const rules = boundRules(objects, w.pod.serviceAccountName as string, w.o.metadata.namespace!);
  return calls(api).filter((c) => !allows(rules.get('') ?? [], c) && !(c.namespace !== undefined && allows(rules.get(c.namespace) ?? [], c)));
}

const calls = (api: FakeApiServer): ApiCall[] => api.requests.map((r) => apiCall(r.method, r.path, r.query)).filter((c): c is ApiCall => c !== undefined);

let portico: LaunchedPortico | undefined;
let backend: Server | undefined;
let api: FakeApiServer | undefined;

async function startApi(): Promise<FakeApiServer> {
  api = await startFakeApiServer();
  return api;
}

async function cleanUp(): Promise<void> {
  await portico?.kill();
  await api?.close();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  [portico, api, backend] = [undefined, undefined, undefined];
}

describe.skipIf(!HAVE_KUBECTL)('deploy/ against the fake API server', () => {
  afterEach(cleanUp);

  it('runs with the Deployment\'s args, leads, serves and writes status, within the rendered RBAC', async () => {
    const objects = render('.');
    const [w] = workloads(objects);
    const ns = w.o.metadata.namespace!;
    const api = await startApi();

    applyRendered(api, objects);
    await startBackend(api);

    const { args, env } = await launch(w, api);

    const electionId = /--election-id=(.+)/.exec(args.find((a) => a.startsWith('--election-id='))!)![1];
    await waitFor('the Lease in Portico\'s namespace', () => api.get('coordination.k8s.io/v1', 'Lease', ns, electionId)?.spec?.holderIdentity === env.POD_NAME, 15_000);
    await waitFor('Ingress status with the published Service\'s address', () => api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.[0]?.ip === LB_IP, 15_000);
    await waitFor('the Ingress served', async () => (await get(portico!.httpPort, 'web.example')).body === 'backend', 10_000);

    // Gateway API through the GatewayClass deploy/ installs.
    const gatewayClass = find(objects, 'GatewayClass')[0].metadata.name;
    api.create({ apiVersion: GW, kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: { gatewayClassName: gatewayClass, listeners: [{ name: 'http', port: portico!.httpPort, protocol: 'HTTP' }] } });
    api.create({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['gw.example'], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] } });
    await waitFor('the HTTPRoute served', async () => (await get(portico!.httpPort, 'gw.example')).body === 'backend', 10_000);
    await waitFor('GatewayClass Accepted', () => api.get(GW, 'GatewayClass', undefined, gatewayClass)?.status?.conditions?.some((c: Obj) => c.type === 'Accepted' && c.status === 'True'), 15_000);
    await waitFor('Gateway status addresses', () => api.get(GW, 'Gateway', 'default', 'gw')?.status?.addresses?.[0]?.value === LB_IP, 15_000);
    await waitFor('HTTPRoute Accepted', () => api.get(GW, 'HTTPRoute', 'default', 'r')?.status?.parents?.[0]?.conditions?.some((c: Obj) => c.type === 'Accepted' && c.status === 'True'), 15_000);

    // A Lease renewal (every 2 s while leading) is part of what the RBAC must allow.
    await waitFor('a Lease renewal', () => api.requests.some((r) => r.method === 'PUT' && r.path.includes('/leases/')), 15_000);

    // Every request it made is one the rendered RBAC allows.
    expect(denied(api, objects, w)).toEqual([]);
    // And it made the calls this test is about (so the check above is not vacuous).
    const made = new Set(calls(api).map((c) => `${c.verb} ${c.resource}`));
    for (const m of ['list ingresses', 'watch ingresses', 'watch endpointslices', 'list secrets', 'watch httproutes', 'patch ingresses/status', 'patch gateways/status', 'patch httproutes/status', 'create leases', 'update leases']) expect(made, m).toContain(m);
    expect(calls(api).filter((c) => c.resource === 'leases').every((c) => c.namespace === ns)).toBe(true);
  }, 90_000);

  // Each overlay that runs the controller differently (other args, a DaemonSet): it starts, leads
  // and serves with its own args, within its own RBAC.
  const OVERLAYS = TARGETS.filter((t) => t.startsWith('overlays/') && workloads(render(t)).some((w) => (w.c.args as string[]).includes('--kubernetes')));
  it.each(OVERLAYS)('%s: the controller starts, leads and serves with the overlay\'s args, within its RBAC', async (target) => {
    const objects = render(target);
    const [w] = workloads(objects);
    const api = await startApi();
    applyRendered(api, objects);
    // With --watch-namespace, the served objects live there.
    const served = (w.c.args as string[]).find((a) => a.startsWith('--watch-namespace='))?.split('=')[1] ?? 'default';
    await startBackend(api, served);
    const { args } = await launch(w, api);
    const electionId = args.find((a) => a.startsWith('--election-id='))!.split('=')[1];
    await waitFor('the Lease', () => api.get('coordination.k8s.io/v1', 'Lease', w.o.metadata.namespace, electionId)?.spec?.holderIdentity === POD_NAME, 15_000);
    if (args.includes('--use-proxy-protocol=true')) {
      // PROXY protocol is on: a request without the header is refused with the explanation.
      const r = await get(portico!.httpPort, 'web.example');
      expect(r.status).toBe(400);
      expect(r.body).toMatch(/PROXY protocol header expected/);
    } else {
      await waitFor('the Ingress served', async () => (await get(portico!.httpPort, 'web.example')).body === 'backend', 10_000);
    }
    if (args.some((a) => a.startsWith('--publish-service='))) {
      await waitFor('Ingress status', () => api.get('networking.k8s.io/v1', 'Ingress', served, 'web')?.status?.loadBalancer?.ingress?.[0]?.ip === LB_IP, 15_000);
    }
    expect(denied(api, objects, w)).toEqual([]);
  }, 60_000);
});
