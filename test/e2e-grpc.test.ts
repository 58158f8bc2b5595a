import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

// A real gRPC server and client (grpc-js) with raw-bytes messages: no .proto needed.
const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const definition: grpc.ServiceDefinition = {
  Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  Fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
};

let server: grpc.Server;
let portico: Portico;
let client: grpc.Client & Record<string, Function>;

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(definition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'from-backend');
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request, Buffer.from(`:${call.metadata.get('x-forwarded-proto')[0]}`)]), trailer);
    },
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.FAILED_PRECONDITION, details: 'nope' }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.4:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  portico = await startPortico({
    workers: 1,
    files: {
      'all.yaml': toYaml(
        ingressClass(),
        service('grpc', 80, 'default', { appProtocol: 'kubernetes.io/h2c' }),
        endpointSlice('grpc', [`127.0.0.4:${port}`]),
        ingress('grpc', 'grpc.test', [{ path: '/test.Echo', service: 'grpc' }]),
      ),
    },
  });
  const Ctor = grpc.makeGenericClientConstructor(definition, 'Echo');
  client = new Ctor(`127.0.0.1:${portico.httpPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'grpc.test' }) as unknown as grpc.Client & Record<string, Function>;
}, 60_000);

afterAll(async () => {
  client?.close();
  await portico?.stop();
  server?.forceShutdown();
});

describe('gRPC through Portico (h2c downstream, h2c upstream)', () => {
  it('a unary call works end to end, with trailers passed through', async () => {
    const result = await new Promise<{ reply: Buffer; trailers: grpc.Metadata }>((resolve, reject) => {
      let trailers = new grpc.Metadata();
      const call = client.Echo(Buffer.from('hi'), (err: grpc.ServiceError | null, reply: Buffer) => (err ? reject(err) : setImmediate(() => resolve({ reply, trailers }))));
      call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
    });
    expect(result.reply.toString()).toBe('echo:hi:http');
    expect(result.trailers.get('x-trailer')).toEqual(['from-backend']);
  });

  it('server streaming works', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.Count(Buffer.from('5'));
      call.on('data', (b: Buffer) => got.push(b.toString()));
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(got).toEqual(['1', '2', '3', '4', '5']);
  });

  it('a gRPC error status reaches the client', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => client.Fail(Buffer.from(''), (e: grpc.ServiceError) => resolve(e)));
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toBe('nope');
  });
});
