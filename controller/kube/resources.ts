// Every API resource the controller touches, with the verbs it uses. The source builds its
// informers from this list and the status writer and leader election look their paths up here,
// so the RBAC coverage test that reads it cannot drift from the code.

export interface KubeAccess {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
  readonly subresource?: string;
}

const GW = 'gateway.networking.k8s.io';

export const KUBE_ACCESS: readonly KubeAccess[] = [
  { group: 'networking.k8s.io', version: 'v1', resource: 'ingressclasses', kind: 'IngressClass', namespaced: false, verbs: ['list', 'watch'] },
  { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses', kind: 'Ingress', namespaced: true, verbs: ['list', 'watch'] },
  { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses', kind: 'Ingress', namespaced: true, verbs: ['get', 'patch'], subresource: 'status' },
  { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, verbs: ['list', 'watch'] },
  { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true, verbs: ['list', 'watch'] },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, verbs: ['list', 'watch'] },
  { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'gatewayclasses', kind: 'GatewayClass', namespaced: false, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'gatewayclasses', kind: 'GatewayClass', namespaced: false, verbs: ['get', 'patch'], subresource: 'status' },
  { group: GW, version: 'v1', resource: 'gateways', kind: 'Gateway', namespaced: true, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'gateways', kind: 'Gateway', namespaced: true, verbs: ['get', 'patch'], subresource: 'status' },
  { group: GW, version: 'v1', resource: 'httproutes', kind: 'HTTPRoute', namespaced: true, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'httproutes', kind: 'HTTPRoute', namespaced: true, verbs: ['get', 'patch'], subresource: 'status' },
  { group: GW, version: 'v1', resource: 'grpcroutes', kind: 'GRPCRoute', namespaced: true, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'grpcroutes', kind: 'GRPCRoute', namespaced: true, verbs: ['get', 'patch'], subresource: 'status' },
  // TLSRoute is in the standard channel as v1 since Gateway API v1.5 (v1alpha2 before).
  { group: GW, version: 'v1', resource: 'tlsroutes', kind: 'TLSRoute', namespaced: true, verbs: ['list', 'watch'] },
  { group: GW, version: 'v1', resource: 'tlsroutes', kind: 'TLSRoute', namespaced: true, verbs: ['get', 'patch'], subresource: 'status' },
  { group: GW, version: 'v1beta1', resource: 'referencegrants', kind: 'ReferenceGrant', namespaced: true, verbs: ['list', 'watch'] },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true, verbs: ['get', 'create', 'update'] },
];

/** The kinds the source watches (list+watch entries without subresource). */
export function watchedResources(): KubeAccess[] {
  return KUBE_ACCESS.filter((a) => a.subresource === undefined && a.verbs.includes('watch'));
}

export function accessFor(kind: string, subresource?: string): KubeAccess {
  const a = KUBE_ACCESS.find((x) => x.kind === kind && x.subresource === subresource);
  if (a === undefined) throw new Error(`no API access declared for ${kind}${subresource ? '/' + subresource : ''}`);
  return a;
}

export function groupVersion(a: KubeAccess): string {
  return a.group === '' ? a.version : `${a.group}/${a.version}`;
}

/** The REST path of a collection (namespace given for namespaced kinds, else all namespaces) or object. */
export function resourcePath(a: KubeAccess, namespace?: string, name?: string): string {
  const base = a.group === '' ? `/api/${a.version}` : `/apis/${a.group}/${a.version}`;
  const ns = a.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name !== undefined ? `/${encodeURIComponent(name)}${a.subresource ? '/' + a.subresource : ''}` : '';
  return `${base}${ns}/${a.resource}${obj}`;
}
