import { describe, expect, it } from 'vitest';
import { parseManifests } from '../controller/manifests.ts';
import type { KubeObject, SourceSnapshot } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslatorState } from '../controller/translate.ts';
import { compileTable } from '../router/index.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';

const CLASS: KubeObject = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico' }, spec: { controller: 'portico.dev/ingress-controller' } };

function service(name: string, ports: Record<string, unknown>[] = [{ name: 'http', port: 80, targetPort: 8080 }], extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports, ...extra } };
}

function slice(svc: string, endpoints: Record<string, unknown>[], ports: Record<string, unknown>[] = [{ name: 'http', port: 8080 }], name = `${svc}-abc`): KubeObject {
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } }, addressType: 'IPv4', ports, endpoints };
}

function ingress(name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z', generation: 1, ...meta }, spec };
}

function rule(host: string | undefined, paths: [string, string, string, (number | string)?][]): Record<string, unknown> {
  return {
    ...(host ? { host } : {}),
    http: { paths: paths.map(([path, pathType, svc, port]) => ({ path, pathType, backend: { service: { name: svc, port: typeof port === 'string' ? { name: port } : { number: port ?? 80 } } } })) },
  };
}

function snapshot(objects: KubeObject[]): SourceSnapshot {
  return { objects: objects.map((object) => ({ object, origin: `${object.metadata.name}.yaml` })), problems: [] };
}

const ready = (ip: string) => ({ addresses: [ip], conditions: { ready: true } });

function run(objects: KubeObject[], state: TranslatorState = newTranslatorState(), ingressClass = 'portico') {
  const t = translate(snapshot(objects), { ingressClass, publishAddresses: ['192.0.2.10', 'lb.example.net'] }, state);
  return { ...t, table: compileTable(t.ir, 1) };
}

describe('IngressClass selection', () => {
  const objs = (extra: KubeObject[]) => [service('web'), slice('web', [ready('10.0.0.1')]), ...extra];
  const spec = { rules: [rule('a.com', [['/', 'Prefix', 'web']])] };

  it('serves Ingresses naming the class', () => {
    const { statuses, table } = run(objs([CLASS, ingress('a', { ingressClassName: 'portico', ...spec })]));
    expect(statuses.map((s) => s.metadata.name)).toEqual(['a']);
    expect(table.match('a.com', '/')?.id).toBe('default/a#0.0');
  });

  it('ignores Ingresses of other classes, and class-less ones unless the class is the default', () => {
    const { statuses } = run(objs([CLASS, ingress('other', { ingressClassName: 'nginx', ...spec }), ingress('none', spec)]));
    expect(statuses).toEqual([]);
    const def: KubeObject = { ...CLASS, metadata: { name: 'portico', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } };
    expect(run(objs([def, ingress('none', spec)])).statuses.map((s) => s.metadata.name)).toEqual(['none']);
  });

  it('counts the legacy kubernetes.io/ingress.class annotation as the class name', () => {
    const { statuses } = run(objs([CLASS, ingress('legacy', spec, { annotations: { 'kubernetes.io/ingress.class': 'portico' } }), ingress('legacy-other', spec, { annotations: { 'kubernetes.io/ingress.class': 'nginx' } })]));
    expect(statuses.map((s) => s.metadata.name)).toEqual(['legacy']);
  });

  it('the legacy annotation is served without any IngressClass object, but not when the class belongs to another controller', () => {
    const legacy = ingress('legacy', spec, { annotations: { 'kubernetes.io/ingress.class': 'portico' } });
    const alone = run(objs([legacy]));
    expect(alone.statuses.map((s) => s.metadata.name)).toEqual(['legacy']);
    expect(alone.table.match('a.com', '/')?.id).toBe('default/legacy#0.0');
    const foreign = run(objs([{ ...CLASS, spec: { controller: 'k8s.io/ingress-nginx' } }, legacy]));
    expect(foreign.statuses).toEqual([]);
    // ingressClassName is not the legacy annotation: it needs the IngressClass.
    expect(run(objs([ingress('a', { ingressClassName: 'portico', ...spec })])).statuses).toEqual([]);
  });

  it('serves nothing when the IngressClass is missing or belongs to another controller, and says why', () => {
    const missing = run(objs([ingress('a', { ingressClassName: 'portico', ...spec })]));
    expect(missing.statuses).toEqual([]);
    expect(missing.problems.some((p) => p.message.includes('IngressClass portico not found'))).toBe(true);
    const foreign = run(objs([{ ...CLASS, spec: { controller: 'k8s.io/ingress-nginx' } }, ingress('a', { ingressClassName: 'portico', ...spec })]));
    expect(foreign.statuses).toEqual([]);
    expect(foreign.problems.some((p) => p.message.includes('k8s.io/ingress-nginx'))).toBe(true);
  });

  it('--ingress-class selects which class is served', () => {
    const alt: KubeObject = { ...CLASS, metadata: { name: 'internal' } };
    const { statuses } = run(objs([CLASS, alt, ingress('a', { ingressClassName: 'portico', ...spec }), ingress('b', { ingressClassName: 'internal', ...spec })]), newTranslatorState(), 'internal');
    expect(statuses.map((s) => s.metadata.name)).toEqual(['b']);
  });
});

describe('merging and conflicts', () => {
  const base = [CLASS, service('a'), service('b'), slice('a', [ready('10.0.0.1')]), slice('b', [ready('10.0.0.2')])];

  it('rules for the same host from several Ingresses merge', () => {
    const { table } = run([...base, ingress('one', { ingressClassName: 'portico', rules: [rule('x.com', [['/a', 'Prefix', 'a']])] }), ingress('two', { ingressClassName: 'portico', rules: [rule('x.com', [['/b', 'Prefix', 'b']])] })]);
    expect(table.match('x.com', '/a/1')?.backends[0].backend.name).toBe('default/a:80');
    expect(table.match('x.com', '/b/1')?.backends[0].backend.name).toBe('default/b:80');
  });

  it('the same host and path: the oldest Ingress wins, then namespace/name; the loser is reported', () => {
    const older = ingress('zzz-old', { ingressClassName: 'portico', rules: [rule('x.com', [['/p', 'Prefix', 'a']])] }, { creationTimestamp: '2025-01-01T00:00:00Z' });
    const newer = ingress('aaa-new', { ingressClassName: 'portico', rules: [rule('x.com', [['/p', 'Prefix', 'b']])] }, { creationTimestamp: '2026-01-01T00:00:00Z' });
    const r = run([...base, newer, older]);
    expect(r.table.match('x.com', '/p')?.ir.source.name).toBe('zzz-old');
    const loser = r.problems.find((p) => p.name === 'aaa-new');
    expect(loser?.message).toMatch(/already served by the older Ingress default\/zzz-old/);
    // Same age: namespace/name order decides.
    const same = run([...base, ingress('b-ing', { ingressClassName: 'portico', rules: [rule('x.com', [['/p', 'Prefix', 'b']])] }), ingress('a-ing', { ingressClassName: 'portico', rules: [rule('x.com', [['/p', 'Prefix', 'a']])] })]);
    expect(same.table.match('x.com', '/p')?.ir.source.name).toBe('a-ing');
  });

  it('Exact and Prefix on the same path do not conflict; Exact wins for the exact path', () => {
    const r = run([...base, ingress('e', { ingressClassName: 'portico', rules: [rule('x.com', [['/p', 'Exact', 'a'], ['/p', 'Prefix', 'b']])] })]);
    expect(r.problems).toEqual([]);
    expect(r.table.match('x.com', '/p')?.backends[0].backend.name).toBe('default/a:80');
    expect(r.table.match('x.com', '/p/q')?.backends[0].backend.name).toBe('default/b:80');
  });

  it('ImplementationSpecific is served as Prefix', () => {
    const r = run([...base, ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/img', 'ImplementationSpecific', 'a']])] })]);
    expect(r.table.match('x.com', '/img/1.png')?.id).toBe('default/i#0.0');
    expect(r.table.match('x.com', '/imgs')).toBeUndefined();
  });

  it('spec.defaultBackend serves what no rule matches', () => {
    const r = run([...base, ingress('d', { ingressClassName: 'portico', defaultBackend: { service: { name: 'b', port: { number: 80 } } }, rules: [rule('x.com', [['/a', 'Prefix', 'a']])] })]);
    expect(r.table.match('x.com', '/a')?.backends[0].backend.name).toBe('default/a:80');
    expect(r.table.match('x.com', '/zzz')?.backends[0].backend.name).toBe('default/b:80');
    expect(r.table.match('unknown.com', '/')?.backends[0].backend.name).toBe('default/b:80');
  });

  it('wildcard and host-less rules', () => {
    const r = run([...base, ingress('w', { ingressClassName: 'portico', rules: [rule('*.x.com', [['/', 'Prefix', 'a']]), rule(undefined, [['/', 'Prefix', 'b']])] })]);
    expect(r.table.match('api.x.com', '/')?.backends[0].backend.name).toBe('default/a:80');
    expect(r.table.match('a.b.x.com', '/')?.backends[0].backend.name).toBe('default/b:80');
    expect(r.table.match('x.com', '/')?.backends[0].backend.name).toBe('default/b:80');
  });
});

describe('backends from Services and EndpointSlices', () => {
  const ing = (port: number | string) => ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/', 'Prefix', 'web', port]])] });
  const endpointsOf = (r: ReturnType<typeof run>) => r.table.match('x.com', '/')?.backends[0].backend.endpoints.map((e) => `${e.address}:${e.port}`);

  it('maps a Service port by number or name to the slice port of the same name', () => {
    const objs = [CLASS, service('web', [{ name: 'http', port: 80, targetPort: 'web' }, { name: 'metrics', port: 9090, targetPort: 9090 }]), slice('web', [ready('10.0.0.1'), ready('10.0.0.2')], [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9091 }])];
    expect(endpointsOf(run([...objs, ing(80)]))).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(endpointsOf(run([...objs, ing('metrics')]))).toEqual(['10.0.0.1:9091', '10.0.0.2:9091']);
  });

  it('joins every slice of the Service by label; selector-less and headless Services work', () => {
    const headless = service('web', [{ name: 'http', port: 80 }], { clusterIP: 'None' });
    const objs = [CLASS, headless, slice('web', [ready('10.0.0.1')], [{ name: 'http', port: 8080 }], 'web-1'), slice('web', [ready('10.0.0.2')], [{ name: 'http', port: 8080 }], 'web-2'), slice('other', [ready('10.9.9.9')])];
    expect(endpointsOf(run([...objs, ing(80)]))).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
  });

  it('uses ready endpoints; with none ready, serving-and-terminating ones', () => {
    const objs = [CLASS, service('web'), slice('web', [ready('10.0.0.1'), { addresses: ['10.0.0.2'], conditions: { ready: false, serving: true, terminating: true } }, { addresses: ['10.0.0.3'], conditions: { ready: false, serving: false } }, { addresses: ['10.0.0.4'] }])];
    expect(endpointsOf(run([...objs, ing(80)]))).toEqual(['10.0.0.1:8080', '10.0.0.4:8080']);
    const draining = [CLASS, service('web'), slice('web', [{ addresses: ['10.0.0.2'], conditions: { ready: false, serving: true, terminating: true } }, { addresses: ['10.0.0.3'], conditions: { ready: false, serving: false, terminating: true } }])];
    expect(endpointsOf(run([...draining, ing(80)]))).toEqual(['10.0.0.2:8080']);
  });

  it('a missing Service or port gives an unavailable backend (503) and a problem', () => {
    const r = run([CLASS, ing(80)]);
    const backend = r.table.match('x.com', '/')?.backends[0].backend;
    expect(backend?.endpoints).toEqual([]);
    expect(backend?.unavailableReason).toMatch(/Service default\/web not found/);
    expect(r.problems.some((p) => p.kind === 'Ingress' && p.origin === 'i.yaml' && /not found/.test(p.message))).toBe(true);
    const noPort = run([CLASS, service('web'), slice('web', [ready('10.0.0.1')]), ing(81)]);
    expect(noPort.table.match('x.com', '/')?.backends[0].backend.unavailableReason).toMatch(/has no port 81/);
    expect(noPort.problems.some((p) => p.kind === 'Ingress' && p.origin === 'i.yaml' && p.severity === 'warning' && p.message === 'Service default/web has no port 81 (x.com/): answered 503 until it exists')).toBe(true);
  });

  it('an edit that points a path at a port the Service does not have is served as written: 503 with the reason, as after a restart', () => {
    const state = newTranslatorState();
    const objs = [CLASS, service('web'), slice('web', [ready('10.0.0.1')])];
    expect(run([...objs, ing(80)], state).table.match('x.com', '/')?.backends[0].backend.endpoints).toHaveLength(1);
    const edited = { ...ing(99), metadata: { ...ing(99).metadata, generation: 2 } };
    const r = run([...objs, edited], state);
    const backend = r.table.match('x.com', '/')?.backends[0].backend;
    expect(backend?.endpoints).toEqual([]);
    expect(backend?.unavailableReason).toMatch(/has no port 99/);
    expect(r.problems.some((p) => p.severity === 'warning' && /^Service default\/web has no port 99/.test(p.message))).toBe(true);
    expect(r.problems.some((p) => /is invalid/.test(p.message))).toBe(false);
    expect(run([...objs, edited], newTranslatorState()).ir).toEqual(r.ir);
  });

  it('appProtocol picks the upstream protocol', () => {
    const r = run([CLASS, service('web', [{ name: 'grpc', port: 80, appProtocol: 'kubernetes.io/h2c' }]), slice('web', [ready('10.0.0.1')], [{ name: 'grpc', port: 50051 }]), ing(80)]);
    expect(r.table.match('x.com', '/')?.backends[0].backend.protocol).toBe('h2c');
  });
});

describe('bad input keeps the last good version serving', () => {
  const base = [CLASS, service('a'), slice('a', [ready('10.0.0.1')])];

  it('an invalid edit of an Ingress keeps its previous generation, and says so', () => {
    const state = newTranslatorState();
    const good = ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/ok', 'Prefix', 'a']])] });
    expect(run([...base, good], state).table.match('x.com', '/ok')).toBeDefined();
    const bad = ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/new', 'Bogus', 'a']])] }, { generation: 2 });
    const r = run([...base, bad], state);
    expect(r.table.match('x.com', '/ok')).toBeDefined();
    expect(r.table.match('x.com', '/new')).toBeUndefined();
    expect(r.problems[0].message).toMatch(/generation 2 is invalid: .*pathType "Bogus".*still serving generation 1/);
    expect(r.statuses[0].metadata.generation).toBe(2);
    const toMissing = ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/ok', 'Prefix', 'typo']])] }, { generation: 3 });
    // A missing Service is not an invalid object: the current content is served, that path 503s.
    const missing = run([...base, toMissing], state).table.match('x.com', '/ok')?.backends[0].backend;
    expect(missing?.name).toBe('default/typo:80');
    expect(missing?.unavailableReason).toMatch(/Service default\/typo not found/);
  });

  it('a new invalid Ingress serves its valid paths and reports the rest', () => {
    const r = run([...base, ingress('n', { ingressClassName: 'portico', rules: [rule('x.com', [['/ok', 'Prefix', 'a'], ['relative', 'Prefix', 'a'], ['/bad', 'Weird', 'a']]), { host: 'x.com', http: { paths: [{ path: '/nobackend', pathType: 'Prefix' }] } }] })]);
    expect(r.table.match('x.com', '/ok')).toBeDefined();
    expect(r.table.match('x.com', '/nobackend')).toBeUndefined();
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/paths\[1\]: path "relative" must be absolute/),
      expect.stringMatching(/paths\[2\]: pathType "Weird"/),
      expect.stringMatching(/rules\[1\]\.http\.paths\[0\]: missing backend/),
    ]);
  });

  it('invalid hosts are reported', () => {
    const r = run([...base, ingress('h', { ingressClassName: 'portico', rules: [rule('10.0.0.1', [['/', 'Prefix', 'a']]), rule('bad_host.com', [['/', 'Prefix', 'a']])] })]);
    expect(r.problems.filter((p) => /not a valid hostname/.test(p.message))).toHaveLength(2);
  });
});

describe('status', () => {
  it('publishes the configured addresses as loadBalancer.ingress, API-shaped', () => {
    const { statuses } = run([CLASS, service('a'), ingress('s', { ingressClassName: 'portico', rules: [rule('x.com', [['/', 'Prefix', 'a']])] }, { generation: 4 })]);
    expect(statuses).toEqual([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: { namespace: 'default', name: 's', generation: 4 },
        status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }, { hostname: 'lb.example.net' }] } },
      },
    ]);
  });
});

describe('manifest parsing', () => {
  it('reads multi-document YAML, List objects and JSON', () => {
    const yaml = `apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Service, metadata: {name: b}}\n  - {apiVersion: v1, kind: Service, metadata: {name: c}}\n`;
    expect(parseManifests(yaml, 'x.yaml').objects.map((o) => o.metadata.name)).toEqual(['a', 'b', 'c']);
    expect(parseManifests('{"apiVersion":"v1","kind":"Service","metadata":{"name":"j"}}', 'x.json').objects[0].metadata.name).toBe('j');
  });

  it('reports syntax errors and skips documents without kind or name, never throwing', () => {
    const broken = parseManifests('apiVersion: v1\nkind: [unclosed\n', 'bad.yaml');
    expect(broken.syntaxError).toBe(true);
    expect(broken.problems[0]).toMatchObject({ origin: 'bad.yaml', message: expect.stringMatching(/YAML syntax error/) });
    const partial = parseManifests('apiVersion: v1\nkind: Service\n---\nfoo: bar\n---\n- 1\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ok}\n', 'p.yaml');
    expect(partial.objects.map((o) => o.metadata.name)).toEqual(['ok']);
    expect(partial.problems).toHaveLength(3);
    expect(parseManifests('{not json', 'x.json').syntaxError).toBe(true);
  });
});

describe('TLS-related Ingress settings', () => {
  const base = [CLASS, service('a'), slice('a', [ready('10.0.0.1')])];

  it('hosts in spec.tls redirect plain HTTP unless portico.dev/ssl-redirect is "false"', () => {
    const spec = (extra: Record<string, unknown> = {}) => ({ ingressClassName: 'portico', tls: [{ hosts: ['secure.com'], secretName: 's' }], rules: [rule('secure.com', [['/', 'Prefix', 'a']]), rule('plain.com', [['/', 'Prefix', 'a']])], ...extra });
    const r = run([...base, ingress('t', spec())]);
    expect(r.table.match('secure.com', '/')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('plain.com', '/')?.ir.httpsRedirect).toBeUndefined();
    const off = run([...base, ingress('t', spec(), { annotations: { 'portico.dev/ssl-redirect': 'false' } })]);
    expect(off.table.match('secure.com', '/')?.ir.httpsRedirect).toBeUndefined();
    const noHosts = run([...base, ingress('t', { ...spec(), tls: [{ secretName: 's' }] })]);
    expect(noHosts.table.match('plain.com', '/')?.ir.httpsRedirect).toBe(true);
  });

  it('a host covered by a wildcard spec.tls entry, or by the certificate of a spec.tls Secret, redirects too', () => {
    const cert = generateSelfSigned({ commonName: 'san', dnsNames: ['san.com', '*.sanwild.com'] });
    const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { namespace: 'default', name: 'sans' }, stringData: { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem } } as KubeObject;
    const r = run([...base, secret, ingress('w', {
      ingressClassName: 'portico',
      tls: [{ hosts: ['*.wild.com'], secretName: 'missing' }, { hosts: ['listed.com'], secretName: 'sans' }],
      rules: [rule('r.wild.com', [['/', 'Prefix', 'a']]), rule('a.b.wild.com', [['/', 'Prefix', 'a']]), rule('san.com', [['/', 'Prefix', 'a']]), rule('x.sanwild.com', [['/', 'Prefix', 'a']]), rule('other.com', [['/', 'Prefix', 'a']])],
    })]);
    expect(r.table.match('r.wild.com', '/')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('a.b.wild.com', '/')?.ir.httpsRedirect).toBeUndefined(); // one label only
    expect(r.table.match('san.com', '/')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('x.sanwild.com', '/')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('other.com', '/')?.ir.httpsRedirect).toBeUndefined();
  });

  it('portico.dev/ssl-passthrough routes hosts by SNI to the first path backend', () => {
    const r = run([...base, ingress('p', { ingressClassName: 'portico', rules: [rule('pass.com', [['/', 'Prefix', 'a']]), rule('*.wild.com', [['/', 'Prefix', 'a']]), rule(undefined, [['/', 'Prefix', 'a']])] }, { annotations: { 'portico.dev/ssl-passthrough': 'true' } })]);
    expect(r.table.passthroughBackend('pass.com')?.name).toBe('default/a:80');
    expect(r.table.passthroughBackend('x.wild.com')?.name).toBe('default/a:80');
    expect(r.table.passthroughBackend('x.y.wild.com')).toBeUndefined();
    expect(r.table.passthroughBackend('other.com')).toBeUndefined();
    expect(r.table.match('pass.com', '/')).toBeUndefined();
    expect(r.problems.some((p) => /without a host cannot be matched by SNI/.test(p.message))).toBe(true);
  });
});
