// Collects routes and backends from the per-kind translators into one RoutingIR. Output is
// sorted, so the same input always gives the same IR (no-op changes are detected by comparing it).

import type { BackendIR, PassthroughRouteIR, RouteIR, RoutingIR, VirtualHostIR } from '../router/types.ts';

export class TableBuilder {
  private readonly hosts = new Map<string, { routes: RouteIR[]; fallback?: RouteIR }>();
  private readonly backends = new Map<string, BackendIR>();
  private defaultRoute: RouteIR | undefined;
  private readonly passthrough: PassthroughRouteIR[] = [];

  addPassthrough(route: PassthroughRouteIR): void {
    this.passthrough.push(route);
  }

  /** Who already passes this SNI hostname through (same name and wildcard kind), if anyone. */
  passthroughOwner(hostname: string, multiLabelWildcard: boolean): PassthroughRouteIR | undefined {
    return this.passthrough.find((p) => p.hostname === hostname && (p.multiLabelWildcard === true) === multiLabelWildcard);
  }

  addBackend(key: string, backend: BackendIR): void {
    if (!this.backends.has(key)) this.backends.set(key, backend);
  }

  private host(hostname: string): { routes: RouteIR[]; fallback?: RouteIR } {
    let h = this.hosts.get(hostname);
    if (!h) {
      h = { routes: [] };
      this.hosts.set(hostname, h);
    }
    return h;
  }

  addRoute(hostname: string, route: RouteIR): void {
    this.host(hostname).routes.push(route);
  }

  /** The first caller (the oldest object) keeps the host's fallback. */
  setFallback(hostname: string, route: RouteIR): void {
    const h = this.host(hostname);
    h.fallback ??= route;
  }

  /** Sets the table-wide default if none is set; returns the route that holds it. */
  setDefaultRoute(route: RouteIR): RouteIR {
    this.defaultRoute ??= route;
    return this.defaultRoute;
  }

  build(): RoutingIR {
    const virtualHosts: VirtualHostIR[] = [...this.hosts.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([hostname, h]) => ({ hostname, routes: h.routes, ...(h.fallback ? { fallback: h.fallback } : {}) }));
    const backends: Record<string, BackendIR> = {};
    for (const key of [...this.backends.keys()].sort()) backends[key] = this.backends.get(key)!;
    const passthrough = [...this.passthrough].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
    return { virtualHosts, backends, ...(this.defaultRoute ? { defaultRoute: this.defaultRoute } : {}), ...(passthrough.length > 0 ? { passthrough } : {}) };
  }
}
