// Access control by client address, decided on the real client IP (after PROXY protocol and
// trusted forwarded-for hops): a route's own portico.dev/whitelist-source-range, else the
// whitelist-source-range setting (ingress-nginx's ConfigMap key of the same name), else open.

import { CidrSet } from './cidr.ts';

/** The part of a route (RouteIR) the allowlist reads. */
export interface AllowlistRoute {
  /** From the Ingress annotation; [] when it could not be parsed (every client denied). */
  readonly allowSourceRanges?: readonly string[];
}

/**
 * The part of a request's forwarding values (a RealIpResult, passed on as ForwardedValues) the
 * allowlist reads: the client address and the configured default allowlist.
 */
export interface AllowlistRequest {
  readonly clientIp: string;
  readonly defaultAllowlist?: CidrSet | undefined;
}

// Parsed once per route of a compiled table (the IR route objects live as long as the table).
const routeSets = new WeakMap<AllowlistRoute, CidrSet>();
const DENY_ALL = new CidrSet();

/**
 * Why the request must be answered 403, or undefined when it may go on. A route's own
 * allowlist replaces the default one, it does not add to it.
 */
export function allowlistDenial(route: AllowlistRoute, request: AllowlistRequest): string | undefined {
  const own = route.allowSourceRanges;
  if (own !== undefined) {
    let set = routeSets.get(route);
    if (set === undefined) {
      // Translation already emits only valid ranges (router/cidr.ts); should an entry still fail
      // to parse, the route denies every client rather than serve a wider set than written.
      const parsed = CidrSet.parse(own);
      set = parsed.errors.length > 0 ? DENY_ALL : parsed.set;
      routeSets.set(route, set);
    }
    return set.contains(request.clientIp) ? undefined : `client ${request.clientIp} not in ${own.join(',') || '(empty allowlist)'}`;
  }
  const fallback = request.defaultAllowlist;
  if (fallback === undefined || fallback.contains(request.clientIp)) return undefined;
  return `client ${request.clientIp} not in whitelist-source-range ${fallback.toString()}`;
}
