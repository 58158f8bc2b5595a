// Helpers for the Gateway API scenario suites (test/e2e-gateway*.test.ts): echo backends that
// answer JSON describing what they received, as the conformance suite's echo-basic does, and
// builders for the Gateway API manifests the suites write into a manifest directory.
import { once } from 'node:events';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { request, type Reply } from './helpers/http.ts';

export interface Echoed {
  /** The request target as received: path and query. */
  readonly path: string;
  readonly host: string;
  readonly method: string;
  /** As node:http gives them: lower-case names, repeated headers joined with ', '. */
  readonly headers: Record<string, string | string[]>;
  /** Header lines exactly as received, name and value, in order. */
  readonly rawHeaders: string[];
  readonly namespace: string;
  readonly service: string;
  readonly pod: string;
}

export interface EchoPod {
  readonly namespace: string;
  readonly service: string;
  readonly pod: string;
  readonly address: string;
  readonly port: number;
  /** Requests received, for tests that must know a backend saw nothing. */
  received: number;
  /** Every request received (target, method, body size), in arrival order of their ends. */
  readonly seen: { path: string; method: string; bodyBytes: number }[];
  close(): Promise<void>;
}

/**
 * An echo backend for one pod of a Service. `?delay=MS` waits before answering (timeouts);
 * `X-Echo-Set-Header: Name:Value,Name2:Value2` sets response headers (response-header filters).
 */
export async function startEchoPod(namespace: string, service: string, pod: string, address = '127.0.0.1'): Promise<EchoPod> {
  const state = { received: 0 };
  const seen: EchoPod['seen'] = [];
  const server = http.createServer((req, res) => {
    state.received++;
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', method: req.method ?? '', bodyBytes });
      const body: Echoed = { path: req.url ?? '', host: req.headers.host ?? '', method: req.method ?? '', headers: req.headers as Record<string, string | string[]>, rawHeaders: req.rawHeaders, namespace, service, pod };
      const text = JSON.stringify(body) + '\n';
      const headers: Record<string, string | string[]> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) };
      const set = req.headers['x-echo-set-header'];
      if (typeof set === 'string' && set !== '') {
        for (const pair of set.split(',')) {
          const i = pair.indexOf(':');
          if (i <= 0) continue;
          const name = pair.slice(0, i).trim();
          const value = pair.slice(i + 1).trim();
          const prev = headers[name];
          headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
        }
      }
      const delay = Number(new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('delay') ?? 0);
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(200, headers);
        res.end(text);
      };
      if (delay > 0) setTimeout(answer, Math.min(delay, 30_000));
      else answer();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const pod_: EchoPod = {
    namespace,
    service,
    pod,
    address,
    port,
    seen,
    get received() {
      return state.received;
    },
    set received(v: number) {
      state.received = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return pod_;
}

export type Obj = Record<string, unknown>;
const GW = 'gateway.networking.k8s.io/v1';

export const namespace = (name: string, labels: Record<string, string> = {}): Obj => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

export const gatewayClass = (name = 'portico', controllerName = 'portico.dev/gateway-controller'): Obj => ({ apiVersion: GW, kind: 'GatewayClass', metadata: { name }, spec: { controllerName } });

export const gateway = (name: string, listeners: Obj[], ns = 'infra', extra: Obj = {}): Obj => ({ apiVersion: GW, kind: 'Gateway', metadata: { name, namespace: ns }, spec: { gatewayClassName: 'portico', listeners, ...extra } });

export const httpRoute = (name: string, spec: Obj, ns = 'infra', metadata: Obj = {}): Obj => ({ apiVersion: GW, kind: 'HTTPRoute', metadata: { name, namespace: ns, ...metadata }, spec });

export const referenceGrant = (name: string, ns: string, from: Obj[], to: Obj[]): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name, namespace: ns }, spec: { from, to } });

/** A Service (port 8080, name http) whose EndpointSlice points at the given echo pods. */
export function serviceFor(pods: EchoPod[], servicePort = 8080, portExtra: Obj = {}): Obj[] {
  const { namespace: ns, service } = pods[0];
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: service, namespace: ns }, spec: { ports: [{ name: 'http', port: servicePort, targetPort: 3000, ...portExtra }] } },
    // One slice per pod: each pod listens on its own port.
    ...pods.map((p, i) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${service}-${i}`, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: p.port }],
      endpoints: [{ addresses: [p.address], conditions: { ready: true } }],
    })),
  ];
}

export const toYaml = (...objs: Obj[]): string => objs.map((o) => stringify(o)).join('---\n');

/** A backendRef to a Service on port 8080. */
export const ref = (name: string, extra: Obj = {}): Obj => ({ name, port: 8080, ...extra });

export interface Answer {
  readonly status: number;
  readonly headers: Reply['headers'];
  readonly body: string;
  /** The echo body when the backend answered, else undefined. */
  readonly echo: Echoed | undefined;
}

export async function send(port: number, host: string, path: string, opts: { method?: string; headers?: Record<string, string | string[]>; timeoutMs?: number } = {}): Promise<Answer> {
  const r = await request(port, path, { host, method: opts.method, headers: opts.headers, timeoutMs: opts.timeoutMs });
  let echo: Echoed | undefined;
  if (r.status === 200 && String(r.headers['content-type']).startsWith('application/json')) echo = JSON.parse(r.body) as Echoed;
  return { ...r, echo };
}

/** Which Service answered ("ns/service"), or the status code as a string when none did. */
export async function who(port: number, host: string, path: string, opts: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
  const a = await send(port, host, path, opts);
  return a.echo ? `${a.echo.namespace}/${a.echo.service}` : String(a.status);
}

export interface StatusCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** An object's status as `GET /status` serves it. */
export function statusOf(items: { kind: string; metadata: { namespace?: string; name: string }; status: any }[], kind: string, ns: string | undefined, name: string): any {
  return items.find((i) => i.kind === kind && i.metadata.name === name && (ns === undefined || i.metadata.namespace === ns))?.status;
}

export const condition = (list: StatusCondition[] | undefined, type: string): StatusCondition | undefined => list?.find((c) => c.type === type);

/**
 * A TLS echo backend (the conformance suite's tcp-backend on 8443, in spirit): a certificate for
 * `dnsNames`, and `name sni=<servername>` answered to any bytes. Pushed onto `servers` to close.
 */
export async function startTlsEcho(name: string, dnsNames: string[], servers: tls.Server[]): Promise<number> {
  const cert = generateSelfSigned({ commonName: name, dnsNames });
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    s.on('error', () => undefined);
    s.on('data', () => s.end(`${name} sni=${(s as tls.TLSSocket & { servername?: string }).servername}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/**
 * Opens a TLS connection, sends `line` once it is up, and resolves with what came back before the
 * close, or `rejected` when nothing did (refused, reset, closed at the ClientHello). Bounded: 5 s.
 */
export function tlsExchange(options: tls.ConnectionOptions, line = 'hello\r\n\r\n'): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ rejectUnauthorized: false, ...options });
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('secureConnect', () => socket.write(line));
    socket.on('data', (d) => (out += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out === '' ? 'rejected' : out);
    });
  });
}
