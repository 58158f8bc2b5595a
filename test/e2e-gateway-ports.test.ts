// Gateway listeners on ports of their own through a real `portico serve`: every worker binds a
// listener's port while it is in the table and closes it when it leaves; parentRef `port` picks
// listeners by port (HTTPRouteListenerPortMatching, with free ports for 8080 and 8090), and
// GatewayWithAttachedRoutesWithPort8080.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, send, serviceFor, startEchoPod, statusOf, toYaml, who, type EchoPod, type Obj } from './gateway-helpers.ts';

let portico: Portico;
const pods: EchoPod[] = [];
let p8080: number;
let p8090: number;
let pOther: number;

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });

function world(withPort8090: boolean): string {
  const listeners: Obj[] = [
    { name: 'listener-1', port: portico.httpPort, protocol: 'HTTP', hostname: 'foo.com' },
    { name: 'listener-2', port: p8080, protocol: 'HTTP', hostname: 'foo.com' },
    { name: 'listener-3', port: p8080, protocol: 'HTTP', hostname: 'bar.com' },
    ...(withPort8090 ? [{ name: 'listener-4', port: p8090, protocol: 'HTTP', hostname: 'foo.com' }, { name: 'listener-5', port: p8090, protocol: 'HTTP', hostname: 'bar.com' }] : []),
  ];
  return toYaml(
    namespace('infra'),
    gatewayClass(),
    ...pods.flatMap((p) => serviceFor([p])),
    gateway('httproute-listener-port-matching', listeners),
    httpRoute('backend-v1', { parentRefs: [{ name: 'httproute-listener-port-matching', port: portico.httpPort }], rules: [{ backendRefs: [ref('v1')] }] }),
    httpRoute('backend-v2', { parentRefs: [{ name: 'httproute-listener-port-matching', port: p8080 }], rules: [{ backendRefs: [ref('v2')] }] }),
    httpRoute('backend-v3', { parentRefs: [{ name: 'httproute-listener-port-matching', port: p8090, sectionName: 'listener-4' }], rules: [{ backendRefs: [ref('v3')] }] }),
    // HTTPRouteMultipleGateways: a second Gateway, on a port of its own, sharing one route.
    gateway('all-namespaces', [
      { name: 'http', port: pOther, protocol: 'HTTP', hostname: 'multi.test' },
      // Listener isolation inside a listener of its own: a wildcard listener and one without a hostname.
      { name: 'wild', port: pOther, protocol: 'HTTP', hostname: '*.wild.test' },
      { name: 'any', port: pOther, protocol: 'HTTP' },
    ]),
    httpRoute('wild-route', { parentRefs: [{ name: 'all-namespaces', sectionName: 'wild' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/w' } }], backendRefs: [ref('v1')] }] }),
    httpRoute('any-route', { parentRefs: [{ name: 'all-namespaces', sectionName: 'any' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/any-only' } }], backendRefs: [ref('v2')] }] }),
    httpRoute('multiple-gateways-shared-route', { parentRefs: [{ name: 'httproute-listener-port-matching', sectionName: 'listener-3' }, { name: 'all-namespaces' }], hostnames: ['bar.com', 'multi.test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/shared' } }], backendRefs: [ref('v1')] }] }),
    httpRoute('all-namespaces-dedicated-route', { parentRefs: [{ name: 'all-namespaces', sectionName: 'http' }], rules: [{ backendRefs: [ref('v3')] }] }),
    // HTTPRouteRedirectPortAndScheme on a listener of its own: no scheme and no port keep the listener's port.
    httpRoute('redirects-on-own-port', { parentRefs: [{ name: 'all-namespaces' }], hostnames: ['multi.test'], rules: [
      { matches: [{ path: { type: 'PathPrefix', value: '/scheme-nil-and-port-nil' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org' } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/scheme-nil-and-port-80' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', port: 80 } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/scheme-https-and-port-nil' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', scheme: 'https' } }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/scheme-https-and-port-8443' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'example.org', scheme: 'https', port: 8443 } }] },
    ] }),
  );
}

beforeAll(async () => {
  for (const svc of ['v1', 'v2', 'v3']) pods.push(await startEchoPod('infra', svc, `${svc}-pod-0`));
  p8080 = await freePort();
  p8090 = await freePort();
  pOther = await freePort();
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', world(true));
  await waitFor('port listeners bound', async () => (await who(p8090, 'foo.com', '/').catch(() => 'down')) === 'infra/v3', 20_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await Promise.all(pods.map((p) => p.close()));
});

describe('Gateway listeners on ports of their own', () => {
  it('HTTPRouteListenerPortMatching: parentRef port (and sectionName) choose listeners; each port serves its own routes', async () => {
    const got: string[] = [];
    for (const [port, host] of [[portico.httpPort, 'foo.com'], [p8080, 'foo.com'], [p8080, 'bar.com'], [p8090, 'foo.com'], [p8090, 'bar.com']] as const) got.push(`${port === portico.httpPort ? 'main' : port === p8080 ? '8080' : '8090'} ${host} ${await who(port, `${host}:${port}`, '/')}`);
    expect(got).toEqual(['main foo.com infra/v1', '8080 foo.com infra/v2', '8080 bar.com infra/v2', '8090 foo.com infra/v3', '8090 bar.com 404']);
  });

  it('status: every listener Accepted and Programmed; attachedRoutes per listener', async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    const gw = statusOf(items, 'Gateway', 'infra', 'httproute-listener-port-matching');
    expect(gw.listeners.map((l: any) => [l.name, condition(l.conditions, 'Accepted')?.status, condition(l.conditions, 'Programmed')?.status, l.attachedRoutes])).toEqual([
      ['listener-1', 'True', 'True', 1], ['listener-2', 'True', 'True', 1], ['listener-3', 'True', 'True', 2], ['listener-4', 'True', 'True', 1], ['listener-5', 'True', 'True', 0],
    ]);
  });

  it('HTTPRouteMultipleGateways: one route on two Gateways serves through both; each Gateway keeps its own routes', async () => {
    expect(await who(p8080, 'bar.com', '/shared')).toBe('infra/v1');
    expect(await who(pOther, 'multi.test', '/shared')).toBe('infra/v1');
    expect(await who(pOther, 'multi.test', '/')).toBe('infra/v3');
    expect(await who(p8080, 'bar.com', '/')).toBe('infra/v2');
    const { items } = await portico.json<{ items: any[] }>('/status');
    expect(statusOf(items, 'HTTPRoute', 'infra', 'multiple-gateways-shared-route').parents.map((p: any) => `${p.parentRef.name} ${condition(p.conditions, 'Accepted')?.status}`)).toEqual(['httproute-listener-port-matching True', 'all-namespaces True']);
  });

  it('listener isolation holds inside a listener of its own: a host of the wildcard listener does not fall to the hostname-less one', async () => {
    expect(await who(pOther, 'a.wild.test', '/w')).toBe('infra/v1');
    expect(await who(pOther, 'other.test', '/any-only')).toBe('infra/v2');
    expect(await who(pOther, 'a.wild.test', '/any-only')).toBe('404');
  });

  it('HTTPRouteRedirectPortAndScheme on a listener of its own: no scheme and no port keep the listener port', async () => {
    const loc = async (path: string) => (await send(pOther, 'multi.test', path)).headers.location;
    expect(await loc('/scheme-nil-and-port-nil')).toBe(`http://example.org:${pOther}/scheme-nil-and-port-nil`);
    expect(await loc('/scheme-nil-and-port-80')).toBe('http://example.org/scheme-nil-and-port-80');
    expect(await loc('/scheme-https-and-port-nil')).toBe('https://example.org/scheme-https-and-port-nil');
    expect(await loc('/scheme-https-and-port-8443')).toBe('https://example.org:8443/scheme-https-and-port-8443');
  });

  it('a listener removed from the Gateway stops being served: its port closes, the others keep serving', async () => {
    portico.write('all.yaml', world(false));
    await waitFor('8090 closed', () => refused(p8090), 10_000);
    expect(await who(p8080, 'bar.com', '/')).toBe('infra/v2');
    const { items } = await portico.json<{ items: any[] }>('/status');
    expect(condition(statusOf(items, 'HTTPRoute', 'infra', 'backend-v3').parents[0].conditions, 'Accepted')?.reason).toBe('NoMatchingParent');
    portico.write('all.yaml', world(true));
    await waitFor('8090 back', async () => (await who(p8090, 'foo.com', '/').catch(() => 'down')) === 'infra/v3', 10_000);
  });
});
