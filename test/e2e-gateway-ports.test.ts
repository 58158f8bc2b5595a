// Gateway listeners on ports of their own through a real `portico serve`: every worker binds a
// listener's port while it is in the table and closes it when it leaves; parentRef `port` picks
// listeners by port (HTTPRouteListenerPortMatching, with free ports for 8080 and 8090), and
// GatewayWithAttachedRoutesWithPort8080.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, serviceFor, startEchoPod, statusOf, toYaml, who, type EchoPod, type Obj } from './gateway-helpers.ts';

let portico: Portico;
const pods: EchoPod[] = [];
let p8080: number;
let p8090: number;

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
  );
}

beforeAll(async () => {
  for (const svc of ['v1', 'v2', 'v3']) pods.push(await startEchoPod('infra', svc, `${svc}-pod-0`));
  p8080 = await freePort();
  p8090 = await freePort();
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
      ['listener-1', 'True', 'True', 1], ['listener-2', 'True', 'True', 1], ['listener-3', 'True', 'True', 1], ['listener-4', 'True', 'True', 1], ['listener-5', 'True', 'True', 0],
    ]);
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
