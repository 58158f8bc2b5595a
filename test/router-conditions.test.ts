// Terminal-node conditions: the one-pass regex matcher agrees with RegExp, conditions are tried
// cheapest first, and the order never changes which route a request gets.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { compileTable, queryParam, type RequestAttributes, type RouteIR, type VirtualHostIR } from '../router/index.ts';
import { compileSafeRegex, directMatcher, unsafeRegexReason } from '../router/regex.ts';
import { prng } from './helpers/prng.ts';

const source = { kind: 'HTTPRoute', namespace: 'default', name: 'test' };
const route = (id: string, extra: Partial<RouteIR> = {}): RouteIR => ({ id, pathType: 'Prefix', path: '/', backends: [{ backend: 'b', weight: 1 }], source, ...extra });
const table = (routes: RouteIR[]) => {
  const vh: VirtualHostIR = { hostname: '*', routes };
  return compileTable({ virtualHosts: [vh], backends: { b: { name: 'b', protocol: 'http', endpoints: [{ address: '127.0.0.1', port: 1 }] } } }, 1);
};

describe('direct (one-pass) regular expressions', () => {
  it('take plain sequences, leave groups, alternation and overlapping repetitions to RegExp', () => {
    for (const p of ['t-[0-9]+', '/items/\\d{1,6}', '[a-z]+\\.json', 'x{0,100}y{0,100}', '^v[12]$', 'a.*', '\\x41\\u00e9+', '[\\w.-]+@corp', '']) {
      expect(directMatcher(p.replace(/^\^/, '').replace(/\$$/, '')), p).toBeDefined();
      expect(compileSafeRegex(p).direct, p).toBe(true);
    }
    for (const p of ['a*a', '(abc)+', 'blue|green', '[^/]+\\.json', '.*x', '[]a]', '\\01', '\\uD83D\\uDE00', '[\\d-z]']) {
      expect(directMatcher(p), p).toBeUndefined();
    }
    expect(compileSafeRegex('blue|green').direct).toBe(false);
  });

  it('a sequence with one overlapping repetition runs on the backtracking engine, bounded by length x pattern', () => {
    setFlagsFromString('--enable-experimental-regexp-engine');
    for (const p of ['[^/]+\\.json', '.*\\.png', '/api/.*/x', 'a*a']) {
      const re = compileSafeRegex(p);
      expect([p, re.direct, re.bounded, re.linear]).toEqual([p, false, true, false]);
    }
    const json = compileSafeRegex('[^/]+\\.json');
    expect([json.test('a.b.json'), json.test('a/b.json'), json.test('.json'), json.test('x.jsonx')]).toEqual([true, false, false, false]);
    expect(compileSafeRegex('.*x').test('a'.repeat(1024))).toBe(false);
    // Two or more repetitions that overlap stay on the linear engine.
    const cubic = compileSafeRegex('a*a*b');
    expect([cubic.direct, cubic.bounded, cubic.linear]).toEqual([false, false, true]);
  });

  it('inputs over the bound never match, as with RegExp', () => {
    const re = compileSafeRegex('a*');
    expect(re.direct).toBe(true);
    expect(re.test('a'.repeat(1024))).toBe(true);
    expect(re.test('a'.repeat(1025))).toBe(false);
  });

  // Differential: random patterns of the accepted subset and random values, direct vs RegExp.
  it('agree with RegExp on random patterns and values', () => {
    const rand = prng(20261204);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const atoms = ['a', 'b', '-', '/', '.', '\\d', '\\D', '\\w', '\\W', '\\s', '\\S', '[a-c]', '[^a]', '[^ab-]', '[\\d_]', '[.x]', '\\.', '\\-', '\\t', '\\x61', '\\u00e9', 'é', '[é-ü]', '[\\s\\d]', '[^\\w]'];
    const quants = ['', '', '', '*', '+', '?', '{2}', '{0,2}', '{1,}', '{1,3}?', '*?', '+?'];
    const chars = ['a', 'b', 'c', '-', '/', '.', '1', '9', '_', ' ', '\t', '\n', 'é', 'ü', 'x', '\u2028', '\u00a0', 'Z'];
    let direct = 0;
    let checked = 0;
    for (let n = 0; n < 4000; n++) {
      let body = '';
      const len = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < len; i++) body += pick(atoms) + pick(quants);
      if (unsafeRegexReason(body) !== undefined) continue;
      const d = directMatcher(body);
      if (d === undefined) continue;
      direct++;
      const re = new RegExp(`^(?:${body})$`);
      for (let k = 0; k < 25; k++) {
        let v = '';
        const vlen = Math.floor(rand() * 7);
        for (let i = 0; i < vlen; i++) v += pick(chars);
        checked++;
        if (d(v) !== re.test(v)) expect({ body, v, direct: d(v) }).toEqual({ body, v, direct: re.test(v) });
      }
    }
    // The generator must actually exercise the matcher.
    expect(direct).toBeGreaterThan(500);
    expect(checked).toBeGreaterThan(10_000);
  });

  it('values that match: each random direct pattern also accepts strings built to fit it', () => {
    // Strings made from the pattern itself (each atom's first allowed character, min..max times).
    const cases: [string, string, boolean][] = [
      ['t-[0-9]+', 't-42', true],
      ['t-[0-9]+', 't-', false],
      ['/items/\\d{1,6}', '/items/1234567', false],
      ['/items/\\d{1,6}', '/items/123456', true],
      ['[a-z]+\\.json', 'abc.json', true],
      ['[a-z]+\\.json', 'abc.jsonx', false],
      ['x{0,2}y{0,2}', '', true],
      ['x{0,2}y{0,2}', 'xxyy', true],
      ['x{0,2}y{0,2}', 'xxxy', false],
      ['a.*', 'a\n', false],
    ];
    for (const [p, v, want] of cases) expect(compileSafeRegex(p).test(v), `${p} ${JSON.stringify(v)}`).toBe(want);
  });
});

describe('conditions at the terminal node', () => {
  /** A request that records which attributes the router read. */
  const recording = (method: string, headers: Record<string, string>, query: Record<string, string>) => {
    const reads: string[] = [];
    const req: RequestAttributes = {
      get method() {
        reads.push('method');
        return method;
      },
      header: (n) => (reads.push(`h:${n}`), headers[n]),
      queryParam: (n) => (reads.push(`q:${n}`), query[n]),
    };
    return { req, reads };
  };

  it('are tried method first, then exact values, then direct regexes, then other regexes', () => {
    const t = table([
      route('r', {
        method: 'GET',
        headers: [{ name: 'X-Alt', type: 'RegularExpression', value: 'blue|green' }, { name: 'X-Tenant', type: 'RegularExpression', value: 't-[0-9]+' }, { name: 'X-Canary', type: 'Exact', value: 'yes' }],
        queryParams: [{ name: 'v', type: 'Exact', value: '2' }],
      }),
    ]);
    const ok = recording('GET', { 'x-alt': 'blue', 'x-tenant': 't-1', 'x-canary': 'yes' }, { v: '2' });
    expect(t.match('h', '/', ok.req)?.id).toBe('r');
    expect(ok.reads).toEqual(['method', 'h:x-canary', 'q:v', 'h:x-tenant', 'h:x-alt']);
    // A failing exact condition ends the candidate before any regex runs.
    const miss = recording('GET', { 'x-alt': 'blue', 'x-tenant': 't-1' }, { v: '2' });
    expect(t.match('h', '/', miss.req)).toBeUndefined();
    expect(miss.reads).toEqual(['method', 'h:x-canary']);
    const wrongMethod = recording('POST', {}, {});
    expect(t.match('h', '/', wrongMethod.req)).toBeUndefined();
    expect(wrongMethod.reads).toEqual(['method']);
  });

  it('the order changes no answer: random requests against every combination of conditions', () => {
    const conditioned: RouteIR[] = [];
    const kinds = [
      { headers: [{ name: 'x-a', type: 'Exact' as const, value: '1' }] },
      { headers: [{ name: 'X-B', type: 'RegularExpression' as const, value: '[0-9]+' }] },
      { queryParams: [{ name: 'q', type: 'Exact' as const, value: 'x' }] },
      { queryParams: [{ name: 'r', type: 'RegularExpression' as const, value: 'a|b' }] },
      { method: 'POST' },
    ];
    // Every subset of the five conditions, as one route each.
    for (let mask = 1; mask < 32; mask++) {
      const extra: Record<string, unknown[] | string> = {};
      for (let k = 0; k < 5; k++) if (mask & (1 << k)) for (const [key, v] of Object.entries(kinds[k])) extra[key] = typeof v === 'string' ? v : [...((extra[key] as unknown[]) ?? []), ...v];
      conditioned.push(route(`m${mask}`, extra as Partial<RouteIR>));
    }
    const t = table([...conditioned, route('plain')]);
    // The reference: the route list in precedence order (method, header count, query count; IR order).
    const spec = (r: RouteIR) => (r.method ? 1 << 20 : 0) + (r.headers?.length ?? 0) * 1024 + (r.queryParams?.length ?? 0);
    const ordered = [...conditioned, route('plain')].map((r, i) => ({ r, i })).sort((a, b) => spec(b.r) - spec(a.r) || a.i - b.i).map((x) => x.r);
    const rand = prng(7);
    for (let n = 0; n < 2000; n++) {
      const headers: Record<string, string> = {};
      const query: Record<string, string> = {};
      if (rand() < 0.5) headers['x-a'] = rand() < 0.7 ? '1' : '2';
      if (rand() < 0.5) headers['x-b'] = rand() < 0.7 ? '42' : 'x';
      if (rand() < 0.5) query.q = rand() < 0.7 ? 'x' : 'y';
      if (rand() < 0.5) query.r = rand() < 0.7 ? 'a' : 'c';
      const method = rand() < 0.5 ? 'POST' : 'GET';
      const want = ordered.find((r) =>
        (r.method === undefined || r.method === method) &&
        (r.headers ?? []).every((h) => { const v = headers[h.name.toLowerCase()]; return v !== undefined && (h.type === 'Exact' ? v === h.value : new RegExp(`^(?:${h.value})$`).test(v)); }) &&
        (r.queryParams ?? []).every((q) => { const v = query[q.name]; return v !== undefined && (q.type === 'Exact' ? v === q.value : new RegExp(`^(?:${q.value})$`).test(v)); }));
      const got = t.match('h', '/', { method, header: (h) => headers[h], queryParam: (q) => query[q] });
      expect(got?.id, JSON.stringify({ method, headers, query })).toBe(want?.id);
    }
  });
});

describe('query parameters read in place', () => {
  const reference = (target: string, name: string) => {
    const q = target.indexOf('?');
    return new URLSearchParams(q === -1 ? '' : target.slice(q + 1)).get(name) ?? undefined;
  };

  it('answer as URLSearchParams does', () => {
    const cases: [string, string][] = [
      ['/a?v=2&x=1', 'v'], ['/a?x=1', 'v'], ['/a', 'v'], ['/a?', 'v'], ['/a??v=2', 'v'], ['/a?v', 'v'], ['/a?v=&v=3', 'v'],
      ['/a?%76=4', 'v'], ['/a?v=a+b%20c', 'v'], ['/a?a&&v=5=6', 'v'], ['/a?v=%zz', 'v'], ['/a?v=%C3%A9', 'v'], ['/a?v=%C3', 'v'],
      ['/a?x=1#f&v=2', 'v'], ['/a?=1', ''], ['/a?a+b=1', 'a b'], ['/a?V=1', 'v'], ['/a?vv=1&v=2', 'v'],
    ];
    for (const [t, n] of cases) expect(queryParam(t, n), `${t} ${n}`).toBe(reference(t, n));
  });

  it('agree with URLSearchParams on random targets', () => {
    const rand = prng(99);
    const parts = ['v', 'x', 'v2', '=', '=', '&', '&', '?', '+', '%76', '%2B', '%26', '%3D', '%', '%zz', '%C3%A9', 'é', '#', '2', ''];
    const names = ['v', 'x', 'v2', 'v 2', '', '&', '+', 'é'];
    for (let n = 0; n < 5000; n++) {
      let t = '/p?';
      const len = Math.floor(rand() * 8);
      for (let i = 0; i < len; i++) t += parts[Math.floor(rand() * parts.length)];
      for (const name of names) if (queryParam(t, name) !== reference(t, name)) expect({ t, name, got: queryParam(t, name) }).toEqual({ t, name, got: reference(t, name) });
    }
  });
});

describe('conditioned lookups', () => {
  const routes = Array.from({ length: 200 }, (_, i): RouteIR[] => [
    route(`c${i}`, { path: `/svc-${i}`, headers: [{ name: 'X-Canary', type: 'Exact', value: 'yes' }, { name: 'x-tenant', type: 'RegularExpression', value: 't-[0-9]+' }], queryParams: [{ name: 'v', type: 'Exact', value: '2' }] }),
    route(`p${i}`, { path: `/svc-${i}` }),
  ]).flat();
  const t = table(routes);

  it('routes share one compiled copy of a repeated pattern and condition strings', () => {
    const a = t.match('h', '/svc-1')!;
    const b = t.match('h', '/svc-2')!;
    const ca = t.match('h', '/svc-1', { method: 'GET', header: (n) => ({ 'x-canary': 'yes', 'x-tenant': 't-1' })[n], queryParam: () => '2' })!;
    const cb = t.match('h', '/svc-2', { method: 'GET', header: (n) => ({ 'x-canary': 'yes', 'x-tenant': 't-1' })[n], queryParam: () => '2' })!;
    expect([a.id, b.id, ca.id, cb.id]).toEqual(['p1', 'p2', 'c1', 'c2']);
    expect(ca.conditions!.map((c) => c.name)).toEqual(['x-canary', 'v', 'x-tenant']);
    expect(ca.conditions![2].regex).toBe(cb.conditions![2].regex);
  });

  it('allocate nothing: a million of them trigger no garbage collection', async () => {
    const { PerformanceObserver } = await import('node:perf_hooks');
    const canary = new Map([['x-canary', 'yes'], ['x-tenant', 't-42']]);
    const plain = new Map([['user-agent', 'x']]);
    const targets = ['/svc-1/a?v=2', '/svc-7?x=1', '/svc-150/b/c?v=2&w=3', '/nothing'];
    let headers = canary;
    const req: RequestAttributes = { method: 'GET', header: (n) => headers.get(n), queryParam: (n) => queryParam(target, n) };
    let target = targets[0];
    let canaries = 0;
    const step = (i: number) => {
      headers = (i & 1) === 0 ? canary : plain;
      target = targets[i & 3];
      if (t.match('h', target, req)?.id.startsWith('c')) canaries++;
    };
    for (let i = 0; i < 20_000; i++) step(i); // warm the JIT
    let gcs = 0;
    const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((r) => setTimeout(r, 50));
    gcs = 0;
    canaries = 0;
    for (let i = 0; i < 1_000_000; i++) step(i);
    await new Promise((r) => setTimeout(r, 100));
    obs.disconnect();
    // Even i: canary headers with /svc-1?v=2 or /svc-150...?v=2 (one-character values come from V8's cache).
    expect(canaries).toBe(500_000);
    expect(gcs).toBeLessThanOrEqual(1);
  });
});

describe('RE2 spellings route authors copy from Envoy-based implementations (QA-14)', () => {
  it('\\x{HHHH} is read as the code unit it names; above U+FFFF it is refused', () => {
    const re = compileSafeRegex('/caf\\x{e9}/\\x{41}+');
    expect(re.test('/café/AA')).toBe(true);
    expect(re.test('/cafe/AA')).toBe(false);
    // An escaped backslash before x{..} is a literal backslash, not an escape.
    expect(compileSafeRegex('a\\\\x\\{1\\}').test('a\\x{1}')).toBe(true);
    expect(() => compileSafeRegex('\\x{1F600}')).toThrow(/bad \\x escape/);
  });

  it('an inline flag is refused with a reason that names it', () => {
    expect(() => compileSafeRegex('/(?i)case')).toThrow(/inline flags such as \(\?i\) are not supported/);
    expect(() => compileSafeRegex('/(?=x)')).toThrow(/lookaround/);
  });
});
