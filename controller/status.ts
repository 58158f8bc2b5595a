// Status of the objects Portico owns, shaped as the API server stores them. The manifest mode
// serves these at /status; the Kubernetes source writes them to the status subresource.

import { isIP } from 'node:net';
import type { KubeObject } from './objects.ts';

export interface StatusItem {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly namespace?: string; readonly name: string; readonly generation?: number };
  readonly status: Record<string, unknown>;
}

/** `status.loadBalancer.ingress[]`: what ExternalDNS reads to point DNS at Portico. */
export function loadBalancerIngress(addresses: readonly string[]): { ip?: string; hostname?: string }[] {
  return addresses.map((a) => (isIP(a) ? { ip: a } : { hostname: a }));
}

export function ingressStatus(ing: KubeObject, addresses: readonly string[]): StatusItem {
  const lb = loadBalancerIngress(addresses);
  return {
    apiVersion: ing.apiVersion,
    kind: 'Ingress',
    metadata: { namespace: ing.metadata.namespace, name: ing.metadata.name, generation: ing.metadata.generation },
    status: { loadBalancer: lb.length > 0 ? { ingress: lb } : {} },
  };
}
