// The routing IR: plain, JSON-safe data that the primary builds and ships to workers over IPC.
// Each worker compiles it into a RoutingTable (see compile.ts). Nothing here holds functions,
// so the same IR serves golden tests, /debug/routes and the wire.

/** RegularExpression (Gateway API) is matched with the safe subset of router/regex.ts. */
export type PathMatchType = 'Exact' | 'Prefix' | 'RegularExpression';

/** Where a route came from, so status, logs and metrics can name the object. */
export interface RouteSource {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** A header or query-parameter condition. Ingress uses none; the Gateway API adds them. */
export interface ValueMatchIR {
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/** A header to set or add (Gateway API HTTPHeader). Names compare case-insensitively. */
export interface HeaderValueIR {
  readonly name: string;
  readonly value: string;
}

/** RequestHeaderModifier / ResponseHeaderModifier: remove, then set (replace), then add (append). */
export interface HeaderModifierIR {
  readonly set?: readonly HeaderValueIR[];
  readonly add?: readonly HeaderValueIR[];
  readonly remove?: readonly string[];
}

/**
 * A path replacement (HTTPPathModifier). ReplacePrefixMatch replaces the route's own PathPrefix
 * (so it is only valid on Prefix routes), element-wise.
 */
export interface PathModifierIR {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly value: string;
}

/** RequestRedirect: answered by Portico, never proxied. Unset fields keep the request's. */
export interface RedirectIR {
  readonly scheme?: 'http' | 'https';
  readonly hostname?: string;
  readonly port?: number;
  readonly path?: PathModifierIR;
  readonly statusCode: 301 | 302 | 303 | 307 | 308;
}

/** URLRewrite: what the upstream request carries instead of the client's Host and path. */
export interface RewriteIR {
  readonly hostname?: string;
  readonly path?: PathModifierIR;
}

/**
 * Typed request/response actions of a route (Gateway API rule filters) or of one weighted
 * backend (backendRef filters: they apply only to the requests that backend gets).
 */
export interface FiltersIR {
  readonly requestHeaders?: HeaderModifierIR;
  readonly responseHeaders?: HeaderModifierIR;
  readonly rewrite?: RewriteIR;
  /**
   * Answered by Portico instead of forwarding: on a rule (which then has no backends), or on a
   * backendRef (the requests that backendRef is picked for).
   */
  readonly redirect?: RedirectIR;
  /**
   * RequestMirror (rule level): a copy of each request, after the header filters, goes to these
   * backends too; their answers are discarded and never delay the forwarded request.
   */
  readonly mirrors?: readonly MirrorIR[];
  /** CORS: a backendRef's, for the requests it is picked for, replaces the rule's. */
  readonly cors?: CorsIR;
}

/** HTTPCORSFilter: preflights answered by Portico, CORS headers added to allowed origins' answers. */
export interface CorsIR {
  /** `*`, `scheme://host[:port]`, or `scheme://*.suffix[:port]` (any number of labels). */
  readonly allowOrigins: readonly string[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly allowCredentials: boolean;
  /** Seconds a preflight may be cached (the spec's default is 5). */
  readonly maxAge: number;
}

export interface MirrorIR {
  /** Key into RoutingIR.backends. */
  readonly backend: string;
  /** Share of requests mirrored, 0-1 (RequestMirror percent or fraction). */
  readonly fraction: number;
}

export interface WeightedBackendIR {
  /** Key into RoutingIR.backends. */
  readonly backend: string;
  readonly weight: number;
  /** Applied after the route's own filters, to this backend's share of requests only. */
  readonly filters?: FiltersIR;
}

export interface RouteIR {
  /** Stable, unique within the table: used as the metrics/access-log route label. */
  readonly id: string;
  readonly pathType: PathMatchType;
  /** Normalised: starts with '/', no trailing slash for Prefix except the root; for RegularExpression the pattern. */
  readonly path: string;
  readonly method?: string;
  readonly headers?: readonly ValueMatchIR[];
  readonly queryParams?: readonly ValueMatchIR[];
  readonly filters?: FiltersIR;
  readonly backends: readonly WeightedBackendIR[];
  /** Upstream response-header timeout for this route, in milliseconds. */
  readonly timeoutMs?: number;
  /**
   * The whole exchange, from the request's arrival to the end of the response (Gateway API
   * timeouts.request), in milliseconds: 504 when no response has started, else the response is cut.
   */
  readonly requestTimeoutMs?: number;
  /** Requests arriving over plain HTTP are redirected to HTTPS (308) instead of proxied. */
  readonly httpsRedirect?: boolean;
  /**
   * Gateway API: the listener the route is attached through (its port, and hostname '' when it
   * has none). A request is served only by routes of the most specific listener on its port that
   * matches its Host (listener isolation); Ingress routes carry none and apply on every port.
   */
  readonly listener?: ListenerRefIR;
  /** Only clients (by real client IP) in these CIDRs are served; others get 403. */
  readonly allowSourceRanges?: readonly string[];
  /**
   * An entry the translator derived from another route (a GRPCRoute service-only match copied to
   * `/service/method`): tried after every route not derived at the same path and kind of match,
   * whatever their conditions.
   */
  readonly derived?: boolean;
  readonly source: RouteSource;
}

export interface VirtualHostIR {
  /** Lower-case hostname, `*.suffix` for a one-label wildcard, or '*' for every host. */
  readonly hostname: string;
  /**
   * Gateway API hostnames: `*.suffix` matches any number of labels before the suffix (Ingress's
   * matches exactly one). The longest matching suffix is tried first.
   */
  readonly multiLabelWildcard?: boolean;
  readonly routes: readonly RouteIR[];
  /** Served when the host matches but no route does (an Ingress's spec.defaultBackend). */
  readonly fallback?: RouteIR;
}

export interface EndpointIR {
  readonly address: string;
  readonly port: number;
}

export interface BackendIR {
  /** `namespace/service:port`, as users name it. */
  readonly name: string;
  readonly protocol: 'http' | 'https' | 'h2c';
  readonly endpoints: readonly EndpointIR[];
  /** Why the backend has no endpoints, for the 503 body and logs. */
  readonly unavailableReason?: string;
  /**
   * Requests given this backend are answered with this status instead of being proxied: 500 for
   * a Gateway API backendRef that cannot be resolved (or a rule without one), as the spec asks.
   */
  readonly errorStatus?: 500;
}

/** A hostname whose TLS connections are spliced, still encrypted, to a backend (by SNI). */
export interface PassthroughRouteIR {
  /** Lower-case hostname or `*.suffix` (one label, unless multiLabelWildcard). */
  readonly hostname: string;
  /** Gateway API (TLSRoute): `*.suffix` matches any number of labels; the longest suffix wins. */
  readonly multiLabelWildcard?: boolean;
  /** Key into RoutingIR.backends: the one backend, or the first of `backends`. */
  readonly backend: string;
  /**
   * A TLSRoute with several weighted backendRefs: each connection is spliced to one of these,
   * chosen by weight as RouteIR.backends are (weight 0 never). Absent: `backend` takes them all.
   */
  readonly backends?: readonly Pick<WeightedBackendIR, 'backend' | 'weight'>[];
  readonly source: RouteSource;
  /**
   * As RouteIR.allowSourceRanges (an Ingress's whitelist-source-range): only these client
   * addresses (the TCP peer, or a trusted PROXY header's source) may open a connection.
   */
  readonly allowSourceRanges?: readonly string[];
}

/**
 * A listener on an address and port of its own (a Gateway listener on a port other than
 * --http-port and --https-port, whose routes are the table's top level). Every worker binds it
 * while it is in the table, and routes its requests on its own virtual hosts only.
 */
export interface ListenerIR {
  /** `address:port` (`:8080` for the bind address), unique in a table. */
  readonly key: string;
  /** An IP address to bind; '' for --bind-address. */
  readonly address: string;
  readonly port: number;
  /**
   * HTTPS terminates TLS with the table's certificates, selected by SNI (after passing through
   * the SNI names of `passthrough`, when the port also has TLS Passthrough listeners). TLS passes
   * through only: a connection whose SNI matches no `passthrough` entry is refused, never
   * terminated.
   */
  readonly protocol: 'HTTP' | 'HTTPS' | 'TLS';
  readonly virtualHosts: readonly VirtualHostIR[];
  /** TLSRoute hostnames of this socket's TLS Passthrough listeners (as RoutingIR.passthrough for --https-port). */
  readonly passthrough?: readonly PassthroughRouteIR[];
  /**
   * The Gateway listeners behind this socket, for listener isolation; when absent, the table's
   * (RoutingIR.gatewayListeners). A socket on an address of its own has only its Gateway's.
   */
  readonly gatewayListeners?: readonly ListenerRefIR[];
}

/** A Gateway API listener: its port and hostname ('' for none, `*.suffix` for any number of labels). */
export interface ListenerRefIR {
  readonly port: number;
  readonly hostname: string;
  /** A Gateway spec.addresses IP the listener has a socket of its own on (RoutingIR.listeners). */
  readonly address?: string;
}

export interface RoutingIR {
  readonly virtualHosts: readonly VirtualHostIR[];
  readonly backends: Readonly<Record<string, BackendIR>>;
  /** Served when no virtual host matches at all. */
  readonly defaultRoute?: RouteIR;
  readonly passthrough?: readonly PassthroughRouteIR[];
  /** Listeners beyond the two main ones; their routes use the same backends. */
  readonly listeners?: readonly ListenerIR[];
  /**
   * Programmed Gateway API listeners on --http-port/--https-port: which one a request belongs to
   * (RouteIR.listener), for listener isolation.
   */
  readonly gatewayListeners?: readonly ListenerRefIR[];
}
