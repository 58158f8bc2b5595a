// router/filters.ts CORS decisions beyond the conformance cases (e2e-gateway-cors has those):
// origins compared with the API's default ports, Vary: Origin whenever the answer depends on the
// Origin (Fetch, "CORS protocol and HTTP caches"), and how the headers join the upstream's.
import { describe, expect, it } from 'vitest';
import { addCorsHeaders, compileCors, corsOriginAllowed, corsPreflightHeaders, corsResponseHeaders, FilterError } from '../router/filters.ts';
import type { CorsIR } from '../router/types.ts';

const cors = (ir: Partial<CorsIR>) => compileCors({ allowOrigins: [], allowMethods: [], allowHeaders: [], exposeHeaders: [], allowCredentials: false, maxAge: 5, ...ir })!;

describe('origins', () => {
  const c = cors({ allowOrigins: ['https://www.foo.com', 'http://a.test:80', 'https://b.test:8443', 'https://*.bar.com:443'] });
  it.each([
    ['https://www.foo.com', true],
    ['https://www.foo.com:443', true],
    ['HTTPS://WWW.FOO.COM', true],
    ['https://www.foo.com:8443', false],
    ['http://www.foo.com', false],
    ['http://a.test', true],
    ['https://b.test:8443', true],
    ['https://b.test', false],
    ['https://xpto.www.bar.com', true],
    ['https://x.bar.com:443', true],
    ['https://bar.com', false],
    ['https://foobar.com', false],
    ['null', false],
  ])('%s allowed: %s', (origin, want) => {
    expect(corsOriginAllowed(c, origin)).toBe(want);
  });

  it("refuses what the API refuses: '*' beside others, bad origins", () => {
    expect(() => cors({ allowOrigins: ['*', 'https://a.test'] })).toThrow(FilterError);
    expect(() => cors({ allowOrigins: ['a.test'] })).toThrow(FilterError);
    expect(() => cors({ allowOrigins: ['https://a.test/path'] })).toThrow(FilterError);
    expect(() => cors({ allowOrigins: ['*'], allowMethods: ['*', 'GET'] })).toThrow(FilterError);
  });
});

describe('Vary: Origin', () => {
  const listed = cors({ allowOrigins: ['https://a.test'], exposeHeaders: ['x-one'] });
  const any = cors({ allowOrigins: ['*'] });
  const anyWithCredentials = cors({ allowOrigins: ['*'], allowCredentials: true });

  it('on every answer whose CORS headers depend on the Origin, allowed or not, Origin sent or not', () => {
    expect(corsResponseHeaders(listed, 'https://a.test')).toEqual([['access-control-allow-origin', 'https://a.test'], ['vary', 'Origin'], ['access-control-expose-headers', 'x-one']]);
    expect(corsResponseHeaders(listed, 'https://b.test')).toEqual([['vary', 'Origin']]);
    expect(corsResponseHeaders(listed, undefined)).toEqual([['vary', 'Origin']]);
    expect(corsPreflightHeaders(listed, 'https://b.test', 'GET', undefined)).toEqual([['vary', 'Origin']]);
    expect(corsResponseHeaders(anyWithCredentials, undefined)).toEqual([['vary', 'Origin']]);
  });

  it('not when every origin gets `*`', () => {
    expect(corsResponseHeaders(any, 'https://b.test')).toEqual([['access-control-allow-origin', '*']]);
    expect(corsResponseHeaders(any, undefined)).toEqual([]);
  });
});

describe('addCorsHeaders', () => {
  it('replaces the upstream CORS values and adds Origin to its Vary once', () => {
    const lines = corsResponseHeaders(cors({ allowOrigins: ['https://a.test'], allowCredentials: true }), 'https://a.test');
    expect(addCorsHeaders({ 'access-control-allow-origin': 'https://evil.test', vary: 'Accept-Encoding', 'content-type': 'text/plain' }, lines)).toEqual({ 'access-control-allow-origin': 'https://a.test', vary: 'Accept-Encoding, Origin', 'access-control-allow-credentials': 'true', 'content-type': 'text/plain' });
    expect(addCorsHeaders({ vary: ['accept', 'origin'] }, [['vary', 'Origin']])).toEqual({ vary: ['accept', 'origin'] });
    expect(addCorsHeaders({ vary: '*' }, [['vary', 'Origin']])).toEqual({ vary: '*' });
    const same = {};
    expect(addCorsHeaders(same, [])).toBe(same);
  });
});
