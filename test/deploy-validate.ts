// Schema checks for the rendered deploy/ manifests, used by test/deploy.test.ts.
//
// Two checks for built-in kinds: the official OpenAPI schemas (kubernetes-models: types,
// required fields, enums, formats), and unknown fields, which those schemas allow but an API
// server with strict field validation (what kubectl apply asks for) refuses; a misspelt
// `readinesProbe` would otherwise pass. Unknown fields are found by walking the object along
// @kubernetes/client-node's model type maps, which list every field of every built-in type.
// Custom resources (GatewayClass, MetalLB's pools) get small shape checks of their own here.

import * as k8s from '@kubernetes/client-node';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface TypeMapEntry {
  readonly baseName: string;
  readonly type: string;
}
type ModelClass = { getAttributeTypeMap(): TypeMapEntry[] };

const models = k8s as unknown as Record<string, ModelClass | undefined>;

/** client-node's class name for apiVersion/kind: V1Deployment, V1PodDisruptionBudget, ... */
function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop()!;
  return version[0].toUpperCase() + version.slice(1) + kind;
}

function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(v, map[1], `${path}.${k}`, out);
    return;
  }
  const model = models[type];
  if (model === undefined || typeof model.getAttributeTypeMap !== 'function' || typeof value !== 'object' || Array.isArray(value)) return;
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const t = fields.get(k);
    if (t === undefined) out.push(`${path}.${k}: unknown field`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

type Validator = (o: Manifest) => string[];

/** kubernetes-models' module for apiVersion/kind (core v1 lives under v1/). */
async function schemaValidate(o: Manifest): Promise<string[] | undefined> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const spec = `kubernetes-models/${group === '' ? '' : group + '/'}${version}/${o.kind}`;
  let mod: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    mod = (await import(spec)) as typeof mod;
  } catch {
    return undefined;
  }
  const Model = mod[o.kind];
  if (Model === undefined) return undefined;
  try {
    new Model(o).validate();
    return [];
  } catch (err) {
    return [`schema: ${(err as Error).message}`];
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// Gateway API v1 GatewayClass spec.controllerName (kubernetes-facts.md §5).
const CONTROLLER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/;

function onlyKeys(o: unknown, allowed: readonly string[], path: string, out: string[]): void {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    out.push(`${path}: not an object`);
    return;
  }
  for (const k of Object.keys(o)) if (!allowed.includes(k)) out.push(`${path}.${k}: unknown field`);
}

function metaCheck(o: Manifest, namespaced: boolean, out: string[]): void {
  onlyKeys(o, ['apiVersion', 'kind', 'metadata', 'spec'], '', out);
  if (!DNS_LABEL.test(o.metadata?.name ?? '')) out.push(`metadata.name ${JSON.stringify(o.metadata?.name)} is not a DNS label`);
  if (namespaced !== (o.metadata?.namespace !== undefined)) out.push(namespaced ? 'metadata.namespace missing' : 'metadata.namespace set on a cluster-scoped kind');
}

/** Hand-written checks for the custom resources the manifests use (no schema package for them). */
const CUSTOM: Record<string, Validator> = {
  'gateway.networking.k8s.io/v1 GatewayClass': (o) => {
    const out: string[] = [];
    metaCheck(o, false, out);
    const spec = o.spec as Record<string, unknown>;
    onlyKeys(spec, ['controllerName', 'parametersRef', 'description'], 'spec', out);
    const name = spec?.controllerName;
    if (typeof name !== 'string' || name.length > 253 || !CONTROLLER_NAME.test(name)) out.push(`spec.controllerName ${JSON.stringify(name)} is not domain/path`);
    return out;
  },
  // MetalLB v0.13+ (metallb.io/v1beta1): IPAddressPool and L2Advertisement.
  'metallb.io/v1beta1 IPAddressPool': (o) => {
    const out: string[] = [];
    metaCheck(o, true, out);
    const spec = o.spec as Record<string, unknown>;
    onlyKeys(spec, ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation'], 'spec', out);
    const addresses = spec?.addresses;
    if (!Array.isArray(addresses) || addresses.length === 0) out.push('spec.addresses: a non-empty list is required');
    else for (const a of addresses) if (typeof a !== 'string' || !/^[0-9a-fA-F.:]+(\/\d{1,3}|-[0-9a-fA-F.:]+)$/.test(a)) out.push(`spec.addresses: ${JSON.stringify(a)} is neither a CIDR nor a from-to range`);
    if (spec?.autoAssign !== undefined && typeof spec.autoAssign !== 'boolean') out.push('spec.autoAssign must be a boolean');
    return out;
  },
  'metallb.io/v1beta1 L2Advertisement': (o) => {
    const out: string[] = [];
    metaCheck(o, true, out);
    const spec = o.spec as Record<string, unknown>;
    onlyKeys(spec, ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', 'interfaces'], 'spec', out);
    const pools = spec?.ipAddressPools;
    if (pools !== undefined && (!Array.isArray(pools) || !pools.every((p) => typeof p === 'string' && DNS_LABEL.test(p)))) out.push('spec.ipAddressPools must be a list of pool names');
    return out;
  },
};

/**
 * Every problem found in one rendered object; [] when it is valid. A kind no check knows is a
 * problem too, so a new kind in the manifests cannot go unvalidated.
 */
export async function validateManifest(o: Manifest): Promise<string[]> {
  const custom = CUSTOM[`${o.apiVersion} ${o.kind}`];
  if (custom) return custom(o);
  const schema = await schemaValidate(o);
  const model = modelName(o.apiVersion, o.kind);
  if (schema === undefined || models[model] === undefined) return [`no schema known for ${o.apiVersion} ${o.kind}`];
  const out = [...schema];
  unknownFields(o, model, '', out);
  return out;
}
