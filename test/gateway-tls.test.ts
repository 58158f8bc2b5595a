// TLSRoute translation through the router's passthrough lookup: which SNI names are spliced to
// which backend, which are refused (an entry whose backend has no endpoints), and which are left
// to Portico's own TLS termination (no entry).
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslateOptions } from '../controller/translate.ts';
import { compileTable } from '../router/index.ts';

const GW = 'gateway.networking.k8s.io';
const obj = (kind: string, name: string, spec: unknown, apiVersion = `${GW}/v1`): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace: kind === 'GatewayClass' ? undefined : 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec,
});
const svc = (name: string): KubeObject[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'tls', port: 443, targetPort: 8443 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'tls', port: 8443 }], endpoints: [{ addresses: ['10.0.0.1'] }] } as KubeObject,
];
const passthrough = (name: string, hostname?: string) => ({ name, port: 443, protocol: 'TLS', ...(hostname ? { hostname } : {}), tls: { mode: 'Passthrough' } });
const base = (listeners: unknown[]): KubeObject[] => [obj('GatewayClass', 'portico', { controllerName: 'portico.dev/gateway-controller' }), obj('Gateway', 'gw', { gatewayClassName: 'portico', listeners }), ...svc('a'), ...svc('b')];
const tlsRoute = (name: string, hostnames: string[], backendRefs: unknown[], apiVersion?: string) => obj('TLSRoute', name, { parentRefs: [{ name: 'gw' }], hostnames, rules: [{ backendRefs }] }, apiVersion);
const to = (name: string, weight?: number) => ({ name, port: 443, ...(weight !== undefined ? { weight } : {}) });
const OPTIONS: TranslateOptions = { ingressClass: 'portico', publishAddresses: ['192.0.2.10'], now: new Date('2026-06-01T00:00:00Z') };

function run(objects: KubeObject[]) {
  const t = translate({ objects: objects.map((object) => ({ object, origin: 'test' })), problems: [] }, OPTIONS, newTranslatorState());
  const table = compileTable(t.ir, 1);
  /** The Service an SNI is spliced to, `refused` (an entry without endpoints), or `terminated` (no entry). */
  const sni = (name: string): string => {
    const b = table.passthroughBackend(name);
    if (b === undefined) return 'terminated';
    return b.endpoints.length === 0 ? 'refused' : b.name.replace(/^default\/|:443$/g, '');
  };
  const accepted = (name: string) => {
    const s = t.statuses.find((x) => x.kind === 'TLSRoute' && x.metadata.name === name)!;
    const c = (s.status as { parents: { conditions: { type: string; status: string; reason: string }[] }[] }).parents[0].conditions.find((x) => x.type === 'Accepted')!;
    return `${c.status} ${c.reason}`;
  };
  return { t, sni, accepted };
}

describe('TLSRoute passthrough entries', () => {
  it('routed names pass through; other names under a TLS listener hostname are refused; names under no listener are terminated', () => {
    const { sni } = run([...base([passthrough('wild', '*.example.com'), passthrough('exact', 'exact.test')]), tlsRoute('r', ['abc.example.com'], [to('a')])]);
    expect(sni('abc.example.com')).toBe('a');
    expect(sni('other.example.com')).toBe('refused');
    expect(sni('deep.other.example.com')).toBe('refused');
    expect(sni('exact.test')).toBe('refused');
    expect(sni('example.com')).toBe('terminated');
    expect(sni('unrelated.test')).toBe('terminated');
  });

  it('a route for the listener hostname itself leaves nothing to refuse', () => {
    const { sni, t } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['*.com'], [to('b')])]);
    expect(sni('x.example.com')).toBe('b');
    expect(t.ir.passthrough?.map((p) => p.hostname)).toEqual(['*.example.com']);
  });

  it('an HTTPS listener or Ingress host under the TLS listener hostname keeps those names terminated, with a warning', () => {
    const ingress: KubeObject = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'legacy', namespace: 'default' }, spec: { rules: [{ host: 'app.other.test' }] } };
    const { sni, t } = run([
      ...base([passthrough('wild', '*.example.com'), { name: 'https', port: 443, protocol: 'HTTPS', hostname: 'www.example.com', tls: { certificateRefs: [{ name: 'missing' }] } }, passthrough('other', '*.other.test')]),
      ingress,
    ]);
    expect(sni('www.example.com')).toBe('terminated');
    expect(sni('zzz.example.com')).toBe('terminated');
    expect(sni('zzz.other.test')).toBe('terminated');
    const warnings = t.problems.filter((p) => p.kind === 'Gateway').map((p) => p.message);
    expect(warnings.some((m) => m.includes('TLS listener wild (*.example.com)') && m.includes('HTTPS listener default/gw/https (www.example.com)'))).toBe(true);
    expect(warnings.some((m) => m.includes('TLS listener other (*.other.test)') && m.includes('Ingress default/legacy (app.other.test)'))).toBe(true);
  });

  it('a TLS listener without a hostname alone on its socket: unrouted names are refused by the socket (no passthrough entry, no warning)', () => {
    const { sni, t } = run([...base([passthrough('any')]), tlsRoute('r', ['abc.example.com'], [to('a')])]);
    expect(sni('abc.example.com')).toBe('a');
    expect(sni('other.example.com')).toBe('terminated');
    // Nothing terminates on --https-port here: the worker refuses what no entry routes (QA-4).
    expect(t.tls.sockets?.https).toEqual({ byName: [], listeners: [], refuseUnclaimed: true });
    expect(t.problems.some((p) => p.message.startsWith('TLS listener any has no hostname'))).toBe(false);
  });

  it('a TLS listener without a hostname beside an HTTPS listener or an Ingress cannot refuse by name: a warning says so', () => {
    const ingress: KubeObject = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'legacy', namespace: 'default' }, spec: { ingressClassName: 'portico', rules: [{ host: 'app.other.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'a', port: { number: 443 } } } }] } }] } };
    for (const extra of [[{ name: 'https', port: 443, protocol: 'HTTPS', hostname: 'www.example.com', tls: { certificateRefs: [{ name: 'missing' }] } }], []]) {
      const objects = [...base([passthrough('any'), ...extra]), tlsRoute('r', ['abc.example.com'], [to('a')]), ...(extra.length === 0 ? [ingress] : [])];
      const { t } = run(objects);
      expect(t.problems.some((p) => p.message.startsWith('TLS listener any has no hostname'))).toBe(true);
    }
    // With the Ingress served, --https-port terminates every name nothing passes through.
    const ingressClass: KubeObject = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico' }, spec: { controller: 'portico.dev/ingress-controller' } };
    expect(run([...base([passthrough('any')]), ingressClass, ingress]).t.tls.sockets?.https.refuseUnclaimed).toBeUndefined();
  });
});

describe('TLSRoute backendRefs', () => {
  it('weight 0 only, or no backendRefs: accepted, and the connections are refused', () => {
    const { sni, accepted } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('zero', ['zero.example.com'], [to('a', 0)]), tlsRoute('none', ['none.example.com'], [])]);
    expect(accepted('zero')).toBe('True Accepted');
    expect(accepted('none')).toBe('True Accepted');
    expect(sni('zero.example.com')).toBe('refused');
    expect(sni('none.example.com')).toBe('refused');
  });

  it('a weight-0 backendRef beside one with weight is never chosen', () => {
    const { sni, accepted } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['abc.example.com'], [to('a', 0), to('b', 5)])]);
    expect(accepted('r')).toBe('True Accepted');
    expect(sni('abc.example.com')).toBe('b');
  });

  it('several backendRefs share the connections by weight, exactly per run of the total weight (smooth weighted round-robin)', () => {
    const { sni, accepted, t } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['abc.example.com'], [to('a', 70), to('b', 30), to('c', 0)]), ...svc('c')]);
    expect(accepted('r')).toBe('True Accepted');
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const got = sni('abc.example.com');
      counts[got] = (counts[got] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 70, b: 30 });
    // Weight 0 is never entered; the IR names each weighted backend.
    expect(t.ir.passthrough?.find((p) => p.hostname === 'abc.example.com')?.backends).toEqual([{ backend: 'default/a:443', weight: 70 }, { backend: 'default/b:443', weight: 30 }]);
  });

  it('a backendRef without weight counts 1; 50/50 interleaves', () => {
    const { sni } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['abc.example.com'], [to('a'), to('b')])]);
    expect(Array.from({ length: 6 }, () => sni('abc.example.com'))).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });
});

describe('TLSRoute versions', () => {
  it('v1alpha2 (before Gateway API v1.5) is translated as v1, and its status keeps its apiVersion', () => {
    const { sni, accepted, t } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('old', ['abc.example.com'], [to('a')], `${GW}/v1alpha2`)]);
    expect(sni('abc.example.com')).toBe('a');
    expect(accepted('old')).toBe('True Accepted');
    expect(t.statuses.find((s) => s.kind === 'TLSRoute')?.apiVersion).toBe(`${GW}/v1alpha2`);
  });
});

describe('TLSRoute ResolvedRefs with several weighted backendRefs', () => {
  it('an unresolvable reference is named in ResolvedRefs, the route stays accepted, and its share of the connections is refused', () => {
    const { t, accepted, sni } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['abc.example.com'], [to('a', 1), to('missing', 3)])]);
    expect(accepted('r')).toBe('True Accepted');
    const s = t.statuses.find((x) => x.kind === 'TLSRoute')!;
    const refs = (s.status as { parents: { conditions: { type: string; status: string; reason: string; message: string }[] }[] }).parents[0].conditions.find((c) => c.type === 'ResolvedRefs')!;
    expect(refs).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(refs.message).toMatch(/Service default\/missing not found/);
    const got = Array.from({ length: 8 }, () => sni('abc.example.com'));
    expect(got.filter((g) => g === 'a')).toHaveLength(2);
    expect(got.filter((g) => g === 'refused')).toHaveLength(6);
  });

  it('every reason is named: a wrong kind and a missing Service', () => {
    const { t } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('r', ['abc.example.com'], [{ ...to('a'), kind: 'NonExistent' }, to('missing')])]);
    const s = t.statuses.find((x) => x.kind === 'TLSRoute')!;
    const refs = (s.status as { parents: { conditions: { type: string; status: string; reason: string; message: string }[] }[] }).parents[0].conditions.find((c) => c.type === 'ResolvedRefs')!;
    expect(refs).toMatchObject({ status: 'False', reason: 'InvalidKind' });
    expect(refs.message).toMatch(/NonExistent.*; .*missing/);
  });
});

describe('TLSRoute hostnames that are not hostnames', () => {
  it('refuse the route instead of passing the listener hostname through to its backend', () => {
    const { sni, accepted } = run([...base([passthrough('wild', '*.example.com')]), tlsRoute('bad', ['not_a_host'], [to('a')])]);
    expect(accepted('bad')).toBe('False UnsupportedValue');
    expect(sni('x.example.com')).toBe('refused');
  });
});
