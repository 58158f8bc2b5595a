// Metrics labels of a route, computed once per compiled route from the routing table alone, so
// the number of series is bounded by the table, never by what clients send. Named as
// ingress-nginx names them (namespace, ingress, host, path, service), so its users' dashboards
// keep working. Pure: the metrics module (src/metrics.ts) turns them into series.

import type { RouteSource, RoutingIR } from './types.ts';

export interface RouteLabels {
  readonly namespace: string;
  /** The Ingress's name; absent for routes of other kinds. */
  readonly ingress?: string;
  /** `Kind/name` (`HTTPRoute/web`) for Gateway API routes; absent for Ingresses. */
  readonly route?: string;
  /** The virtual host's pattern (`*.example.com`, `*` for every host), not the client's Host. */
  readonly host: string;
  /** The route's configured path, not the request's. */
  readonly path: string;
  /** Equal keys, same series: routes that differ only in what labels do not show share them. */
  readonly key: string;
}

export function labelKey(namespace: string, ingress: string | undefined, route: string | undefined, host: string, path: string): string {
  // NUL cannot occur in a Kubernetes name, a hostname or a normalised path.
  return `${namespace}\0${ingress ?? ''}\0${route ?? ''}\0${host}\0${path}`;
}

/**
 * `virtualHost` is the pattern of the virtual host the route belongs to; undefined for the
 * table-wide default route, whose host label is empty (like requests that match no route).
 */
export function routeLabels(source: RouteSource, virtualHost: string | undefined, path: string): RouteLabels {
  const h = virtualHost === undefined ? '' : virtualHost === '' || virtualHost === '*' ? '*' : virtualHost.toLowerCase();
  if (source.kind === 'Ingress') {
    return Object.freeze({ namespace: source.namespace, ingress: source.name, host: h, path, key: labelKey(source.namespace, source.name, undefined, h, path) });
  }
  const route = `${source.kind}/${source.name}`;
  return Object.freeze({ namespace: source.namespace, route, host: h, path, key: labelKey(source.namespace, undefined, route, h, path) });
}

/** The Service name of a backend named `namespace/service:port` (the service label). */
export function serviceLabel(backendName: string): string {
  const slash = backendName.indexOf('/');
  const colon = backendName.lastIndexOf(':');
  return backendName.slice(slash + 1, colon > slash ? colon : backendName.length);
}

/** The key of one route's series towards one backend. */
export function seriesKey(labels: RouteLabels, service: string): string {
  return `${labels.key}\0${service}`;
}

/**
 * Every series key a table can produce: each route (with its virtual host) towards each of its
 * backends. Series whose key is not here belong to routes that left the table.
 */
export function tableSeriesKeys(ir: RoutingIR): Set<string> {
  const keys = new Set<string>();
  const add = (r: { source: RouteSource; path: string; backends: readonly { backend: string }[] }, host: string | undefined) => {
    const labels = routeLabels(r.source, host, r.path);
    const services = r.backends.length === 0 ? [''] : r.backends.map((b) => serviceLabel(ir.backends[b.backend]?.name ?? b.backend));
    for (const s of services) keys.add(seriesKey(labels, s));
    // A route whose backend cannot be picked (every weight 0) answers 503 without a service.
    keys.add(seriesKey(labels, ''));
  };
  for (const vh of ir.virtualHosts) {
    for (const r of vh.routes) add(r, vh.hostname);
    if (vh.fallback !== undefined) add(vh.fallback, vh.hostname);
  }
  if (ir.defaultRoute !== undefined) add(ir.defaultRoute, undefined);
  return keys;
}
