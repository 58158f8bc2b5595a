// Endpoints apart from routes: an EndpointSlice change (a rollout, a pod going unready) changes
// only which addresses a backend has, so it travels as an endpoint update that workers apply to
// the table they serve, with no route recompiled and no table resent. This module splits an IR
// into its route part and its endpoint part and computes what changed between two endpoint parts.

import type { EndpointIR, RoutingIR } from './types.ts';

/** One backend's endpoint set: the ready endpoints and, when there are none, why. */
export interface EndpointSetIR {
  readonly endpoints: readonly EndpointIR[];
  readonly unavailableReason?: string;
}

/** Endpoint sets by backend key (the keys of RoutingIR.backends). */
export type EndpointSetsIR = Readonly<Record<string, EndpointSetIR>>;

/**
 * The IR without its endpoint sets (as JSON: two IRs with equal route parts need no new table)
 * and the endpoint sets themselves.
 */
export function splitEndpoints(ir: RoutingIR): { routesJson: string; endpoints: EndpointSetsIR } {
  const endpoints: Record<string, EndpointSetIR> = {};
  const backends: Record<string, unknown> = {};
  for (const [key, b] of Object.entries(ir.backends)) {
    const { endpoints: list, unavailableReason, ...rest } = b;
    endpoints[key] = unavailableReason === undefined ? { endpoints: list } : { endpoints: list, unavailableReason };
    backends[key] = rest;
  }
  return { routesJson: JSON.stringify({ ...ir, backends }), endpoints };
}

function sameSet(a: EndpointSetIR, b: EndpointSetIR): boolean {
  if (a.unavailableReason !== b.unavailableReason || a.endpoints.length !== b.endpoints.length) return false;
  for (let i = 0; i < a.endpoints.length; i++) {
    if (a.endpoints[i].address !== b.endpoints[i].address || a.endpoints[i].port !== b.endpoints[i].port) return false;
  }
  return true;
}

/** The sets of `next` that differ from `prev` (both over the same backend keys). */
export function changedEndpointSets(prev: EndpointSetsIR, next: EndpointSetsIR): EndpointSetsIR {
  const out: Record<string, EndpointSetIR> = {};
  for (const [key, set] of Object.entries(next)) {
    const before = prev[key];
    if (before === undefined || !sameSet(before, set)) out[key] = set;
  }
  return out;
}

/** `ir` with the given endpoint sets in place of its own. */
export function withEndpointSets(ir: RoutingIR, sets: EndpointSetsIR): RoutingIR {
  const backends = { ...ir.backends };
  for (const [key, set] of Object.entries(sets)) {
    const b = backends[key];
    if (b === undefined) continue;
    const { unavailableReason: _old, ...rest } = b;
    backends[key] = set.unavailableReason === undefined ? { ...rest, endpoints: set.endpoints } : { ...rest, endpoints: set.endpoints, unavailableReason: set.unavailableReason };
  }
  return { ...ir, backends };
}
