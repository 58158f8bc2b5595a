// The Kubernetes API client: config loading and generic list/discovery/status calls over
// client-node, returning plain JSON objects (never client-node model classes) so the rest of
// the controller handles API objects exactly as it handles manifest files.

import * as k8s from '@kubernetes/client-node';
import type { KubeObject } from '../objects.ts';
import { groupVersion, type KubeAccess } from './resources.ts';

/** `--kubeconfig` first, else KUBECONFIG / ~/.kube/config / in-cluster (client-node's default order). */
export function loadKubeConfig(kubeconfig: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (kubeconfig !== undefined) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return kc;
}

export interface KubeClient {
  readonly kc: k8s.KubeConfig;
  list(a: KubeAccess, namespace: string | undefined, fieldSelector?: string): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  /** Resource names the server serves in group/version; undefined when the group/version is absent. */
  servedResources(group: string, version: string): Promise<Set<string> | undefined>;
  getStatus(a: KubeAccess, namespace: string | undefined, name: string): Promise<KubeObject>;
  patchStatus(a: KubeAccess, namespace: string | undefined, name: string, body: unknown): Promise<KubeObject>;
  readonly coordination: k8s.CoordinationV1Api;
}

/** Typed (core group) responses are model classes with Dates; JSON once to get the wire form back. */
function plain<T>(v: unknown): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export function errorCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function makeKubeClient(kc: k8s.KubeConfig): KubeClient {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  const apis = kc.makeApiClient(k8s.ApisApi);
  const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

  const fill = (a: KubeAccess, items: unknown[]): KubeObject[] =>
    // Built-in lists omit each item's apiVersion and kind.
    items.map((o) => ({ ...(o as KubeObject), apiVersion: groupVersion(a), kind: a.kind }));

  return {
    kc,
    coordination,
    async list(a, namespace, fieldSelector) {
      let res: { items?: unknown[]; metadata?: { resourceVersion?: string } };
      const ns = a.namespaced ? namespace : undefined;
      if (a.group === '') {
        const p = { fieldSelector };
        if (a.resource === 'services') res = plain(ns ? await core.listNamespacedService({ namespace: ns, ...p }) : await core.listServiceForAllNamespaces(p));
        else if (a.resource === 'secrets') res = plain(ns ? await core.listNamespacedSecret({ namespace: ns, ...p }) : await core.listSecretForAllNamespaces(p));
        else if (a.resource === 'namespaces') res = plain(await core.listNamespace(p));
        else throw new Error(`no core list for ${a.resource}`);
      } else if (!a.namespaced) {
        res = await custom.listClusterCustomObject({ group: a.group, version: a.version, plural: a.resource, fieldSelector });
      } else if (ns) {
        res = await custom.listNamespacedCustomObject({ group: a.group, version: a.version, namespace: ns, plural: a.resource, fieldSelector });
      } else {
        res = await custom.listCustomObjectForAllNamespaces({ group: a.group, version: a.version, resourcePlural: a.resource, fieldSelector });
      }
      return { items: fill(a, res.items ?? []), resourceVersion: res.metadata?.resourceVersion ?? '' };
    },
    async servedResources(group, version) {
      try {
        if (group === '') return new Set((await core.getAPIResources()).resources.map((r) => r.name));
        const groups = await apis.getAPIVersions();
        const g = groups.groups.find((x) => x.name === group);
        if (g === undefined || !g.versions.some((v) => v.version === version)) return undefined;
        return new Set((await custom.getAPIResources({ group, version })).resources.map((r) => r.name));
      } catch (err) {
        if (errorCode(err) === 404) return undefined;
        throw err;
      }
    },
    async getStatus(a, namespace, name) {
      const p = { group: a.group, version: a.version, plural: a.resource, name };
      return a.namespaced ? custom.getNamespacedCustomObjectStatus({ ...p, namespace: namespace ?? '' }) : custom.getClusterCustomObjectStatus(p);
    },
    async patchStatus(a, namespace, name, body) {
      // client-node's default Content-Type for PATCH is JSON Patch; this body is a merge patch.
      const p = { group: a.group, version: a.version, plural: a.resource, name, body: body as object };
      return a.namespaced
        ? custom.patchNamespacedCustomObjectStatus({ ...p, namespace: namespace ?? '' }, mergePatch)
        : custom.patchClusterCustomObjectStatus(p, mergePatch);
    },
  };
}
