// HTTPRoute filters and timeouts through a real `portico serve`: what the backend receives
// (headers, Host, path) and what the client gets back (response headers, redirects, 504), with
// the conformance suite's expectations rewritten as our own scenarios.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, ref, send, serviceFor, startEchoPod, statusOf, toYaml, type Echoed, type EchoPod, type Obj } from './gateway-helpers.ts';

let portico: Portico;
const pods: EchoPod[] = [];
let port: number;

const prefix = (value: string): Obj[] => [{ path: { type: 'PathPrefix', value } }];
const onGw = (hostnames: string[], rules: Obj[]): Obj => ({ parentRefs: [{ name: 'gw' }], hostnames, rules });
const reqMod = (m: Obj): Obj => ({ type: 'RequestHeaderModifier', requestHeaderModifier: m });
const respMod = (m: Obj): Obj => ({ type: 'ResponseHeaderModifier', responseHeaderModifier: m });
const redirect = (r: Obj): Obj => ({ type: 'RequestRedirect', requestRedirect: r });
const rewrite = (r: Obj): Obj => ({ type: 'URLRewrite', urlRewrite: r });
const hv = (name: string, value: string): Obj => ({ name, value });

/** A header as the conformance harness reads it: every line of that name (any case), joined with ','. */
function header(e: Echoed | undefined, name: string): string | undefined {
  if (e === undefined) return undefined;
  const values: string[] = [];
  for (let i = 0; i < e.rawHeaders.length; i += 2) if (e.rawHeaders[i].toLowerCase() === name.toLowerCase()) values.push(e.rawHeaders[i + 1]);
  return values.length > 0 ? values.join(',') : undefined;
}

const MULTIPLE = { set: [hv('X-Header-Set-1', 'header-set-1'), hv('X-Header-Set-2', 'header-set-2')], add: [hv('X-Header-Add-1', 'header-add-1'), hv('X-Header-Add-2', 'header-add-2'), hv('X-Header-Add-3', 'header-add-3')], remove: ['X-Header-Remove-1', 'X-Header-Remove-2'] };

beforeAll(async () => {
  for (const svc of ['v1', 'v2', 'v3']) pods.push(await startEchoPod('infra', svc, `${svc}-pod-0`));
  portico = await startPortico({ files: {} });
  port = portico.httpPort;
  const v1 = [ref('v1')];
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [{ name: 'http', port, protocol: 'HTTP' }]),
    ...pods.flatMap((p) => serviceFor([p])),
    // HTTPRouteRequestHeaderModifier
    httpRoute('request-headers', onGw(['req.test'], [
      { matches: prefix('/set'), filters: [reqMod({ set: [hv('X-Header-Set', 'set-overwrites-values')] })], backendRefs: v1 },
      { matches: prefix('/add'), filters: [reqMod({ add: [hv('X-Header-Add', 'add-appends-values')] })], backendRefs: v1 },
      { matches: prefix('/remove'), filters: [reqMod({ remove: ['X-Header-Remove'] })], backendRefs: v1 },
      { matches: prefix('/multiple'), filters: [reqMod(MULTIPLE)], backendRefs: v1 },
      { matches: prefix('/case-insensitivity'), filters: [reqMod({ set: [hv('X-Header-Set', 'header-set')], add: [hv('X-Header-Add', 'header-add')], remove: ['X-Header-Remove'] })], backendRefs: v1 },
    ])),
    // HTTPRouteResponseHeaderModifier (the echo sets response headers named in X-Echo-Set-Header)
    httpRoute('response-headers', onGw(['resp.test'], [
      { matches: prefix('/set'), filters: [respMod({ set: [hv('X-Header-Set', 'set-overwrites-values')] })], backendRefs: v1 },
      { matches: prefix('/add'), filters: [respMod({ add: [hv('X-Header-Add', 'add-appends-values')] })], backendRefs: v1 },
      { matches: prefix('/remove'), filters: [respMod({ remove: ['X-Header-Remove'] })], backendRefs: v1 },
      { matches: prefix('/multiple'), filters: [respMod(MULTIPLE)], backendRefs: v1 },
    ])),
    // HTTPRouteBackendRequestHeaderModifier: the same edits, from backendRefs[].filters
    httpRoute('backend-request-headers', onGw(['backend-req.test'], [
      { matches: prefix('/set'), backendRefs: [ref('v1', { filters: [reqMod({ set: [hv('X-Header-Set', 'set-overwrites-values')] })] })] },
      { matches: prefix('/add'), backendRefs: [ref('v1', { filters: [reqMod({ add: [hv('X-Header-Add', 'add-appends-values')] })] })] },
      { matches: prefix('/remove'), backendRefs: [ref('v1', { filters: [reqMod({ remove: ['X-Header-Remove'] })] })] },
      { matches: prefix('/multiple'), backendRefs: [ref('v1', { filters: [reqMod(MULTIPLE)] })] },
    ])),
    // HTTPRouteRequestHeaderModifierBackendWeights: backendRef filters apply only to that backend's share
    httpRoute('backend-filters', onGw(['backend.test'], [{ backendRefs: [
      ref('v1', { weight: 10, filters: [reqMod({ set: [hv('Backend', 'v1')] })] }),
      ref('v2', { weight: 10, filters: [reqMod({ set: [hv('Backend', 'v2')] }), respMod({ add: [hv('X-Via', 'v2')] })] }),
    ] }])),
    // Redirects: HTTPRouteRedirectHostAndStatus, -Path, -Port, -Scheme, 303/307/308
    httpRoute('redirects', onGw(['redirect.test'], [
      { matches: prefix('/hostname-redirect'), filters: [redirect({ hostname: 'example.org' })] },
      { matches: prefix('/host-and-status'), filters: [redirect({ hostname: 'example.org', statusCode: 301 })] },
      { matches: prefix('/original-prefix'), filters: [redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' } })] },
      { matches: prefix('/full'), filters: [redirect({ path: { type: 'ReplaceFullPath', replaceFullPath: '/full-path-replacement' } })] },
      { matches: prefix('/port'), filters: [redirect({ port: 8083 })] },
      { matches: prefix('/scheme-https'), filters: [redirect({ scheme: 'https', hostname: 'example.org' })] },
      { matches: prefix('/scheme-nil-and-port-80'), filters: [redirect({ port: 80, hostname: 'example.org' })] },
      { matches: prefix('/see-other'), filters: [redirect({ statusCode: 303 })] },
      { matches: prefix('/temporary'), filters: [redirect({ statusCode: 307 })] },
      { matches: prefix('/permanent'), filters: [redirect({ statusCode: 308 })] },
    ])),
    // HTTPRouteRewriteHost and HTTPRouteRewritePath
    httpRoute('rewrites', onGw(['rewrite.test'], [
      { matches: prefix('/one'), filters: [rewrite({ hostname: 'one.example.org' })], backendRefs: v1 },
      { matches: prefix('/prefix/one'), filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/one' } })], backendRefs: v1 },
      { matches: prefix('/strip-prefix'), filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } })], backendRefs: v1 },
      { matches: prefix('/full/one'), filters: [rewrite({ path: { type: 'ReplaceFullPath', replaceFullPath: '/one' } })], backendRefs: v1 },
      { matches: prefix('/rewrite-host-and-modify-headers'), filters: [rewrite({ hostname: 'test.example.org' }), reqMod({ set: [hv('X-Header-Set', 'set-overwrites-values')], add: [hv('X-Header-Add', 'header-val-1'), hv('X-Header-Add-Append', 'header-val-2')], remove: ['X-Header-Remove'] })], backendRefs: v1 },
      { matches: prefix('/backend-rewrite'), backendRefs: [ref('v2', { filters: [rewrite({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/rewritten' } })] })] },
    ])),
    // Filters Portico does not apply: never skipped.
    httpRoute('unsupported', onGw(['unsupported.test'], [
      { matches: prefix('/ext'), filters: [{ type: 'ExtensionRef', extensionRef: { group: 'example.com', kind: 'Auth', name: 'a' } }], backendRefs: v1 },
      { matches: prefix('/'), backendRefs: [ref('v3')] },
    ])),
    // HTTPRouteTimeoutRequest and HTTPRouteTimeoutBackendRequest
    httpRoute('timeouts', onGw(['timeout.test'], [
      { matches: prefix('/request-timeout'), timeouts: { request: '500ms' }, backendRefs: v1 },
      { matches: prefix('/disable-request-timeout'), timeouts: { request: '0s' }, backendRefs: v1 },
      { matches: prefix('/backend-timeout'), timeouts: { backendRequest: '500ms' }, backendRefs: v1 },
      { matches: prefix('/disable-backend-timeout'), timeouts: { backendRequest: '0s' }, backendRefs: v1 },
    ])),
  ));
  await waitFor('routes served', async () => (await send(port, 'timeout.test', '/request-timeout')).status === 200 && (await send(port, 'redirect.test', '/port')).status === 302, 20_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await Promise.all(pods.map((p) => p.close()));
});

describe('RequestHeaderModifier', () => {
  it('set overwrites, add appends as old,new, remove drops; names case-insensitive', async () => {
    let e = (await send(port, 'req.test', '/set', { headers: { 'Some-Other-Header': 'val' } })).echo;
    expect([header(e, 'Some-Other-Header'), header(e, 'X-Header-Set')]).toEqual(['val', 'set-overwrites-values']);
    e = (await send(port, 'req.test', '/set', { headers: { 'X-Header-Set': 'some-other-value' } })).echo;
    expect(header(e, 'X-Header-Set')).toBe('set-overwrites-values');
    expect(header((await send(port, 'req.test', '/add')).echo, 'X-Header-Add')).toBe('add-appends-values');
    expect(header((await send(port, 'req.test', '/add', { headers: { 'X-Header-Add': 'some-other-value' } })).echo, 'X-Header-Add')).toBe('some-other-value,add-appends-values');
    expect(header((await send(port, 'req.test', '/remove', { headers: { 'X-Header-Remove': 'val' } })).echo, 'X-Header-Remove')).toBeUndefined();
    e = (await send(port, 'req.test', '/multiple', { headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' } })).echo;
    expect(['X-Header-Set-1', 'X-Header-Set-2', 'X-Header-Add-1', 'X-Header-Add-2', 'X-Header-Add-3', 'Another-Header', 'X-Header-Remove-1', 'X-Header-Remove-2'].map((n) => header(e, n))).toEqual(['header-set-1', 'header-set-2', 'header-add-1', 'add-val-2,header-add-2', 'header-add-3', 'another-header-val', undefined, undefined]);
    e = (await send(port, 'req.test', '/case-insensitivity', { headers: { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove' } })).echo;
    expect([header(e, 'X-Header-Set'), header(e, 'X-Header-Add'), header(e, 'x-header-remove')]).toEqual(['header-set', 'original-val-add,header-add', undefined]);
  });
});

describe('RequestHeaderModifier on backendRefs', () => {
  it('edits the request its backend gets as the rule-level filter does (HTTPRouteBackendRequestHeaderModifier)', async () => {
    expect(header((await send(port, 'backend-req.test', '/set', { headers: { 'X-Header-Set': 'some-other-value' } })).echo, 'X-Header-Set')).toBe('set-overwrites-values');
    expect(header((await send(port, 'backend-req.test', '/add', { headers: { 'X-Header-Add': 'some-other-value' } })).echo, 'X-Header-Add')).toBe('some-other-value,add-appends-values');
    expect(header((await send(port, 'backend-req.test', '/remove', { headers: { 'X-Header-Remove': 'val' } })).echo, 'X-Header-Remove')).toBeUndefined();
    const e = (await send(port, 'backend-req.test', '/multiple', { headers: { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' } })).echo;
    expect(['X-Header-Set-1', 'X-Header-Set-2', 'X-Header-Add-1', 'X-Header-Add-2', 'X-Header-Add-3', 'Another-Header', 'X-Header-Remove-1', 'X-Header-Remove-2'].map((n) => header(e, n))).toEqual(['header-set-1', 'header-set-2', 'header-add-1', 'add-val-2,header-add-2', 'header-add-3', 'another-header-val', undefined, undefined]);
  });
});

describe('ResponseHeaderModifier', () => {
  const echoSet = (pairs: string) => ({ 'X-Echo-Set-Header': pairs });
  it('edits what the backend answered', async () => {
    let r = await send(port, 'resp.test', '/set', { headers: echoSet('Some-Other-Header:val') });
    expect([r.headers['some-other-header'], r.headers['x-header-set']]).toEqual(['val', 'set-overwrites-values']);
    r = await send(port, 'resp.test', '/set', { headers: echoSet('X-Header-Set:some-other-value') });
    expect(r.headers['x-header-set']).toBe('set-overwrites-values');
    expect((await send(port, 'resp.test', '/add')).headers['x-header-add']).toBe('add-appends-values');
    // node:http joins repeated response header lines with ', ': two lines, old first.
    expect((await send(port, 'resp.test', '/add', { headers: echoSet('X-Header-Add:some-other-value') })).headers['x-header-add']).toBe('some-other-value, add-appends-values');
    expect((await send(port, 'resp.test', '/remove', { headers: echoSet('X-Header-Remove:val') })).headers['x-header-remove']).toBeUndefined();
    r = await send(port, 'resp.test', '/multiple', { headers: echoSet('X-Header-Set-2:set-val-2,X-Header-Add-2:add-val-2,X-Header-Remove-2:remove-val-2,Another-Header:another-header-val,X-Header-Remove-1:val') });
    expect(['x-header-set-1', 'x-header-set-2', 'x-header-add-1', 'x-header-add-2', 'x-header-add-3', 'another-header', 'x-header-remove-1', 'x-header-remove-2'].map((n) => r.headers[n])).toEqual(['header-set-1', 'header-set-2', 'header-add-1', 'add-val-2, header-add-2', 'header-add-3', 'another-header-val', undefined, undefined]);
    expect(r.echo?.service).toBe('v1');
  });
});

describe('backendRef filters', () => {
  it('apply only to the requests their backend gets', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const r = await send(port, 'backend.test', '/');
      const e = r.echo!;
      expect(header(e, 'Backend')).toBe(e.service);
      expect(r.headers['x-via']).toBe(e.service === 'v2' ? 'v2' : undefined);
      seen.add(e.service);
    }
    expect([...seen].sort()).toEqual(['v1', 'v2']);
  });
});

describe('RequestRedirect', () => {
  const loc = async (path: string, method = 'GET') => {
    const r = await send(port, 'redirect.test', path, { method });
    return `${r.status} ${r.headers.location}`;
  };
  it('status, hostname, path modifiers; the listener port unless a scheme or port is set; the query kept', async () => {
    expect(await loc('/hostname-redirect')).toBe(`302 http://example.org:${port}/hostname-redirect`);
    expect(await loc('/host-and-status')).toBe(`301 http://example.org:${port}/host-and-status`);
    expect(await loc('/original-prefix/lemon?x=1')).toBe(`302 http://redirect.test:${port}/replacement-prefix/lemon?x=1`);
    expect(await loc('/full/path/original')).toBe(`302 http://redirect.test:${port}/full-path-replacement`);
    expect(await loc('/port')).toBe('302 http://redirect.test:8083/port');
    expect(await loc('/scheme-https')).toBe('302 https://example.org/scheme-https');
    expect(await loc('/scheme-nil-and-port-80')).toBe('302 http://example.org/scheme-nil-and-port-80');
    expect(await loc('/see-other', 'POST')).toBe(`303 http://redirect.test:${port}/see-other`);
    expect(await loc('/temporary')).toBe(`307 http://redirect.test:${port}/temporary`);
    expect(await loc('/permanent')).toBe(`308 http://redirect.test:${port}/permanent`);
  });

  it('is answered by Portico: no backend sees the request', async () => {
    const before = pods.map((p) => p.received);
    await loc('/hostname-redirect');
    expect(pods.map((p) => p.received)).toEqual(before);
  });
});

describe('URLRewrite', () => {
  it('rewrites the Host and the path the backend sees, keeping the query', async () => {
    const e = (path: string, headers?: Record<string, string>) => send(port, 'rewrite.test', path, { headers }).then((r) => r.echo!);
    expect((await e('/one')).host).toBe('one.example.org');
    expect((await e('/prefix/one/two?q=1')).path).toBe('/one/two?q=1');
    expect((await e('/strip-prefix/three')).path).toBe('/three');
    expect((await e('/strip-prefix')).path).toBe('/');
    expect((await e('/full/one/two')).path).toBe('/one');
    const m = await e('/rewrite-host-and-modify-headers', { 'X-Header-Remove': 'remove-val', 'X-Header-Add-Append': 'append-val-1' });
    expect([m.host, header(m, 'X-Header-Add'), header(m, 'X-Header-Add-Append'), header(m, 'X-Header-Set'), header(m, 'X-Header-Remove')]).toEqual(['test.example.org', 'header-val-1', 'append-val-1,header-val-2', 'set-overwrites-values', undefined]);
    const b = await e('/backend-rewrite/x');
    expect([b.service, b.path, b.host]).toEqual(['v2', '/rewritten/x', 'rewrite.test']);
  });
});

describe('filters Portico does not apply', () => {
  it('answer 500 instead of serving as if absent, and PartiallyInvalid says why', async () => {
    const before = pods.map((p) => p.received);
    expect((await send(port, 'unsupported.test', '/ext')).status).toBe(500);
    expect(pods.map((p) => p.received)).toEqual(before);
    expect((await send(port, 'unsupported.test', '/other')).echo?.service).toBe('v3');
    const { items } = await portico.json<{ items: any[] }>('/status');
    const conds = statusOf(items, 'HTTPRoute', 'infra', 'unsupported').parents[0].conditions;
    expect(condition(conds, 'Accepted')?.status).toBe('True');
    expect(condition(conds, 'PartiallyInvalid')).toMatchObject({ status: 'True', reason: 'UnsupportedValue' });
    expect(condition(conds, 'PartiallyInvalid')?.message).toMatch(/^Dropped Rule: rule 0: filter ExtensionRef example.com\/Auth\/a is not supported|^Dropped Rule: rule 0: filter ExtensionRef Auth\/a is not supported/);
  });
});

describe('timeouts', () => {
  it('request and backendRequest give 504 when exceeded; 0s disables', async () => {
    expect((await send(port, 'timeout.test', '/request-timeout')).status).toBe(200);
    expect((await send(port, 'timeout.test', '/request-timeout?delay=1500')).status).toBe(504);
    expect((await send(port, 'timeout.test', '/disable-request-timeout?delay=1000')).status).toBe(200);
    expect((await send(port, 'timeout.test', '/backend-timeout')).status).toBe(200);
    expect((await send(port, 'timeout.test', '/backend-timeout?delay=1500')).status).toBe(504);
    expect((await send(port, 'timeout.test', '/disable-backend-timeout?delay=1000')).status).toBe(200);
  });

  it('timeouts.request covers the whole exchange: a request body still arriving when it runs out gets 504', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/request-timeout', method: 'POST', headers: { host: 'timeout.test', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('first');
      // The rest would come after the route's 500 ms; the answer must not wait for it.
      const timer = setTimeout(() => req.end('late'), 3000);
      req.on('close', () => clearTimeout(timer));
    });
    expect(status).toBe(504);
  });
});
