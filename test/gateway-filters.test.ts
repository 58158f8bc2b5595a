// router/filters.ts: the pure per-request pieces of Gateway API filters, against the spec's
// tables (HTTPPathModifier ReplacePrefixMatch, RequestRedirect port rules, header modifiers).
import { describe, expect, it } from 'vitest';
import { compileFilters, compileHeaderEdit, compilePathModifier, editHeaderList, editHeaderRecord, FilterError, modifyPath, redirectLocation, rewriteTarget, type CompiledRedirect } from '../router/filters.ts';
import { compileTable, CompileError, pickBackendRef } from '../router/index.ts';
import { decideRoute } from '../src/route-decision.ts';

describe('ReplacePrefixMatch (the spec table)', () => {
  it.each([
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/prefix/one/two', '/prefix/one', '/one', '/one/two'],
    ['/strip-prefix/three', '/strip-prefix', '/', '/three'],
    ['/strip-prefix', '/strip-prefix', '/', '/'],
    ['/anything', '/', '/base', '/base/anything'],
    ['/', '/', '/base', '/base'],
    ['/', '/', '', '/'],
    ['/anything', '/', '', '/anything'],
  ])('%s with prefix %s replaced by %j -> %s', (path, prefix, value, want) => {
    // The replacement exactly as a manifest writes it: '' (strip the prefix) included.
    const m = compilePathModifier({ type: 'ReplacePrefixMatch', value }, prefix)!;
    expect(modifyPath(path, m)).toBe(want);
  });

  it('takes the matched number of elements when the path was normalised to match', () => {
    const m = compilePathModifier({ type: 'ReplacePrefixMatch', value: '/new' }, '/a/b')!;
    expect(modifyPath('/a/%62/c', m)).toBe('/new/c');
  });

  it('ReplaceFullPath replaces the path and keeps the query', () => {
    const m = compilePathModifier({ type: 'ReplaceFullPath', value: '/one' }, undefined)!;
    expect(rewriteTarget('/full/one/two?x=1&y', m)).toBe('/one?x=1&y');
    expect(rewriteTarget('/prefix/one/two?q', compilePathModifier({ type: 'ReplacePrefixMatch', value: '/one' }, '/prefix/one')!)).toBe('/one/two?q');
  });

  it('refuses ReplacePrefixMatch without a prefix route and paths that are not paths', () => {
    expect(() => compilePathModifier({ type: 'ReplacePrefixMatch', value: '/x' }, undefined)).toThrow(FilterError);
    expect(() => compilePathModifier({ type: 'ReplaceFullPath', value: 'x' }, undefined)).toThrow(FilterError);
    expect(() => compilePathModifier({ type: 'ReplaceFullPath', value: '/x?y' }, undefined)).toThrow(FilterError);
  });
});

describe('RequestRedirect Location (port rules)', () => {
  const r = (over: Partial<CompiledRedirect>): CompiledRedirect => ({ scheme: undefined, hostname: 'example.org', port: undefined, path: undefined, statusCode: 302, ...over });
  const http80 = { scheme: 'http' as const, host: 'gw.test', listenerPort: 80, target: '/p?q=1' };
  const http8080 = { ...http80, listenerPort: 8080 };
  const https443 = { ...http80, scheme: 'https' as const, listenerPort: 443 };
  it.each([
    ['listener 80, nothing set', r({}), http80, 'http://example.org/p?q=1'],
    ['listener 80, port 80', r({ port: 80 }), http80, 'http://example.org/p?q=1'],
    ['listener 80, port 8080', r({ port: 8080 }), http80, 'http://example.org:8080/p?q=1'],
    ['listener 80, https', r({ scheme: 'https' }), http80, 'https://example.org/p?q=1'],
    ['listener 80, https 443', r({ scheme: 'https', port: 443 }), http80, 'https://example.org/p?q=1'],
    ['listener 80, https 8443', r({ scheme: 'https', port: 8443 }), http80, 'https://example.org:8443/p?q=1'],
    ['listener 8080, nothing set: the listener port', r({}), http8080, 'http://example.org:8080/p?q=1'],
    ['listener 8080, port 80', r({ port: 80 }), http8080, 'http://example.org/p?q=1'],
    ['listener 8080, https: its well-known port', r({ scheme: 'https' }), http8080, 'https://example.org/p?q=1'],
    ['listener 443, nothing set', r({}), https443, 'https://example.org/p?q=1'],
    ['listener 443, port 8443', r({ port: 8443 }), https443, 'https://example.org:8443/p?q=1'],
    ['listener 443, http', r({ scheme: 'http' }), https443, 'http://example.org/p?q=1'],
    ['listener 443, http 8080', r({ scheme: 'http', port: 8080 }), https443, 'http://example.org:8080/p?q=1'],
    ['no hostname: the request host', r({ hostname: undefined }), http8080, 'http://gw.test:8080/p?q=1'],
  ])('%s', (_name, redirect, req, want) => {
    expect(redirectLocation(redirect, req)).toBe(want);
  });

  it('path modifiers', () => {
    const prefix = r({ path: compilePathModifier({ type: 'ReplacePrefixMatch', value: '/replacement-prefix' }, '/original-prefix') });
    expect(redirectLocation(prefix, { ...http80, target: '/original-prefix/lemon' })).toBe('http://example.org/replacement-prefix/lemon');
    const full = r({ path: compilePathModifier({ type: 'ReplaceFullPath', value: '/full-path-replacement' }, undefined) });
    expect(redirectLocation(full, { ...http80, target: '/full/path/original' })).toBe('http://example.org/full-path-replacement');
  });
});

describe('header modifiers', () => {
  it('request lists: remove and set drop every case of a name; add appends a line after the existing ones', () => {
    const edit = compileHeaderEdit({ set: [{ name: 'X-Header-Set', value: 'header-set' }], add: [{ name: 'X-Header-Add', value: 'header-add' }], remove: ['X-Header-Remove'] })!;
    const out = editHeaderList(['host', 'a.test', 'x-header-set', 'original-val-set', 'x-header-add', 'original-val-add', 'x-header-remove', 'original-val-remove', 'Another', 'kept'], edit);
    expect(out).toEqual(['host', 'a.test', 'x-header-add', 'original-val-add', 'Another', 'kept', 'X-Header-Set', 'header-set', 'X-Header-Add', 'header-add']);
  });

  it('response records: set replaces, add joins as another value, remove drops', () => {
    const edit = compileHeaderEdit({ set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }], add: [{ name: 'X-Header-Add', value: 'add-appends-values' }, { name: 'X-UPPERCASE-ADD', value: 'u' }], remove: ['X-Header-Remove'] })!;
    expect(editHeaderRecord({ 'x-header-set': 'some-other-value', 'x-header-add': 'some-other-value', 'x-header-remove': 'x', 'content-type': 'application/json' }, edit)).toEqual({
      'x-header-set': 'set-overwrites-values',
      'x-header-add': ['some-other-value', 'add-appends-values'],
      'x-uppercase-add': 'u',
      'content-type': 'application/json',
    });
  });

  it('refuses names and values that cannot be sent', () => {
    expect(() => compileHeaderEdit({ set: [{ name: 'bad name', value: 'x' }] })).toThrow(FilterError);
    expect(() => compileHeaderEdit({ add: [{ name: 'x', value: 'a\r\nInjected: 1' }] })).toThrow(FilterError);
    expect(compileHeaderEdit({})).toBeUndefined();
    expect(compileFilters({}, undefined)).toBeUndefined();
  });
});

describe('filters in the compiled table', () => {
  const backends = { b1: { name: 'b1', protocol: 'http' as const, endpoints: [{ address: '10.0.0.1', port: 80 }] }, b2: { name: 'b2', protocol: 'http' as const, endpoints: [{ address: '10.0.0.2', port: 80 }] } };
  const source = { kind: 'HTTPRoute', namespace: 'ns', name: 'r' };
  it('compiles once, frozen, with per-backend filters on the chosen reference', () => {
    const table = compileTable({
      backends,
      virtualHosts: [{ hostname: '*', routes: [{ id: 'r', pathType: 'Prefix', path: '/api', source, filters: { rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2' } } }, backends: [{ backend: 'b1', weight: 1, filters: { requestHeaders: { set: [{ name: 'backend', value: 'b1' }] } } }, { backend: 'b2', weight: 0 }] }] }],
    }, 1);
    const route = table.match('x', '/api/items')!;
    expect(Object.isFrozen(route.filters)).toBe(true);
    expect(rewriteTarget('/api/items?x', route.filters!.rewrite!.path!)).toBe('/v2/items?x');
    for (let i = 0; i < 50; i++) expect(pickBackendRef(route)!.backend.name).toBe('b1');
    expect(editHeaderList([], pickBackendRef(route)!.filters!.requestHeaders!)).toEqual(['backend', 'b1']);
  });
  it('a bad filter is a compile error naming the route', () => {
    expect(() => compileTable({ backends, virtualHosts: [{ hostname: '*', routes: [{ id: 'r', pathType: 'Exact', path: '/x', source, filters: { rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2' } } }, backends: [{ backend: 'b1', weight: 1 }] }] }] }, 1)).toThrow(CompileError);
  });
});

describe('backendRef CORS and RequestRedirect in the route decision', () => {
  const backends = { b1: { name: 'b1', protocol: 'http' as const, endpoints: [{ address: '10.0.0.1', port: 80 }] }, b2: { name: 'b2', protocol: 'http' as const, endpoints: [{ address: '10.0.0.2', port: 80 }] } };
  const source = { kind: 'HTTPRoute', namespace: 'ns', name: 'r' };
  const cors = { allowOrigins: ['https://a.test'], allowMethods: ['PUT'], allowHeaders: [], exposeHeaders: [], allowCredentials: false, maxAge: 5 };
  const fwd = { clientIp: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http', host: 'x', port: '8080' };
  const request = (method: string, headers: Record<string, string>) => ({ method, host: 'x', target: '/p?q', serverName: undefined, localPort: undefined, header: (n: string) => headers[n], queryParam: () => undefined });
  const what = (d: ReturnType<typeof decideRoute>) => (d.action === 'proxy' ? `proxy ${d.backend.name}${d.backendFilters?.cors ? ' +cors' : ''}` : `${d.status}${d.location ? ` ${d.location}` : ''}${d.headers?.some(([n]) => n === 'access-control-allow-origin') ? ' allow-origin' : ''}`);

  it('a backendRef CORS answers the preflights of its share and replaces the rule CORS there; the other share keeps the rule CORS', () => {
    const ruleCors = { ...cors, allowOrigins: ['https://rule.test'] };
    const table = compileTable({ backends, virtualHosts: [{ hostname: '*', routes: [{ id: 'r', pathType: 'Prefix', path: '/', source, filters: { cors: ruleCors }, backends: [{ backend: 'b1', weight: 1, filters: { cors } }, { backend: 'b2', weight: 1 }] }] }] }, 1);
    const pre = (origin: string) => what(decideRoute(table, request('OPTIONS', { origin, 'access-control-request-method': 'PUT' }), fwd, { httpsPort: 443 }));
    // b1 then b2, alternating: a.test is allowed by b1's CORS only, rule.test by the rule's only.
    expect([pre('https://a.test'), pre('https://a.test'), pre('https://rule.test'), pre('https://rule.test')]).toEqual(['204 allow-origin', '204', '204', '204 allow-origin']);
    expect([what(decideRoute(table, request('GET', {}), fwd, { httpsPort: 443 })), what(decideRoute(table, request('GET', {}), fwd, { httpsPort: 443 }))]).toEqual(['proxy b1 +cors', 'proxy b2']);
  });

  it('preflights the rule\'s CORS answers take no pick: the forwarded requests keep their exact shares', () => {
    const table = compileTable({ backends, virtualHosts: [{ hostname: '*', routes: [{ id: 'r', pathType: 'Prefix', path: '/', source, filters: { cors }, backends: [{ backend: 'b1', weight: 1 }, { backend: 'b2', weight: 1 }] }] }] }, 1);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      got.push(what(decideRoute(table, request('OPTIONS', { origin: 'https://a.test', 'access-control-request-method': 'PUT' }), fwd, { httpsPort: 443 })));
      got.push(what(decideRoute(table, request('GET', {}), fwd, { httpsPort: 443 })));
    }
    expect(got).toEqual(['204 allow-origin', 'proxy b1', '204 allow-origin', 'proxy b2', '204 allow-origin', 'proxy b1']);
  });

  it('a backendRef RequestRedirect redirects its share only, Location from the request', () => {
    const table = compileTable({ backends, virtualHosts: [{ hostname: '*', routes: [{ id: 'r', pathType: 'Prefix', path: '/', source, backends: [{ backend: 'b1', weight: 1, filters: { redirect: { hostname: 'moved.test', statusCode: 307 } } }, { backend: 'b2', weight: 1 }] }] }] }, 1);
    const got = Array.from({ length: 4 }, () => what(decideRoute(table, request('GET', {}), fwd, { httpsPort: 443 })));
    expect(got).toEqual(['307 http://moved.test:8080/p?q', 'proxy b2', '307 http://moved.test:8080/p?q', 'proxy b2']);
  });
});
