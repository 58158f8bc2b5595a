// Gateway API hostnames: exact names and `*.` wildcards that match one or more labels (unlike
// Ingress's one-label wildcard). A listener and a route each narrow what the other serves.

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A Hostname as the Gateway API validates it: DNS-1123 subdomain, optional `*.` prefix, not an IP. */
export function validGatewayHostname(h: string): boolean {
  if (h.length === 0 || h.length > 253) return false;
  const name = h.startsWith('*.') ? h.slice(2) : h;
  const labels = name.split('.');
  if (labels.every((l) => /^[0-9]+$/.test(l))) return false;
  return labels.every((l) => l.length <= 63 && LABEL.test(l));
}

/** Whether hostname `host` (exact or wildcard) falls within `pattern` (exact or wildcard). */
function within(host: string, pattern: string): boolean {
  if (!pattern.startsWith('*.')) return host === pattern;
  const suffix = pattern.slice(1); // ".example.com"
  if (host.startsWith('*.')) return host.slice(1).endsWith(suffix) && host.length >= pattern.length;
  return host.endsWith(suffix) && host.length > suffix.length;
}

/**
 * The hostnames a route serves through a listener: with no listener hostname, the route's own;
 * with no route hostnames, the listener's; else each route hostname that the listener covers,
 * narrowed to the listener's when the route's is the wider wildcard. Empty: no intersection.
 * `undefined` in the result's place means "every hostname".
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[]): (string | undefined)[] {
  if (route.length === 0) return [listener];
  if (listener === undefined) return [...route];
  const out: string[] = [];
  for (const h of route) {
    if (within(h, listener)) out.push(h);
    else if (within(listener, h)) out.push(listener);
  }
  return [...new Set(out)];
}

/** Whether two listener hostnames are the same for distinctness (both absent counts as equal). */
export function sameHostname(a: string | undefined, b: string | undefined): boolean {
  return (a ?? '') === (b ?? '');
}

/**
 * A route's spec.hostnames, lower-cased, and those that are not valid hostnames (the API server
 * refuses such an object; in manifest mode the route is refused instead, since dropping the bad
 * names could leave none, and a route without hostnames serves every name of its listener).
 */
export function routeHostnames(raw: unknown): { hostnames: string[]; invalid: string[] } {
  const hostnames: string[] = [];
  const invalid: string[] = [];
  // Not a list at all: refused too (read as none, it would serve every name).
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) return { hostnames, invalid: [JSON.stringify(raw)] };
  for (const h of Array.isArray(raw) ? raw : []) {
    const name = typeof h === 'string' ? h.toLowerCase() : undefined;
    if (name !== undefined && validGatewayHostname(name)) hostnames.push(name);
    else invalid.push(JSON.stringify(h));
  }
  return { hostnames, invalid };
}
