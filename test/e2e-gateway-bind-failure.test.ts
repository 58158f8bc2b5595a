// A Gateway listener whose port the workers cannot bind (another process holds it) through a
// real `portico serve`: status says so (listener Accepted=False PortUnavailable, Programmed=False;
// the Gateway Programmed=False when no listener is served), the rest keeps serving, and once the
// port is free the workers bind it by themselves and status flips back, with no config change.
// A port another process holds with SO_REUSEPORT is reported the same way: the primary checks a
// new listener's socket before the workers bind it, so they never join that process's socket.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, serviceFor, startEchoPod, statusOf, toYaml, who, type EchoPod } from './gateway-helpers.ts';

let portico: Portico;
let pod: EchoPod;
let taken: number;
let taken2: number;
/** Held by a server with SO_REUSEPORT: a worker binding it with SO_REUSEPORT would silently join it. */
let sharedTaken: number;
let free: number;
const blockers: net.Server[] = [];

const gatewayStatus = async (name: string): Promise<any> => statusOf((await portico.json<{ items: any[] }>('/status')).items, 'Gateway', 'infra', name);
const listenerState = (gw: any, name: string): string[] => {
  const l = gw.listeners.find((x: any) => x.name === name);
  return ['Accepted', 'Programmed'].map((t) => `${t}=${condition(l.conditions, t)?.status}/${condition(l.conditions, t)?.reason}`);
};

beforeAll(async () => {
  pod = await startEchoPod('infra', 'v1', 'v1-pod-0');
  taken = await freePort();
  taken2 = await freePort();
  free = await freePort();
  // Another process's sockets on the ports (no SO_REUSEPORT): the workers' binds fail EADDRINUSE.
  for (const port of [taken, taken2]) {
    const blocker = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => blocker.listen({ port, host: '127.0.0.1', exclusive: true }, resolve));
    blockers.push(blocker);
  }
  sharedTaken = await freePort();
  const squatter = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => squatter.listen({ port: sharedTaken, host: '127.0.0.1', reusePort: true }, resolve));
  blockers.push(squatter);
  portico = await startPortico({
    files: {
      'all.yaml': toYaml(
        namespace('infra'),
        gatewayClass(),
        ...serviceFor([pod]),
        gateway('blocked', [{ name: 'http', port: taken, protocol: 'HTTP' }]),
        gateway('shared', [{ name: 'http', port: sharedTaken, protocol: 'HTTP' }]),
        gateway('mixed', [{ name: 'ok', port: free, protocol: 'HTTP' }, { name: 'busy', port: taken2, protocol: 'HTTP', hostname: 'busy.test' }], 'infra'),
        httpRoute('r-blocked', { parentRefs: [{ name: 'blocked' }], rules: [{ backendRefs: [ref('v1')] }] }),
        httpRoute('r-shared', { parentRefs: [{ name: 'shared' }], rules: [{ backendRefs: [ref('v1')] }] }),
        httpRoute('r-mixed', { parentRefs: [{ name: 'mixed', sectionName: 'ok' }], rules: [{ backendRefs: [ref('v1')] }] }),
      ),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await Promise.all(blockers.map((b) => new Promise<void>((resolve) => (b.listening ? b.close(() => resolve()) : resolve()))));
  await pod?.close();
});

describe('a Gateway listener whose port cannot be bound', () => {
  it('is reported PortUnavailable; its Gateway is not Programmed; a Gateway with another listener served stays Programmed', async () => {
    const blocked = await waitFor('PortUnavailable in status', async () => {
      const gw = await gatewayStatus('blocked');
      return condition(gw?.listeners?.[0]?.conditions, 'Accepted')?.reason === 'PortUnavailable' ? gw : undefined;
    }, 20_000);
    expect(listenerState(blocked, 'http')).toEqual(['Accepted=False/PortUnavailable', 'Programmed=False/Invalid']);
    expect(condition(blocked.listeners[0].conditions, 'Accepted')?.message).toMatch(new RegExp(`port ${taken} on 127\\.0\\.0\\.1 cannot be bound: the port is in use by another process \\(EADDRINUSE\\)`));
    expect([condition(blocked.conditions, 'Accepted')?.status, condition(blocked.conditions, 'Accepted')?.reason]).toEqual(['True', 'ListenersNotValid']);
    expect([condition(blocked.conditions, 'Programmed')?.status, condition(blocked.conditions, 'Programmed')?.reason]).toEqual(['False', 'Invalid']);
    expect(condition(blocked.conditions, 'Programmed')?.message).toContain('EADDRINUSE');

    const mixed = await gatewayStatus('mixed');
    expect(listenerState(mixed, 'ok')).toEqual(['Accepted=True/Accepted', 'Programmed=True/Programmed']);
    expect(listenerState(mixed, 'busy')).toEqual(['Accepted=False/PortUnavailable', 'Programmed=False/Invalid']);
    expect(condition(mixed.conditions, 'Programmed')?.status).toBe('True');
    expect(condition(mixed.conditions, 'Accepted')?.reason).toBe('ListenersNotValid');
    // The listener that could bind serves; the process did not stop, and /readyz stays ready.
    expect(await who(free, 'any.test', '/')).toBe('infra/v1');
    expect((await portico.admin('/readyz')).status).toBe(200);
    await waitFor('three sockets counted unavailable', async () => (await portico.metric('portico_gateway_listeners_unavailable')) === 3, 10_000);
  });

  it('held by another process with SO_REUSEPORT: reported too, and the workers do not join its socket', async () => {
    const shared = await waitFor('PortUnavailable for the SO_REUSEPORT port', async () => {
      const gw = await gatewayStatus('shared');
      return condition(gw?.listeners?.[0]?.conditions, 'Accepted')?.reason === 'PortUnavailable' ? gw : undefined;
    }, 20_000);
    expect(condition(shared.listeners[0].conditions, 'Accepted')?.message).toContain('EADDRINUSE');
    // Every connection reaches the other process: no worker took a share of them.
    for (let i = 0; i < 20; i++) expect(await who(sharedTaken, 'any.test', '/').catch((e: Error) => e.message)).not.toBe('infra/v1');
  });

  it('is bound by the workers once the port is free, and status flips back with no config change', async () => {
    await Promise.all(blockers.map((b) => new Promise<void>((resolve) => b.close(() => resolve()))));
    await waitFor('the freed port served', async () => (await who(taken, 'any.test', '/').catch(() => 'down')) === 'infra/v1', 20_000);
    // The busy listener has no route of its own: served means answered (404), not refused.
    await waitFor('the second freed port bound', async () => (await who(taken2, 'busy.test', '/').catch(() => 'down')) === '404', 20_000);
    const blocked = await waitFor('Programmed again', async () => {
      const gw = await gatewayStatus('blocked');
      return condition(gw?.conditions, 'Programmed')?.status === 'True' ? gw : undefined;
    }, 10_000);
    expect(listenerState(blocked, 'http')).toEqual(['Accepted=True/Accepted', 'Programmed=True/Programmed']);
    expect(condition(blocked.conditions, 'Accepted')?.reason).toBe('Accepted');
    const mixed = await gatewayStatus('mixed');
    expect(listenerState(mixed, 'busy')).toEqual(['Accepted=True/Accepted', 'Programmed=True/Programmed']);
    await waitFor('the SO_REUSEPORT port served once freed', async () => (await who(sharedTaken, 'any.test', '/').catch(() => 'down')) === 'infra/v1', 20_000);
    expect(listenerState(await gatewayStatus('shared'), 'http')).toEqual(['Accepted=True/Accepted', 'Programmed=True/Programmed']);
    expect(portico.logs.some((l) => l.includes('cannot bind a Gateway listener'))).toBe(true);
    await waitFor('none counted unavailable', async () => (await portico.metric('portico_gateway_listeners_unavailable')) === 0, 10_000);
  });
});
