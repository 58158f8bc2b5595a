import { describe, expect, it } from 'vitest';
import { CidrSet, cidrProblem, parseCidr, parseCidrList } from '../router/cidr.ts';

describe('router/cidr: the one CIDR parser', () => {
  const valid: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3/8', '10.0.0.0/8'], // host bits cleared, as Go's net.ParseCIDR
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['192.168.1.7', '192.168.1.7/32'],
    ['192.168.1.7/32', '192.168.1.7/32'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['2001:DB8::1/128', '2001:db8::1/128'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['::ffff:1.2.3.4/104', '1.0.0.0/8'], // a mapped range is matched as IPv4
    ['::ffff:10.0.0.0/96', '0.0.0.0/0'],
  ];
  const invalid = ['', ' ', '10.0.0.0/08', '10.0.0.0/033', '10.0.0.0/33', '::/129', '::ffff:1.2.3.4/129', '10.0.0.0/', '/8', '10.0.0.0/8/8', '10.0.0.0/+8', '10.0.0.0/-1', '10.0.0.0/8 ', ' 10.0.0.0/8', '10.0.0.0 /8', '10.0.0.0/ 8', '10.0.0/8', '010.0.0.0/8', '10.0.0.256/8', 'x/8', '[::1]/128', '[::1]', 'fe80::/10%eth0', 'fe80::1%eth0', '10.0.0.0/8,', '1.2.3.4:80', '10.0.0.0/1e1', '10.0.0.0/８'];

  it.each(valid)('%s is %s', (input, text) => {
    expect(cidrProblem(input)).toBeUndefined();
    expect(parseCidr(input)?.text).toBe(text);
  });

  it.each(invalid.map((s) => [s]))('%j is refused with a reason', (input) => {
    expect(parseCidr(input)).toBeUndefined();
    expect(cidrProblem(input)).toEqual(expect.any(String));
  });

  it('says why', () => {
    expect(cidrProblem('10.0.0.0/08')).toMatch(/leading zero/);
    expect(cidrProblem('10.0.0.0/33')).toMatch(/longer than 32/);
    expect(cidrProblem('::/129')).toMatch(/longer than 128/);
    expect(cidrProblem(' 10.0.0.0/8')).toMatch(/whitespace/);
    expect(cidrProblem('')).toBe('empty');
  });

  it('a list trims around commas, skips empty entries, dedupes canonical forms and reports bad entries', () => {
    expect(parseCidrList(' 10.0.0.0/8 , 10.1.0.0/8,,2001:db8::/32 ')).toEqual({ cidrs: ['10.0.0.0/8', '2001:db8::/32'], errors: [] });
    const bad = parseCidrList('10.0.0.0/08, 1.2.3.4');
    expect(bad.cidrs).toEqual(['1.2.3.4/32']);
    expect(bad.errors).toEqual([expect.stringMatching(/^"10\.0\.0\.0\/08": .*leading zero/)]);
  });

  it('what the parser accepts is what the matcher matches', () => {
    for (const [input] of valid) expect(CidrSet.parse([input]).errors, input).toEqual([]);
    for (const input of invalid) expect(CidrSet.parse([input]).set.isEmpty, input).toBe(true);
    const set = CidrSet.from(['::ffff:1.2.3.4/104']);
    expect(set.contains('1.9.9.9')).toBe(true);
    expect(set.contains('::ffff:1.9.9.9')).toBe(true);
    expect(set.contains('2.0.0.1')).toBe(false);
  });
});

describe('route allowlist in the data plane', () => {
  it('a route whose ranges do not all parse denies every client (fails closed)', async () => {
    const { allowlistDenial } = await import('../src/realip/allowlist.ts');
    expect(allowlistDenial({ allowSourceRanges: ['10.0.0.0/8'] }, { clientIp: '10.0.0.1' })).toBeUndefined();
    expect(allowlistDenial({ allowSourceRanges: ['10.0.0.0/8', '10.0.0.0/08'] }, { clientIp: '10.0.0.1' })).toEqual(expect.any(String));
    expect(allowlistDenial({ allowSourceRanges: [] }, { clientIp: '10.0.0.1' })).toEqual(expect.any(String));
  });
});
