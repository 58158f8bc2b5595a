// GRPCRoute translation through the router: gRPC method matches as HTTP/2 request matches, the
// GRPCRoute precedence, and the rule that an HTTPRoute and a GRPCRoute never share a hostname on
// one listener.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslateOptions } from '../controller/translate.ts';
import { compileTable, type RequestAttributes } from '../router/index.ts';

const GW = 'gateway.networking.k8s.io/v1';
const SVC = 'echo.Echo';
const obj = (kind: string, name: string, spec: unknown, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
  apiVersion: GW,
  kind,
  metadata: { name, namespace: kind === 'GatewayClass' ? undefined : 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra },
  spec,
});
const svc = (name: string, appProtocol: string | undefined = 'kubernetes.io/h2c'): KubeObject[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'grpc', port: 8080, targetPort: 3000, ...(appProtocol ? { appProtocol } : {}) }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'grpc', port: 3000 }], endpoints: [{ addresses: ['10.0.0.1'] }] } as KubeObject,
];
const base = (listeners: unknown[] = [{ name: 'http', port: 80, protocol: 'HTTP' }]): KubeObject[] => [
  obj('GatewayClass', 'portico', { controllerName: 'portico.dev/gateway-controller' }),
  obj('Gateway', 'gw', { gatewayClassName: 'portico', listeners }),
  ...svc('v1'),
  ...svc('v2'),
  ...svc('v3'),
];
const grpcRoute = (name: string, spec: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}): KubeObject => obj('GRPCRoute', name, { parentRefs: [{ name: 'gw' }], ...spec }, extra);
const httpRoute = (name: string, spec: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}): KubeObject => obj('HTTPRoute', name, { parentRefs: [{ name: 'gw' }], ...spec }, extra);
const rule = (backend: string, ...matches: unknown[]) => ({ ...(matches.length ? { matches } : {}), backendRefs: [{ name: backend, port: 8080 }] });
const OPTIONS: TranslateOptions = { ingressClass: 'portico', publishAddresses: ['192.0.2.10'], now: new Date('2026-06-01T00:00:00Z') };

function run(objects: KubeObject[]) {
  const t = translate({ objects: objects.map((object) => ({ object, origin: 'test' })), problems: [] }, OPTIONS, newTranslatorState());
  return { t, table: compileTable(t.ir, 1) };
}

function attrs(method: string, headers: Record<string, string>): RequestAttributes {
  return { method, header: (n) => headers[n], queryParam: () => undefined };
}

/** The Service a gRPC call to `/service/method` reaches, '404' when none. */
function who(table: ReturnType<typeof compileTable>, host: string, path: string, headers: Record<string, string> = {}, method = 'POST'): string {
  const r = table.match(host, path, attrs(method, headers));
  if (r === undefined) return '404';
  return r.backends.map((b) => b.backend.name.replace(/^default\/|:8080$/g, '')).join('+');
}

function parent(t: ReturnType<typeof run>['t'], kind: string, name: string, i = 0): { conditions: { type: string; status: string; reason: string; message: string }[] } {
  const s = t.statuses.find((x) => x.kind === kind && x.metadata.name === name);
  return (s!.status as { parents: never[] }).parents[i];
}
const condition = (p: ReturnType<typeof parent>, type: string) => p.conditions.find((c) => c.type === type);

describe('GRPCRoute method matches', () => {
  it('service and method: exact /service/method, only POST; service only: that service; method only: any service', () => {
    const { table } = run([
      ...base(),
      grpcRoute('r', {
        rules: [
          rule('v1', { method: { service: SVC, method: 'Echo' } }),
          rule('v2', { method: { service: 'other.Svc' } }),
          rule('v3', { method: { method: 'Ping' } }),
        ],
      }),
    ]);
    expect(who(table, 'a.test', `/${SVC}/Echo`)).toBe('v1');
    // A GET is no gRPC call.
    expect(who(table, 'a.test', `/${SVC}/Echo`, {}, 'GET')).toBe('404');
    expect(who(table, 'a.test', `/${SVC}/EchoTwo`)).toBe('404');
    expect(who(table, 'a.test', '/other.Svc/Anything')).toBe('v2');
    expect(who(table, 'a.test', '/other.SvcX/Anything')).toBe('404');
    expect(who(table, 'a.test', '/any.Service/Ping')).toBe('v3');
    expect(who(table, 'a.test', '/any.Service/PingX')).toBe('404');
  });

  it('RegularExpression service and method match whole names', () => {
    const { table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: { type: 'RegularExpression', service: 'echo\\.[A-Z][a-z]+', method: 'Get.*' } })] })]);
    expect(who(table, 'a.test', '/echo.Echo/GetThing')).toBe('v1');
    expect(who(table, 'a.test', '/echo.Echo/PutThing')).toBe('404');
    expect(who(table, 'a.test', '/xecho.Echo/GetThing')).toBe('404');
  });

  it('a method match naming neither service nor method drops its rule instead of matching every call', () => {
    const { t, table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: {} }), rule('v2', { method: { service: SVC, method: 'Echo' } })] })]);
    expect(who(table, 'a.test', '/x.Y/Z')).toBe('404');
    expect(who(table, 'a.test', `/${SVC}/Echo`)).toBe('v2');
    const p = parent(t, 'GRPCRoute', 'r');
    expect(condition(p, 'Accepted')).toMatchObject({ status: 'True' });
    expect(condition(p, 'PartiallyInvalid')?.message).toMatch(/rule 0: a gRPC method match must name a service, a method or both/);
  });

  it('a service or method that is not a string drops the rule rather than widening it', () => {
    const { table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: { service: 42, method: 'Ping' } }), rule('v2', { method: { service: SVC, method: ['Ping'] } })] })]);
    expect(who(table, 'a.test', '/other.Svc/Ping')).toBe('404');
    expect(who(table, 'a.test', `/${SVC}/Anything`)).toBe('404');
  });

  it('no method: every call of the route, still POST only', () => {
    const { table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { headers: [{ name: 'version', value: 'one' }] })] })]);
    expect(who(table, 'a.test', '/x.Y/Z', { version: 'one' })).toBe('v1');
    expect(who(table, 'a.test', '/x.Y/Z', { version: 'one' }, 'GET')).toBe('404');
    expect(who(table, 'a.test', '/x.Y/Z')).toBe('404');
  });
});

describe('an HTTPRoute and a GRPCRoute never share a hostname on one listener', () => {
  const listeners = [{ name: 'a', port: 80, protocol: 'HTTP', hostname: 'a.test' }, { name: 'b', port: 80, protocol: 'HTTP', hostname: 'b.test' }, { name: 'wild', port: 80, protocol: 'HTTP', hostname: '*.wild.test' }];
  const older = { creationTimestamp: '2026-01-01T00:00:00Z' };
  const newer = { creationTimestamp: '2026-01-02T00:00:00Z' };
  const gwStatus = (t: ReturnType<typeof run>['t']) => (t.statuses.find((s) => s.kind === 'Gateway')!.status as { listeners: { name: string; attachedRoutes: number }[] }).listeners;

  it('the older route keeps the listener; the newer of the other kind is not accepted there, and serves nothing', () => {
    const { t, table } = run([
      ...base(listeners),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v1')] }, older),
      grpcRoute('rpc', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v2', { method: { service: SVC, method: 'Echo' } })] }, newer),
    ]);
    expect(who(table, 'a.test', `/${SVC}/Echo`)).toBe('v1');
    expect(condition(parent(t, 'HTTPRoute', 'web'), 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    const rejected = condition(parent(t, 'GRPCRoute', 'rpc'), 'Accepted');
    expect(rejected).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(rejected?.message).toMatch(/listener a: the older HTTPRoute default\/web already serves a\.test there/);
    expect(gwStatus(t).find((l) => l.name === 'a')?.attachedRoutes).toBe(1);
  });

  it('a GRPCRoute without hostnames holds every hostname of its listener; the HTTPRoute created later is refused', () => {
    const { t, table } = run([
      ...base(listeners),
      grpcRoute('rpc', { parentRefs: [{ name: 'gw', sectionName: 'wild' }], rules: [rule('v2')] }, older),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'wild' }], hostnames: ['x.wild.test'], rules: [rule('v1')] }, newer),
    ]);
    expect(who(table, 'x.wild.test', '/x.Y/Z')).toBe('v2');
    expect(who(table, 'x.wild.test', '/', {}, 'GET')).toBe('404');
    expect(condition(parent(t, 'HTTPRoute', 'web'), 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(condition(parent(t, 'GRPCRoute', 'rpc'), 'Accepted')).toMatchObject({ status: 'True' });
  });

  it('created at the same time, the first by namespace/name wins', () => {
    const { t } = run([
      ...base(listeners),
      httpRoute('b-web', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v1')] }),
      grpcRoute('a-rpc', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v2')] }),
    ]);
    expect(condition(parent(t, 'GRPCRoute', 'a-rpc'), 'Accepted')).toMatchObject({ status: 'True' });
    expect(condition(parent(t, 'HTTPRoute', 'b-web'), 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
  });

  it('hostnames that do not intersect, other listeners and routes of one kind do not conflict', () => {
    const { t, table } = run([
      ...base(listeners),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'wild' }], hostnames: ['web.wild.test'], rules: [rule('v1')] }, older),
      grpcRoute('rpc', { parentRefs: [{ name: 'gw', sectionName: 'wild' }], hostnames: ['rpc.wild.test'], rules: [rule('v2')] }, newer),
      httpRoute('web-b', { parentRefs: [{ name: 'gw', sectionName: 'b' }], rules: [rule('v1')] }, older),
      httpRoute('web-b2', { parentRefs: [{ name: 'gw', sectionName: 'b' }], rules: [rule('v3', { path: { type: 'PathPrefix', value: '/x' } })] }, newer),
    ]);
    for (const [kind, name] of [['HTTPRoute', 'web'], ['GRPCRoute', 'rpc'], ['HTTPRoute', 'web-b'], ['HTTPRoute', 'web-b2']]) expect(condition(parent(t, kind, name), 'Accepted')?.status, name).toBe('True');
    expect(who(table, 'rpc.wild.test', '/x.Y/Z')).toBe('v2');
    expect(who(table, 'web.wild.test', '/', {}, 'GET')).toBe('v1');
    expect(who(table, 'b.test', '/x', {}, 'GET')).toBe('v3');
  });

  it('per parentRef: refused on the listener the other kind holds, accepted on another', () => {
    const { t, table } = run([
      ...base(listeners),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v1')] }, older),
      grpcRoute('rpc', { parentRefs: [{ name: 'gw', sectionName: 'a' }, { name: 'gw', sectionName: 'b' }], rules: [rule('v2')] }, newer),
    ]);
    expect(condition(parent(t, 'GRPCRoute', 'rpc', 0), 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(condition(parent(t, 'GRPCRoute', 'rpc', 1), 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(who(table, 'b.test', '/x.Y/Z')).toBe('v2');
    expect(who(table, 'a.test', '/x.Y/Z')).toBe('v1');
  });

  it('one parentRef over several listeners: attached where it is free, and the message names the one it is not', () => {
    const { t, table } = run([
      ...base(listeners),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [rule('v1')] }, older),
      grpcRoute('rpc', { rules: [rule('v2')] }, newer),
    ]);
    const accepted = condition(parent(t, 'GRPCRoute', 'rpc'), 'Accepted');
    expect(accepted).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(accepted?.message).toMatch(/^not attached to listener a: /);
    expect(who(table, 'b.test', '/x.Y/Z')).toBe('v2');
    expect(who(table, 'y.wild.test', '/x.Y/Z')).toBe('v2');
    expect(who(table, 'a.test', '/x.Y/Z')).toBe('v1');
    expect(gwStatus(t).map((l) => l.attachedRoutes)).toEqual([1, 1, 1]);
  });
});

describe('GRPCRoute precedence', () => {
  it('a service-only match beats a method-only one (service characters count first), in any route order', () => {
    for (const order of [0, 1]) {
      const rules = [rule('v1', { method: { method: 'Ping' } }), rule('v2', { method: { service: SVC } })];
      const { table } = run([...base(), grpcRoute('a', { rules: [rules[order]] }), grpcRoute('b', { rules: [rules[1 - order]] })]);
      expect(who(table, 'a.test', `/${SVC}/Ping`), `order ${order}`).toBe('v2');
      expect(who(table, 'a.test', '/other.Svc/Ping')).toBe('v1');
      expect(who(table, 'a.test', `/${SVC}/Other`)).toBe('v2');
    }
  });

  it('a service-only match whose headers do not match leaves the call to the method-only match', () => {
    const { table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: { method: 'Ping' } }), rule('v2', { method: { service: SVC }, headers: [{ name: 'version', value: 'two' }] })] })]);
    expect(who(table, 'a.test', `/${SVC}/Ping`, { version: 'two' })).toBe('v2');
    expect(who(table, 'a.test', `/${SVC}/Ping`)).toBe('v1');
    expect(who(table, 'a.test', `/${SVC}/Ping`, { version: 'two' }, 'GET')).toBe('404');
  });

  it('service and method beat service only, which beats method only, whatever the header counts', () => {
    const { table } = run([
      ...base(),
      grpcRoute('r', {
        rules: [
          rule('v3', { method: { method: 'Ping' }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '1' }] }),
          rule('v2', { method: { service: SVC } }),
          rule('v1', { method: { service: SVC, method: 'Ping' } }),
        ],
      }),
    ]);
    expect(who(table, 'a.test', `/${SVC}/Ping`, { a: '1', b: '1' })).toBe('v1');
    expect(who(table, 'a.test', `/${SVC}/Other`, { a: '1', b: '1' })).toBe('v2');
    expect(who(table, 'a.test', '/x.Y/Ping', { a: '1', b: '1' })).toBe('v3');
  });

  it('header matches rank routes of the same service and method', () => {
    const { table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: { service: SVC, method: 'Echo' } }), rule('v2', { method: { service: SVC, method: 'Echo' }, headers: [{ name: 'version', value: 'two' }] })] })]);
    expect(who(table, 'a.test', `/${SVC}/Echo`, { version: 'two' })).toBe('v2');
    expect(who(table, 'a.test', `/${SVC}/Echo`)).toBe('v1');
  });
});

describe('GRPCRoute backends speak HTTP/2', () => {
  const listeners = [{ name: 'a', port: 80, protocol: 'HTTP', hostname: 'a.test' }, { name: 'b', port: 80, protocol: 'HTTP', hostname: 'b.test' }];

  it('appProtocol kubernetes.io/h2c as it is; no appProtocol: h2c too, apart from an HTTPRoute using the same port over HTTP/1.1', () => {
    const { t, table } = run([
      ...base(listeners),
      ...svc('plain', ''),
      grpcRoute('rpc', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [{ backendRefs: [{ name: 'plain', port: 8080, weight: 1 }, { name: 'v1', port: 8080, weight: 1 }] }] }),
      httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'b' }], rules: [rule('plain')] }),
    ]);
    const protocols = (host: string, method: string) => table.match(host, '/x.Y/Z', attrs(method, {}))!.backends.map((b) => `${b.backend.name} ${b.backend.protocol}`);
    expect(protocols('a.test', 'POST')).toEqual(['default/plain:8080 h2c', 'default/v1:8080 h2c']);
    expect(protocols('b.test', 'GET')).toEqual(['default/plain:8080 http']);
    expect(condition(parent(t, 'GRPCRoute', 'rpc'), 'ResolvedRefs')).toMatchObject({ status: 'True' });
  });

  it('an HTTPS port is UnsupportedProtocol, and its share answers 500', () => {
    const { t, table } = run([
      ...base(),
      ...svc('tls', 'https'),
      grpcRoute('rpc', { rules: [{ backendRefs: [{ name: 'tls', port: 8080 }] }] }),
    ]);
    const r = table.match('a.test', '/x.Y/Z', attrs('POST', {}))!;
    expect(r.backends.map((b) => b.backend.errorStatus)).toEqual([500]);
    expect(condition(parent(t, 'GRPCRoute', 'rpc'), 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'UnsupportedProtocol' });
    expect(condition(parent(t, 'GRPCRoute', 'rpc'), 'ResolvedRefs')?.message).toMatch(/appProtocol https/);
    expect(condition(parent(t, 'GRPCRoute', 'rpc'), 'Accepted')).toMatchObject({ status: 'True' });
  });
});

describe('GRPCRoute precedence, service+method without headers', () => {
  it('beats a service-only match with header matches at its path, with a method-only match about', () => {
    const { table } = run([
      ...base(),
      grpcRoute('r', {
        rules: [
          rule('v1', { method: { service: SVC, method: 'Ping' } }),
          rule('v2', { method: { service: SVC }, headers: [{ name: 'a', value: '1' }] }),
          rule('v3', { method: { method: 'Ping' } }),
        ],
      }),
    ]);
    expect(who(table, 'a.test', `/${SVC}/Ping`, { a: '1' })).toBe('v1');
    expect(who(table, 'a.test', `/${SVC}/Other`, { a: '1' })).toBe('v2');
    expect(who(table, 'a.test', '/x.Y/Ping', { a: '1' })).toBe('v3');
  });
});

describe('GRPCRoute precedence, service+method with fewer header matches than a service-only match', () => {
  it('the method\'s characters count before header matches: service+method first at its path', () => {
    const { table, t } = run([
      ...base(),
      grpcRoute('r', {
        rules: [
          rule('v2', { method: { service: SVC }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '1' }] }),
          rule('v1', { method: { service: SVC, method: 'Ping' }, headers: [{ name: 'a', value: '1' }] }),
          rule('v3', { method: { method: 'Ping' } }),
        ],
      }),
    ]);
    expect(who(table, 'a.test', `/${SVC}/Ping`, { a: '1', b: '1' })).toBe('v1');
    // Without the service+method rule's header, the service-only match (more service characters
    // than the method-only one) takes it; without either's headers, the method-only one.
    expect(who(table, 'a.test', `/${SVC}/Ping`, { b: '1' })).toBe('v3');
    expect(who(table, 'a.test', `/${SVC}/Other`, { a: '1', b: '1' })).toBe('v2');
    expect(who(table, 'a.test', `/${SVC}/Ping`)).toBe('v3');
    expect(t.ir.virtualHosts.flatMap((vh) => vh.routes).filter((r) => r.derived === true).map((r) => r.path)).toEqual([`/${SVC}/Ping`]);
  });
});

describe('GRPCRoute RegularExpression values', () => {
  it('anchors written around a value are accepted (the whole name must match anyway)', () => {
    const { t, table } = run([...base(), grpcRoute('r', { rules: [rule('v1', { method: { type: 'RegularExpression', service: '^echo\\.E[a-z]+$', method: '^Get$' } })] })]);
    expect(who(table, 'a.test', '/echo.Echo/Get')).toBe('v1');
    expect(who(table, 'a.test', '/echo.Echo/GetX')).toBe('404');
    expect(condition(parent(t, 'GRPCRoute', 'r'), 'PartiallyInvalid')).toBeUndefined();
  });
});
