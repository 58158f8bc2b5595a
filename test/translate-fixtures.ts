// Object builders shared by the translation tests (allowlist, property test).

import type { KubeObject, SourceSnapshot } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslatorState } from '../controller/translate.ts';
import { compileTable } from '../router/index.ts';

export const CLASS: KubeObject = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'portico' }, spec: { controller: 'portico.dev/ingress-controller' } };

export function service(name: string, ports: Record<string, unknown>[] = [{ name: 'http', port: 80, targetPort: 8080 }]): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports } };
}

export function slice(svc: string, endpoints: Record<string, unknown>[], ports: Record<string, unknown>[] = [{ name: 'http', port: 8080 }], name = `${svc}-abc`): KubeObject {
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } }, addressType: 'IPv4', ports, endpoints };
}

export function ingress(name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z', generation: 1, ...meta }, spec };
}

export function rule(host: string | undefined, paths: [string, string, string, (number | string)?][]): Record<string, unknown> {
  return {
    ...(host ? { host } : {}),
    http: { paths: paths.map(([path, pathType, svc, port]) => ({ path, pathType, backend: { service: { name: svc, port: typeof port === 'string' ? { name: port } : { number: port ?? 80 } } } })) },
  };
}

export function snapshot(objects: KubeObject[]): SourceSnapshot {
  return { objects: objects.map((object) => ({ object, origin: `${object.metadata.name}.yaml` })), problems: [] };
}

export const ready = (ip: string) => ({ addresses: [ip], conditions: { ready: true } });

export function run(objects: KubeObject[], state: TranslatorState = newTranslatorState(), ingressClass = 'portico') {
  const t = translate(snapshot(objects), { ingressClass, publishAddresses: ['192.0.2.10'] }, state);
  return { ...t, table: compileTable(t.ir, 1) };
}
