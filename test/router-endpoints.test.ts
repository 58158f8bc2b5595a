// Endpoint sets apart from routes (router/endpoints.ts, RoutingTable.updateEndpoints).
import { describe, expect, it } from 'vitest';
import { changedEndpointSets, compileTable, pickEndpoint, splitEndpoints, type RoutingIR } from '../router/index.ts';

const source = { kind: 'Ingress', namespace: 'default', name: 'test' };
const ir = (a: { address: string; port: number }[], b: { address: string; port: number }[] = [{ address: '10.0.0.9', port: 80 }]): RoutingIR => ({
  virtualHosts: [{ hostname: 'h', routes: [{ id: 'r', pathType: 'Prefix', path: '/', backends: [{ backend: 'a', weight: 1 }], source }, { id: 's', pathType: 'Prefix', path: '/b', backends: [{ backend: 'b', weight: 1 }], source }] }],
  backends: { a: { name: 'ns/a:80', protocol: 'http', endpoints: a }, b: { name: 'ns/b:80', protocol: 'http', endpoints: b } },
});

describe('endpoint sets', () => {
  it('an IR whose endpoints changed has the same route part, and only the changed sets differ', () => {
    const before = splitEndpoints(ir([{ address: '10.0.0.1', port: 80 }]));
    const after = splitEndpoints(ir([{ address: '10.0.0.2', port: 80 }]));
    expect(after.routesJson).toBe(before.routesJson);
    expect(changedEndpointSets(before.endpoints, after.endpoints)).toEqual({ a: { endpoints: [{ address: '10.0.0.2', port: 80 }] } });
    expect(changedEndpointSets(after.endpoints, after.endpoints)).toEqual({});
    // A route change is not an endpoint change.
    const moved = ir([{ address: '10.0.0.1', port: 80 }]);
    const withRoute = { ...moved, virtualHosts: [{ ...moved.virtualHosts[0], hostname: 'other' }] };
    expect(splitEndpoints(withRoute).routesJson).not.toBe(before.routesJson);
  });

  it('updateEndpoints swaps a backend set in place: the same routes pick the new endpoints', () => {
    const t = compileTable(ir([{ address: '10.0.0.1', port: 80 }]), 3);
    const route = t.match('h', '/x')!;
    const backend = route.backends[0].backend;
    t.updateEndpoints({ a: { endpoints: [{ address: '10.0.0.2', port: 8080 }, { address: 'fd00::1', port: 8080 }] } }, 1);
    expect(t.match('h', '/x')).toBe(route);
    expect(t.version).toBe(3);
    expect(t.endpointsVersion).toBe(1);
    expect(backend.endpoints.map((e) => e.origin)).toEqual(['http://10.0.0.2:8080', 'http://[fd00::1]:8080']);
    expect(Object.isFrozen(backend.endpoints)).toBe(true);
    expect(t.ir.backends.a.endpoints).toEqual([{ address: '10.0.0.2', port: 8080 }, { address: 'fd00::1', port: 8080 }]);
    t.updateEndpoints({ a: { endpoints: [], unavailableReason: 'no ready endpoints' } }, 2);
    expect(pickEndpoint(backend)).toBeUndefined();
    expect(backend.unavailableReason).toBe('no ready endpoints');
  });

  it('is all or nothing: a bad set, or an unknown backend, changes no set', () => {
    const t = compileTable(ir([{ address: '10.0.0.1', port: 80 }]), 1);
    expect(() => t.updateEndpoints({ b: { endpoints: [{ address: '10.0.0.3', port: 80 }] }, a: { endpoints: [{ address: '10.0.0.2', port: 0 }] } }, 1)).toThrow(/bad port/);
    expect(() => t.updateEndpoints({ b: { endpoints: [] }, zz: { endpoints: [] } }, 1)).toThrow(/unknown backend/);
    expect(t.backends.get('a')!.endpoints.map((e) => e.address)).toEqual(['10.0.0.1']);
    expect(t.backends.get('b')!.endpoints.map((e) => e.address)).toEqual(['10.0.0.9']);
    expect(t.endpointsVersion).toBe(0);
  });
});

describe('listeners with ports of their own', () => {
  const withListeners = (listeners: NonNullable<RoutingIR['listeners']>): RoutingIR => ({ ...ir([{ address: '10.0.0.1', port: 80 }]), listeners });
  const ownPort = (key: string, path: string) => ({ key, address: '', port: Number(key.split(':')[1]), protocol: 'HTTP' as const, virtualHosts: [{ hostname: '*', routes: [{ id: `${key}${path}`, pathType: 'Prefix' as const, path, backends: [{ backend: 'a', weight: 1 }], source }] }] });

  it('route on their own virtual hosts only, over the backends of the whole table', () => {
    const t = compileTable(withListeners([ownPort(':8080', '/eight'), ownPort(':9090', '/nine')]), 1);
    expect(t.match('h', '/eight')?.id).toBe('r');
    expect(t.listener(':8080')!.match('h', '/eight/x')?.id).toBe(':8080/eight');
    expect(t.listener(':8080')!.match('h', '/nine')).toBeUndefined();
    expect(t.listener(':9090')!.match('any.host', '/nine')?.id).toBe(':9090/nine');
    expect(t.listener(':7070')).toBeUndefined();
    // One endpoint set: an update reaches the listener's routes too.
    t.updateEndpoints({ a: { endpoints: [{ address: '10.0.0.7', port: 80 }] } }, 1);
    expect(t.listener(':9090')!.match('h', '/nine')!.backends[0].backend.endpoints[0].address).toBe('10.0.0.7');
  });

  it('refuse duplicate keys, bad ports and a wildcard address overlapping a specific one', () => {
    expect(() => compileTable(withListeners([ownPort(':8080', '/a'), ownPort(':8080', '/b')]), 1)).toThrow(/duplicate listener/);
    expect(() => compileTable(withListeners([{ ...ownPort(':8080', '/a'), port: 70000 }]), 1)).toThrow(/bad port/);
    expect(() => compileTable(withListeners([ownPort(':8080', '/a'), { ...ownPort(':8080', '/b'), key: '127.0.0.5:8080', address: '127.0.0.5' }]), 1)).toThrow(/overlaps/);
    expect(() => compileTable(withListeners([{ ...ownPort(':8080', '/a'), key: '127.0.0.5:8080', address: '127.0.0.5' }, { ...ownPort(':8080', '/b'), key: '127.0.0.6:8080', address: '127.0.0.6' }]), 1)).not.toThrow();
  });
});
