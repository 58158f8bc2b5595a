import { describe, expect, it } from 'vitest';
import { newTranslatorState } from '../controller/translate.ts';
import { allowlistDenial } from '../src/realip/allowlist.ts';
import { CLASS, ingress, ready, rule, run, service, slice } from './translate-fixtures.ts';

const ALLOW = 'portico.dev/whitelist-source-range';
const base = [CLASS, service('a'), slice('a', [ready('10.9.0.1')])];
const spec = { ingressClassName: 'portico', rules: [rule('x.com', [['/admin', 'Prefix', 'a']])] };
const served = (r: ReturnType<typeof run>, client: string): boolean => {
  const route = r.table.match('x.com', '/admin');
  expect(route).toBeDefined();
  return allowlistDenial(route!.ir, { clientIp: client }) === undefined;
};
const CLIENTS = ['10.0.0.1', '10.255.255.255', '11.0.0.1', '192.0.2.1', '::1', '2001:db8::1', '127.0.0.1'];

describe('the allowlist annotation is validated in translation by the data-plane parser', () => {
  it('emits canonical, already valid ranges in the IR', () => {
    const r = run([...base, ingress('i', spec, { annotations: { [ALLOW]: ' 10.1.2.3/8 , 2001:db8::/32,192.0.2.1' } })]);
    expect(r.ir.virtualHosts[0].routes[0].allowSourceRanges).toEqual(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1/32']);
    expect(r.problems).toEqual([]);
    expect(served(r, '10.200.0.1')).toBe(true);
    expect(served(r, '2001:db8::5')).toBe(true);
    expect(served(r, '11.0.0.1')).toBe(false);
  });

  for (const bad of ['10.0.0.0/08', '10.0.0.0/33', '10.0.0.0/8, nope', '', ' , ']) {
    it(`${JSON.stringify(bad)} is a reported problem naming the Ingress, and the route serves no client`, () => {
      const r = run([...base, ingress('i', spec, { annotations: { [ALLOW]: bad } })]);
      const p = r.problems.filter((x) => x.kind === 'Ingress' && x.name === 'i' && x.namespace === 'default' && x.severity === 'error');
      expect(p).toHaveLength(1);
      expect(p[0].message).toMatch(/whitelist-source-range.*deny every client/);
      if (bad === '10.0.0.0/08') expect(p[0].message).toMatch(/"10\.0\.0\.0\/08": prefix length "08" has a leading zero/);
      for (const c of CLIENTS) expect(served(r, c), c).toBe(false);
    });
  }

  it('an invalid edit of the allowlist fails closed over the last good routes too', () => {
    const state = newTranslatorState();
    const open = run([...base, ingress('i', spec)], state);
    expect(served(open, '192.0.2.1')).toBe(true);
    const edited = run([...base, ingress('i', { ...spec, rules: [rule('x.com', [['/admin', 'Prefix', 'a'], ['/new', 'Prefix', 'a']])] }, { generation: 2, annotations: { [ALLOW]: '10.0.0.0/08' } })], state);
    expect(edited.problems.some((p) => p.name === 'i' && /generation 2 is invalid: .*whitelist-source-range/.test(p.message))).toBe(true);
    for (const c of CLIENTS) expect(served(edited, c), c).toBe(false);
    // The last good content is what is served (no /new), only closed.
    expect(edited.table.match('x.com', '/new')).toBeUndefined();
    // Fixing the range serves the current content with it.
    const fixed = run([...base, ingress('i', spec, { generation: 3, annotations: { [ALLOW]: '10.0.0.0/8' } })], state);
    expect(served(fixed, '10.0.0.1')).toBe(true);
    expect(served(fixed, '11.0.0.1')).toBe(false);
  });
});
