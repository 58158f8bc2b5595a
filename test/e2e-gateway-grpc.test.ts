// GRPCRoute through a real `portico serve`: gRPC clients over h2c to the HTTP listener, gRPC
// servers (grpc-js, h2c) as backends that answer with their name and the metadata they saw.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, namespace, statusOf, toYaml, type Obj } from './gateway-helpers.ts';

const SERVICE = 'gateway_api_conformance.echo_basic.grpcecho.GrpcEcho';
const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const rpc = (method: string): grpc.MethodDefinition<Buffer, Buffer> => ({ path: `/${SERVICE}/${method}`, requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize });
const definition: grpc.ServiceDefinition = { Echo: rpc('Echo'), EchoTwo: rpc('EchoTwo'), EchoThree: rpc('EchoThree') };

let portico: Portico;
const servers: grpc.Server[] = [];
let client: grpc.Client & Record<string, Function>;

async function startGrpc(name: string): Promise<number> {
  const server = new grpc.Server();
  const answer = (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(JSON.stringify({ backend: name, version: call.metadata.get('version')[0] ?? null, route: call.metadata.get('x-route')[0] ?? null })));
  server.addService(definition, { Echo: answer, EchoTwo: answer, EchoThree: answer });
  servers.push(server);
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
}

const grpcService = (name: string, port: number): Obj[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'infra' }, spec: { ports: [{ name: 'grpc', port: 8080, targetPort: 3000, appProtocol: 'kubernetes.io/h2c' }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'infra', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'grpc', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
];
const grpcRoute = (name: string, spec: Obj): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name, namespace: 'infra' }, spec: { parentRefs: [{ name: 'gw' }], ...spec } });
const method = (m: string, extra: Obj = {}): Obj => ({ method: { service: SERVICE, method: m }, ...extra });
const to = (svc: string, weight?: number): Obj => ({ name: svc, port: 8080, ...(weight !== undefined ? { weight } : {}) });

beforeAll(async () => {
  const ports = { v1: await startGrpc('v1'), v2: await startGrpc('v2'), v3: await startGrpc('v3') };
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [
      { name: 'http', port: portico.httpPort, protocol: 'HTTP' },
      // GRPCRouteListenerHostnameMatching's listeners (the HTTP listener above takes other names)
      { name: 'listener-1', port: portico.httpPort, protocol: 'HTTP', hostname: 'bar.com' },
      { name: 'listener-2', port: portico.httpPort, protocol: 'HTTP', hostname: 'foo.bar.com' },
      { name: 'listener-3', port: portico.httpPort, protocol: 'HTTP', hostname: '*.bar.com' },
      { name: 'listener-4', port: portico.httpPort, protocol: 'HTTP', hostname: '*.foo.com' },
    ]),
    ...grpcService('grpc-v1', ports.v1), ...grpcService('grpc-v2', ports.v2), ...grpcService('grpc-v3', ports.v3),
    // GRPCExactMethodMatching
    grpcRoute('exact', { hostnames: ['exact.test'], rules: [{ matches: [method('Echo')], backendRefs: [to('grpc-v1')] }, { matches: [method('EchoTwo')], backendRefs: [to('grpc-v2')] }] }),
    // GRPCRouteHeaderMatching (as HTTPRouteHeaderMatching) and a header filter
    grpcRoute('headers', { hostnames: ['headers.test'], rules: [
      { matches: [{ headers: [{ name: 'version', value: 'one' }] }], backendRefs: [to('grpc-v1')] },
      { matches: [{ headers: [{ name: 'version', value: 'two' }] }], backendRefs: [to('grpc-v2')] },
      { matches: [{ headers: [{ name: 'version', value: 'two' }, { name: 'color', value: 'orange' }] }], backendRefs: [to('grpc-v1')] },
      { matches: [{ headers: [{ name: 'version', value: 'three' }] }], filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-route', value: 'three' }] } }], backendRefs: [to('grpc-v3')] },
    ] }),
    // GRPCRouteListenerHostnameMatching: routes by sectionName, no hostnames of their own
    grpcRoute('backend-v1', { parentRefs: [{ name: 'gw', sectionName: 'listener-1' }], rules: [{ backendRefs: [to('grpc-v1')] }] }),
    grpcRoute('backend-v2', { parentRefs: [{ name: 'gw', sectionName: 'listener-2' }], rules: [{ backendRefs: [to('grpc-v2')] }] }),
    grpcRoute('backend-v3', { parentRefs: [{ name: 'gw', sectionName: 'listener-3' }, { name: 'gw', sectionName: 'listener-4' }], rules: [{ backendRefs: [to('grpc-v3')] }] }),
    // GRPCRouteWeight
    grpcRoute('weights', { hostnames: ['weights.test'], rules: [{ backendRefs: [to('grpc-v1', 70), to('grpc-v2', 30), to('grpc-v3', 0)] }] }),
  ));
  await waitFor('GRPCRoutes served', async () => (await call('exact.test', 'Echo').catch(() => undefined))?.backend === 'v1', 20_000);
}, 60_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await portico?.stop();
  for (const s of servers) s.forceShutdown();
});

const clients = new Map<string, grpc.Client & Record<string, Function>>();
function clientFor(authority: string): grpc.Client & Record<string, Function> {
  let c = clients.get(authority);
  if (c === undefined) {
    const Ctor = grpc.makeGenericClientConstructor(definition, 'GrpcEcho');
    c = new Ctor(`127.0.0.1:${portico.httpPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as grpc.Client & Record<string, Function>;
    clients.set(authority, c);
  }
  return c;
}

function call(authority: string, m: string, meta: Record<string, string> = {}): Promise<{ backend: string; version: string | null; route: string | null }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(meta)) md.set(k, v);
  return new Promise((resolve, reject) => clientFor(authority)[m](Buffer.from('x'), md, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, reply: Buffer) => (err ? reject(err) : resolve(JSON.parse(reply.toString())))));
}

const outcome = (authority: string, m: string, meta: Record<string, string> = {}) => call(authority, m, meta).then((r) => r.backend, (e: grpc.ServiceError) => grpc.status[e.code]);

describe('GRPCRoute through portico serve', () => {
  it('service/method matches route to h2c backends; an unmatched method is UNIMPLEMENTED', async () => {
    expect(await outcome('exact.test', 'Echo')).toBe('v1');
    expect(await outcome('exact.test', 'EchoTwo')).toBe('v2');
    expect(await outcome('exact.test', 'EchoThree')).toBe('UNIMPLEMENTED');
    expect(await outcome('unknown.test', 'Echo')).toBe('UNIMPLEMENTED');
  });

  it('header matches: more matches win, then rule order; a header filter reaches the backend', async () => {
    expect(await outcome('headers.test', 'Echo', { version: 'one' })).toBe('v1');
    expect(await outcome('headers.test', 'Echo', { version: 'two' })).toBe('v2');
    expect(await outcome('headers.test', 'Echo', { version: 'two', color: 'orange' })).toBe('v1');
    expect(await outcome('headers.test', 'Echo', { color: 'orange' })).toBe('UNIMPLEMENTED');
    expect(await call('headers.test', 'Echo', { version: 'three' })).toMatchObject({ backend: 'v3', route: 'three' });
  });

  it('listener hostnames: the exact listener before the wildcard, routes by sectionName; names no listener takes are UNIMPLEMENTED', async () => {
    for (const [authority, want] of [['bar.com', 'v1'], ['foo.bar.com', 'v2'], ['baz.bar.com', 'v3'], ['boo.bar.com', 'v3'], ['multiple.prefixes.bar.com', 'v3'], ['multiple.prefixes.foo.com', 'v3'], ['foo.com', 'UNIMPLEMENTED'], ['no.matching.host', 'UNIMPLEMENTED']]) {
      expect(await outcome(authority, 'Echo'), authority).toBe(want);
    }
  });

  it('weights 70/30/0 over 300 calls, within 6 points', async () => {
    // Smooth weighted round-robin per worker: the split is near exact (see the HTTPRoute scenario).
    const counts: Record<string, number> = {};
    for (let i = 0; i < 300; i += 10) await Promise.all(Array.from({ length: 10 }, async () => {
      const b = await outcome('weights.test', 'Echo');
      counts[b] = (counts[b] ?? 0) + 1;
    }));
    expect(Object.keys(counts).sort()).toEqual(['v1', 'v2']);
    expect(Math.abs(counts.v1 / 300 - 0.7)).toBeLessThanOrEqual(0.02);
  });

  it('status: GRPCRoutes are accepted on the HTTP listener, which lists GRPCRoute among its kinds', async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    const route = statusOf(items, 'GRPCRoute', 'infra', 'exact');
    expect(condition(route.parents[0].conditions, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(condition(route.parents[0].conditions, 'ResolvedRefs')).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
    const listener = statusOf(items, 'Gateway', 'infra', 'gw').listeners[0];
    expect(listener.supportedKinds.map((k: any) => k.kind)).toEqual(['HTTPRoute', 'GRPCRoute']);
    expect(listener.attachedRoutes).toBe(3);
  });
});
