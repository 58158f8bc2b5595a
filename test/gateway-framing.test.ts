// Header filters may not touch the fields that frame a message or a connection: a route that
// sets Content-Length on requests would smuggle a request body upstream as another request, and
// one that sets it on responses would split the client's stream. Such a filter drops its rule
// with a condition that says why; the compiler refuses one that got through regardless.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate } from '../controller/translate.ts';
import { compileHeaderEdit, FRAMING_HEADERS } from '../router/filters.ts';

const GW = 'gateway.networking.k8s.io/v1';
const meta = (name: string, ns: string | undefined = 'default') => ({ name, ...(ns ? { namespace: ns } : {}), generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' });
const objects = (filters: unknown[]): KubeObject[] => [
  { apiVersion: GW, kind: 'GatewayClass', metadata: meta('portico', undefined), spec: { controllerName: 'portico.dev/gateway-controller' } },
  { apiVersion: GW, kind: 'Gateway', metadata: meta('gw'), spec: { gatewayClassName: 'portico', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('f'), spec: { ports: [{ port: 80, targetPort: 8080 }] } },
  { apiVersion: GW, kind: 'HTTPRoute', metadata: meta('r'), spec: { parentRefs: [{ name: 'gw' }], hostnames: ['r.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' } }], filters, backendRefs: [{ name: 'f', port: 80 }] }, { matches: [{ path: { type: 'PathPrefix', value: '/ok' } }], backendRefs: [{ name: 'f', port: 80 }] }] } },
];

function translateWith(filters: unknown[]) {
  const t = translate({ objects: objects(filters).map((object) => ({ object, origin: 't' })), problems: [] }, { ingressClass: 'portico', publishAddresses: [], now: new Date('2026-06-01T00:00:00Z') }, newTranslatorState());
  const routes = t.ir.virtualHosts.flatMap((v) => v.routes.map((r) => r.path));
  const status = t.statuses.find((s) => s.kind === 'HTTPRoute')?.status as { parents: { conditions: { type: string; status: string; reason: string; message: string }[] }[] };
  return { routes, conditions: status.parents[0].conditions };
}

describe('header filters and framing', () => {
  for (const [type, field] of [['RequestHeaderModifier', 'requestHeaderModifier'], ['ResponseHeaderModifier', 'responseHeaderModifier']] as const) {
    for (const edit of [{ set: [{ name: 'Content-Length', value: '0' }] }, { remove: ['Transfer-Encoding'] }, { add: [{ name: 'connection', value: 'close' }] }]) {
      it(`${type} ${JSON.stringify(edit)} drops its rule, with the reason in status; the other rules serve`, () => {
        const { routes, conditions } = translateWith([{ type, [field]: edit }]);
        expect(routes).not.toContain('/x');
        expect(routes).toContain('/ok');
        const text = conditions.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`).join('\n');
        expect(text).toMatch(/cannot modify .*(Content-Length|Transfer-Encoding|connection)/);
      });
    }
  }

  it('ordinary headers are still modified', () => {
    const { routes } = translateWith([{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Env', value: 'prod' }], remove: ['Cookie'] } }]);
    expect(routes).toContain('/x');
  });

  it('the compiler refuses a framing edit whatever its case', () => {
    for (const name of FRAMING_HEADERS) {
      expect(() => compileHeaderEdit({ set: [{ name: name.toUpperCase(), value: '1' }] }), name).toThrow(/frames the message/);
      expect(() => compileHeaderEdit({ remove: [name] }), name).toThrow(/frames the message/);
    }
  });
});

describe('an Ingress and an HTTPRoute claiming the same path', () => {
  const ing = (created: string): KubeObject => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'mix', namespace: 'default', generation: 1, creationTimestamp: created }, spec: { ingressClassName: 'portico', rules: [{ host: 'r.test', http: { paths: [{ path: '/p/x', pathType: 'Exact', backend: { service: { name: 'e', port: { number: 80 } } } }, { path: '/only-ingress', pathType: 'Prefix', backend: { service: { name: 'e', port: { number: 80 } } } }] } }] } });
  const route: KubeObject = { apiVersion: GW, kind: 'HTTPRoute', metadata: meta('r1'), spec: { parentRefs: [{ name: 'gw' }], hostnames: ['r.test'], rules: [{ matches: [{ path: { type: 'Exact', value: '/p/x' } }], backendRefs: [{ name: 'f', port: 80 }] }, { matches: [{ path: { type: 'Exact', value: '/p/x' }, headers: [{ name: 'x-v', value: '2' }] }], backendRefs: [{ name: 'f', port: 80 }] }] } };
  const world = (ingressCreated: string): KubeObject[] => [
    ...objects([]).slice(0, 3),
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: meta('portico', undefined), spec: { controller: 'portico.dev/ingress-controller' } },
    { apiVersion: 'v1', kind: 'Service', metadata: meta('e'), spec: { ports: [{ port: 80, targetPort: 8080 }] } },
    route,
    ing(ingressCreated),
  ];
  const served = (objs: KubeObject[]) => {
    const t = translate({ objects: objs.map((object) => ({ object, origin: 't' })), problems: [] }, { ingressClass: 'portico', publishAddresses: [], now: new Date('2026-06-01T00:00:00Z') }, newTranslatorState());
    const routes = t.ir.virtualHosts.filter((v) => v.hostname === 'r.test').flatMap((v) => v.routes.map((r) => `${r.source.kind} ${r.path}${r.headers ? ' +headers' : ''}`));
    return { routes, problems: t.problems };
  };

  it('the older object keeps the path, the younger is told; conditioned and other paths are untouched', () => {
    const younger = served(world('2026-03-01T00:00:00Z'));
    expect(younger.routes.sort()).toEqual(['HTTPRoute /p/x', 'HTTPRoute /p/x +headers', 'Ingress /only-ingress']);
    expect(younger.problems).toEqual([expect.objectContaining({ kind: 'Ingress', name: 'mix', message: expect.stringMatching(/Exact path \/p\/x on host r\.test is served by the older HTTPRoute default\/r1/) })]);
    const older = served(world('2025-01-01T00:00:00Z'));
    expect(older.routes.sort()).toEqual(['HTTPRoute /p/x +headers', 'Ingress /only-ingress', 'Ingress /p/x']);
    expect(older.problems).toEqual([expect.objectContaining({ kind: 'HTTPRoute', name: 'r1', message: expect.stringMatching(/served by the older Ingress default\/mix/) })]);
  });
});

describe('Gateway API kinds Portico does not implement', () => {
  it('are reported: a BackendTLSPolicy as an error naming the Services reached without TLS', () => {
    const extra: KubeObject[] = [
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'BackendTLSPolicy', metadata: meta('btls'), spec: { targetRefs: [{ group: '', kind: 'Service', name: 'f' }], validation: { hostname: 'f.internal', wellKnownCACertificates: 'System' } } },
      { apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'TCPRoute', metadata: meta('tcp'), spec: {} },
      { apiVersion: 'gateway.networking.x-k8s.io/v1alpha1', kind: 'XListenerSet', metadata: meta('ls'), spec: {} },
    ];
    const t = translate({ objects: [...objects([]), ...extra].map((object) => ({ object, origin: 't' })), problems: [] }, { ingressClass: 'portico', publishAddresses: [], now: new Date('2026-06-01T00:00:00Z') }, newTranslatorState());
    const p = t.problems.filter((x) => ['BackendTLSPolicy', 'TCPRoute', 'XListenerSet'].includes(x.kind ?? ''));
    expect(p).toEqual([
      expect.objectContaining({ severity: 'error', kind: 'BackendTLSPolicy', name: 'btls', message: 'BackendTLSPolicy is not supported by Portico: Service default/f is reached without TLS' }),
      expect.objectContaining({ severity: 'warning', kind: 'TCPRoute', name: 'tcp', message: 'TCPRoute is not supported by Portico; it has no effect' }),
      expect.objectContaining({ severity: 'warning', kind: 'XListenerSet', name: 'ls' }),
    ]);
  });
});
