import { describe, expect, it } from 'vitest';
import { hasEscapedSlash } from '../router/path.ts';
import { compileTable, normalizePath, pickBackendRef, type RouteIR, type RoutingIR, type VirtualHostIR } from '../router/index.ts';

const source = { kind: 'Ingress', namespace: 'default', name: 'test' };

function route(id: string, pathType: 'Exact' | 'Prefix', path: string, extra: Partial<RouteIR> = {}): RouteIR {
  return { id, pathType, path, backends: [{ backend: 'b', weight: 1 }], source, ...extra };
}

function table(virtualHosts: VirtualHostIR[], defaultRoute?: RouteIR): ReturnType<typeof compileTable> {
  const ir: RoutingIR = { virtualHosts, backends: { b: { name: 'b', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: 1 }] } }, ...(defaultRoute ? { defaultRoute } : {}) };
  return compileTable(ir, 1);
}

// The examples table of the Kubernetes Ingress documentation ("Examples" under "Path types"),
// row by row: the paths an Ingress defines, a request path, and which path (if any) matches.
const KUBERNETES_EXAMPLES: { kind: string; paths: [string, 'Exact' | 'Prefix'][]; request: string; match: string | null }[] = [
  { kind: 'Prefix', paths: [['/', 'Prefix']], request: '/anything/at/all', match: '/' },
  { kind: 'Exact', paths: [['/foo', 'Exact']], request: '/foo', match: '/foo' },
  { kind: 'Exact', paths: [['/foo', 'Exact']], request: '/bar', match: null },
  { kind: 'Exact', paths: [['/foo', 'Exact']], request: '/foo/', match: null },
  { kind: 'Exact', paths: [['/foo/', 'Exact']], request: '/foo', match: null },
  { kind: 'Prefix', paths: [['/foo', 'Prefix']], request: '/foo', match: '/foo' },
  { kind: 'Prefix', paths: [['/foo', 'Prefix']], request: '/foo/', match: '/foo' },
  { kind: 'Prefix', paths: [['/foo/', 'Prefix']], request: '/foo', match: '/foo/' },
  { kind: 'Prefix', paths: [['/foo/', 'Prefix']], request: '/foo/', match: '/foo/' },
  { kind: 'Prefix', paths: [['/aaa/bb', 'Prefix']], request: '/aaa/bbb', match: null },
  { kind: 'Prefix', paths: [['/aaa/bbb', 'Prefix']], request: '/aaa/bbb', match: '/aaa/bbb' },
  { kind: 'Prefix', paths: [['/aaa/bbb/', 'Prefix']], request: '/aaa/bbb', match: '/aaa/bbb/' },
  { kind: 'Prefix', paths: [['/aaa/bbb', 'Prefix']], request: '/aaa/bbb/', match: '/aaa/bbb' },
  { kind: 'Prefix', paths: [['/aaa/bbb', 'Prefix']], request: '/aaa/bbb/ccc', match: '/aaa/bbb' },
  { kind: 'Prefix', paths: [['/aaa/bbb', 'Prefix']], request: '/aaa/bbbxyz', match: null },
  { kind: 'Prefix', paths: [['/', 'Prefix'], ['/aaa', 'Prefix']], request: '/aaa/ccc', match: '/aaa' },
  { kind: 'Prefix', paths: [['/', 'Prefix'], ['/aaa', 'Prefix'], ['/aaa/bbb', 'Prefix']], request: '/aaa/bbb', match: '/aaa/bbb' },
  { kind: 'Prefix', paths: [['/', 'Prefix'], ['/aaa', 'Prefix'], ['/aaa/bbb', 'Prefix']], request: '/ccc', match: '/' },
  { kind: 'Prefix', paths: [['/aaa', 'Prefix']], request: '/ccc', match: null },
  { kind: 'Mixed', paths: [['/foo', 'Prefix'], ['/foo', 'Exact']], request: '/foo', match: '/foo Exact' },
];

describe('Kubernetes Ingress path examples', () => {
  for (const row of KUBERNETES_EXAMPLES) {
    const label = `${row.kind} ${row.paths.map(([p, t]) => `${p}(${t})`).join(', ')} with request ${row.request}`;
    it(label, () => {
      const routes = row.paths.map(([p, t]) => route(row.kind === 'Mixed' ? `${p} ${t}` : p, t, t === 'Prefix' && p !== '/' ? p.replace(/\/$/, '') : p));
      const t = table([{ hostname: '*', routes }]);
      expect(t.match('example.com', row.request)?.id ?? null).toBe(row.match);
    });
  }
});

describe('path matching', () => {
  const t = table([{ hostname: '*', routes: [route('exact-root', 'Exact', '/'), route('api', 'Prefix', '/api'), route('api-v1', 'Prefix', '/api/v1'), route('login', 'Exact', '/api/login')] }]);

  it('the longest prefix wins, exact beats prefix', () => {
    expect(t.match('h', '/')?.id).toBe('exact-root');
    expect(t.match('h', '/api')?.id).toBe('api');
    expect(t.match('h', '/api/v1/users')?.id).toBe('api-v1');
    expect(t.match('h', '/api/v2')?.id).toBe('api');
    expect(t.match('h', '/api/login')?.id).toBe('login');
    expect(t.match('h', '/api/login/x')?.id).toBe('api');
    expect(t.match('h', '/apix')).toBeUndefined();
    expect(t.match('h', '/other')).toBeUndefined();
  });

  it('ignores the query string and fragment', () => {
    expect(t.match('h', '/api/login?x=/api/v1')?.id).toBe('login');
    expect(t.match('h', '/api?x')?.id).toBe('api');
  });

  it('normalises dot segments, repeated slashes and escaped unreserved characters before matching', () => {
    expect(t.match('h', '/static/../api/login')?.id).toBe('login');
    expect(t.match('h', '//api//v1')?.id).toBe('api-v1');
    expect(t.match('h', '/%61pi/v1')?.id).toBe('api-v1');
    expect(t.match('h', '/../../api')?.id).toBe('api');
  });

  it('routes an escaped slash (%2F, %5C) or a backslash as the slash a decoding backend reads', () => {
    // The route must be the one the backend's decoded path selects: `/x/..%2fapi/login` is
    // `/api/login` to a backend that decodes before resolving dot segments.
    expect(t.match('h', '/api%2Fv1')?.id).toBe('api-v1');
    expect(t.match('h', '/api%2fv1/users')?.id).toBe('api-v1');
    expect(t.match('h', '/static/..%2fapi/login')?.id).toBe('login');
    expect(t.match('h', '/%2fapi/login')?.id).toBe('login');
    expect(t.match('h', '/api%5Clogin')?.id).toBe('login');
    expect(t.match('h', '/api\\login')?.id).toBe('login');
    expect(t.match('h', '/api/login%2F')?.id).toBe('api');
    // Other reserved escapes stay encoded: %3F is not a query, %25 decodes once only.
    expect(t.match('h', '/api/login%3Fx')?.id).toBe('api');
    expect(t.match('h', '/api/v1%3F/users')?.id).toBe('api');
    expect(t.match('h', '/api%252Fv1')).toBeUndefined();
  });

  it('hasEscapedSlash finds %2F and %5C in either case', () => {
    for (const p of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb', '/%2F']) expect(hasEscapedSlash(p), p).toBe(true);
    for (const p of ['/a/b', '/a%252Fb', '/a%20b', '/a%2', '/a%5', '/a%3Fb', '/a%2Eb']) expect(hasEscapedSlash(p), p).toBe(false);
  });

  it('normalizePath keeps trailing slashes and never climbs above the root', () => {
    expect(normalizePath('/a/b/../c/')).toBe('/a/c/');
    expect(normalizePath('/a/./b/.')).toBe('/a/b/');
    expect(normalizePath('/..')).toBe('/');
    expect(normalizePath('/a//b///')).toBe('/a/b/');
    expect(normalizePath('relative')).toBe('/relative');
  });

  it('paths are case-sensitive', () => {
    expect(t.match('h', '/API')).toBeUndefined();
  });
});

describe('hosts', () => {
  const t = table(
    [
      { hostname: 'foo.bar.com', routes: [route('exact', 'Prefix', '/')] },
      { hostname: '*.bar.com', routes: [route('wildcard', 'Prefix', '/')] },
      { hostname: '*', routes: [route('any', 'Prefix', '/')] },
    ],
  );

  it('exact host first, then one-label wildcard, then the catch-all', () => {
    expect(t.match('foo.bar.com', '/')?.id).toBe('exact');
    expect(t.match('baz.bar.com', '/')?.id).toBe('wildcard');
    expect(t.match('bar.com', '/')?.id).toBe('any');
    expect(t.match('a.baz.bar.com', '/')?.id).toBe('any');
    expect(t.match('other.example', '/')?.id).toBe('any');
    expect(t.match(undefined, '/')?.id).toBe('any');
  });

  it('compares case-insensitively and ignores the port and a trailing dot', () => {
    expect(t.match('FOO.Bar.COM', '/')?.id).toBe('exact');
    expect(t.match('foo.bar.com:8080', '/')?.id).toBe('exact');
    expect(t.match('foo.bar.com.', '/')?.id).toBe('exact');
    expect(t.match('X.BAR.com:443', '/')?.id).toBe('wildcard');
  });

  it('a path the exact host does not serve falls through to the wildcard, then to the catch-all', () => {
    const t2 = table([
      { hostname: 'a.example.com', routes: [route('a-api', 'Prefix', '/api')] },
      { hostname: '*.example.com', routes: [route('wild-shop', 'Prefix', '/shop'), route('wild-api-v2', 'Prefix', '/api/v2')] },
      { hostname: '*', routes: [route('any-docs', 'Prefix', '/docs')] },
    ]);
    expect(t2.match('a.example.com', '/api/v1')?.id).toBe('a-api');
    // The more specific host wins even where the wildcard has the longer path.
    expect(t2.match('a.example.com', '/api/v2')?.id).toBe('a-api');
    expect(t2.match('a.example.com', '/shop/cart')?.id).toBe('wild-shop');
    expect(t2.match('a.example.com', '/docs')?.id).toBe('any-docs');
    expect(t2.match('b.example.com', '/docs')?.id).toBe('any-docs');
    expect(t2.match('b.example.com', '/api')).toBeUndefined();
    expect(t2.match('a.example.com', '/nothing')).toBeUndefined();
  });

  it('a leading dot is not a label for the wildcard', () => {
    expect(t.match('.bar.com', '/')?.id).toBe('any');
  });

  it('IPv6 literals keep their brackets', () => {
    const t2 = table([{ hostname: '*', routes: [route('any', 'Prefix', '/')] }]);
    expect(t2.virtualHost('[::1]:8080')?.hostname).toBe('*');
  });
});

describe('default backends', () => {
  it('the host fallback serves unmatched paths of that host; the table default serves unmatched hosts', () => {
    const t = table(
      [{ hostname: 'a.com', routes: [route('a', 'Prefix', '/a')], fallback: route('a-default', 'Prefix', '/') }, { hostname: 'b.com', routes: [route('b', 'Exact', '/b')] }],
      route('global-default', 'Prefix', '/'),
    );
    expect(t.match('a.com', '/a/1')?.id).toBe('a');
    expect(t.match('a.com', '/zzz')?.id).toBe('a-default');
    expect(t.match('b.com', '/zzz')?.id).toBe('global-default');
    expect(t.match('c.com', '/')?.id).toBe('global-default');
  });

  it("a host's own default backend ends the search before the catch-all's paths", () => {
    const t = table([
      { hostname: 'a.com', routes: [route('a', 'Prefix', '/a')], fallback: route('a-default', 'Prefix', '/') },
      { hostname: '*', routes: [route('any-b', 'Prefix', '/b')] },
    ]);
    expect(t.match('a.com', '/b')?.id).toBe('a-default');
    expect(t.match('x.com', '/b')?.id).toBe('any-b');
  });
});

describe('route conditions (the Gateway API uses these)', () => {
  const req = (method: string, headers: Record<string, string>, query: Record<string, string> = {}) => ({
    method,
    header: (n: string) => headers[n],
    queryParam: (n: string) => query[n],
  });
  const t = table([
    {
      hostname: '*',
      routes: [
        route('plain', 'Prefix', '/'),
        route('hdr', 'Prefix', '/', { headers: [{ name: 'X-Env', type: 'Exact', value: 'canary' }] }),
        route('two-hdr', 'Prefix', '/', { headers: [{ name: 'x-env', type: 'Exact', value: 'canary' }, { name: 'x-user', type: 'RegularExpression', value: 'adm.*' }] }),
        route('post', 'Prefix', '/', { method: 'POST' }),
        route('q', 'Prefix', '/api', { queryParams: [{ name: 'v', type: 'Exact', value: '2' }] }),
      ],
    },
  ]);

  it('more specific conditions win at the same path; a longer path still wins first', () => {
    expect(t.match('h', '/', req('GET', {}))?.id).toBe('plain');
    expect(t.match('h', '/', req('GET', { 'x-env': 'canary' }))?.id).toBe('hdr');
    expect(t.match('h', '/', req('GET', { 'x-env': 'canary', 'x-user': 'admin' }))?.id).toBe('two-hdr');
    expect(t.match('h', '/', req('POST', { 'x-env': 'canary' }))?.id).toBe('post');
    expect(t.match('h', '/api', req('GET', {}, { v: '2' }))?.id).toBe('q');
    expect(t.match('h', '/api', req('GET', {}, { v: '3' }))?.id).toBe('plain');
  });

  it('without request attributes, conditional routes never match', () => {
    expect(t.match('h', '/')?.id).toBe('plain');
  });
});

describe('compiled tables', () => {
  it('are frozen', () => {
    const t = table([{ hostname: '*', routes: [route('r', 'Prefix', '/')] }]);
    expect(Object.isFrozen(t)).toBe(true);
    const r = t.match('x', '/');
    expect(Object.isFrozen(r)).toBe(true);
    expect(() => {
      (r as unknown as { id: string }).id = 'changed';
    }).toThrow();
  });

  it('reject inconsistent input', () => {
    expect(() => compileTable({ virtualHosts: [{ hostname: '*', routes: [{ ...route('r', 'Prefix', '/'), backends: [{ backend: 'missing', weight: 1 }] }] }], backends: {} }, 1)).toThrow(/unknown backend/);
    expect(() => table([{ hostname: 'a.com', routes: [] }, { hostname: 'A.com', routes: [] }])).toThrow(/duplicate/);
    expect(() => table([{ hostname: '*', routes: [route('r', 'Prefix', '/', { headers: [{ name: 'x', type: 'RegularExpression', value: '(' }] })] }])).toThrow(/regular expression/);
  });

  it('many sibling routes: every one is found (hash buckets with collisions)', () => {
    const routes = Array.from({ length: 5000 }, (_, i) => route(`r${i}`, 'Prefix', `/svc-${i}`));
    const t = table([{ hostname: '*', routes }]);
    for (let i = 0; i < 5000; i += 7) expect(t.match('h', `/svc-${i}/x`)?.id).toBe(`r${i}`);
    expect(t.match('h', '/svc-5000')).toBeUndefined();
  });
});

describe('lookup cost', () => {
  it('a lookup allocates nothing: a million of them trigger no garbage collection', async () => {
    const { PerformanceObserver } = await import('node:perf_hooks');
    const routes = Array.from({ length: 2000 }, (_, i) => route(`r${i}`, i % 3 === 0 ? 'Exact' : 'Prefix', `/api/v${i % 7}/svc-${i}`));
    const vhosts: VirtualHostIR[] = Array.from({ length: 50 }, (_, i) => ({ hostname: `h${i}.example.com`, routes }));
    vhosts.push({ hostname: '*.wild.example.com', routes }, { hostname: '*', routes: [route('root', 'Prefix', '/')] });
    const t = table(vhosts);
    const hosts = ['h1.example.com', 'H7.example.com:8080', 'a.wild.example.com', 'unknown.test', 'h49.example.com'];
    const paths = ['/api/v1/svc-1/x', '/api/v3/svc-1000', '/api/v2/svc-2/', '/nothing/here', '/', '/api/v0/svc-1995?q=1'];
    let found = 0;
    for (const h of hosts) for (const p of paths) if (t.match(h, p)) found++; // warm caches and the JIT
    let gcs = 0;
    const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((r) => setTimeout(r, 50));
    gcs = 0;
    for (let i = 0; i < 1_000_000; i++) if (t.match(hosts[i % 5], paths[i % 6]) !== undefined) found++;
    await new Promise((r) => setTimeout(r, 100));
    obs.disconnect();
    expect(found).toBeGreaterThan(0);
    // Allocating even 16 bytes per lookup would be 16 MB: several scavenges. One stray GC can come
    // from the test runner itself on a loaded machine.
    expect(gcs).toBeLessThanOrEqual(1);
  });
});

describe('weighted backendRefs', () => {
  const weighted = (weights: number[]) => {
    const backends = Object.fromEntries(weights.map((_, i) => [`b${i}`, { name: `b${i}`, protocol: 'http' as const, endpoints: [{ address: '127.0.0.1', port: 1000 + i }] }]));
    const table = compileTable({ virtualHosts: [{ hostname: '*', routes: [{ ...route('r', 'Prefix', '/'), backends: weights.map((weight, i) => ({ backend: `b${i}`, weight })) }] }], backends }, 1);
    return table.match('x.test', '/')!;
  };
  const picks = (r: ReturnType<typeof weighted>, n: number) => Array.from({ length: n }, () => pickBackendRef(r)?.backend.name ?? 'none');

  it('gives each reference exactly its weight in every run of totalWeight picks, interleaved', () => {
    const r = weighted([5, 1, 1]);
    for (let run = 0; run < 20; run++) {
      const got = picks(r, 7);
      expect(got.filter((b) => b === 'b0')).toHaveLength(5);
      expect(got.filter((b) => b === 'b1')).toHaveLength(1);
      expect(got.filter((b) => b === 'b2')).toHaveLength(1);
    }
    // Interleaved as nginx's smooth weighted round-robin is, not 5 b0 in a row.
    expect(picks(weighted([5, 1, 1]), 7)).toEqual(['b0', 'b0', 'b1', 'b0', 'b2', 'b0', 'b0']);
  });

  it('never chooses weight 0, and none when every weight is 0', () => {
    const r = weighted([0, 3, 0, 1]);
    const got = picks(r, 400);
    expect(got.filter((b) => b === 'b1')).toHaveLength(300);
    expect(got.filter((b) => b === 'b3')).toHaveLength(100);
    expect(picks(weighted([0, 0]), 5)).toEqual(['none', 'none', 'none', 'none', 'none']);
  });

  it('large Gateway API weights (up to 1,000,000) keep exact shares', () => {
    const got = picks(weighted([1_000_000, 1]), 1_000_001);
    expect(got.filter((b) => b === 'b1')).toHaveLength(1);
  });
});
