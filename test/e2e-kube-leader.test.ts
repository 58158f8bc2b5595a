// Two replicas, one Lease: only the leader writes status; killing it hands writing to the other
// within the lease time. Also: missing Gateway API CRDs are skipped, then picked up; a TLS Secret
// from the API is served by SNI.
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver/index.ts';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { endpointSlice, ingress, ingressClass, service } from './helpers/manifests.ts';
import { waitFor } from './helpers/portico.ts';
import { startKubePortico, type KubePortico } from './kube-launch.ts';

const LEASE = 'coordination.k8s.io/v1';

describe('leader election', () => {
  let api: FakeApiServer;
  const replicas: KubePortico[] = [];
  afterAll(async () => {
    for (const r of replicas) await r.stop('SIGKILL');
    await api?.close();
  });

  it('only the leader writes status, and the other takes over when it dies', async () => {
    api = await startFakeApiServer({ gatewayApiCrds: false });
    api.create(ingressClass());
    api.create(service('web'));
    api.create(endpointSlice('web', ['127.0.0.1:9']));
    api.create(ingress('web', 'web.example', [{ path: '/', service: 'web' }]));
    const timings = { PORTICO_LEADER_TIMINGS: '1500,1000,200' };
    for (const name of ['pod-a', 'pod-b']) {
      replicas.push(await startKubePortico(api.kubeconfigPath, ['--publish-status-address', '192.0.2.7', '--election-id', 'portico-test', '--election-namespace', 'default'], { ...timings, POD_NAME: name }));
    }
    await Promise.all(replicas.map((r) => r.waitReady()));
    const holder = await waitFor('a leader', () => api.get(LEASE, 'Lease', 'default', 'portico-test')?.spec?.holderIdentity as string | undefined, 10_000);
    const lease = api.get(LEASE, 'Lease', 'default', 'portico-test');
    expect(lease.spec.renewTime).toMatch(/\.\d{6}Z$/);
    expect(lease.spec.leaseDurationSeconds).toBe(2);
    await waitFor('status by the leader', () => api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.7', 10_000);
    const [leader, follower] = holder === 'pod-a' ? replicas : [replicas[1], replicas[0]];
    expect(await leader.metric('portico_leader')).toBe(1);
    expect(await follower.metric('portico_leader')).toBe(0);
    // Both serve traffic.
    for (const r of replicas) expect((await fetch(`http://127.0.0.1:${r.adminPort}/readyz`)).status).toBe(200);
    await leader.stop('SIGKILL'); // no release: the follower must wait the lease out
    const killedAt = Date.now();
    await waitFor('follower leads', async () => (await follower.metric('portico_leader')) === 1, 10_000);
    expect(Date.now() - killedAt).toBeLessThan(8000); // lease (1.5 s) + retries, loosely bounded
    expect(api.get(LEASE, 'Lease', 'default', 'portico-test').spec.holderIdentity).toBe(holder === 'pod-a' ? 'pod-b' : 'pod-a');
    // The new leader writes: change the address it must publish by re-creating the Ingress.
    api.delete('networking.k8s.io/v1', 'Ingress', 'default', 'web');
    api.create(ingress('web', 'web.example', [{ path: '/', service: 'web' }]));
    await waitFor('status by the new leader', () => api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.7', 10_000);
  }, 60_000);
});

describe('Gateway API CRDs and TLS Secrets', () => {
  let api: FakeApiServer;
  let p: KubePortico | undefined;
  afterAll(async () => {
    await p?.stop();
    await api?.close();
  });

  it('skips missing Gateway API kinds with one log line, picks them up later, and serves a TLS Secret by SNI', async () => {
    api = await startFakeApiServer({ gatewayApiCrds: false });
    api.create(tlsSecret('tls', makeCert('tls.example')));
    api.create({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'password', namespace: 'default' }, data: { x: 'eA==' } });
    api.create(ingressClass());
    api.create(service('web'));
    api.create(endpointSlice('web', ['127.0.0.1:9']));
    const ing = ingress('web', 'tls.example', [{ path: '/', service: 'web' }]);
    api.create({ ...ing, spec: { ...(ing.spec as object), tls: [{ hosts: ['tls.example'], secretName: 'tls' }] } });
    // Discovery failing at start-up: no empty table is served, start-up goes on once it answers.
    api.faults.failNext(4, { status: 500, pathPrefix: '/api' });
    p = await startKubePortico(api.kubeconfigPath);
    await p.waitReady();
    expect(p.logs.some((l) => l.includes('API discovery failed'))).toBe(true);
    expect(p.logs.filter((l) => l.includes('publishing routing table')).length).toBe(1); // not an empty one first
    expect(p.logs.filter((l) => l.includes('CRD not installed') && l.includes('httproutes')).length).toBe(1);
    // Only TLS Secrets are listed and watched.
    const secretReqs = api.requests.filter((r) => r.path.startsWith('/api/v1/secrets'));
    expect(secretReqs.length).toBeGreaterThan(0);
    for (const r of secretReqs) expect(decodeURIComponent(r.query)).toContain('fieldSelector=type=kubernetes.io/tls');
    const subject = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: p!.httpsPort, servername: 'tls.example', rejectUnauthorized: false }, () => {
        resolve(String(s.getPeerCertificate().subject?.CN));
        s.end();
      });
      s.on('error', reject);
    });
    expect(subject).toBe('tls.example');
    api.installCrds('gateway.networking.k8s.io');
    await waitFor('Gateway API watched', () => api.requests.some((r) => r.path.startsWith('/apis/gateway.networking.k8s.io/v1/httproutes')), 10_000);
    expect(p.proc.exitCode).toBeNull();
  }, 40_000);
});
