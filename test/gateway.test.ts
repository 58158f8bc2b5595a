// Gateway API translation, end to end through the router: hostname intersection, the spec's
// match precedence (conformance scenarios rewritten as tables), the safe regular-expression
// subset, and status that follows objects over time.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { intersectHostnames } from '../controller/gateway/hostnames.ts';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslateOptions } from '../controller/translate.ts';
import { compileTable, type RequestAttributes } from '../router/index.ts';
import { compileSafeRegex, unsafeRegexReason } from '../router/regex.ts';
import { corsPreflightHeaders } from '../router/filters.ts';

const GW = 'gateway.networking.k8s.io/v1';
const obj = (kind: string, name: string, spec: unknown, extra: Partial<KubeObject['metadata']> = {}, apiVersion = GW): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace: kind === 'GatewayClass' ? undefined : 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra },
  spec,
});
const svc = (name: string): KubeObject[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'http', port: 3000 }], endpoints: [{ addresses: ['10.0.0.1'] }] } as KubeObject,
];
const base = (listeners: unknown[] = [{ name: 'http', port: 80, protocol: 'HTTP' }]): KubeObject[] => [
  obj('GatewayClass', 'portico', { controllerName: 'portico.dev/gateway-controller' }),
  obj('Gateway', 'gw', { gatewayClassName: 'portico', listeners }),
  ...svc('v1'),
  ...svc('v2'),
  ...svc('v3'),
];
const route = (name: string, spec: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}): KubeObject => obj('HTTPRoute', name, { parentRefs: [{ name: 'gw' }], ...spec }, extra);
const rule = (backend: string, ...matches: unknown[]) => ({ ...(matches.length ? { matches } : {}), backendRefs: [{ name: backend, port: 8080 }] });
const OPTIONS: TranslateOptions = { ingressClass: 'portico', publishAddresses: ['192.0.2.10'], now: new Date('2026-06-01T00:00:00Z') };

function run(objects: KubeObject[], options: TranslateOptions = OPTIONS, state = newTranslatorState()) {
  const t = translate({ objects: objects.map((object) => ({ object, origin: 'test' })), problems: [] }, options, state);
  return { t, table: compileTable(t.ir, 1) };
}

function attrs(method: string, headers: Record<string, string>, target: string): RequestAttributes {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const q = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
  return { method, header: (n) => lower[n], queryParam: (n) => q.get(n) ?? undefined };
}

/** The Service that answers, '404' when no route matches. */
function who(table: ReturnType<typeof compileTable>, host: string, target: string, headers: Record<string, string> = {}, method = 'GET'): string {
  const r = table.match(host, target, attrs(method, headers, target));
  if (r === undefined) return '404';
  return r.backends.map((b) => b.backend.name.replace(/^default\/|:8080$/g, '')).join('+');
}

describe('hostname intersection', () => {
  it.each([
    [undefined, [], [undefined]],
    [undefined, ['a.com'], ['a.com']],
    ['a.com', [], ['a.com']],
    ['very.specific.com', ['non.matching.com', '*.specific.com'], ['very.specific.com']],
    ['*.wildcard.io', ['wildcard.io', 'foo.wildcard.io', 'foo.bar.wildcard.io'], ['foo.wildcard.io', 'foo.bar.wildcard.io']],
    ['*.com', ['*.example.com'], ['*.example.com']],
    ['*.example.com', ['*.com'], ['*.example.com']],
    ['*.example.com', ['example.com', 'test.example.net'], []],
    ['*.anotherwildcard.io', ['*.anotherwildcard.io'], ['*.anotherwildcard.io']],
  ] as const)('listener %s x route %j', (listener, routeHosts, want) => {
    expect(intersectHostnames(listener, routeHosts)).toEqual(want);
  });

  it("a '*.' listener matches several labels, never the bare suffix; exact hosts beat wildcards", () => {
    const { table } = run([
      ...base([{ name: 'wild', port: 80, protocol: 'HTTP', hostname: '*.bar.com' }, { name: 'exact', port: 80, protocol: 'HTTP', hostname: 'foo.bar.com' }]),
      route('wild', { parentRefs: [{ name: 'gw', sectionName: 'wild' }], rules: [rule('v3')] }),
      route('exact', { parentRefs: [{ name: 'gw', sectionName: 'exact' }], rules: [rule('v2')] }),
    ]);
    expect(who(table, 'foo.bar.com', '/')).toBe('v2');
    expect(who(table, 'baz.bar.com', '/')).toBe('v3');
    expect(who(table, 'multiple.prefixes.bar.com:8080', '/')).toBe('v3');
    expect(who(table, 'bar.com', '/')).toBe('404');
  });
});

describe('match precedence (the spec order)', () => {
  it('HTTPRouteMatching: ORed matches, segment-wise prefixes, headers', () => {
    const { table } = run([
      ...base(),
      route('r', { rules: [rule('v1', { path: { type: 'PathPrefix', value: '/' } }, { headers: [{ name: 'version', value: 'one' }] }), rule('v2', { path: { type: 'PathPrefix', value: '/v2' } }, { headers: [{ name: 'version', value: 'two' }] })] }),
    ]);
    const cases: [string, Record<string, string>, string][] = [
      ['/', {}, 'v1'], ['/example', {}, 'v1'], ['/', { Version: 'one' }, 'v1'], ['/v2', {}, 'v2'], ['/v2/example', {}, 'v2'],
      ['/', { Version: 'two' }, 'v2'], ['/v2/', {}, 'v2'], ['/v2example', {}, 'v1'], ['/foo/v2/example', {}, 'v1'],
    ];
    for (const [path, headers, want] of cases) expect(`${path} ${JSON.stringify(headers)} ${who(table, 'x.test', path, headers)}`).toBe(`${path} ${JSON.stringify(headers)} ${want}`);
  });

  it('HTTPRouteHeaderMatching: more header matches win, then rule order', () => {
    const h = (...pairs: [string, string][]) => ({ headers: pairs.map(([name, value]) => ({ name, value })) });
    const { table } = run([
      ...base(),
      route('r', { rules: [rule('v1', h(['version', 'one'])), rule('v2', h(['version', 'two'])), rule('v1', h(['version', 'two'], ['color', 'orange'])), rule('v1', h(['color', 'blue']), h(['color', 'green'])), rule('v2', h(['color', 'red']), h(['color', 'yellow']))] }),
    ]);
    const cases: [Record<string, string>, string][] = [
      [{ Version: 'one' }, 'v1'], [{ Version: 'two' }, 'v2'], [{ Version: 'two', Color: 'orange' }, 'v1'], [{ Version: 'two', Color: 'blue' }, 'v2'],
      [{ Color: 'orange' }, '404'], [{ 'Some-Other-Header': 'one' }, '404'], [{ Color: 'blue' }, 'v1'], [{ Color: 'green' }, 'v1'], [{ Color: 'red' }, 'v2'], [{ Color: 'yellow' }, 'v2'], [{ Color: 'purple' }, '404'],
    ];
    for (const [headers, want] of cases) expect(`${JSON.stringify(headers)} ${who(table, 'x.test', '/', headers)}`).toBe(`${JSON.stringify(headers)} ${want}`);
  });

  it('HTTPRoutePathMatchOrder: Exact beats prefix, longer prefix beats shorter', () => {
    const p = (type: string, value: string) => ({ path: { type, value } });
    const { table } = run([
      ...base(),
      route('r', { rules: [rule('v1', p('Exact', '/match')), rule('v2', p('Exact', '/match/exact')), rule('v3', p('Exact', '/match/exact/one')), rule('v3', p('PathPrefix', '/match/')), rule('v1', p('PathPrefix', '/match/prefix/')), rule('v2', p('PathPrefix', '/match/prefix/one'))] }),
    ]);
    const cases = [['/match/exact/one', 'v3'], ['/match/exact', 'v2'], ['/match', 'v1'], ['/match/prefix/one/any', 'v2'], ['/match/prefix/any', 'v1'], ['/match/any', 'v3']];
    for (const [path, want] of cases) expect(`${path} ${who(table, 'x.test', path)}`).toBe(`${path} ${want}`);
  });

  it('HTTPRouteMethodMatching: path beats method, method beats headers', () => {
    const { table } = run([
      ...base(),
      route('r', {
        rules: [
          rule('v1', { method: 'POST' }), rule('v2', { method: 'GET' }), rule('v1', { path: { type: 'PathPrefix', value: '/path1' }, method: 'GET' }),
          rule('v2', { headers: [{ name: 'version', value: 'one' }], method: 'PUT' }), rule('v3', { path: { type: 'PathPrefix', value: '/path2' }, headers: [{ name: 'version', value: 'two' }], method: 'POST' }),
          rule('v1', { path: { type: 'PathPrefix', value: '/path3' }, method: 'PATCH' }, { path: { type: 'PathPrefix', value: '/path4' }, headers: [{ name: 'version', value: 'three' }], method: 'DELETE' }),
          rule('v1', { path: { type: 'PathPrefix', value: '/path5' } }), rule('v2', { method: 'PATCH' }), rule('v3', { headers: [{ name: 'version', value: 'four' }] }),
        ],
      }),
    ]);
    const cases: [string, string, Record<string, string>, string][] = [
      ['POST', '/', {}, 'v1'], ['GET', '/', {}, 'v2'], ['HEAD', '/', {}, '404'], ['GET', '/path1', {}, 'v1'], ['PUT', '/', { version: 'one' }, 'v2'],
      ['POST', '/path2', { version: 'two' }, 'v3'], ['PATCH', '/path3', {}, 'v1'], ['DELETE', '/path4', { version: 'three' }, 'v1'], ['PUT', '/', {}, '404'],
      ['DELETE', '/path4', {}, '404'], ['PATCH', '/path5', {}, 'v1'], ['PATCH', '/', { version: 'four' }, 'v2'],
    ];
    for (const [method, path, headers, want] of cases) expect(`${method} ${path} ${who(table, 'x.test', path, headers, method)}`).toBe(`${method} ${path} ${want}`);
  });

  it('HTTPRouteQueryParamMatching: more query matches win; names and values are case-sensitive', () => {
    const q = (...pairs: [string, string][]) => ({ queryParams: pairs.map(([name, value]) => ({ name, value })) });
    const { table } = run([
      ...base(),
      route('r', { rules: [rule('v1', q(['animal', 'whale'])), rule('v2', q(['animal', 'dolphin'])), rule('v3', q(['animal', 'dolphin'], ['color', 'blue']), q(['ANIMAL', 'Whale'])), rule('v1', { path: { type: 'PathPrefix', value: '/path5' } }), rule('v2', q(['animal', 'hydra'])), rule('v3', { headers: [{ name: 'version', value: 'four' }] })] }),
    ]);
    const cases: [string, Record<string, string>, string][] = [
      ['/?animal=whale', {}, 'v1'], ['/?animal=dolphin', {}, 'v2'], ['/?animal=dolphin&color=blue', {}, 'v3'], ['/?ANIMAL=Whale', {}, 'v3'], ['/?animal=whale&otherparam=irrelevant', {}, 'v1'],
      ['/?color=blue', {}, '404'], ['/?animal=whaledolphin', {}, '404'], ['/', {}, '404'], ['/path5?animal=hydra', {}, 'v1'], ['/?animal=hydra', { version: 'four' }, 'v3'],
    ];
    for (const [path, headers, want] of cases) expect(`${path} ${who(table, 'x.test', path, headers)}`).toBe(`${path} ${want}`);
  });

  it('across routes: the more specific hostname first, then the oldest route, then namespace/name', () => {
    const { table } = run([
      ...base(),
      route('young', { rules: [rule('v1', { path: { type: 'PathPrefix', value: '/a' } })] }, { creationTimestamp: '2026-03-01T00:00:00Z' }),
      route('old', { rules: [rule('v2', { path: { type: 'PathPrefix', value: '/a' } })] }, { creationTimestamp: '2026-02-01T00:00:00Z' }),
      route('b-same-age', { rules: [rule('v3', { path: { type: 'PathPrefix', value: '/b' } })] }),
      route('a-same-age', { rules: [rule('v1', { path: { type: 'PathPrefix', value: '/b' } })] }),
      route('wild', { hostnames: ['*.example.com'], rules: [rule('v3', { path: { type: 'PathPrefix', value: '/a' } })] }, { creationTimestamp: '2026-04-01T00:00:00Z' }),
      route('exact', { hostnames: ['foo.example.com'], rules: [rule('v1', { path: { type: 'PathPrefix', value: '/' } })] }, { creationTimestamp: '2026-05-01T00:00:00Z' }),
    ]);
    expect(who(table, 'x.test', '/a')).toBe('v2');
    expect(who(table, 'x.test', '/b')).toBe('v1');
    expect(who(table, 'bar.example.com', '/a')).toBe('v3');
    expect(who(table, 'deep.bar.example.com', '/a')).toBe('v3');
    // The exact hostname's `/` beats the wildcard's longer prefix: hostname comes first.
    expect(who(table, 'foo.example.com', '/a')).toBe('v1');
  });

  it('RegularExpression paths: after Exact, before any prefix; whole-path matches', () => {
    const { table } = run([
      ...base(),
      route('r', { rules: [rule('v1', { path: { type: 'PathPrefix', value: '/items' } }), rule('v2', { path: { type: 'RegularExpression', value: '/items/[0-9]+' } }), rule('v3', { path: { type: 'Exact', value: '/items/42' } })] }),
    ]);
    expect(who(table, 'x', '/items/7')).toBe('v2');
    expect(who(table, 'x', '/items/7?x=1')).toBe('v2');
    expect(who(table, 'x', '/items/42')).toBe('v3');
    expect(who(table, 'x', '/items/7/more')).toBe('v1');
    expect(who(table, 'x', '/items/abc')).toBe('v1');
  });
});

describe('regular expressions from route authors', () => {
  it.each(['(a+)+$', '(a|a)*', '(a*)*b', '(\\w+\\s?)+$', '(.*)+', '\\1', '(?=a)', '(?<n>a)', 'a{1,1000}', 'x'.repeat(300), '.*.*.*.*'])('refuses %s', (p) => {
    expect(unsafeRegexReason(p)).toBeDefined();
  });
  it.each(['/items/[0-9]+', '^/api/v[12]/.*$', 'blue|green', '(foo|bar)?/x', '(abc)+', '[^/]+\\.json', '\\d{1,3}'])('accepts %s', (p) => {
    expect(unsafeRegexReason(p)).toBeUndefined();
  });
  it('a refused pattern drops its rule with a condition; the rest of the table keeps serving', () => {
    const { t, table } = run([...base(), route('r', { rules: [rule('v1', { path: { type: 'RegularExpression', value: '/(a+)+$' } }), rule('v2', { path: { type: 'PathPrefix', value: '/ok' } })] })]);
    expect(who(table, 'x', '/ok')).toBe('v2');
    expect(who(table, 'x', '/' + 'a'.repeat(40) + '!')).toBe('404');
    const parents = (t.statuses.find((s) => s.kind === 'HTTPRoute')!.status as any).parents;
    expect(parents[0].conditions.find((c: any) => c.type === 'PartiallyInvalid')).toMatchObject({ status: 'True', reason: 'UnsupportedValue' });
  });
  it("runs on V8's linear-time engine when the process enables it (workers do), else backtracks within the subset's bounds", () => {
    setFlagsFromString('--enable-experimental-regexp-engine');
    const cubic = compileSafeRegex('/a*a*a*b');
    expect(cubic.linear).toBe(true);
    expect(cubic.test('/' + 'a'.repeat(1000))).toBe(false);
    expect(cubic.test('/aab')).toBe(true);
    // Counted repetitions the linear engine would expand: the backtracking engine, still correct.
    const counted = compileSafeRegex('x{0,100}y{0,100}');
    expect(counted.linear).toBe(false);
    expect(counted.test('xxyy')).toBe(true);
    expect(counted.test('yx')).toBe(false);
  });
  it('anchors are whole-value and inputs are bounded', () => {
    const re = compileSafeRegex('a.*');
    expect(re.test('abc')).toBe(true);
    expect(re.test('xabc')).toBe(false);
    expect(re.test('a'.repeat(5000))).toBe(false);
  });
});

describe('status over time', () => {
  it('lastTransitionTime moves only when a status flips; observedGeneration follows the object', () => {
    const state = newTranslatorState();
    const objects = [...base(), route('r', { rules: [rule('v1')] })];
    const first = run(objects, { ...OPTIONS, now: new Date('2026-06-01T00:00:00Z') }, state).t;
    const conds = (t: typeof first) => (t.statuses.find((s) => s.kind === 'HTTPRoute')!.status as any).parents[0].conditions;
    expect(conds(first)[1]).toMatchObject({ type: 'ResolvedRefs', status: 'True', lastTransitionTime: '2026-06-01T00:00:00Z', observedGeneration: 1 });
    const broken = [...base(), route('r', { rules: [{ backendRefs: [{ name: 'gone', port: 8080 }] }] }, { generation: 2 })];
    const second = run(broken, { ...OPTIONS, now: new Date('2026-06-02T00:00:00Z') }, state).t;
    expect(conds(second)[0]).toMatchObject({ type: 'Accepted', status: 'True', lastTransitionTime: '2026-06-01T00:00:00Z', observedGeneration: 2 });
    expect(conds(second)[1]).toMatchObject({ type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', lastTransitionTime: '2026-06-02T00:00:00Z' });
  });

  it('--gateway-controller-name picks the classes; other controllers\' objects get no status', () => {
    const { t } = run([...base(), route('r', { rules: [rule('v1')] })], { ...OPTIONS, gatewayControllerName: 'example.com/other' });
    expect(t.statuses.filter((s) => s.kind !== 'Ingress')).toEqual([]);
    expect(t.ir.virtualHosts).toEqual([]);
  });
});

describe('listener isolation (by the port a request arrives on, then the most specific listener hostname)', () => {
  const on = (table: ReturnType<typeof compileTable>, port: number, host: string, path: string): string => {
    const r = table.match(host, path, { ...attrs('GET', {}, path), localPort: port });
    return r === undefined ? '404' : r.filters?.redirect !== undefined ? 'redirect' : r.backends.map((b) => b.backend.name.replace(/^default\/|:8080$/g, '')).join('+');
  };

  it('GatewayHTTPListenerIsolation: a request is served only by routes of its most specific listener', () => {
    const names = ['empty-hostname', 'wildcard-example-com', 'wildcard-foo-example-com', 'abc-foo-example-com'];
    const hosts: Record<string, string | undefined> = { 'empty-hostname': undefined, 'wildcard-example-com': '*.example.com', 'wildcard-foo-example-com': '*.foo.example.com', 'abc-foo-example-com': 'abc.foo.example.com' };
    const { table } = run([
      ...base(names.map((name) => ({ name, port: 80, protocol: 'HTTP', ...(hosts[name] ? { hostname: hosts[name] } : {}) }))),
      ...names.map((name) => route(name, { parentRefs: [{ name: 'gw', sectionName: name }], rules: [rule('v1', { path: { type: 'PathPrefix', value: `/${name}` } })] })),
    ]);
    const rows: [string, string][] = [['bar.com', 'empty-hostname'], ['bar.example.com', 'wildcard-example-com'], ['bar.foo.example.com', 'wildcard-foo-example-com'], ['abc.foo.example.com', 'abc-foo-example-com']];
    for (const [host, served] of rows) for (const name of names) expect(`${host} /${name} ${on(table, 80, host, `/${name}`)}`).toBe(`${host} /${name} ${name === served ? 'v1' : '404'}`);
    // Without the port (a caller that does not know it), isolation is not applied.
    expect(who(table, 'abc.foo.example.com', '/empty-hostname')).toBe('v1');
  });

  it('an HTTP listener redirecting to HTTPS and an HTTPS listener serving the same hostname do not see each other', () => {
    const { table } = run([
      ...base([{ name: 'http', port: 80, protocol: 'HTTP' }, { name: 'https', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'missing' }] } }]),
      route('redirect', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['app.test'], rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }] }),
    ]);
    expect(on(table, 80, 'app.test', '/x')).toBe('redirect');
    // The HTTPS listener is not programmed (its certificate is missing): nothing answers there.
    expect(on(table, 443, 'app.test', '/x')).toBe('404');
  });
});

describe('RequestMirror and CORS, whatever the HTTP/1.1 engine', () => {
  it('a mirroring rule mirrors (both engines apply it)', () => {
    const objs = [...base(), route('m', { rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'v2', port: 8080 } } }], backendRefs: [{ name: 'v1', port: 8080 }] }] })];
    const node = run(objs);
    expect(who(node.table, 'x.test', '/')).toBe('v1');
    expect(node.table.match('x.test', '/', attrs('GET', {}, '/'))!.mirrors!.map((m) => m.backend.name)).toEqual(['default/v2:8080']);
  });

  it('CORS is a typed action', () => {
    const objs = [...base(), route('c', { rules: [{ filters: [{ type: 'CORS', cors: { allowOrigins: ['https://*.a.test'], allowMethods: ['GET'] } }], backendRefs: [{ name: 'v1', port: 8080 }] }] })];
    const cors = run(objs).table.match('x.test', '/', attrs('GET', {}, '/'))!.filters!.cors!;
    expect(corsPreflightHeaders(cors, 'https://b.c.a.test', 'GET', undefined)).toEqual([['access-control-allow-origin', 'https://b.c.a.test'], ['vary', 'Origin'], ['access-control-allow-methods', 'GET'], ['access-control-max-age', '5']]);
    expect(corsPreflightHeaders(cors, 'https://a.test', 'GET', undefined)).toEqual([['vary', 'Origin']]);
    expect(corsPreflightHeaders(cors, 'http://b.a.test', 'GET', undefined)).toEqual([['vary', 'Origin']]);
  });
});

describe('Gateway spec.addresses (GatewayStaticAddresses, GatewayOptionalAddressValue shapes)', () => {
  const gwWith = (addresses: unknown[]) => {
    const { t } = run([obj('GatewayClass', 'portico', { controllerName: 'portico.dev/gateway-controller' }), obj('Gateway', 'gw', { gatewayClassName: 'portico', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }], addresses })]);
    const st = t.statuses.find((s) => s.kind === 'Gateway')!.status as any;
    const c = (type: string) => st.conditions.find((x: any) => x.type === type);
    return { addresses: st.addresses, accepted: `${c('Accepted').status} ${c('Accepted').reason}`, programmed: `${c('Programmed').status} ${c('Programmed').reason}` };
  };
  it('a usable address is the one reported; one without a value gets the published ones; others are refused', () => {
    expect(gwWith([{ type: 'IPAddress', value: '192.0.2.10' }])).toEqual({ addresses: [{ type: 'IPAddress', value: '192.0.2.10' }], accepted: 'True Accepted', programmed: 'True Programmed' });
    expect(gwWith([{ type: 'IPAddress' }])).toEqual({ addresses: [{ type: 'IPAddress', value: '192.0.2.10' }], accepted: 'True Accepted', programmed: 'True Programmed' });
    expect(gwWith([{ type: 'IPAddress', value: '203.0.113.9' }])).toMatchObject({ accepted: 'True Accepted', programmed: 'False AddressNotUsable' });
    expect(gwWith([{ type: 'test/fake-invalid-type', value: 'x' }])).toMatchObject({ accepted: 'False UnsupportedAddress' });
  });
});

describe('Gateways claiming one socket (one bind address, or one published Service address)', () => {
  const gw = (name: string, created: string, listeners: unknown[]) => obj('Gateway', name, { gatewayClassName: 'portico', listeners }, { creationTimestamp: created });
  const objects = (): KubeObject[] => [
    obj('GatewayClass', 'portico', { controllerName: 'portico.dev/gateway-controller' }),
    gw('team-a', '2026-01-01T00:00:00Z', [{ name: 'http', port: 8080, protocol: 'HTTP', hostname: 'a.example.com' }]),
    gw('team-b', '2026-01-02T00:00:00Z', [{ name: 'http', port: 8080, protocol: 'HTTP', hostname: 'b.example.com' }, { name: 'other', port: 8081, protocol: 'HTTP' }]),
    gw('tls', '2026-01-04T00:00:00Z', [{ name: 'https', port: 8080, protocol: 'HTTPS', hostname: 'd.example.com', tls: { certificateRefs: [{ name: 'none' }] } }]),
    // Not accepted (parameters Portico does not take): it holds no port, so it blocks nobody.
    obj('Gateway', 'rejected', { gatewayClassName: 'portico', infrastructure: { parametersRef: { group: 'x.io', kind: 'P', name: 'p' } }, listeners: [{ name: 'http', port: 8082, protocol: 'HTTP' }] }, { creationTimestamp: '2025-12-01T00:00:00Z' }),
    gw('after-rejected', '2026-01-05T00:00:00Z', [{ name: 'http', port: 8082, protocol: 'HTTP' }]),
    ...svc('v1'),
    ...svc('v2'),
    ...svc('v3'),
    obj('HTTPRoute', 'a', { parentRefs: [{ name: 'team-a' }], rules: [rule('v1')] }),
    obj('HTTPRoute', 'b', { parentRefs: [{ name: 'team-b' }], rules: [rule('v2')] }),
  ];
  const listener = (t: ReturnType<typeof run>['t'], gateway: string, name: string) => {
    const st = t.statuses.find((s) => s.kind === 'Gateway' && s.metadata.name === gateway)!.status as { listeners: { name: string; conditions: { type: string; status: string; reason: string }[] }[] };
    const c = st.listeners.find((l) => l.name === name)!.conditions;
    return (type: string) => `${c.find((x) => x.type === type)!.status} ${c.find((x) => x.type === type)!.reason}`;
  };

  it("the oldest Gateway keeps the socket; a younger one's listeners there are Conflicted, not merged (issue 11)", () => {
    const { t, table: all } = run(objects());
    const table = all.listener(':8080')!;
    expect(who(table, 'a.example.com', '/')).toBe('v1');
    expect(who(table, 'b.example.com', '/')).toBe('404');
    expect(listener(t, 'team-a', 'http')('Conflicted')).toBe('False NoConflicts');
    expect(listener(t, 'team-b', 'http')('Conflicted')).toBe('True HostnameConflict');
    expect(listener(t, 'team-b', 'http')('Accepted')).toBe('False PortUnavailable');
    expect(listener(t, 'tls', 'https')('Conflicted')).toBe('True ProtocolConflict');
    // Its listener on a port of its own is served.
    expect(listener(t, 'team-b', 'other')('Programmed')).toBe('True Programmed');
  });

  it('a Gateway that is not accepted holds no port', () => {
    const { t } = run(objects());
    expect(listener(t, 'rejected', 'http')('Programmed')).toBe('False Invalid');
    expect(listener(t, 'after-rejected', 'http')('Programmed')).toBe('True Programmed');
    expect(listener(t, 'after-rejected', 'http')('Conflicted')).toBe('False NoConflicts');
  });
});

describe('filters Portico does not apply (never skipped)', () => {
  const accepted = (t: ReturnType<typeof run>['t'], name: string) => {
    const s = t.statuses.find((x) => x.kind === 'HTTPRoute' && x.metadata.name === name)!;
    return (s.status as { parents: { conditions: { type: string; status: string; reason: string }[] }[] }).parents[0].conditions.map((c) => `${c.type}=${c.status} ${c.reason}`);
  };
  const ext = { type: 'ExtensionRef', extensionRef: { group: 'x.io', kind: 'Auth', name: 'a' } };

  it('some rules: accepted, PartiallyInvalid, and those rules answer 500', () => {
    const { t, table } = run([...base(), route('part', { hostnames: ['part.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' } }], filters: [ext], backendRefs: [{ name: 'v1', port: 8080 }] }, rule('v2')] })]);
    expect(accepted(t, 'part')).toEqual(['Accepted=True Accepted', 'ResolvedRefs=True ResolvedRefs', 'PartiallyInvalid=True UnsupportedValue']);
    expect(table.match('part.test', '/x', attrs('GET', {}, '/x'))!.backends[0].backend.errorStatus).toBe(500);
    expect(who(table, 'part.test', '/y')).toBe('v2');
  });

  it('every rule: the route is fully invalid, so Accepted False UnsupportedValue (no PartiallyInvalid, not counted as attached), and its requests still answer 500', () => {
    const { t, table } = run([...base(), route('all', { hostnames: ['all.test'], rules: [{ filters: [ext], backendRefs: [{ name: 'v1', port: 8080 }] }, { matches: [{ path: { type: 'PathPrefix', value: '/z' } }], filters: [{ type: 'NoSuchFilter' }], backendRefs: [{ name: 'v2', port: 8080 }] }] }), route('other', { rules: [rule('v3')] })]);
    expect(accepted(t, 'all')).toEqual(['Accepted=False UnsupportedValue', 'ResolvedRefs=True ResolvedRefs']);
    for (const path of ['/', '/z']) expect(table.match('all.test', path, attrs('GET', {}, path))!.backends[0].backend.errorStatus).toBe(500);
    // Other routes serve as usual.
    expect(who(table, 'other.test', '/')).toBe('v3');
    const gw = t.statuses.find((x) => x.kind === 'Gateway')!;
    expect((gw.status as { listeners: { attachedRoutes: number }[] }).listeners[0].attachedRoutes).toBe(1);
  });
});

describe('an empty ReplacePrefixMatch strips the prefix (HTTPPathModifier table)', () => {
  it.each(['urlRewrite', 'requestRedirect'])('%s with replacePrefixMatch "" is accepted and served', (filter) => {
    const type = filter === 'urlRewrite' ? 'URLRewrite' : 'RequestRedirect';
    const { t, table } = run([...base(), route('strip', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/foo' } }], filters: [{ type, [filter]: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '' } } }], ...(filter === 'urlRewrite' ? { backendRefs: [{ name: 'v1', port: 8080 }] } : {}) }] })]);
    const st = t.statuses.find((s) => s.kind === 'HTTPRoute')!.status as { parents: { conditions: { type: string; status: string }[] }[] };
    expect(st.parents[0].conditions.find((c) => c.type === 'Accepted')!.status).toBe('True');
    expect(table.match('x.test', '/foo/bar', attrs('GET', {}, '/foo/bar'))).toBeDefined();
  });
});

describe('route hostnames that are not hostnames', () => {
  it('refuse the route (as the API server would) instead of dropping them: with none left it would serve every name', () => {
    const { t, table } = run([
      ...base(),
      route('bad', { hostnames: ['Bad_Host!'], rules: [rule('v1')] }),
      route('mixed', { hostnames: ['ok.test', '10.0.0.1'], rules: [rule('v2')] }),
      route('good', { hostnames: ['Good.Test'], rules: [rule('v3')] }),
      route('string', { hostnames: 'str.test', rules: [rule('v1')] }),
    ]);
    const accepted = (name: string) => {
      const s = t.statuses.find((x) => x.kind === 'HTTPRoute' && x.metadata.name === name)!;
      return (s.status as { parents: { conditions: { type: string; status: string; reason: string; message: string }[] }[] }).parents[0].conditions[0];
    };
    expect(accepted('bad')).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
    expect(accepted('bad').message).toMatch(/"Bad_Host!"/);
    expect(accepted('mixed')).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
    expect(accepted('mixed').message).toMatch(/"10\.0\.0\.1"/);
    expect(accepted('string')).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
    expect(who(table, 'anything.test', '/')).toBe('404');
    expect(who(table, 'ok.test', '/')).toBe('404');
    // Upper case is lower-cased, as before.
    expect(who(table, 'good.test', '/')).toBe('v3');
  });
});

describe('match fields of the wrong type drop their rule instead of widening it', () => {
  it('a path value, a method or a header value that is not a string', () => {
    const { t, table } = run([
      ...base(),
      route('r', { hostnames: ['r.test'], rules: [
        rule('v1', { path: { type: 'PathPrefix', value: 42 } }),
        rule('v2', { method: ['GET'] }),
        rule('v3', { headers: [{ name: 'x', value: 1 }] }),
        { matches: { path: { type: 'Exact', value: '/only' } }, backendRefs: [{ name: 'v1', port: 8080 }] },
      ] }),
    ]);
    expect(who(table, 'r.test', '/anything', { x: '1' })).toBe('404');
    const s = t.statuses.find((x) => x.kind === 'HTTPRoute')!;
    const accepted = (s.status as { parents: { conditions: { type: string; status: string; reason: string; message: string }[] }[] }).parents[0].conditions[0];
    expect(accepted).toMatchObject({ status: 'False', reason: 'UnsupportedValue' });
    expect(accepted.message).toMatch(/rule 0: path type and value must be strings.*rule 1: method must be a string.*rule 2: header x: the value is not a string.*rule 3: matches is not a list/);
  });
});

describe('filter fields of the wrong shape drop their rule instead of doing less', () => {
  it('a header removal that is not a list, entries without string values, a redirect hostname that is not a string', () => {
    const { t, table } = run([
      ...base(),
      route('r', { hostnames: ['r.test'], rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/a' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x', value: 'y' }], remove: 'X-Internal-User' } }], backendRefs: [{ name: 'v1', port: 8080 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/b' } }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x', value: 1 }], remove: ['a', 2] } }], backendRefs: [{ name: 'v1', port: 8080 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/c' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: ['h.test'] } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/d' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 7 } }], backendRefs: [{ name: 'v1', port: 8080 }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/e' } }], filters: { type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['X-Internal-User'] } }, backendRefs: [{ name: 'v1', port: 8080 }] },
        rule('v2'),
      ] }),
    ]);
    for (const path of ['/a', '/b', '/c', '/d', '/e']) expect(who(table, 'r.test', path)).toBe('v2');
    const s = t.statuses.find((x) => x.kind === 'HTTPRoute')!;
    const partial = (s.status as { parents: { conditions: { type: string; message: string }[] }[] }).parents[0].conditions.find((c) => c.type === 'PartiallyInvalid')!;
    expect(partial.message).toMatch(/rule 0: RequestHeaderModifier remove is not a list.*rule 1: RequestHeaderModifier set: each entry needs a name and a value.*remove: each entry must be a header name.*rule 2: RequestRedirect hostname is not a string.*rule 3: URLRewrite hostname is not a string.*rule 4: filters is not a list/);
  });
});

describe('references with fields of the wrong type match nothing instead of widening', () => {
  it('a ReferenceGrant to.name that is not a string grants nothing; a parentRef sectionName or port of the wrong type attaches nowhere', () => {
    const other: KubeObject[] = [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'far', namespace: 'other' }, spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'far-1', namespace: 'other', labels: { 'kubernetes.io/service-name': 'far' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 3000 }], endpoints: [{ addresses: ['10.0.0.9'] }] } as KubeObject,
      { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'other' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }], to: [{ group: '', kind: 'Service', name: 7 }] } },
    ];
    const { t } = run([
      ...base(),
      ...other,
      route('cross', { hostnames: ['cross.test'], rules: [{ backendRefs: [{ name: 'far', namespace: 'other', port: 8080 }] }] }),
      route('section', { parentRefs: [{ name: 'gw', sectionName: 7 }], hostnames: ['section.test'], rules: [rule('v1')] }),
      route('port', { parentRefs: [{ name: 'gw', port: '80' }], hostnames: ['port.test'], rules: [rule('v1')] }),
    ]);
    const conditions = (name: string) => {
      const s = t.statuses.find((x) => x.kind === 'HTTPRoute' && x.metadata.name === name)!;
      return (s.status as { parents: { conditions: { type: string; status: string; reason: string }[] }[] }).parents[0].conditions.map((c) => `${c.type}=${c.status} ${c.reason}`);
    };
    expect(conditions('cross')).toContain('ResolvedRefs=False RefNotPermitted');
    expect(conditions('section')[0]).toBe('Accepted=False NoMatchingParent');
    expect(conditions('port')[0]).toBe('Accepted=False NoMatchingParent');
  });
});

describe('lastTransitionTime across a restart (a fresh translator state)', () => {
  it("keeps the time the object's status already holds for a condition whose status is unchanged", () => {
    const objects = [...base(), route('r', { rules: [rule('v1')] })];
    const first = run(objects).t;
    // The API server's copies now carry that status; a new process translates them at a later time.
    const withStatus = objects.map((o) => {
      const st = first.statuses.find((s) => s.kind === o.kind && s.metadata.name === o.metadata.name);
      return st === undefined ? o : { ...o, status: st.status };
    });
    const later = { ...OPTIONS, now: new Date('2026-07-01T00:00:00Z') };
    const second = run(withStatus, later).t;
    const times = (t: typeof first) => JSON.stringify(t.statuses).match(/"lastTransitionTime":"[^"]+"/g)!;
    expect(times(second).length).toBeGreaterThan(5);
    expect(new Set(times(second))).toEqual(new Set(['"lastTransitionTime":"2026-06-01T00:00:00Z"']));
    // A condition that flips gets the new time: the route loses its backend.
    const flipped = run(withStatus.map((o) => (o.kind === 'HTTPRoute' ? { ...o, spec: { parentRefs: [{ name: 'gw' }], rules: [rule('missing')] } } : o)), later).t;
    const rs = flipped.statuses.find((s) => s.kind === 'HTTPRoute')!.status as { parents: { conditions: { type: string; lastTransitionTime: string }[] }[] };
    expect(rs.parents[0].conditions.find((c) => c.type === 'ResolvedRefs')!.lastTransitionTime).toBe('2026-07-01T00:00:00Z');
    expect(rs.parents[0].conditions.find((c) => c.type === 'Accepted')!.lastTransitionTime).toBe('2026-06-01T00:00:00Z');
  });
});

describe('attachedRoutes counts a route once per listener (QA-16)', () => {
  it('two parentRefs of one route selecting the same listener count once', () => {
    const { t } = run([...base([{ name: 'l3', port: 80, protocol: 'HTTP', hostname: '*.bar.com' }, { name: 'l4', port: 80, protocol: 'HTTP', hostname: '*.foo.com' }]), obj('HTTPRoute', 'twice', { parentRefs: [{ name: 'gw', sectionName: 'l3' }, { name: 'gw', port: 80 }], rules: [rule('v1')] })]);
    const st = t.statuses.find((s) => s.kind === 'Gateway')!.status as { listeners: { name: string; attachedRoutes: number }[] };
    expect(Object.fromEntries(st.listeners.map((l) => [l.name, l.attachedRoutes]))).toEqual({ l3: 1, l4: 1 });
  });
});
