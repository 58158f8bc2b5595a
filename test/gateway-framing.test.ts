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
