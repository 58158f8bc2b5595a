// ingress-nginx canary Ingresses (QA-12): translation into the routing IR, then the compiled
// table's choices for requests with and without the canary header/cookie. The IR itself is in
// the golden cases test/testdata/ingress/canary*.in.yaml.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCanary } from '../controller/ingress.ts';
import { parseManifests } from '../controller/manifests.ts';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate } from '../controller/translate.ts';
import { compileTable, pickBackendRef } from '../router/index.ts';

const N = 'nginx.ingress.kubernetes.io/';

function tableOf(file: string): { table: ReturnType<typeof compileTable>; problems: { name?: string; severity: string; message: string }[] } {
  const text = readFileSync(join(import.meta.dirname, 'testdata/ingress', file), 'utf8');
  const objects = parseManifests(text, file).objects.map((o: KubeObject) => ({ object: { ...o, metadata: { namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z', generation: 1, ...o.metadata } }, origin: file }));
  const t = translate({ objects, problems: [] }, { ingressClass: 'portico', publishAddresses: [], now: new Date('2026-06-01T00:00:00Z') }, newTranslatorState());
  return { table: compileTable(t.ir, 1), problems: t.problems };
}

const attrs = (headers: Record<string, string>) => ({ method: 'GET', header: (n: string) => headers[n], queryParam: () => undefined });

/** The backend service each of `n` requests goes to, counted. */
function split(table: ReturnType<typeof compileTable>, host: string, n: number, headers: Record<string, string> = {}): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const route = table.match(host, '/x', attrs(headers));
    const name = route === undefined ? 'none' : (pickBackendRef(route)?.backend.name ?? 'none');
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

describe('canary Ingresses', () => {
  const { table, problems } = tableOf('canary.in.yaml');

  it('an older canary does not take the host: it gets its weight of the main route', () => {
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(split(table, 'weight.example', 100)).toEqual({ 'default/web:80': 70, 'default/web-canary:80': 30 });
  });

  it('weight 0 sends nothing to the canary', () => {
    expect(split(table, 'zero.example', 50)).toEqual({ 'default/web:80': 50 });
  });

  it('canary-by-header always/never, then canary-by-cookie, then the weight', () => {
    expect(split(table, 'header.example', 5, { 'x-canary': 'always' })).toEqual({ 'default/web-canary:80': 5 });
    expect(split(table, 'header.example', 5, { 'x-canary': 'never', cookie: 'canary=always' })).toEqual({ 'default/web:80': 5 });
    expect(split(table, 'header.example', 5, { 'x-canary': 'other', cookie: 'a=1; canary=always; b=2' })).toEqual({ 'default/web-canary:80': 5 });
    expect(split(table, 'header.example', 5, { 'x-canary': 'always', cookie: 'canary=never' })).toEqual({ 'default/web-canary:80': 5 });
    expect(split(table, 'header.example', 5, { cookie: 'canary=never' })).toEqual({ 'default/web:80': 5 });
    // A cookie whose name only ends in the canary's, or another value: the weight (10 of 40).
    expect(split(table, 'header.example', 40, { cookie: 'xcanary=always' })).toEqual({ 'default/web:80': 30, 'default/web-canary:80': 10 });
    expect(split(table, 'header.example', 40, { 'x-canary': 'yes' })).toEqual({ 'default/web:80': 30, 'default/web-canary:80': 10 });
  });

  it('the canary routes keep the main Ingress settings', () => {
    const r = table.match('header.example', '/', attrs({ 'x-canary': 'always' }))!;
    expect(r.ir.timeoutMs).toBe(5000);
    expect(r.ir.source.name).toBe('header-canary');
  });

  it('canary-by-header-value and canary-by-header-pattern (unanchored where not anchored)', () => {
    expect(split(table, 'value.example', 3, { 'x-group': 'beta' })).toEqual({ 'default/web-canary:80': 3 });
    expect(split(table, 'value.example', 3, { 'x-group': 'always' })).toEqual({ 'default/web:80': 3 });
    expect(split(table, 'pattern.example', 1, { 'x-group': 'beta-2' })).toEqual({ 'default/web-canary:80': 1 });
    expect(split(table, 'pattern.example', 1, { 'x-group': 'a-gamma-b' })).toEqual({ 'default/web-canary:80': 1 });
    expect(split(table, 'pattern.example', 1, { 'x-group': 'a-beta' })).toEqual({ 'default/web:80': 1 });
    expect(split(table, 'pattern.example', 1, {})).toEqual({ 'default/web:80': 1 });
  });

  it('a refused canary leaves all traffic with its main; a lonely one is not served', () => {
    const refused = tableOf('canary-refused.in.yaml').table;
    for (const host of ['bad-weight.example', 'bad-pattern.example', 'typo.example', 'other.example']) expect(split(refused, host, 10, { 'x-group': 'a' })).toEqual({ 'default/web:80': 10 });
    expect(split(refused, 'flag.example', 10)).toEqual({ 'default/web:80': 10 });
    expect(split(refused, 'lonely.example', 1)).toEqual({ none: 1 });
    expect(split(refused, 'second.example', 10)).toEqual({ 'default/web:80': 8, 'default/web-canary:80': 2 });
  });
});

describe('readCanary', () => {
  it('is not a canary without the annotation or with false', () => {
    expect(readCanary({}).isCanary).toBe(false);
    expect(readCanary({ [N + 'canary']: 'false' }).isCanary).toBe(false);
  });

  it('reads both prefixes; portico.dev wins, the conflict is reported', () => {
    const r = readCanary({ 'portico.dev/canary': 'true', 'portico.dev/canary-weight': '5', [N + 'canary-weight']: '50' });
    expect(r.config).toEqual({ weight: 5, total: 100 });
    expect(r.warnings.join()).toContain('is used');
  });

  it('reports a conflict on the canary flag itself (the portico.dev/ one is used)', () => {
    const r = readCanary({ 'portico.dev/canary': 'false', [N + 'canary']: 'true' });
    expect(r.isCanary).toBe(false);
    expect(r.warnings.join()).toContain('portico.dev/canary ("false") is used');
  });

  it('refuses what it cannot honour', () => {
    for (const bad of [{ [N + 'canary-weight']: '1.5' }, { [N + 'canary-weight']: '-1' }, { [N + 'canary-weight-total']: '0' }, { [N + 'canary-by-header']: 'bad header' }, { [N + 'canary-by-cookie']: 'a;b' }, { [N + 'canary-by-header']: 'x', [N + 'canary-by-header-pattern']: '(?=a)' }, { [N + 'canary-by-header']: 'x', [N + 'canary-by-header-pattern']: 'a|b|c' }]) {
      const r = readCanary({ [N + 'canary']: 'true', ...bad });
      expect(r.isCanary).toBe(true);
      expect(r.config, JSON.stringify(bad)).toBeUndefined();
      expect(r.errors.length).toBeGreaterThan(0);
    }
  });

  it('header value beats the pattern (as ingress-nginx); value/pattern without a header do nothing', () => {
    const r = readCanary({ [N + 'canary']: 'true', [N + 'canary-by-header']: 'x', [N + 'canary-by-header-value']: 'v', [N + 'canary-by-header-pattern']: 'p' });
    expect(r.config?.header).toEqual({ name: 'x', match: { type: 'Exact', value: 'v' } });
    expect(r.warnings.join()).toContain('no effect');
    expect(readCanary({ [N + 'canary']: 'true', [N + 'canary-by-header-value']: 'v' }).warnings.join()).toContain('without canary-by-header');
  });
});

describe('a canary whose main loses its path to an older HTTPRoute', () => {
  const GW = 'gateway.networking.k8s.io/v1';
  const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra });
  const backend = (name: string) => ({ service: { name, port: { number: 80 } } });
  const objects: KubeObject[] = [
    { apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico', generation: 1 }, spec: { controllerName: 'portico.dev/gateway-controller' } },
    { apiVersion: GW, kind: 'Gateway', metadata: meta('gw'), spec: { gatewayClassName: 'portico', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico', generation: 1 }, spec: { controller: 'portico.dev/ingress-controller' } },
    { apiVersion: 'v1', kind: 'Service', metadata: meta('e'), spec: { ports: [{ port: 80, targetPort: 8080 }] } },
    { apiVersion: GW, kind: 'HTTPRoute', metadata: meta('r1'), spec: { parentRefs: [{ name: 'gw' }], hostnames: ['r.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'e', port: 80 }] }] } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('main', { creationTimestamp: '2026-03-01T00:00:00Z' }), spec: { ingressClassName: 'portico', rules: [{ host: 'r.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('e') }] } }] } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('canary', { annotations: { [N + 'canary']: 'true', [N + 'canary-by-header']: 'x-c', [N + 'canary-weight']: '50' } }), spec: { ingressClassName: 'portico', rules: [{ host: 'r.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: backend('e') }] } }] } },
  ];

  it('loses its header routes with it: none stays to serve the path alone', () => {
    const t = translate({ objects: objects.map((object) => ({ object, origin: 't' })), problems: [] }, { ingressClass: 'portico', publishAddresses: [], now: new Date('2026-06-01T00:00:00Z') }, newTranslatorState());
    expect(t.ir.virtualHosts.flatMap((v) => v.routes).filter((r) => r.source.kind === 'Ingress')).toEqual([]);
    expect(t.problems).toContainEqual(expect.objectContaining({ kind: 'Ingress', name: 'main', message: expect.stringMatching(/served by the older HTTPRoute/) }));
  });
});
