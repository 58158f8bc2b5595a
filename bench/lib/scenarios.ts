// Benchmark scenarios: one request shape, configured the same way in Portico (manifests) and in
// nginx (a server block), driven by the same load generator options.
//
// Adding a scenario (HTTPS keep-alive, TLS handshakes) means adding an entry to SCENARIOS:
//   - `https-keepalive`: Portico manifests with a TLS Secret and `spec.tls` on the Ingress, an
//     nginx `listen ... ssl` server with the same certificate, url `https://...`; `extraArgs`
//     gives Portico its --https-port.
//   - `tls-handshake`: the same, plus `headers: { Connection: 'close' }`, so every request is a
//     new connection and a full handshake (wrk reconnects after each `Connection: close`).
// `available()` lets a scenario skip itself (e.g. until Portico's HTTPS listener exists).

export const BENCH_HOST = 'bench.local';

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
  target(ports: ProxyPorts): { url: string; headers: Record<string, string> };
}

/** IngressClass, Service, EndpointSlice and an Ingress routing BENCH_HOST `/` to the backend. */
export function benchManifests(backendPort: number, tls?: { secretName: string }): Record<string, unknown>[] {
  const namespace = 'bench';
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

export const SCENARIOS: readonly Scenario[] = [httpKeepAlive];
