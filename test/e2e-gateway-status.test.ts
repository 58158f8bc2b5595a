// Gateway API status scenarios through a real `portico serve`, one at a time (each writes its own
// Gateway on Portico's port, replacing the previous scenario's file): the conformance suite's
// Gateway-only tests and the route attachment failures, read from GET /status, plus the
// traffic that goes with them where there is some.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, referenceGrant, serviceFor, startEchoPod, statusOf, toYaml, who, type EchoPod, type Obj } from './gateway-helpers.ts';

let portico: Portico;
const pods: EchoPod[] = [];
let port: number;
let httpsPort: number;

let seq = 0;
/**
 * Replaces the scenario file and waits until `/status` comes from it: a listener-less marker
 * Gateway, new each time, is written with it.
 */
async function scenario(...objs: Obj[]): Promise<any[]> {
  const marker = `marker-${++seq}`;
  portico.write('scenario.yaml', toYaml(...objs, gateway(marker, [])));
  return waitFor(`status of ${marker}`, async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    return statusOf(items, 'Gateway', 'infra', marker) !== undefined ? items : undefined;
  });
}

/** Traffic follows status once workers have the table (published to them right after). */
const serves = (host: string, path: string, want: string) => waitFor(`${host}${path} -> ${want}`, async () => (await who(port, host, path)) === want).then(() => true, async () => who(port, host, path));

const listenerOf = (items: any[], gw: string, name: string): any => statusOf(items, 'Gateway', 'infra', gw).listeners.find((l: any) => l.name === name);
const kinds = (l: any): string[] => l.supportedKinds.map((k: any) => k.kind);
const parent = (items: any[], kind: string, ns: string, name: string): any => statusOf(items, kind, ns, name)?.parents?.[0];
const c = (list: any[] | undefined, type: string) => {
  const found = condition(list, type);
  return found === undefined ? undefined : `${found.status} ${found.reason}`;
};

beforeAll(async () => {
  for (const [ns, svc] of [['infra', 'v1'], ['infra', 'v2'], ['infra', 'v3'], ['app', 'app-v1'], ['app', 'app-v2']]) pods.push(await startEchoPod(ns, svc, `${svc}-pod-0`));
  portico = await startPortico({ files: {} });
  port = portico.httpPort;
  httpsPort = portico.httpsPort;
  const cert = makeCert('secure.test', ['secure.test', '*.test']);
  portico.write('base.yaml', toYaml(
    namespace('infra', { 'gateway-conformance': 'infra' }),
    namespace('web', { 'gateway-conformance': 'backend' }),
    namespace('app', { 'gateway-conformance': 'backend' }),
    gatewayClass(),
    ...pods.flatMap((p) => serviceFor([p])),
    // A headless Service (HTTPRouteServiceTypes): endpoints still come from its EndpointSlices.
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'headless', namespace: 'infra' }, spec: { clusterIP: 'None', selector: { app: 'v1' }, ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'headless-1', namespace: 'infra', labels: { 'kubernetes.io/service-name': 'headless' } }, addressType: 'IPv4', ports: [{ name: 'http', port: pods[0].port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
    tlsSecret('tls-validity-checks-certificate', cert, 'infra'),
    tlsSecret('certificate', cert, 'web'),
    { ...tlsSecret('malformed-certificate', { certPem: 'Hello world', keyPem: 'Hello world' }, 'infra') },
  ));
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await Promise.all(pods.map((p) => p.close()));
});

const https = (name: string, hostname: string, certificateRef: Obj): Obj => ({ name, port: httpsPort, protocol: 'HTTPS', hostname, tls: { certificateRefs: [certificateRef] } });

describe('Gateway-only status (conformance §4.2 shapes)', () => {
  it('GatewayInvalidRouteKind: unsupported kinds are left out of supportedKinds, ResolvedRefs InvalidRouteKinds', async () => {
    const items = await scenario(gateway('invalid-route-kind', [
      { name: 'only-invalid', port, protocol: 'HTTP', hostname: 'a.test', allowedRoutes: { kinds: [{ kind: 'InvalidRoute' }] } },
      { name: 'invalid-and-http', port, protocol: 'HTTP', hostname: 'b.test', allowedRoutes: { kinds: [{ kind: 'InvalidRoute' }, { kind: 'HTTPRoute' }] } },
    ]));
    const a = listenerOf(items, 'invalid-route-kind', 'only-invalid');
    expect([kinds(a), c(a.conditions, 'ResolvedRefs'), a.attachedRoutes]).toEqual([[], 'False InvalidRouteKinds', 0]);
    const b = listenerOf(items, 'invalid-route-kind', 'invalid-and-http');
    expect([kinds(b), c(b.conditions, 'ResolvedRefs')]).toEqual([['HTTPRoute'], 'False InvalidRouteKinds']);
  });

  it('GatewayListenerUnsupportedProtocol: the listener is UnsupportedProtocol; the Gateway ListenersNotValid (False alone, True beside a valid one)', async () => {
    let items = await scenario(gateway('only-unsupported', [{ name: 'invalid', port: 1111, protocol: 'INVALID' }]));
    let g = statusOf(items, 'Gateway', 'infra', 'only-unsupported');
    expect(c(g.conditions, 'Accepted')).toBe('False ListenersNotValid');
    const l = listenerOf(items, 'only-unsupported', 'invalid');
    expect([c(l.conditions, 'Accepted'), kinds(l), l.attachedRoutes]).toEqual(['False UnsupportedProtocol', [], 0]);
    items = await scenario(gateway('supported-and-unsupported', [{ name: 'http', port, protocol: 'HTTP' }, { name: 'invalid', port: 1111, protocol: 'INVALID' }]));
    g = statusOf(items, 'Gateway', 'infra', 'supported-and-unsupported');
    expect(c(g.conditions, 'Accepted')).toBe('True ListenersNotValid');
    expect(c(listenerOf(items, 'supported-and-unsupported', 'http').conditions, 'Accepted')).toBe('True Accepted');
  });

  it('GatewayInvalidTLSConfiguration: missing, wrong-group, wrong-kind and malformed certificateRefs are InvalidCertificateRef', async () => {
    const items = await scenario(gateway('invalid-tls', [
      https('nonexistent', 'one.test', { name: 'nonexistent-certificate' }),
      https('wrong-group', 'two.test', { group: 'wrong.group.company.io', kind: 'Secret', name: 'tls-validity-checks-certificate' }),
      https('wrong-kind', 'three.test', { kind: 'WrongKind', name: 'tls-validity-checks-certificate' }),
      https('malformed', 'four.test', { name: 'malformed-certificate' }),
    ]));
    for (const name of ['nonexistent', 'wrong-group', 'wrong-kind', 'malformed']) {
      const l = listenerOf(items, 'invalid-tls', name);
      expect([name, kinds(l)[0], c(l.conditions, 'ResolvedRefs'), c(l.conditions, 'Programmed')?.split(' ')[0], l.attachedRoutes]).toEqual([name, 'HTTPRoute', 'False InvalidCertificateRef', 'False', 0]);
    }
  });

  it('GatewaySecret*ReferenceGrant: a certificateRef into another namespace needs a grant there, by name or for all', async () => {
    const gw = gateway('secret-grant', [https('https', 'secure.test', { name: 'certificate', namespace: 'web' })]);
    let items = await scenario(gw);
    expect(c(listenerOf(items, 'secret-grant', 'https').conditions, 'ResolvedRefs')).toBe('False RefNotPermitted');
    const from = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra' }];
    const wrong = [
      referenceGrant('wrong-namespace', 'infra', from, [{ group: '', kind: 'Secret', name: 'certificate' }]),
      referenceGrant('wrong-from-kind', 'web', [{ ...from[0], kind: 'HTTPRoute' }], [{ group: '', kind: 'Secret', name: 'certificate' }]),
      referenceGrant('wrong-to-kind', 'web', from, [{ group: '', kind: 'Service', name: 'certificate' }]),
      referenceGrant('wrong-to-name', 'web', from, [{ group: '', kind: 'Secret', name: 'other' }]),
    ];
    items = await scenario(gw, ...wrong);
    expect(c(listenerOf(items, 'secret-grant', 'https').conditions, 'ResolvedRefs')).toBe('False RefNotPermitted');
    for (const to of [{ group: '', kind: 'Secret', name: 'certificate' }, { group: '', kind: 'Secret' }]) {
      items = await scenario(gw, referenceGrant('allow', 'web', from, [to]));
      const l = listenerOf(items, 'secret-grant', 'https');
      expect([c(l.conditions, 'ResolvedRefs'), c(l.conditions, 'Programmed')], JSON.stringify(to)).toEqual(['True ResolvedRefs', 'True Programmed']);
      items = await scenario(gw);
      expect(c(listenerOf(items, 'secret-grant', 'https').conditions, 'ResolvedRefs')).toBe('False RefNotPermitted');
    }
  });

  it('GatewayClassObservedGenerationBump: the class conditions follow its generation', async () => {
    const cls = (description: string): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'bump-class' }, spec: { controllerName: 'portico.dev/gateway-controller', description } });
    let items = await scenario(cls('old'));
    expect(statusOf(items, 'GatewayClass', undefined, 'bump-class').conditions.map((x: any) => `${x.type} ${x.status} ${x.observedGeneration}`)).toEqual(['Accepted True 1', 'SupportedVersion True 1']);
    items = await scenario(cls('new'));
    expect(statusOf(items, 'GatewayClass', undefined, 'bump-class').conditions.map((x: any) => `${x.type} ${x.status} ${x.observedGeneration}`)).toEqual(['Accepted True 2', 'SupportedVersion True 2']);
  });

  it('GatewayInvalidParametersRef: infrastructure.parametersRef is not taken: Accepted False InvalidParameters', async () => {
    const items = await scenario(gateway('invalid-parameters', [{ name: 'http', port, protocol: 'HTTP' }], 'infra', { infrastructure: { parametersRef: { group: 'invalid.io', kind: 'InvalidParameters', name: 'invalid' } } }));
    expect(c(statusOf(items, 'Gateway', 'infra', 'invalid-parameters').conditions, 'Accepted')).toBe('False InvalidParameters');
  });

  it('GatewayObservedGenerationBump and GatewayModifyListeners: conditions follow the generation; an added listener gets its routes', async () => {
    const one = gateway('bump', [{ name: 'http', port, protocol: 'HTTP', hostname: 'bar.com', allowedRoutes: { namespaces: { from: 'All' } } }]);
    const route = httpRoute('r', { parentRefs: [{ name: 'bump' }], rules: [{ backendRefs: [ref('v1')] }] });
    let items = await scenario(one, route);
    const gen1 = statusOf(items, 'Gateway', 'infra', 'bump').conditions.map((x: any) => x.observedGeneration);
    expect(gen1).toEqual([1, 1]);
    const two = gateway('bump', [...(one.spec as any).listeners, { name: 'alternate', port, protocol: 'HTTP', hostname: 'foo.com' }]);
    items = await scenario(two, route);
    expect(statusOf(items, 'Gateway', 'infra', 'bump').conditions.map((x: any) => x.observedGeneration)).toEqual([2, 2]);
    const g = statusOf(items, 'Gateway', 'infra', 'bump');
    expect([c(g.conditions, 'Accepted'), c(g.conditions, 'Programmed')]).toEqual(['True Accepted', 'True Programmed']);
    expect(g.listeners.map((l: any) => [l.name, l.attachedRoutes])).toEqual([['http', 1], ['alternate', 1]]);
    expect(await serves('foo.com', '/', 'infra/v1')).toBe(true);
    expect(parent(items, 'HTTPRoute', 'infra', 'r').conditions.map((x: any) => x.observedGeneration)).toEqual([1, 1]);
  });
});

describe('route attachment failures and their traffic', () => {
  // A function: `port` is known only once portico runs.
  const sameNamespace = () => gateway('same-namespace', [{ name: 'http', port, protocol: 'HTTP' }]);

  it('HTTPRouteInvalidCrossNamespaceParentRef: a listener allowing Same refuses another namespace (NotAllowedByListeners, attachedRoutes 0)', async () => {
    const items = await scenario(gateway('same-namespace', [{ name: 'http', port, protocol: 'HTTP' }]), httpRoute('invalid-cross-namespace-parent-ref', { parentRefs: [{ name: 'same-namespace', namespace: 'infra' }], hostnames: ['cross.test'], rules: [{ backendRefs: [ref('app-v1')] }] }, 'app'));
    const p = parent(items, 'HTTPRoute', 'app', 'invalid-cross-namespace-parent-ref');
    expect([c(p.conditions, 'Accepted'), c(p.conditions, 'ResolvedRefs')]).toEqual(['False NotAllowedByListeners', 'True ResolvedRefs']);
    expect(listenerOf(items, 'same-namespace', 'http').attachedRoutes).toBe(0);
    expect(await serves('cross.test', '/', '404')).toBe(true);
  });

  it('HTTPRouteInvalidParentRefNotMatchingSectionName: NoMatchingParent', async () => {
    const items = await scenario(sameNamespace(), httpRoute('no-section', { parentRefs: [{ name: 'same-namespace', sectionName: 'http1' }], rules: [{ backendRefs: [ref('v1')] }] }));
    expect(c(parent(items, 'HTTPRoute', 'infra', 'no-section').conditions, 'Accepted')).toBe('False NoMatchingParent');
    expect(listenerOf(items, 'same-namespace', 'http').attachedRoutes).toBe(0);
  });

  it('HTTPRoutePartiallyInvalidViaInvalidReferenceGrant: the ungranted rule answers 500, the granted one 200', async () => {
    const all = gateway('all-namespaces', [{ name: 'http', port, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }]);
    const items = await scenario(all,
      referenceGrant('reference-grant', 'app', [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'infra' }], [{ group: '', kind: 'Service', name: 'app-v1' }]),
      httpRoute('invalid-reference-grant', { parentRefs: [{ name: 'all-namespaces' }], hostnames: ['partial.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v2' } }], backendRefs: [ref('app-v2', { namespace: 'app' })] }, { backendRefs: [ref('app-v1', { namespace: 'app' })] }] }));
    const p = parent(items, 'HTTPRoute', 'infra', 'invalid-reference-grant');
    expect([c(p.conditions, 'Accepted'), c(p.conditions, 'ResolvedRefs')]).toEqual(['True Accepted', 'False RefNotPermitted']);
    expect(await serves('partial.test', '/v2', '500')).toBe(true);
    expect(await serves('partial.test', '/', 'app/app-v1')).toBe(true);
  });

  it('HTTPRouteObservedGenerationBump: changing a backendRef moves every parent condition to the new generation', async () => {
    const route = (backend: string) => httpRoute('observed-generation-bump', { parentRefs: [{ name: 'same-namespace' }], hostnames: ['bump.test'], rules: [{ backendRefs: [ref(backend)] }] });
    const gw = sameNamespace();
    let items = await scenario(gw, route('v1'));
    expect(parent(items, 'HTTPRoute', 'infra', 'observed-generation-bump').conditions.map((x: any) => x.observedGeneration)).toEqual([1, 1]);
    items = await scenario(gw, route('v2'));
    expect(await serves('bump.test', '/', 'infra/v2')).toBe(true);
    const p = parent(items, 'HTTPRoute', 'infra', 'observed-generation-bump');
    expect(p.conditions.map((x: any) => `${x.type} ${x.status} ${x.observedGeneration}`)).toEqual(['Accepted True 2', 'ResolvedRefs True 2']);
  });

  it('HTTPRouteListenerHostnameMatching: the most specific listener hostname; routes by sectionName', async () => {
    const items = await scenario(gateway('listener-hostnames', [
      { name: 'listener-1', port, protocol: 'HTTP', hostname: 'bar.com' },
      { name: 'listener-2', port, protocol: 'HTTP', hostname: 'foo.bar.com' },
      { name: 'listener-3', port, protocol: 'HTTP', hostname: '*.bar.com' },
      { name: 'listener-4', port, protocol: 'HTTP', hostname: '*.foo.com' },
    ]),
    httpRoute('backend-v1', { parentRefs: [{ name: 'listener-hostnames', sectionName: 'listener-1' }], rules: [{ backendRefs: [ref('v1')] }] }),
    httpRoute('backend-v2', { parentRefs: [{ name: 'listener-hostnames', sectionName: 'listener-2' }], rules: [{ backendRefs: [ref('v2')] }] }),
    httpRoute('backend-v3', { parentRefs: [{ name: 'listener-hostnames', sectionName: 'listener-3' }, { name: 'listener-hostnames', sectionName: 'listener-4' }], rules: [{ backendRefs: [ref('v3')] }] }));
    expect(statusOf(items, 'HTTPRoute', 'infra', 'backend-v3').parents.map((p: any) => c(p.conditions, 'Accepted'))).toEqual(['True Accepted', 'True Accepted']);
    const got: string[] = [];
    for (const host of ['bar.com', 'foo.bar.com', 'baz.bar.com', 'boo.bar.com', 'multiple.prefixes.bar.com', 'multiple.prefixes.foo.com', 'foo.com', 'no.matching.host']) got.push(`${host} ${await who(port, host, '/')}`);
    expect(got).toEqual(['bar.com infra/v1', 'foo.bar.com infra/v2', 'baz.bar.com infra/v3', 'boo.bar.com infra/v3', 'multiple.prefixes.bar.com infra/v3', 'multiple.prefixes.foo.com infra/v3', 'foo.com 404', 'no.matching.host 404']);
  });

  it('GatewayHTTPListenerIsolation: a request is served only by the routes of its most specific listener', async () => {
    const names = ['empty-hostname', 'wildcard-example-com', 'wildcard-foo-example-com', 'abc-foo-example-com'];
    const hostnames = [undefined, '*.example.com', '*.foo.example.com', 'abc.foo.example.com'];
    await scenario(
      gateway('http-listener-isolation', names.map((name, i) => ({ name, port, protocol: 'HTTP', ...(hostnames[i] ? { hostname: hostnames[i] } : {}) }))),
      ...names.map((name) => httpRoute(`attaches-to-${name}`, { parentRefs: [{ name: 'http-listener-isolation', sectionName: name }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: `/${name}` } }], backendRefs: [ref('v1')] }] })),
    );
    expect(await serves('bar.com', '/empty-hostname', 'infra/v1')).toBe(true);
    const got: string[] = [];
    const want: string[] = [];
    for (const [host, served] of [['bar.com', 'empty-hostname'], ['bar.example.com', 'wildcard-example-com'], ['bar.foo.example.com', 'wildcard-foo-example-com'], ['abc.foo.example.com', 'abc-foo-example-com']]) {
      for (const name of names) {
        got.push(`${host} /${name} ${await who(port, host, `/${name}`)}`);
        want.push(`${host} /${name} ${name === served ? 'infra/v1' : '404'}`);
      }
    }
    expect(got).toEqual(want);
  });

  it('HTTPRouteServiceTypes: a headless Service and a Service without selector serve from their EndpointSlices', async () => {
    await scenario(sameNamespace(), httpRoute('service-types', { parentRefs: [{ name: 'same-namespace' }], hostnames: ['types.test'], rules: [{ matches: [{ path: { type: 'Exact', value: '/headless' } }], backendRefs: [ref('headless')] }, { matches: [{ path: { type: 'Exact', value: '/manual-endpointslices' } }], backendRefs: [ref('v1')] }] }));
    expect(await serves('types.test', '/headless', 'infra/v1')).toBe(true);
    expect(await serves('types.test', '/manual-endpointslices', 'infra/v1')).toBe(true);
  });
});
