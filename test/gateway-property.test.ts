// Gateway API translation under bad input: seeded random mutations of GatewayClasses, Gateways,
// HTTPRoutes, GRPCRoutes, TLSRoutes and ReferenceGrants (wrong types, missing and extra fields,
// odd strings, huge numbers, duplicates) must never make translate() throw or produce a table
// that does not compile, and a mutated route never removes a sound route's traffic: a fixed
// Ingress beside them keeps answering the same way whatever the others say.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate } from '../controller/translate.ts';
import { compileTable } from '../router/index.ts';
import { prng } from './helpers/prng.ts';

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const GW = 'gateway.networking.k8s.io/v1';
const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra });

const WEIRD: unknown[] = [
  undefined, null, 0, -1, 1.5, 65536, 1e308, Number.NaN, '', ' ', '/', '//', '/a/../b', '*', '*.', '*.*.x', 'a'.repeat(300), '\u0000', '\r\nX: y', 'ÿ', 'Exact', 'PathPrefix',
  'RegularExpression', '(a+)+$', '[', '\\', 'x{0,100}', true, false, [], [1, 2], {}, { type: 'Exact' }, { name: 'v1', port: 8080 }, { value: '/x' },
];

/** Replaces, removes or adds a random field somewhere in a JSON-like value. */
function mutate(r: Rand, v: unknown, depth = 0): unknown {
  if (depth > 6 || r() < 0.15) return pick(r, WEIRD);
  if (Array.isArray(v)) {
    const out = v.map((x) => (r() < 0.3 ? mutate(r, x, depth + 1) : x));
    if (r() < 0.2) out.push(pick(r, WEIRD));
    if (r() < 0.1) out.push(...out);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const k of Object.keys(out)) {
      if (r() < 0.08) delete out[k];
      else if (r() < 0.3) out[k] = mutate(r, out[k], depth + 1);
    }
    if (r() < 0.1) out[pick(r, ['type', 'name', 'value', 'port', 'weight', 'filters', 'matches', 'hostname', 'extra'])] = pick(r, WEIRD);
    return out;
  }
  return r() < 0.5 ? v : pick(r, WEIRD);
}

const httpRule = {
  matches: [{ path: { type: 'PathPrefix', value: '/x' }, headers: [{ name: 'h', value: 'v', type: 'RegularExpression' }], queryParams: [{ name: 'q', value: '1' }], method: 'GET' }],
  filters: [
    { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'a', value: 'b' }], add: [{ name: 'c', value: 'd' }], remove: ['e'] } },
    { type: 'URLRewrite', urlRewrite: { hostname: 'h.test', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/y' } } },
  ],
  backendRefs: [{ name: 'v1', port: 8080, weight: 3, filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x', value: 'y' }] } }] }, { name: 'v2', namespace: 'other', port: 8080 }],
  timeouts: { request: '2s', backendRequest: '1s' },
};
const redirectRule = { matches: [{ path: { type: 'Exact', value: '/r' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'a.test', port: 8443, statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/z' } } }] };

function world(r: Rand): KubeObject[] {
  const objs: KubeObject[] = [
    { apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico', generation: 1 }, spec: mutate(r, { controllerName: 'portico.dev/gateway-controller' }) },
    { apiVersion: GW, kind: 'Gateway', metadata: meta('gw'), spec: mutate(r, { gatewayClassName: 'portico', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: '*.fuzz.test', allowedRoutes: { namespaces: { from: 'All' }, kinds: [{ kind: 'HTTPRoute' }, { kind: 'GRPCRoute' }] } }, { name: 'https', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 's' }] } }, { name: 'tls', port: 443, protocol: 'TLS', hostname: '*.tls.test', tls: { mode: 'Passthrough' } }], addresses: [{ type: 'IPAddress', value: '192.0.2.10' }] }) },
    // The sound route, never mutated: an Ingress, which shares the table with every Gateway route.
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico', generation: 1 }, spec: { controller: 'portico.dev/ingress-controller' } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('sound'), spec: { ingressClassName: 'portico', rules: [{ host: 'sound.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'v1', port: { number: 8080 } } } }] } }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: meta('v1'), spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { ...meta('v1-1'), labels: { 'kubernetes.io/service-name': 'v1' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 3000 }], endpoints: [{ addresses: ['10.0.0.1'] }] } as KubeObject,
  ];
  for (let i = 0; i < 4; i++) {
    objs.push({ apiVersion: GW, kind: 'HTTPRoute', metadata: meta(`h${i}`), spec: mutate(r, { parentRefs: [{ name: 'gw', sectionName: pick(r, ['http', 'https', 'tls']) }], hostnames: ['a.fuzz.test', 'b.fuzz.test'], rules: [httpRule, redirectRule, { backendRefs: [{ name: 'v1', port: 8080 }] }] }) });
    objs.push({ apiVersion: GW, kind: 'GRPCRoute', metadata: meta(`g${i}`), spec: mutate(r, { parentRefs: [{ name: 'gw' }], hostnames: ['g.fuzz.test'], rules: [{ matches: [{ method: { service: 'a.B', method: 'C', type: pick(r, ['Exact', 'RegularExpression']) }, headers: [{ name: 'x', value: 'y' }] }], backendRefs: [{ name: 'v1', port: 8080 }] }] }) });
    objs.push({ apiVersion: GW, kind: 'TLSRoute', metadata: meta(`t${i}`), spec: mutate(r, { parentRefs: [{ name: 'gw', sectionName: 'tls' }], hostnames: ['x.tls.test', '*.tls.test'], rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] }) });
  }
  objs.push({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { ...meta('rg'), namespace: 'other' }, spec: mutate(r, { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }], to: [{ group: '', kind: 'Service' }] }) });
  return objs;
}

describe('Gateway API translation under mutated input', () => {
  it('never throws, always compiles, and leaves a sound route alone (300 seeded worlds)', () => {
    // How often mutated objects still reach the table: the fuzzer must not be vacuous.
    const reached = { http: 0, grpc: 0, passthrough: 0, filters: 0 };
    for (let seed = 1; seed <= 300; seed++) {
      const objects = world(prng(seed));
      let table;
      try {
        const t = translate({ objects: objects.map((object) => ({ object, origin: 'fuzz' })), problems: [] }, { ingressClass: 'portico', publishAddresses: ['192.0.2.10'], now: new Date('2026-06-01T00:00:00Z'), httpPort: 80, httpsPort: 443 }, newTranslatorState());
        JSON.stringify(t.statuses);
        table = compileTable(t.ir, 1);
        const routes = t.ir.virtualHosts.flatMap((v) => v.routes);
        if (routes.some((x) => x.source.kind === 'HTTPRoute')) reached.http++;
        if (routes.some((x) => x.source.kind === 'GRPCRoute')) reached.grpc++;
        if (routes.some((x) => x.filters !== undefined)) reached.filters++;
        if ((t.ir.passthrough ?? []).length > 0) reached.passthrough++;
      } catch (err) {
        throw new Error(`seed ${seed}: ${(err as Error).stack}`);
      }
      const r = table.match('sound.test', '/anything', { method: 'GET', header: () => undefined, queryParam: () => undefined });
      expect(r?.backends.map((b) => b.backend.name), `seed ${seed}`).toEqual(['default/v1:8080']);
    }
    for (const [what, n] of Object.entries(reached)) expect(n, what).toBeGreaterThan(30);
  });
});
