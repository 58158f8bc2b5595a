// Benchmark scenarios: one request shape, configured the same way in Portico (manifests) and in
// nginx (a server block), driven by the same load generator options.
//
//   - `http-keepalive`: plain HTTP/1.1, keep-alive client and upstream connections.
//   - `http-newconn`: plain HTTP/1.1 with `Connection: close`: a new client connection per request.
//   - `https-keepalive`: the same over TLS: Portico gets a TLS Secret and `spec.tls` on the Ingress,
//     nginx a `listen ... ssl` server, both the same certificate (bench/lib/tls.ts).
//   - `tls-handshake`: the same, plus `Connection: close`, so every request is a new connection
//     and a full handshake (wrk reconnects after each `Connection: close`; an LD_PRELOAD shim
//     stops it from resuming the previous session, which it otherwise does).
// `available()` lets a scenario skip itself with a reason (e.g. no C compiler for the shim).

import { benchCertificate, noResumeShim, noResumeShimUnavailable } from './tls.ts';
import { findExecutable } from './processes.ts';

export const BENCH_HOST = 'bench.local';
const BENCH_NAMESPACE = 'bench';

export interface ScenarioContext {
  readonly backendPort: number;
  /** Directory for certificates and other scenario files. */
  readonly dir: string;
}

export interface ProxyPorts {
  readonly http: number;
  readonly https: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Undefined when the scenario can run, else why not. */
  available(): string | undefined;
  /** Kubernetes objects for Portico's manifest directory. */
  porticoManifests(ctx: ScenarioContext): Record<string, unknown>[];
  /** Extra `portico serve` flags. */
  porticoArgs(ctx: ScenarioContext, ports: ProxyPorts): string[];
  /** Directives for nginx's `http { }` block: the upstream and the server. */
  nginxHttp(ctx: ScenarioContext, ports: ProxyPorts): string;
  /** Whether bench/lib/node-baseline.ts (plain HTTP only) can serve this scenario (--baseline). */
  readonly nodeBaseline: boolean;
  /** What the load generator requests. */
  target(ports: ProxyPorts, ctx: ScenarioContext): LoadTarget;
  /**
   * The GETs (Host: BENCH_HOST, path /) that must answer 200 "ok" before measuring; default: one
   * over plain HTTP on ports.http.
   */
  probes?(ports: ProxyPorts, ctx: ScenarioContext): Probe[];
  /** What one counted request stands for, in the printed table: `req` unless said otherwise. */
  readonly unit?: string;
  /** Facts about the set-up for the JSON results (certificate, client behaviour). */
  setup?(ctx: ScenarioContext): Record<string, unknown>;
}

export interface LoadTarget {
  url: string;
  headers: Record<string, string>;
  /** Extra environment for wrk (the no-resumption shim); autocannon ignores it. */
  env?: Record<string, string>;
}

export interface Probe {
  readonly port: number;
  /** HTTPS with this SNI ('' = none), not verifying, expecting this certificate; absent: plain HTTP. */
  readonly tls?: { readonly servername: string; readonly fingerprint256: string };
}

/** IngressClass, Service, EndpointSlice and an Ingress routing BENCH_HOST `/` to the backend. */
export function benchManifests(backendPort: number, tls?: { secretName: string }): Record<string, unknown>[] {
  const namespace = BENCH_NAMESPACE;
  return [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: 'portico' },
      spec: { controller: 'portico.dev/ingress-controller' },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'backend', namespace },
      spec: { ports: [{ name: 'http', port: 80, targetPort: backendPort }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'backend-1', namespace, labels: { 'kubernetes.io/service-name': 'backend' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: backendPort }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'bench', namespace },
      spec: {
        ingressClassName: 'portico',
        ...(tls ? { tls: [{ hosts: [BENCH_HOST], secretName: tls.secretName }] } : {}),
        rules: [
          {
            host: BENCH_HOST,
            http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'backend', port: { name: 'http' } } } }] },
          },
        ],
      },
    },
  ];
}

/**
 * The proxy_pass block both nginx scenarios share. Upstream keep-alive as Portico's undici pool,
 * and the same forwarding headers Portico adds (X-Forwarded-*, X-Real-IP), as ingress-nginx does.
 */
export function nginxProxyLocation(): string {
  return `        location / {
            proxy_pass http://bench_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
        }`;
}

export function nginxUpstream(backendPort: number): string {
  return `    upstream bench_backend {
        server 127.0.0.1:${backendPort};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }`;
}

const httpKeepAlive: Scenario = {
  name: 'http-keepalive',
  description: `plain HTTP/1.1, keep-alive client and upstream connections, GET / Host: ${BENCH_HOST}, 2-byte response`,
  available: () => undefined,
  nodeBaseline: true,
  porticoManifests: (ctx) => benchManifests(ctx.backendPort),
  porticoArgs: () => [],
  nginxHttp: (ctx, ports) => `${nginxUpstream(ctx.backendPort)}
    server {
        listen 127.0.0.1:${ports.http} backlog=4096;
        server_name ${BENCH_HOST};
${nginxProxyLocation()}
    }`,
  target: (ports) => ({ url: `http://127.0.0.1:${ports.http}/`, headers: { Host: BENCH_HOST } }),
};

const httpNewConnection: Scenario = {
  name: 'http-newconn',
  description: `plain HTTP/1.1, a new client connection for every request (Connection: close; upstream connections kept alive), GET / Host: ${BENCH_HOST}, 2-byte response`,
  available: () => undefined,
  nodeBaseline: true,
  porticoManifests: (ctx) => benchManifests(ctx.backendPort),
  porticoArgs: () => [],
  nginxHttp: httpKeepAlive.nginxHttp,
  target: (ports) => ({ url: `http://127.0.0.1:${ports.http}/`, headers: { Host: BENCH_HOST, Connection: 'close' } }),
  setup: () => ({ connections: 'Connection: close: wrk opens a new TCP connection for every request, so CPU µs/req includes accept and close' }),
};

/** The TLS Secret both TLS scenarios give Portico (and, as --default-ssl-certificate, for no/other SNI). */
const TLS_SECRET = 'bench-tls';

function opensslUnavailable(): string | undefined {
  return findExecutable('openssl') === undefined ? 'needs the openssl CLI to make the certificate: apt-get install openssl' : undefined;
}

/** Portico's objects plus a kubernetes.io/tls Secret holding the run's certificate. */
function tlsManifests(ctx: ScenarioContext): Record<string, unknown>[] {
  const cert = benchCertificate(ctx.dir, BENCH_HOST);
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: TLS_SECRET, namespace: BENCH_NAMESPACE },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(cert.certPem).toString('base64'), 'tls.key': Buffer.from(cert.keyPem).toString('base64') },
    },
    ...benchManifests(ctx.backendPort, { secretName: TLS_SECRET }),
  ];
}

/**
 * wrk takes SNI from the URL host, here 127.0.0.1 (bench.local does not resolve): Portico answers
 * a name without a certificate of its own with the default certificate, so making the Secret the
 * default too means it serves the same certificate as nginx whatever the SNI, and no 421 (the
 * connection's certificate is the Host's own).
 */
function tlsPorticoArgs(): string[] {
  return ['--default-ssl-certificate', `${BENCH_NAMESPACE}/${TLS_SECRET}`];
}

/**
 * nginx's only server on the port, hence its default for any SNI, with the same certificate.
 * TLS 1.2 and 1.3 as Portico's default (--tls-min-version TLSv1.2), nginx's default ciphers and
 * session settings (tickets on, no session cache; Portico, on Node, issues tickets too).
 */
function tlsNginxHttp(ctx: ScenarioContext, ports: ProxyPorts): string {
  const cert = benchCertificate(ctx.dir, BENCH_HOST);
  return `${nginxUpstream(ctx.backendPort)}
    server {
        listen 127.0.0.1:${ports.https} ssl backlog=4096;
        server_name ${BENCH_HOST};
        ssl_certificate ${cert.certPath};
        ssl_certificate_key ${cert.keyPath};
        ssl_protocols TLSv1.2 TLSv1.3;
${nginxProxyLocation()}
    }`;
}

/** Readiness over HTTPS: with SNI bench.local and without SNI, both must serve the run's certificate. */
function tlsProbes(ports: ProxyPorts, ctx: ScenarioContext): Probe[] {
  const { fingerprint256 } = benchCertificate(ctx.dir, BENCH_HOST);
  return [
    { port: ports.https, tls: { servername: BENCH_HOST, fingerprint256 } },
    { port: ports.https, tls: { servername: '', fingerprint256 } },
  ];
}

function tlsSetup(ctx: ScenarioContext): Record<string, unknown> {
  const cert = benchCertificate(ctx.dir, BENCH_HOST);
  return {
    certificate: { subject: cert.subject, subjectAltName: cert.subjectAltName, key: cert.keyType, fingerprint256: cert.fingerprint256, selfSigned: true },
    portico: { secret: `${BENCH_NAMESPACE}/${TLS_SECRET}`, defaultSslCertificate: `${BENCH_NAMESPACE}/${TLS_SECRET}`, tlsMinVersion: 'TLSv1.2 (default)', ciphers: "Node's default" },
    nginx: { ssl_protocols: 'TLSv1.2 TLSv1.3', ssl_ciphers: "nginx's default (HIGH:!aNULL:!MD5)", ssl_session_tickets: 'on (default)', ssl_session_cache: 'none (default)' },
    clientSni: '127.0.0.1 (wrk sends the URL host; the Host header is bench.local)',
    alpn: 'none offered by wrk: HTTP/1.1',
  };
}

const httpsKeepAlive: Scenario = {
  name: 'https-keepalive',
  description: `HTTP/1.1 over TLS, keep-alive client and upstream connections, GET / Host: ${BENCH_HOST}, 2-byte response, the same ECDSA P-256 certificate in both proxies`,
  available: opensslUnavailable,
  nodeBaseline: false,
  porticoManifests: tlsManifests,
  porticoArgs: tlsPorticoArgs,
  nginxHttp: tlsNginxHttp,
  probes: tlsProbes,
  setup: (ctx) => ({ ...tlsSetup(ctx), connections: 'kept alive: one handshake per client connection, at the start of each wrk run' }),
  target: (ports) => ({ url: `https://127.0.0.1:${ports.https}/`, headers: { Host: BENCH_HOST } }),
};

const tlsHandshake: Scenario = {
  name: 'tls-handshake',
  description: `a new TLS connection and a full handshake for every request (Connection: close, no session resumption), GET / Host: ${BENCH_HOST}, the same ECDSA P-256 certificate in both proxies`,
  available: () => opensslUnavailable() ?? noResumeShimUnavailable(),
  nodeBaseline: false,
  unit: 'handshake',
  porticoManifests: tlsManifests,
  porticoArgs: tlsPorticoArgs,
  nginxHttp: tlsNginxHttp,
  probes: tlsProbes,
  setup: (ctx) => ({
    ...tlsSetup(ctx),
    connections: 'Connection: close: one request per connection, so requests/s = handshakes/s and CPU µs/req = CPU µs per handshake (and its one request)',
    sessionResumption: 'none: wrk would resume the previous session of each connection slot (SSL_clear keeps it); bench/lib/wrk-no-resume.c, LD_PRELOADed into wrk, drops it, so every handshake is a full one',
  }),
  target: (ports, ctx) => ({
    url: `https://127.0.0.1:${ports.https}/`,
    headers: { Host: BENCH_HOST, Connection: 'close' },
    env: { LD_PRELOAD: noResumeShim(ctx.dir) },
  }),
};

export const SCENARIOS: readonly Scenario[] = [httpKeepAlive, httpNewConnection, httpsKeepAlive, tlsHandshake];
