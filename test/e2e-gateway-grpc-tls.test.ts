// GRPCRoute through a real `portico serve`, beyond the conformance calls: gRPC over TLS with ALPN
// h2 on an HTTPS listener (the listener's certificate verified by the client) and over h2c on
// the HTTP listener; trailers, error statuses (also trailers-only answers) and server streaming
// passed through from grpc-js h2c backends; and an HTTPRoute and a GRPCRoute that want the same
// hostname on one listener: the older keeps it, the other is not accepted there.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, tlsSecret, type TestCert } from './helpers/certs.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, referenceGrant, serviceFor, startEchoPod, statusOf, toYaml, who, type EchoPod, type Obj } from './gateway-helpers.ts';

const SERVICE = 'portico.test.Echo';
const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const rpc = (method: string, responseStream = false): grpc.MethodDefinition<Buffer, Buffer> => ({ path: `/${SERVICE}/${method}`, requestStream: false, responseStream, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize });
const definition: grpc.ServiceDefinition = { Echo: rpc('Echo'), Fail: rpc('Fail'), Count: rpc('Count', true) };
// A second service on the same backends, for precedence between service-only and method-only matches.
const OTHER = 'portico.test.Other';
const other: grpc.ServiceDefinition = { Echo: { ...rpc('Echo'), path: `/${OTHER}/Echo` } };
type Client = grpc.Client & Record<string, Function>;

let portico: Portico;
let cert: TestCert;
let pod: EchoPod;
const servers: grpc.Server[] = [];
const clients: Client[] = [];

async function startGrpc(name: string): Promise<number> {
  const server = new grpc.Server();
  server.addService(definition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', `from-${name}`);
      cb(null, Buffer.from(JSON.stringify({ backend: name, got: call.request.toString(), authority: call.getHost() })), trailer);
    },
    // An error before any message: grpc-js answers trailers-only (one HEADERS frame with END_STREAM).
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-why', 'because');
      cb({ code: grpc.status.FAILED_PRECONDITION, details: `nope from ${name}`, metadata: trailer });
    },
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  });
  server.addService(other, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(JSON.stringify({ backend: name, got: call.request.toString(), authority: call.getHost() }))) });
  servers.push(server);
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
}

const grpcService = (name: string, port: number, appProtocol: string | undefined = 'kubernetes.io/h2c'): Obj[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'infra' }, spec: { ports: [{ name: 'grpc', port: 8080, targetPort: 3000, ...(appProtocol ? { appProtocol } : {}) }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'infra', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'grpc', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
];
const grpcRoute = (name: string, spec: Obj, metadata: Obj = {}): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name, namespace: 'infra', ...metadata }, spec: { parentRefs: [{ name: 'gw' }], ...spec } });

function tlsClient(authority: string): Client {
  const Ctor = grpc.makeGenericClientConstructor(definition, 'Echo');
  // SNI and the certificate check both use the authority; the connection goes to loopback.
  const c = new Ctor(`127.0.0.1:${portico.httpsPort}`, grpc.credentials.createSsl(Buffer.from(cert.certPem)), { 'grpc.ssl_target_name_override': authority, 'grpc.default_authority': authority }) as unknown as Client;
  clients.push(c);
  return c;
}

function h2cClient(authority: string, service: grpc.ServiceDefinition = definition): Client {
  const Ctor = grpc.makeGenericClientConstructor(service, 'Echo');
  const c = new Ctor(`127.0.0.1:${portico.httpPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as Client;
  clients.push(c);
  return c;
}

interface Unary {
  reply?: { backend: string; got: string; authority: string };
  code: string;
  details: string;
  trailers: Record<string, unknown>;
}

function unary(client: Client, method: string, payload = 'x'): Promise<Unary> {
  return new Promise((resolve) => {
    let reply: Unary['reply'];
    const call = client[method](Buffer.from(payload), new grpc.Metadata(), { deadline: Date.now() + 5000 }, (_err: grpc.ServiceError | null, r?: Buffer) => {
      if (r) reply = JSON.parse(r.toString());
    });
    call.on('status', (s: grpc.StatusObject) => setImmediate(() => resolve({ reply, code: grpc.status[s.code], details: s.details, trailers: s.metadata.getMap() })));
  });
}

beforeAll(async () => {
  const v1 = await startGrpc('v1');
  const v2 = await startGrpc('v2');
  pod = await startEchoPod('infra', 'web', 'web-pod-0');
  cert = makeCert('grpc.secure.test', ['grpc.secure.test']);
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [
      { name: 'http', port: portico.httpPort, protocol: 'HTTP' },
      { name: 'https', port: portico.httpsPort, protocol: 'HTTPS', hostname: 'grpc.secure.test', tls: { certificateRefs: [{ name: 'grpc-cert' }] } },
    ]),
    tlsSecret('grpc-cert', cert, 'infra'),
    ...grpcService('grpc-v1', v1), ...grpcService('grpc-v2', v2),
    // No appProtocol on the port: a GRPCRoute's backend is reached over h2c all the same.
    ...grpcService('grpc-plain', v2, ''),
    grpcRoute('plain', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['plain.test'], rules: [{ backendRefs: [{ name: 'grpc-plain', port: 8080 }] }] }),
    ...serviceFor([pod]),
    // Attached to both listeners: served over TLS (HTTPS) and over h2c (HTTP).
    grpcRoute('secure', { hostnames: ['grpc.secure.test'], rules: [{ matches: [{ method: { service: SERVICE } }], backendRefs: [{ name: 'grpc-v1', port: 8080 }] }] }),
    // Precedence: the service-only match beats the method-only one for that service's calls.
    grpcRoute('precedence', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['prec.test'], rules: [
      { matches: [{ method: { method: 'Echo' } }], backendRefs: [{ name: 'grpc-v2', port: 8080 }] },
      { matches: [{ method: { service: SERVICE } }], backendRefs: [{ name: 'grpc-v1', port: 8080 }] },
    ] }),
    // A backend in another namespace: only with a ReferenceGrant there (grant.yaml).
    namespace('apps'),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'grpc-apps', namespace: 'apps' }, spec: { ports: [{ name: 'grpc', port: 8080, targetPort: 3000, appProtocol: 'kubernetes.io/h2c' }] } },
    { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'grpc-apps-1', namespace: 'apps', labels: { 'kubernetes.io/service-name': 'grpc-apps' } }, addressType: 'IPv4', ports: [{ name: 'grpc', port: v2 }], endpoints: [{ addresses: ['127.0.0.1'] }] },
    grpcRoute('cross', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['cross.test'], rules: [{ backendRefs: [{ name: 'grpc-apps', namespace: 'apps', port: 8080 }] }] }),
    // shared.test: the HTTPRoute is older and keeps it on the HTTP listener; the GRPCRoute is refused.
    httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['shared.test'], rules: [{ backendRefs: [{ name: 'web', port: 8080 }] }] }, 'infra', { creationTimestamp: '2026-01-01T00:00:00Z' }),
    grpcRoute('late', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['shared.test', 'late.test'], rules: [{ backendRefs: [{ name: 'grpc-v2', port: 8080 }] }] }, { creationTimestamp: '2026-01-02T00:00:00Z' }),
  ));
  await waitFor('GRPCRoute over TLS served', async () => (await unary(tlsClient('grpc.secure.test'), 'Echo')).reply?.backend === 'v1', 20_000);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await portico?.stop();
  for (const s of servers) s.forceShutdown();
  await pod?.close();
});

describe('GRPCRoute over TLS (HTTPS listener, ALPN h2) and h2c', () => {
  it('a unary call over TLS reaches the backend with its authority, and its trailers come back', async () => {
    const r = await unary(tlsClient('grpc.secure.test'), 'Echo', 'over-tls');
    expect(r).toMatchObject({ code: 'OK', reply: { backend: 'v1', got: 'over-tls', authority: 'grpc.secure.test' } });
    expect(r.trailers['x-trailer']).toBe('from-v1');
  });

  it('the same route over h2c on the HTTP listener', async () => {
    const r = await unary(h2cClient('grpc.secure.test'), 'Echo', 'over-h2c');
    expect(r).toMatchObject({ code: 'OK', reply: { backend: 'v1', got: 'over-h2c' } });
    expect(r.trailers['x-trailer']).toBe('from-v1');
  });

  it('an error status answered trailers-only reaches the client with its details and metadata', async () => {
    for (const client of [tlsClient('grpc.secure.test'), h2cClient('grpc.secure.test')]) {
      const r = await unary(client, 'Fail');
      expect(r).toMatchObject({ code: 'FAILED_PRECONDITION', details: 'nope from v1' });
      expect(r.trailers['x-why']).toBe('because');
    }
  });

  it('server streaming over TLS', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = tlsClient('grpc.secure.test').Count(Buffer.from('4'));
      call.on('data', (b: Buffer) => got.push(b.toString()));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(got).toEqual(['1', '2', '3', '4']);
  });

  it('a Service port without appProtocol is reached over h2c', async () => {
    expect(await unary(h2cClient('plain.test'), 'Echo')).toMatchObject({ code: 'OK', reply: { backend: 'v2' } });
  });

  it('a name the route does not serve is UNIMPLEMENTED', async () => {
    expect((await unary(h2cClient('other.test'), 'Echo')).code).toBe('UNIMPLEMENTED');
  });
});

describe('GRPCRoute precedence and ReferenceGrants through portico serve', () => {
  it('a service-only match beats a method-only one for that service; other services take the method-only match', async () => {
    expect(await unary(h2cClient('prec.test'), 'Echo')).toMatchObject({ code: 'OK', reply: { backend: 'v1' } });
    expect(await unary(h2cClient('prec.test', other), 'Echo')).toMatchObject({ code: 'OK', reply: { backend: 'v2' } });
  });

  it('a backend in another namespace is reached only while a ReferenceGrant there allows it', async () => {
    const refs = async () => condition(statusOf((await portico.json<{ items: any[] }>('/status')).items, 'GRPCRoute', 'infra', 'cross').parents[0].conditions, 'ResolvedRefs');
    expect(await refs()).toMatchObject({ status: 'False', reason: 'RefNotPermitted' });
    const denied = await unary(h2cClient('cross.test'), 'Echo');
    expect(denied.reply).toBeUndefined();
    expect(denied.code).not.toBe('OK');
    portico.write('grant.yaml', toYaml(referenceGrant('grpc-from-infra', 'apps', [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'infra' }], [{ group: '', kind: 'Service' }])));
    await waitFor('granted', async () => (await unary(h2cClient('cross.test'), 'Echo')).reply?.backend === 'v2', 20_000);
    expect(await refs()).toMatchObject({ status: 'True', reason: 'ResolvedRefs' });
    portico.remove('grant.yaml');
    await waitFor('revoked', async () => (await unary(h2cClient('cross.test'), 'Echo')).code !== 'OK', 20_000);
    expect(await refs()).toMatchObject({ status: 'False', reason: 'RefNotPermitted' });
  });
});

describe('an HTTPRoute and a GRPCRoute wanting one hostname on one listener', () => {
  it('the older HTTPRoute keeps shared.test; the GRPCRoute is not accepted there and serves nothing', async () => {
    expect(await who(portico.httpPort, 'shared.test', '/')).toBe('infra/web');
    const r = await unary(h2cClient('shared.test'), 'Echo');
    expect(r.reply?.backend).toBeUndefined();
    expect(r.code).not.toBe('OK');
    // Its other hostname is not served either: the route is refused on the whole listener.
    expect((await unary(h2cClient('late.test'), 'Echo')).code).toBe('UNIMPLEMENTED');
  });

  it('status: the GRPCRoute is Accepted=False NotAllowedByListeners naming the HTTPRoute; the listener counts the accepted routes', async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    const late = statusOf(items, 'GRPCRoute', 'infra', 'late').parents[0].conditions;
    expect(condition(late, 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    expect(condition(late, 'Accepted')?.message).toMatch(/HTTPRoute infra\/web/);
    expect(condition(statusOf(items, 'HTTPRoute', 'infra', 'web').parents[0].conditions, 'Accepted')).toMatchObject({ status: 'True' });
    const secure = statusOf(items, 'GRPCRoute', 'infra', 'secure').parents[0].conditions;
    expect(condition(secure, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    const listeners = statusOf(items, 'Gateway', 'infra', 'gw').listeners;
    expect(Object.fromEntries(listeners.map((l: any) => [l.name, l.attachedRoutes]))).toEqual({ http: 5, https: 1 });
  });
});
