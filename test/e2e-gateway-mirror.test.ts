// RequestMirror through a real `portico serve`: the forwarded backend answers, each mirror backend
// receives the same request (target, method, headers after the filters, body), a percentage
// mirrors about that share, and a mirror that never answers does not hold the client's answer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, send, serviceFor, startEchoPod, statusOf, toYaml, type EchoPod, type Obj } from './gateway-helpers.ts';

let portico: Portico;
const pods: Record<string, EchoPod> = {};
let port: number;
let hang: http.Server;
let hangSeen = 0;

const mirror = (svc: string, extra: Obj = {}): Obj => ({ type: 'RequestMirror', requestMirror: { backendRef: ref(svc), ...extra } });
const prefix = (value: string): Obj[] => [{ path: { type: 'PathPrefix', value } }];
let seq = 0;
const unique = (path: string) => `${path}?request-id=${++seq}`;
const saw = (svc: string, target: string) => pods[svc].seen.find((s) => s.path === target);

beforeAll(async () => {
  for (const svc of ['v1', 'v2', 'v3']) pods[svc] = await startEchoPod('infra', svc, `${svc}-pod-0`);
  // A mirror that reads requests and never answers.
  hang = http.createServer((req) => {
    hangSeen++;
    req.resume();
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  portico = await startPortico({ files: {} });
  port = portico.httpPort;
  const hangPort = (hang.address() as AddressInfo).port;
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [{ name: 'http', port, protocol: 'HTTP' }]),
    ...Object.values(pods).flatMap((p) => serviceFor([p])),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'hang', namespace: 'infra' }, spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'hang-1', namespace: 'infra', labels: { 'kubernetes.io/service-name': 'hang' } }, addressType: 'IPv4', ports: [{ name: 'http', port: hangPort }], endpoints: [{ addresses: ['127.0.0.1'] }] },
    httpRoute('mirrors', { parentRefs: [{ name: 'gw' }], hostnames: ['mirror.test'], rules: [
      // HTTPRouteRequestMirror
      { matches: prefix('/mirror'), filters: [mirror('v2')], backendRefs: [ref('v1')] },
      { matches: prefix('/mirror-and-modify-headers'), filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }] } }, mirror('v2')], backendRefs: [ref('v1')] },
      // HTTPRouteRequestMultipleMirrors
      { matches: prefix('/multi-mirror'), filters: [mirror('v2'), mirror('v3')], backendRefs: [ref('v1')] },
      // HTTPRouteRequestPercentageMirror
      { matches: prefix('/percent-mirror'), filters: [mirror('v2', { percent: 20 })], backendRefs: [ref('v1')] },
      { matches: prefix('/fraction-mirror'), filters: [mirror('v3', { fraction: { numerator: 25, denominator: 50 } })], backendRefs: [ref('v1')] },
      { matches: prefix('/slow-mirror'), filters: [mirror('hang')], backendRefs: [ref('v1')] },
      { matches: prefix('/missing-mirror'), filters: [mirror('nonexistent')], backendRefs: [ref('v1')] },
    ] }),
  ));
  await waitFor('route served', async () => (await send(port, 'mirror.test', '/mirror')).echo?.service === 'v1', 20_000);
}, 60_000);

afterAll(async () => {
  // The never-answering mirror first: its open requests would hold portico's pools at shutdown.
  hang?.closeAllConnections();
  hang?.close();
  await portico?.stop();
  await Promise.all(Object.values(pods).map((p) => p.close()));
});

describe('RequestMirror', () => {
  it('the backend answers; the mirror gets the same request, headers after the filters (HTTPRouteRequestMirror)', async () => {
    const target = unique('/mirror');
    const r = await send(port, 'mirror.test', target);
    expect([r.status, r.echo?.service, r.echo?.path]).toEqual([200, 'v1', target]);
    await waitFor('mirrored', () => saw('v2', target) !== undefined, 5000);
    const t2 = unique('/mirror-and-modify-headers');
    expect((await send(port, 'mirror.test', t2)).echo?.headers['x-header-set']).toBe('set-overwrites-values');
    await waitFor('mirrored with headers', () => saw('v2', t2) !== undefined, 5000);
  });

  it('a request body reaches the backend and the mirror whole', async () => {
    const target = unique('/mirror');
    const body = Buffer.alloc(300_000, 'x');
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: target, method: 'POST', headers: { host: 'mirror.test', 'content-length': body.length }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(r.status).toBe(200);
    expect(saw('v1', target)).toMatchObject({ method: 'POST', bodyBytes: body.length });
    await waitFor('mirror got the body', () => saw('v2', target)?.bodyBytes === body.length, 5000);
  });

  it('several mirrors each get a copy (HTTPRouteRequestMultipleMirrors)', async () => {
    const target = unique('/multi-mirror');
    expect((await send(port, 'mirror.test', target)).echo?.service).toBe('v1');
    await waitFor('both mirrored', () => saw('v2', target) !== undefined && saw('v3', target) !== undefined, 5000);
  });

  it('percent and fraction mirror about that share (HTTPRouteRequestPercentageMirror)', async () => {
    const N = 400;
    const sent: string[] = [];
    const fsent: string[] = [];
    for (let i = 0; i < N; i += 10) {
      await Promise.all(Array.from({ length: 10 }, async () => {
        const a = unique('/percent-mirror');
        const b = unique('/fraction-mirror');
        sent.push(a);
        fsent.push(b);
        await send(port, 'mirror.test', a);
        await send(port, 'mirror.test', b);
      }));
    }
    // Mirrors are sent as the request is; give the last ones a moment to land.
    await new Promise((r) => setTimeout(r, 300));
    const share = (svc: string, targets: string[]) => targets.filter((t) => saw(svc, t) !== undefined).length;
    // Expected ± 4 standard deviations: 20% of 400 (sd 8), 50% of 400 (sd 10).
    expect(Math.abs(share('v2', sent) - 80)).toBeLessThanOrEqual(32);
    expect(Math.abs(share('v3', fsent) - 200)).toBeLessThanOrEqual(40);
  });

  it('a mirror that never answers does not hold the answer', async () => {
    const before = hangSeen;
    for (let i = 0; i < 5; i++) expect((await send(port, 'mirror.test', unique('/slow-mirror'), { timeoutMs: 3000 })).echo?.service).toBe('v1');
    await waitFor('the mirror was sent', () => hangSeen >= before + 5, 5000);
  });

  it('an unresolvable mirror backend: forwarded without the copy, and ResolvedRefs says so', async () => {
    expect((await send(port, 'mirror.test', unique('/missing-mirror'))).echo?.service).toBe('v1');
    const { items } = await portico.json<{ items: any[] }>('/status');
    const resolved = condition(statusOf(items, 'HTTPRoute', 'infra', 'mirrors').parents[0].conditions, 'ResolvedRefs');
    expect(resolved).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(resolved?.message).toContain('RequestMirror');
  });
});
