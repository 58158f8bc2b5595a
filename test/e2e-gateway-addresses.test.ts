// Gateway spec.addresses: a Gateway that names an IP of this machine gets its listeners bound
// there, with only its own routes behind them, next to Gateways on --bind-address with the same
// port; an address Portico cannot serve is AddressNotUsable. Removing the Gateway closes its socket.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { endpointSlice, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';

const GW = 'gateway.networking.k8s.io/v1';
let portico: Portico;
const backends: http.Server[] = [];

async function named(name: string): Promise<number> {
  const s = http.createServer((req, res) => res.end(name));
  backends.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

const gateway = (name: string, port: number, addresses?: string[]) => ({ apiVersion: GW, kind: 'Gateway', metadata: { name, namespace: 'default' }, spec: { gatewayClassName: 'portico', ...(addresses ? { addresses: addresses.map((value) => ({ type: 'IPAddress', value })) } : {}), listeners: [{ name: 'http', port, protocol: 'HTTP' }] } });
const route = (name: string, parent: string, backend: string) => ({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name, namespace: 'default' }, spec: { parentRefs: [{ name: parent }], rules: [{ backendRefs: [{ name: backend, port: 80 }] }] } });
// One route, two parents on two sockets (HTTPRouteMultipleGateways): served behind both.
const shared = { apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'shared', namespace: 'default' }, spec: { parentRefs: [{ name: 'main' }, { name: 'own' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/shared' } }], backendRefs: [{ name: 'c', port: 80 }] }] } };
const get = (address: string) => request(portico.httpPort, '/x', { address, host: 'any.test', timeoutMs: 2000 }).then((r) => `${r.status} ${r.status === 200 ? r.body : ''}`.trim(), (e: Error & { code?: string }) => e.code ?? e.message);
const gatewayStatus = async (name: string) => ((await portico.json('/status')).items as { kind: string; metadata: { name: string }; status: { addresses?: { value: string }[]; conditions: { type: string; status: string; reason: string }[] } }[]).find((i) => i.kind === 'Gateway' && i.metadata.name === name)?.status;

beforeAll(async () => {
  const a = await named('a');
  const b = await named('b');
  const c = await named('c');
  portico = await startPortico({ workers: 2, files: { 'base.yaml': toYaml({ apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'portico.dev/gateway-controller' } }, service('a'), service('b'), service('c'), endpointSlice('a', [`127.0.0.1:${a}`]), endpointSlice('b', [`127.0.0.1:${b}`]), endpointSlice('c', [`127.0.0.1:${c}`])) } });
  portico.write('gateways.yaml', toYaml(gateway('main', portico.httpPort), route('to-a', 'main', 'a'), gateway('own', portico.httpPort, ['127.0.0.5']), route('to-b', 'own', 'b'), gateway('elsewhere', portico.httpPort, ['192.0.2.77']), shared));
  await waitFor('both sockets served', async () => [await get('127.0.0.1'), await get('127.0.0.5')].join() === '200 a,200 b', 10_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  for (const s of backends) s.close();
});

describe('Gateway spec.addresses', () => {
  it('a Gateway on an address of this machine has its own socket, with only its routes', async () => {
    for (let i = 0; i < 6; i++) {
      expect(await get('127.0.0.5')).toBe('200 b');
      expect(await get('127.0.0.1')).toBe('200 a');
    }
    const own = await gatewayStatus('own');
    expect(own?.addresses).toEqual([{ type: 'IPAddress', value: '127.0.0.5' }]);
    expect(own?.conditions.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'True' });
    expect((await gatewayStatus('main'))?.conditions.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'True' });
  });

  it('a route with both Gateways as parents is served behind both sockets', async () => {
    for (const address of ['127.0.0.1', '127.0.0.5']) {
      const r = await request(portico.httpPort, '/shared/x', { address, host: 'any.test', timeoutMs: 2000 });
      expect(`${r.status} ${r.body}`).toBe('200 c');
    }
  });

  it('an address Portico cannot serve is AddressNotUsable', async () => {
    expect((await gatewayStatus('elsewhere'))?.conditions.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'False', reason: 'AddressNotUsable' });
  });

  it('removing the Gateway closes its socket; the others keep serving', async () => {
    portico.write('gateways.yaml', toYaml(gateway('main', portico.httpPort), route('to-a', 'main', 'a')));
    await waitFor('the own socket closed', async () => (await get('127.0.0.5')) === 'ECONNREFUSED', 10_000);
    expect(await get('127.0.0.1')).toBe('200 a');
  });
});
