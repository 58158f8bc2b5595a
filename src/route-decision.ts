// The one route decision every kind of request takes: HTTP/1.1 through node:http, upgrades
// (WebSocket), HTTP/2 and the HTTP/1.1 fast path all ask it, so a route conditioned on method,
// headers or query, an allowlist or a redirect applies alike whatever carried the request. It
// reads the request through RouteRequest, not node:http's classes, and only decides: writing the
// answer is the caller's.

import { isIP } from 'node:net';
import type { CompiledBackend, CompiledEndpoint, CompiledFilters, CompiledMirror, CompiledRoute, RequestAttributes, RoutingTable } from '../router/index.ts';
import { hostKey, normalizeHostname, pickBackendRef, pickEndpoint, redirectLocation } from '../router/index.ts';
import { corsPreflightHeaders } from '../router/filters.ts';
import type { ForwardedValues } from './forwarding.ts';
import { allowlistDenial } from './realip/allowlist.ts';

/** What the decision reads of a request. Lookups are synchronous: one view can serve every request. */
export interface RouteRequest extends RequestAttributes {
  /** Host (HTTP/1.1) or :authority (HTTP/2), after an absolute-form target replaced it. */
  readonly host: string | undefined;
  /** The request target in origin form (path and query). */
  readonly target: string;
  /** The TLS server name (SNI) of the connection; undefined on plain connections or without SNI. */
  readonly serverName: string | undefined;
  /**
   * The local port the connection arrived on: Gateway API listener isolation picks the listener
   * by it. Required here (optional in the router) so that no request path can forget it.
   */
  readonly localPort: number | undefined;
}

export interface DecisionContext {
  /** Port HTTPS is served on, for redirects from plain HTTP (left out of the URL when 443). */
  readonly httpsPort: number;
  /**
   * True when `host` has a certificate of its own other than the one the connection's SNI chose:
   * 421 (RFC 9110 15.5.20). Called only for TLS connections with a server name; `table` is the
   * one the request is routed on (a Gateway listener socket's own, or the main one).
   */
  readonly misdirected?: (serverName: string, host: string, table: RoutingTable) => boolean;
}

export interface ProxyDecision {
  readonly action: 'proxy';
  readonly route: CompiledRoute;
  readonly backend: CompiledBackend;
  readonly endpoint: CompiledEndpoint;
  /** The chosen backendRef's own filters (Gateway API), applied after the route's. */
  readonly backendFilters: CompiledFilters | undefined;
  /** RequestMirrors: the route's, then the chosen backendRef's. */
  readonly mirrors: readonly CompiledMirror[] | undefined;
}

export interface RespondDecision {
  readonly action: 'respond';
  readonly status: 204 | 301 | 302 | 303 | 307 | 308 | 403 | 404 | 421 | 500 | 503;
  /** Short plain-text body (a newline is added by the writer). */
  readonly message: string;
  /** The matched route, when one was; metrics and logs name it. */
  readonly route: CompiledRoute | undefined;
  readonly backend: CompiledBackend | undefined;
  /** Location header of a redirect. */
  readonly location?: string;
  /** Why, for the access log; undefined when the status says it all. */
  readonly error?: string;
  /** More response headers (a CORS preflight's). */
  readonly headers?: readonly (readonly [string, string])[];
}

export type RouteDecision = ProxyDecision | RespondDecision;

function respond(status: RespondDecision['status'], message: string, route?: CompiledRoute, backend?: CompiledBackend, error?: string, location?: string): RespondDecision {
  return { action: 'respond', status, message, route, backend, error, location };
}

const NO_TABLE = Object.freeze(respond(503, 'service unavailable: no routing table yet', undefined, undefined, 'no routing table yet'));
const MISDIRECTED = Object.freeze(respond(421, 'misdirected request: this connection was set up for another host'));
const NO_ROUTE = Object.freeze(respond(404, 'no route for this host and path'));

/** The https:// URL of the same request, for routes that require TLS. */
export function httpsLocation(host: string | undefined, target: string, httpsPort: number): string {
  return `https://${normalizeHostname(host ?? '')}${httpsPort === 443 ? '' : `:${httpsPort}`}${target}`;
}

/** A CORS preflight's Origin and Access-Control-Request-Method; undefined when it is not one. */
function preflightOf(req: RouteRequest): { origin: string; method: string } | undefined {
  const origin = req.header('origin');
  const method = req.header('access-control-request-method');
  return origin !== undefined && method !== undefined ? { origin, method } : undefined;
}

/**
 * Decides what a request gets, in this order: no table yet (503); a Host that belongs to another
 * certificate than the connection's (421); no route (404); a route that requires HTTPS, on plain
 * HTTP (308, before the allowlist as ingress-nginx does: it reveals nothing and the allowlist is
 * then checked on the HTTPS request); a client address the route does not allow (403); a backend
 * the translator could not resolve (its errorStatus, 500 for Gateway API); no ready endpoint (503);
 * else proxy to the picked endpoint.
 */
export function decideRoute(table: RoutingTable | undefined, req: RouteRequest, fwd: ForwardedValues, ctx: DecisionContext): RouteDecision {
  if (table === undefined) return NO_TABLE;
  const host = req.host;
  // A connection set up without a server name (no SNI, or an IP address, which RFC 6066 3 does
  // not allow as one) cannot be misdirected: it was set up for no host in particular, and a new
  // connection, which is all a 421 asks for, would be the same. Such clients (cloud load
  // balancers re-encrypting to Portico, probes by IP) are served by Host, as nginx does.
  const sni = req.serverName !== undefined && isIP(req.serverName) === 0 ? req.serverName : undefined;
  if (sni !== undefined && host !== undefined && ctx.misdirected !== undefined && ctx.misdirected(sni, hostKey(host).name, table)) return MISDIRECTED;
  // Gateway HTTPS listeners: the SNI's listener must be the Host's (GatewayHTTPSListenerDetectMisdirectedRequests).
  if (table.misdirected(req.localPort, sni, host)) return MISDIRECTED;
  const route = table.match(host, req.target, req);
  if (route === undefined) return NO_ROUTE;
  if (route.ir.httpsRedirect === true && fwd.proto !== 'https') {
    const location = httpsLocation(host, req.target, ctx.httpsPort);
    return respond(308, `redirecting to ${location}`, route, undefined, undefined, location);
  }
  const denied = allowlistDenial(route.ir, fwd);
  if (denied !== undefined) return respond(403, 'forbidden: your address is not allowed here', route, undefined, denied);
  // A Gateway API RequestRedirect: answered here, its Location from the route's frozen redirect.
  const redirect = route.filters?.redirect;
  const ruleCors = route.filters?.cors;
  const preflight = req.method === 'OPTIONS' && (ruleCors !== undefined || route.backendAnswers) ? preflightOf(req) : undefined;
  // A backendRef's own CORS or RequestRedirect applies exactly to the requests it is picked for,
  // so the pick comes before the filters that answer here, except where only the rule's CORS
  // answers a preflight (a pick then would shift the weighted shares of the forwarded requests).
  // A rule with a redirect forwards nothing, so nothing is picked.
  const ref = redirect === undefined && (preflight === undefined || route.backendAnswers) ? pickBackendRef(route) : undefined;
  // A Gateway API CORS preflight is answered here, never by the backend: by the backendRef's
  // CORS filter, which is the more specific, else the rule's.
  const cors = ref?.filters?.cors ?? ruleCors;
  if (cors !== undefined && preflight !== undefined) return { action: 'respond', status: 204, message: '', route, backend: undefined, headers: corsPreflightHeaders(cors, preflight.origin, preflight.method, req.header('access-control-request-headers')) };
  const redirectTo = redirect ?? ref?.filters?.redirect;
  if (redirectTo !== undefined) {
    const location = redirectLocation(redirectTo, { scheme: fwd.proto === 'https' ? 'https' : 'http', host: normalizeHostname(host ?? ''), listenerPort: Number(fwd.port) || (fwd.proto === 'https' ? 443 : 80), target: req.target });
    return respond(redirectTo.statusCode, `redirecting to ${location}`, route, ref?.backend, undefined, location);
  }
  const backend = ref?.backend;
  if (backend !== undefined && backend.errorStatus !== undefined) {
    const reason = backend.unavailableReason ?? 'the route has no usable backend';
    // The reason (namespaces, Service names, grants) goes to the access log and /status, not to
    // whoever sent the request.
    return respond(backend.errorStatus, 'internal server error', route, backend, reason);
  }
  const endpoint = backend === undefined ? undefined : pickEndpoint(backend);
  if (backend === undefined || endpoint === undefined) {
    const reason = backend?.unavailableReason ?? 'no backend available';
    return respond(503, 'service unavailable', route, backend, reason);
  }
  const own = ref?.mirrors;
  const mirrors = own === undefined ? route.mirrors : route.mirrors === undefined ? own : [...route.mirrors, ...own];
  return { action: 'proxy', route, backend, endpoint, backendFilters: ref?.filters, mirrors };
}
