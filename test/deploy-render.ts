// Rendering deploy/ for the deploy tests: `kubectl kustomize` of deploy/, each overlay and each
// example, parsed into objects, and Portico's workload found in them.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { Manifest } from './deploy-validate.ts';

export const DEPLOY = fileURLToPath(new URL('../deploy/', import.meta.url));
const OVERLAYS = join(DEPLOY, 'overlays');

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 20_000 });
/** kubectl (with its built-in kustomize) is on PATH; the deploy tests that render skip without it. */
export const HAVE_KUBECTL = kubectl.status === 0;
if (!HAVE_KUBECTL) console.warn('deploy tests that render skipped: kubectl (with its built-in kustomize) is not on PATH');

/** Every kustomization: deploy/, each overlay, each example. */
export const TARGETS: string[] = [
  '.',
  ...(existsSync(OVERLAYS) ? readdirSync(OVERLAYS).map((d) => `overlays/${d}`) : []),
  ...readdirSync(join(DEPLOY, 'examples')).map((d) => `examples/${d}`),
].filter((d) => existsSync(join(DEPLOY, d, 'kustomization.yaml')));

const rendered = new Map<string, Manifest[]>();
/** `kubectl kustomize deploy/<target>` as objects (cached: each target renders once per file). */
export function render(target: string): Manifest[] {
  let objects = rendered.get(target);
  if (objects === undefined) {
    const r = spawnSync('kubectl', ['kustomize', join(DEPLOY, target)], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`kubectl kustomize ${target} failed: ${r.stderr}`);
    objects = parseAllDocuments(r.stdout).map((d) => {
      if (d.errors.length > 0) throw new Error(`${target}: ${d.errors[0].message}`);
      return d.toJS() as Manifest;
    });
    rendered.set(target, objects);
  }
  return objects;
}

export const find = (objects: Manifest[], kind: string, name?: string): Manifest[] => objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

export type Obj = Record<string, any>;

export interface Workload {
  readonly o: Manifest;
  readonly pod: Obj;
  readonly c: Obj;
}

/** Portico's workload (Deployment or DaemonSet) in a rendering, with its pod spec and container. */
export function workloads(objects: Manifest[]): Workload[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet')
    .map((o) => {
      const pod = (o as Obj).spec.template.spec as Obj;
      return { o, pod, c: (pod.containers as Obj[]).find((c) => c.name === 'portico') as Obj };
    })
    .filter((w) => w.c !== undefined);
}

/**
 * The RBAC rules bound to a ServiceAccount, by scope: '' for the ClusterRoles of its
 * ClusterRoleBindings, a namespace for what its RoleBindings there grant (a Role of that
 * namespace, or a ClusterRole applied to it).
 */
export function boundRules(objects: Manifest[], sa: string, saNamespace: string): Map<string, Obj[]> {
  const bound = (b: Manifest): boolean => (((b as Obj).subjects ?? []) as Obj[]).some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === saNamespace);
  const rulesOf = (kind: string, name: string, ns?: string): Obj[] =>
    find(objects, kind, name).filter((r) => kind === 'ClusterRole' || r.metadata.namespace === ns).flatMap((r) => ((r as Obj).rules ?? []) as Obj[]);
  const out = new Map<string, Obj[]>();
  const add = (scope: string, rules: Obj[]): void => void out.set(scope, [...(out.get(scope) ?? []), ...rules]);
  for (const b of find(objects, 'ClusterRoleBinding').filter(bound)) add('', rulesOf('ClusterRole', (b as Obj).roleRef.name));
  for (const b of find(objects, 'RoleBinding').filter(bound)) add(b.metadata.namespace!, rulesOf((b as Obj).roleRef.kind, (b as Obj).roleRef.name, b.metadata.namespace));
  return out;
}
