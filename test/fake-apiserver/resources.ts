// The API resources the fake server knows, and the discovery documents built from them
// (legacy discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>).

export interface ResourceType {
  group: string; // '' for core
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** Has a /status subresource: main-resource writes keep the stored status. */
  status: boolean;
  shortNames?: string[];
  /** Served from a CustomResourceDefinition (list items carry kind/apiVersion, no strategic merge). */
  crd: boolean;
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function rt(group: string, version: string, kind: string, plural: string, namespaced: boolean, status: boolean, crd = false, shortNames?: string[]): ResourceType {
  return { group, version, kind, plural, singular: kind.toLowerCase(), namespaced, status, crd, shortNames };
}

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export const BUILTIN: ResourceType[] = [
  rt('', 'v1', 'Namespace', 'namespaces', false, true, false, ['ns']),
  rt('', 'v1', 'Service', 'services', true, true, false, ['svc']),
  rt('', 'v1', 'Secret', 'secrets', true, false),
  rt('', 'v1', 'ConfigMap', 'configmaps', true, false, false, ['cm']),
  rt('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true, false),
  rt('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, true, false, ['ing']),
  rt('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false, false),
  rt('coordination.k8s.io', 'v1', 'Lease', 'leases', true, false),
];

// Gateway API v1.6 standard channel as its CRDs serve it: GatewayClass/Gateway/HTTPRoute at v1 and
// v1beta1, GRPCRoute v1, TLSRoute v1 (standard since v1.5; v1alpha2 left the standard channel in
// v1.5 and the experimental one in v1.6), ReferenceGrant v1beta1 (storage) and v1.
export const GATEWAY_API: ResourceType[] = [
  ...['v1', 'v1beta1'].flatMap((v) => [
    rt(GATEWAY_GROUP, v, 'GatewayClass', 'gatewayclasses', false, true, true, ['gc']),
    rt(GATEWAY_GROUP, v, 'Gateway', 'gateways', true, true, true, ['gtw']),
    rt(GATEWAY_GROUP, v, 'HTTPRoute', 'httproutes', true, true, true),
  ]),
  rt(GATEWAY_GROUP, 'v1', 'GRPCRoute', 'grpcroutes', true, true, true),
  rt(GATEWAY_GROUP, 'v1', 'TLSRoute', 'tlsroutes', true, true, true),
  rt(GATEWAY_GROUP, 'v1beta1', 'ReferenceGrant', 'referencegrants', true, false, true, ['refgrant']),
  rt(GATEWAY_GROUP, 'v1', 'ReferenceGrant', 'referencegrants', true, false, true, ['refgrant']),
];

/** TLSRoute v1alpha2, as Gateway API up to v1.4 (and v1.5 experimental) served it. */
export const TLSROUTE_V1ALPHA2: ResourceType = rt(GATEWAY_GROUP, 'v1alpha2', 'TLSRoute', 'tlsroutes', true, true, true);

/** Version preference per group (first is preferred), as the API server orders them. */
const PREFERRED: Record<string, string[]> = { [GATEWAY_GROUP]: ['v1', 'v1beta1', 'v1alpha2'] };

export const groupVersion = (t: { group: string; version: string }): string => (t.group ? `${t.group}/${t.version}` : t.version);

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

export class Registry {
  private types: ResourceType[] = [...BUILTIN];

  install(group: string, types: ResourceType[]): void {
    this.remove(group);
    this.types.push(...types.filter((t) => t.group === group));
  }
  remove(group: string): void {
    this.types = this.types.filter((t) => t.group !== group || !t.crd);
  }
  all(): readonly ResourceType[] {
    return this.types;
  }
  byPlural(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }
  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    return this.types.find((t) => t.group === group && t.version === version && t.kind === kind);
  }
  groups(): string[] {
    return [...new Set(this.types.filter((t) => t.group !== '').map((t) => t.group))];
  }
  versions(group: string): string[] {
    const vs = [...new Set(this.types.filter((t) => t.group === group).map((t) => t.version))];
    const pref = PREFERRED[group] ?? [];
    return vs.sort((a, b) => (pref.indexOf(a) >>> 0) - (pref.indexOf(b) >>> 0));
  }

  apiVersions(serverAddress: string): object {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  apiGroup(group: string): object | undefined {
    const versions = this.versions(group).map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
    if (versions.length === 0) return undefined;
    return { name: group, versions, preferredVersion: versions[0] };
  }
  apiGroupList(): object {
    return { kind: 'APIGroupList', apiVersion: 'v1', groups: this.groups().map((g) => this.apiGroup(g)) };
  }
  apiResourceList(group: string, version: string): object | undefined {
    const types = this.types.filter((t) => t.group === group && t.version === version);
    if (types.length === 0) return undefined;
    const resources: object[] = [];
    for (const t of types) {
      resources.push({ name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: VERBS, ...(t.shortNames ? { shortNames: t.shortNames } : {}) });
      if (t.status) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }), resources };
  }
}
