// Builders for the manifests end-to-end tests write into a Portico manifest directory.
import { stringify } from 'yaml';

export type Obj = Record<string, unknown>;

export const ingressClass = (name = 'portico', isDefault = false): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name, ...(isDefault ? { annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } : {}) },
  spec: { controller: 'portico.dev/ingress-controller' },
});

export const service = (name: string, port = 80, namespace = 'default', extra: Obj = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { ports: [{ name: 'http', port, ...extra }] },
});

/** An EndpointSlice for `svc` whose endpoints are `host:port` strings (all ready unless given). */
export const endpointSlice = (svc: string, endpoints: (string | { at: string; ready?: boolean; serving?: boolean; terminating?: boolean })[], namespace = 'default', name = `${svc}-1`): Obj => {
  const list = endpoints.map((e) => (typeof e === 'string' ? { at: e } : e));
  const port = Number(list[0]?.at.split(':').pop() ?? 80);
  for (const e of list) if (Number(e.at.split(':').pop()) !== port) throw new Error('one port per slice');
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port }],
    endpoints: list.map((e) => ({ addresses: [e.at.split(':')[0]], conditions: { ready: e.ready ?? true, ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) } })),
  };
};

export interface PathSpec {
  path: string;
  service: string;
  pathType?: string;
  port?: number;
}

export const ingress = (name: string, host: string | undefined, paths: PathSpec[], opts: { namespace?: string; annotations?: Record<string, string>; className?: string | null; defaultBackend?: string } = {}): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: opts.namespace ?? 'default', ...(opts.annotations ? { annotations: opts.annotations } : {}) },
  spec: {
    ...(opts.className === null ? {} : { ingressClassName: opts.className ?? 'portico' }),
    ...(opts.defaultBackend ? { defaultBackend: { service: { name: opts.defaultBackend, port: { number: 80 } } } } : {}),
    rules: [
      {
        ...(host ? { host } : {}),
        http: { paths: paths.map((p) => ({ path: p.path, pathType: p.pathType ?? 'Prefix', backend: { service: { name: p.service, port: { number: p.port ?? 80 } } } })) },
      },
    ],
  },
});

export const toYaml = (...objs: Obj[]): string => objs.map((o) => stringify(o)).join('---\n');
