// A minimal OpenAPI v3 (/openapi/v3 and /openapi/v3/<group-version>): each kind served as a schema
// carrying x-kubernetes-group-version-kind, and its PATCH operation listing fieldValidation.
// kubectl 1.32 needs this much for `apply`: it checks here whether the server validates fields
// (then it sends fieldValidation and skips client-side schema validation) and which kinds exist.
// Schemas carry no properties, so kubectl's apply diff treats every list as atomic (replaced).
import { groupVersion, type Registry } from './resources.ts';

const schemaName = (group: string, version: string, kind: string): string =>
  group === '' ? `io.k8s.api.core.${version}.${kind}` : `io.k8s.api.${group.split('.').reverse().join('.')}.${version}.${kind}`;

export function openapiIndex(reg: Registry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const t of reg.all()) {
    const p = t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${encodeURIComponent(groupVersion(t))}` };
  }
  return { paths };
}

export function openapiGroupVersion(reg: Registry, group: string, version: string): object | undefined {
  const types = reg.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const schemas: Record<string, object> = {};
  const paths: Record<string, object> = {};
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  for (const t of types) {
    const name = schemaName(group, version, t.kind);
    const gvk = [{ group, version, kind: t.kind }];
    schemas[name] = { type: 'object', 'x-kubernetes-group-version-kind': gvk, properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' } } };
    const item = `${prefix}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}/{name}`;
    const params = ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map((n) => ({ name: n, in: 'query', schema: { type: n === 'force' ? 'boolean' : 'string' } }));
    const op = { 'x-kubernetes-group-version-kind': gvk[0], parameters: params, responses: { '200': { content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } } } };
    paths[item] = { get: op, put: op, patch: op, delete: op };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}
