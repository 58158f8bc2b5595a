// TLSRoute status scenarios through a real `portico serve`, one at a time (each replaces the
// previous scenario's file): the conformance suite's GATEWAY-TLS attachment and reference
// failures, read from GET /status, with the connections that go with them (a refused one closes
// during the TLS handshake; a passed-through one reaches a TLS echo backend that reports its SNI).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, referenceGrant, statusOf, toYaml, type Obj, tlsExchange } from './gateway-helpers.ts';

const GW = 'gateway.networking.k8s.io';
let portico: Portico;
let backend: tls.Server;

/** Connects with SNI and sends a line: what came back, or `rejected` when it closed with nothing. */
function dial(servername: string): Promise<string> {
  return tlsExchange({ host: '127.0.0.1', port: portico.httpsPort, servername }, 'hello');
}

let seq = 0;
/** Replaces the scenario file and waits until `/status` comes from it (a new marker Gateway each time). */
async function scenario(...objs: Obj[]): Promise<any[]> {
  const marker = `marker-${++seq}`;
  portico.write('scenario.yaml', toYaml(...objs, gateway(marker, [])));
  return waitFor(`status of ${marker}`, async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    return statusOf(items, 'Gateway', 'infra', marker) !== undefined ? items : undefined;
  });
}

const c = (list: any[] | undefined, type: string) => {
  const found = condition(list, type);
  return found === undefined ? undefined : `${found.status} ${found.reason}`;
};
const parents = (items: any[], ns: string, name: string): any[] => statusOf(items, 'TLSRoute', ns, name)?.parents ?? [];
const listenerOf = (items: any[], gw: string, name: string): any => statusOf(items, 'Gateway', 'infra', gw).listeners.find((l: any) => l.name === name);
const passthrough = (name: string, hostname?: string, extra: Obj = {}): Obj => ({ name, port: portico.httpsPort, protocol: 'TLS', ...(hostname ? { hostname } : {}), tls: { mode: 'Passthrough' }, ...extra });
const tlsRoute = (name: string, spec: Obj, ns = 'infra'): Obj => ({ apiVersion: `${GW}/v1`, kind: 'TLSRoute', metadata: { name, namespace: ns }, spec });
const toBackend = (extra: Obj = {}): Obj => ({ rules: [{ backendRefs: [{ name: 'tls-backend', port: 443, ...extra }] }] });

beforeAll(async () => {
  const cert = generateSelfSigned({ commonName: 'tls-backend', dnsNames: ['abc.example.com'] });
  backend = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    s.on('error', () => undefined);
    s.on('data', () => s.end(`tls-backend sni=${(s as tls.TLSSocket & { servername?: string }).servername}`));
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const port = (backend.address() as AddressInfo).port;
  portico = await startPortico({ files: {} });
  const service = (ns: string): Obj[] => [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'tls-backend', namespace: ns }, spec: { ports: [{ name: 'tls', port: 443, targetPort: 8443 }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'tls-backend-1', namespace: ns, labels: { 'kubernetes.io/service-name': 'tls-backend' } }, addressType: 'IPv4', ports: [{ name: 'tls', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
  ];
  portico.write('base.yaml', toYaml(
    namespace('infra'),
    namespace('app-backend'),
    gatewayClass(),
    ...service('infra'),
    ...service('app-backend'),
    tlsSecret('tls-validity-checks-certificate', makeCert('secure.test'), 'infra'),
  ));
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  backend?.close();
});

describe('TLSRoute status (conformance GATEWAY-TLS shapes)', () => {
  it('TLSRouteInvalidBackendRefUnknownKind: a backendRef of an unknown kind is InvalidKind and its hostname is refused', async () => {
    const items = await scenario(
      gateway('gateway-tlsroute', [passthrough('https', '*.example.com')]),
      tlsRoute('invalid-kind', { parentRefs: [{ name: 'gateway-tlsroute' }], hostnames: ['abc.example.com'], ...toBackend({ group: 'unknown.example.com', kind: 'NonExistent' }) }),
    );
    const p = parents(items, 'infra', 'invalid-kind')[0];
    expect([c(p.conditions, 'Accepted'), c(p.conditions, 'ResolvedRefs')]).toEqual(['True Accepted', 'False InvalidKind']);
    expect(await dial('abc.example.com')).toBe('rejected');
  });

  it('TLSRouteInvalidNoMatchingListenerHostname: hostnames no TLS listener takes are NoMatchingListenerHostname, and no listener counts the route', async () => {
    const items = await scenario(
      gateway('gateway-tlsroute', [passthrough('exact', 'www.example.com'), passthrough('wildcard', '*.example.org')]),
      tlsRoute('nomatch', { parentRefs: [{ name: 'gateway-tlsroute' }], hostnames: ['www.nomatch.com', '*.nomatch.com'], ...toBackend() }),
      tlsRoute('different', { parentRefs: [{ name: 'gateway-tlsroute', sectionName: 'wildcard' }], hostnames: ['www.different.com', '*.different.com'], ...toBackend() }),
    );
    for (const name of ['nomatch', 'different']) expect(parents(items, 'infra', name).map((p) => c(p.conditions, 'Accepted')), name).toEqual(['False NoMatchingListenerHostname']);
    expect(statusOf(items, 'Gateway', 'infra', 'gateway-tlsroute').listeners.map((l: any) => l.attachedRoutes)).toEqual([0, 0]);
    expect(await dial('www.nomatch.com')).not.toMatch(/^tls-backend/);
  });

  it('TLSRouteInvalidNoMatchingListener: on HTTP-only and HTTPS-only Gateways NotAllowedByListeners; a sectionName the Gateway lacks NoMatchingParent', async () => {
    let items = await scenario(
      gateway('gateway-http-only', [{ name: 'http', port: portico.httpPort, protocol: 'HTTP' }]),
      gateway('gateway-https-only', [{ name: 'https', port: portico.httpsPort, protocol: 'HTTPS', hostname: 'tls.example.com', tls: { certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } }]),
      tlsRoute('on-http', { parentRefs: [{ name: 'gateway-http-only' }], hostnames: ['tls.example.com'], ...toBackend() }),
      tlsRoute('on-https', { parentRefs: [{ name: 'gateway-https-only' }], hostnames: ['tls.example.com'], ...toBackend() }),
    );
    for (const name of ['on-http', 'on-https']) expect(parents(items, 'infra', name).map((p) => c(p.conditions, 'Accepted')), name).toEqual(['False NotAllowedByListeners']);
    for (const gw of ['gateway-http-only', 'gateway-https-only']) expect(statusOf(items, 'Gateway', 'infra', gw).listeners[0].attachedRoutes, gw).toBe(0);
    items = await scenario(
      gateway('gateway-tlsroute', [passthrough('tls', 'tls.example.com')]),
      tlsRoute('no-section', { parentRefs: [{ name: 'gateway-tlsroute', sectionName: 'not-a-listener' }], hostnames: ['tls.example.com'], ...toBackend() }),
    );
    expect(parents(items, 'infra', 'no-section').map((p) => c(p.conditions, 'Accepted'))).toEqual(['False NoMatchingParent']);
    expect(listenerOf(items, 'gateway-tlsroute', 'tls').attachedRoutes).toBe(0);
    expect(await dial('tls.example.com')).toBe('rejected');
  });

  it('TLSRouteListenerPassthroughSupportedKinds: of TCPRoute and TLSRoute only TLSRoute is supported; ResolvedRefs InvalidRouteKinds', async () => {
    const items = await scenario(gateway('gateway-tlsroute', [passthrough('tls', '*.example.com', { allowedRoutes: { kinds: [{ kind: 'TCPRoute' }, { kind: 'TLSRoute' }] } })]));
    const l = listenerOf(items, 'gateway-tlsroute', 'tls');
    expect([l.supportedKinds.map((k: any) => k.kind), c(l.conditions, 'ResolvedRefs'), l.attachedRoutes]).toEqual([['TLSRoute'], 'False InvalidRouteKinds', 0]);
  });

  it('TLSRouteListenerTerminateNotSupported: a TLS listener in Terminate mode is not accepted (UnsupportedValue)', async () => {
    const items = await scenario(gateway('gateway-tlsroute', [{ name: 'tls', port: portico.httpsPort, protocol: 'TLS', hostname: 'terminate.example.com', tls: { mode: 'Terminate', certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } }]));
    const l = listenerOf(items, 'gateway-tlsroute', 'tls');
    expect([c(l.conditions, 'Accepted'), c(l.conditions, 'Programmed')]).toEqual(['False UnsupportedValue', 'False Invalid']);
    expect(c(statusOf(items, 'Gateway', 'infra', 'gateway-tlsroute').conditions, 'Accepted')).toBe('False ListenersNotValid');
  });

  it('TLSRouteInvalidReferenceGrant: grants wrong in one field each permit nothing (RefNotPermitted, refused); the right one passes through', async () => {
    const from = { group: GW, kind: 'TLSRoute', namespace: 'infra' };
    const to = { group: '', kind: 'Service', name: 'tls-backend' };
    const wrong = [
      referenceGrant('wrong-namespace', 'infra', [from], [to]),
      referenceGrant('wrong-from-group', 'app-backend', [{ ...from, group: 'not-gateway.example.com' }], [to]),
      referenceGrant('wrong-from-kind', 'app-backend', [{ ...from, kind: 'HTTPRoute' }], [to]),
      referenceGrant('wrong-from-namespace', 'app-backend', [{ ...from, namespace: 'app-backend' }], [to]),
      referenceGrant('wrong-to-group', 'app-backend', [from], [{ ...to, group: 'not-core.example.com' }]),
      referenceGrant('wrong-to-kind', 'app-backend', [from], [{ ...to, kind: 'Secret' }]),
      referenceGrant('wrong-to-name', 'app-backend', [from], [{ ...to, name: 'not-tls-backend' }]),
    ];
    const objects = [
      gateway('gateway-tlsroute', [passthrough('tls', '*.example.com')]),
      tlsRoute('cross', { parentRefs: [{ name: 'gateway-tlsroute' }], hostnames: ['abc.example.com'], ...toBackend({ namespace: 'app-backend' }) }),
      ...wrong,
    ];
    let items = await scenario(...objects);
    expect(c(parents(items, 'infra', 'cross')[0].conditions, 'ResolvedRefs')).toBe('False RefNotPermitted');
    expect(await dial('abc.example.com')).toBe('rejected');
    items = await scenario(...objects, referenceGrant('right', 'app-backend', [from], [to]));
    expect(c(parents(items, 'infra', 'cross')[0].conditions, 'ResolvedRefs')).toBe('True ResolvedRefs');
    await waitFor('passed through once granted', async () => (await dial('abc.example.com')) === 'tls-backend sni=abc.example.com');
  });

  it('an HTTPRoute naming a TLS listener is NotAllowedByListeners (HTTPRouteDisallowedKind)', async () => {
    const items = await scenario(
      gateway('tlsroutes-only', [passthrough('tls', '*.example.com', { allowedRoutes: { kinds: [{ kind: 'TLSRoute' }] } })]),
      httpRoute('disallowed-kind', { parentRefs: [{ name: 'tlsroutes-only' }], rules: [{ backendRefs: [{ name: 'tls-backend', port: 443 }] }] }),
    );
    const p = statusOf(items, 'HTTPRoute', 'infra', 'disallowed-kind').parents[0];
    expect([c(p.conditions, 'Accepted'), c(p.conditions, 'ResolvedRefs')]).toEqual(['False NotAllowedByListeners', 'True ResolvedRefs']);
    expect(listenerOf(items, 'tlsroutes-only', 'tls').attachedRoutes).toBe(0);
  });
});
