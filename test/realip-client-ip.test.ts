import { describe, expect, it } from 'vitest';
import { upstreamHeaders, type ForwardedValues } from '../src/forwarding.ts';
import { CidrSet, normalizeIp, normalizeNode, parseCidr } from '../src/realip/cidr.ts';
import { forwardingHeaders, isDroppedHeader, parseForwarded, resolveRealIp, type ProxyInfo, type RealIpConfig } from '../src/realip/client-ip.ts';
import { defaultRealIpConfig } from '../src/realip/config.ts';
import { allowlistDenial } from '../src/realip/allowlist.ts';

function config(o: { trust?: string[]; header?: string; useForwarded?: boolean; full?: boolean } = {}): RealIpConfig {
  return {
    ...defaultRealIpConfig(),
    proxyRealIpCidr: CidrSet.from(o.trust ?? []),
    forwardedForHeader: o.header ?? 'X-Forwarded-For',
    useForwardedHeaders: o.useForwarded ?? false,
    computeFullForwardedFor: o.full ?? false,
  };
}

/** rawHeaders from [name, value] pairs. */
function raw(...pairs: [string, string][]): string[] {
  return pairs.flat();
}

const LB4 = ['10.0.0.0/8'];
const LB6 = ['2001:db8::/32'];
const CDN = ['10.0.0.0/8', '198.51.100.0/24'];
const proxyFrom = (ip: string, extra: Partial<ProxyInfo> = {}): ProxyInfo => ({ command: 'PROXY', protocol: ip.includes(':') ? 'TCP6' : 'TCP4', sourceAddress: ip, destinationPort: 443, ...extra });

describe('client IP: chains x trusted sets', () => {
  interface Row {
    name: string;
    peer: string;
    trust?: string[];
    header?: string;
    headers?: [string, string][];
    proxy?: ProxyInfo;
    /** use-forwarded-headers; on unless a row says otherwise. */
    useForwarded?: boolean;
    client: string;
  }
  const xff = (v: string): [string, string] => ['X-Forwarded-For', v];
  const fwd = (v: string): [string, string] => ['Forwarded', v];
  const rows: Row[] = [
    // nothing trusted (the default): the peer, whatever the headers say
    { name: 'default: no trust, forged XFF ignored', peer: '203.0.113.9', headers: [xff('6.6.6.6')], client: '203.0.113.9' },
    { name: 'default: mapped peer folded', peer: '::ffff:203.0.113.9', headers: [xff('6.6.6.6')], client: '203.0.113.9' },
    { name: 'untrusted peer with a trusted set configured', peer: '8.8.8.8', trust: LB4, headers: [xff('1.1.1.1')], client: '8.8.8.8' },
    // IPv4 chains
    { name: 'one hop', peer: '10.0.0.1', trust: LB4, headers: [xff('203.0.113.5')], client: '203.0.113.5' },
    { name: 'rightmost untrusted wins, trusted hops skipped', peer: '10.0.0.1', trust: LB4, headers: [xff('6.6.6.6, 203.0.113.5, 10.0.0.7')], client: '203.0.113.5' },
    { name: 'all hops trusted: leftmost', peer: '10.0.0.1', trust: LB4, headers: [xff('10.1.1.1, 10.2.2.2')], client: '10.1.1.1' },
    { name: 'empty chain: peer', peer: '10.0.0.1', trust: LB4, headers: [xff('')], client: '10.0.0.1' },
    { name: 'blank chain: peer', peer: '10.0.0.1', trust: LB4, headers: [xff(' , ,')], client: '10.0.0.1' },
    { name: 'no header: peer', peer: '10.0.0.1', trust: LB4, headers: [], client: '10.0.0.1' },
    { name: 'empty items skipped', peer: '10.0.0.1', trust: LB4, headers: [xff('203.0.113.5,, 10.0.0.7,')], client: '203.0.113.5' },
    { name: 'several header lines: last line is rightmost', peer: '10.0.0.1', trust: LB4, headers: [xff('6.6.6.6'), xff('203.0.113.5, 10.0.0.3')], client: '203.0.113.5' },
    { name: 'header name case-insensitive', peer: '10.0.0.1', trust: LB4, headers: [['x-forwarded-for', '203.0.113.5']], client: '203.0.113.5' },
    // IPv6 and mapped
    { name: 'IPv6 chain', peer: '2001:db8::1', trust: LB6, headers: [xff('2600::1, 2001:db8::5')], client: '2600::1' },
    { name: 'IPv6 entry normalised', peer: '2001:db8::1', trust: LB6, headers: [xff('2600:0:0:0:0:0:0:1')], client: '2600::1' },
    { name: 'mapped peer matches IPv4 trust', peer: '::ffff:10.0.0.1', trust: LB4, headers: [xff('203.0.113.5')], client: '203.0.113.5' },
    { name: 'mapped entry folded', peer: '10.0.0.1', trust: LB4, headers: [xff('::ffff:203.0.113.9')], client: '203.0.113.9' },
    { name: 'mapped trusted hop skipped', peer: '10.0.0.1', trust: LB4, headers: [xff('203.0.113.9, ::ffff:10.9.9.9')], client: '203.0.113.9' },
    { name: 'IPv6 trust written as mapped range', peer: '10.0.0.1', trust: ['::ffff:10.0.0.0/104'], headers: [xff('203.0.113.9')], client: '203.0.113.9' },
    { name: 'zone id stripped', peer: 'fe80::1%eth0', trust: ['fe80::/10'], headers: [xff('2600::9')], client: '2600::9' },
    // garbage and lenient forms
    { name: 'port on IPv4 entry', peer: '10.0.0.1', trust: LB4, headers: [xff('203.0.113.5:4567')], client: '203.0.113.5' },
    { name: 'bracketed IPv6 with port', peer: '10.0.0.1', trust: LB4, headers: [xff('[2600::1]:80')], client: '2600::1' },
    { name: 'quoted entry', peer: '10.0.0.1', trust: LB4, headers: [xff('"203.0.113.5"')], client: '203.0.113.5' },
    { name: 'unknown ends the walk: nothing left of it is believed', peer: '10.0.0.1', trust: LB4, headers: [xff('6.6.6.6, unknown')], client: '10.0.0.1' },
    { name: 'garbage between hops ends the walk at the last trusted hop', peer: '10.0.0.1', trust: LB4, headers: [xff('6.6.6.6, garbage, 10.0.0.9')], client: '10.0.0.9' },
    { name: 'garbage left of the client is never reached', peer: '10.0.0.1', trust: LB4, headers: [xff('garbage, 203.0.113.5')], client: '203.0.113.5' },
    { name: 'every hop trusted, garbage leftmost: leftmost address', peer: '10.0.0.1', trust: LB4, headers: [xff('junk, 10.0.0.5, 10.0.0.9')], client: '10.0.0.5' },
    { name: 'garbage only', peer: '10.0.0.1', trust: LB4, headers: [xff('not an ip')], client: '10.0.0.1' },
    { name: 'octal-looking entry refused', peer: '10.0.0.1', trust: LB4, headers: [xff('010.0.0.1')], client: '10.0.0.1' },
    { name: 'huge port refused', peer: '10.0.0.1', trust: LB4, headers: [xff('1.2.3.4:123456')], client: '10.0.0.1' },
    { name: 'underscore spelling is never a source', peer: '10.0.0.1', trust: LB4, headers: [['X_Forwarded_For', '6.6.6.6']], client: '10.0.0.1' },
    // Forwarded (RFC 7239)
    { name: 'Forwarded: one element', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=192.0.2.60;proto=http;by=203.0.113.43')], client: '192.0.2.60' },
    { name: 'Forwarded: quoted IPv6 with port', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('For="[2001:db8:cafe::17]:4711"')], client: '2001:db8:cafe::17' },
    { name: 'Forwarded: elements, rightmost untrusted', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=6.6.6.6, for=192.0.2.43, for=10.0.0.7')], client: '192.0.2.43' },
    { name: 'Forwarded: several lines', peer: '10.0.0.1', trust: LB4, header: 'forwarded', headers: [fwd('for=6.6.6.6'), fwd('for=192.0.2.43;proto=https')], client: '192.0.2.43' },
    { name: 'Forwarded: quoted comma does not split', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=192.0.2.43;host="a,b", for=10.0.0.7')], client: '192.0.2.43' },
    { name: 'Forwarded: an obfuscated identifier ends the walk', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=198.51.100.17, for=_hidden')], client: '10.0.0.1' },
    { name: 'Forwarded: unknown ends the walk', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=198.51.100.17, for=unknown')], client: '10.0.0.1' },
    { name: 'Forwarded: an element without for ends the walk (its proto is not believed either)', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=198.51.100.17, proto=https')], client: '10.0.0.1' },
    { name: 'Forwarded: repeated parameter is malformed', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=6.6.6.6;for=198.51.100.17')], client: '10.0.0.1' },
    { name: 'Forwarded: unterminated quote is malformed', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for="198.51.100.17')], client: '10.0.0.1' },
    { name: 'Forwarded: trusted hop skipped through to garbage', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [fwd('for=junk!, for=10.0.0.4')], client: '10.0.0.4' },
    { name: 'Forwarded mode ignores X-Forwarded-For', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', headers: [xff('6.6.6.6')], client: '10.0.0.1' },
    { name: 'XFF mode ignores Forwarded', peer: '10.0.0.1', trust: LB4, headers: [fwd('for=6.6.6.6')], client: '10.0.0.1' },
    // another list header
    { name: 'custom header', peer: '10.0.0.1', trust: LB4, header: 'CF-Connecting-IP', headers: [['cf-connecting-ip', '203.0.113.77'], xff('6.6.6.6')], client: '203.0.113.77' },
    { name: 'X-Real-IP as source', peer: '10.0.0.1', trust: LB4, header: 'X-Real-IP', headers: [['X-Real-IP', '203.0.113.78']], client: '203.0.113.78' },
    // PROXY protocol
    { name: 'PROXY source replaces the peer; untrusted source: forged XFF ignored', peer: '10.0.0.1', trust: LB4, proxy: proxyFrom('203.0.113.5'), headers: [xff('6.6.6.6')], client: '203.0.113.5' },
    { name: 'PROXY IPv6 source', peer: '10.0.0.1', proxy: proxyFrom('2600::5'), client: '2600::5' },
    { name: 'PROXY source trusted (CDN): XFF walked', peer: '10.0.0.1', trust: CDN, proxy: proxyFrom('198.51.100.9'), headers: [xff('203.0.113.5')], client: '203.0.113.5' },
    { name: 'PROXY LOCAL: socket peer', peer: '10.0.0.1', proxy: { command: 'LOCAL', protocol: 'UNKNOWN' }, client: '10.0.0.1' },
    { name: 'PROXY UNKNOWN: socket peer', peer: '10.0.0.1', proxy: { command: 'PROXY', protocol: 'UNKNOWN' }, client: '10.0.0.1' },
    { name: 'PROXY UDP4: socket peer', peer: '10.0.0.1', proxy: { command: 'PROXY', protocol: 'UDP4', sourceAddress: '203.0.113.5' }, client: '10.0.0.1' },
    { name: 'peer trusted but PROXY source is not: chain ignored', peer: '10.0.0.1', trust: LB4, proxy: proxyFrom('8.8.8.8'), headers: [xff('203.0.113.5')], client: '8.8.8.8' },
    // use-forwarded-headers off: proxy-real-ip-cidr alone believes nothing
    { name: 'use-forwarded-headers off: trusted peer\'s XFF not believed', peer: '10.0.0.1', trust: LB4, useForwarded: false, headers: [xff('203.0.113.5')], client: '10.0.0.1' },
    { name: 'use-forwarded-headers off: trusted peer\'s Forwarded not believed', peer: '10.0.0.1', trust: LB4, header: 'Forwarded', useForwarded: false, headers: [fwd('for=203.0.113.5')], client: '10.0.0.1' },
    { name: 'use-forwarded-headers off: trusted PROXY source\'s XFF not believed', peer: '10.0.0.1', trust: CDN, useForwarded: false, proxy: proxyFrom('198.51.100.9'), headers: [xff('203.0.113.5')], client: '198.51.100.9' },
  ];

  for (const r of rows) {
    it(r.name, () => {
      const result = resolveRealIp(r.peer, r.proxy, false, 80, raw(...(r.headers ?? [])), config({ trust: r.trust, header: r.header, useForwarded: r.useForwarded ?? true }));
      expect(result.clientIp).toBe(r.client);
      expect(result.forwardedFor).toBe(r.client);
    });
  }
});

describe('forwarding values and dropped headers', () => {
  const forged = raw(
    ['Host', 'app.example'],
    ['X-Forwarded-For', '6.6.6.6'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'evil.example'],
    ['X-Forwarded-Port', '8443'],
    ['X-Real-IP', '6.6.6.6'],
    ['Forwarded', 'for=6.6.6.6'],
    ['X_Forwarded_For', '6.6.6.6'],
    ['x_real_ip', '6.6.6.6'],
    ['X-Request-Id', 'abc'],
  );

  it('untrusted peer: every forwarding header dropped, own values written', () => {
    const r = resolveRealIp('203.0.113.9', undefined, false, 8080, forged, config({ useForwarded: true }));
    expect(r).toMatchObject({ clientIp: '203.0.113.9', forwardedFor: '203.0.113.9', proto: 'http', host: 'app.example', port: '8080', trusted: false });
    expect([...r.drop].sort()).toEqual(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-real-ip', 'x_forwarded_for', 'x_real_ip']);
    expect(isDroppedHeader(r, 'x-request-id')).toBe(false);
    expect(isDroppedHeader(r, 'x_forwarded_for')).toBe(true);
    expect(forwardingHeaders(r)).toEqual(['x-forwarded-for', '203.0.113.9', 'x-real-ip', '203.0.113.9', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'app.example', 'x-forwarded-port', '8080']);
  });

  it('fast path: no forwarding headers, nothing to drop', () => {
    const r = resolveRealIp('203.0.113.9', undefined, true, 443, raw(['Host', 'a.example'], ['Accept', '*/*']), config());
    expect(r.drop).toEqual([]);
    expect(r.proto).toBe('https');
    expect(r.keep).toBeUndefined();
  });

  it('trusted peer with use-forwarded-headers: proto, host and port kept from the hop', () => {
    const r = resolveRealIp('10.0.0.1', undefined, false, 80, forged, config({ trust: LB4, useForwarded: true }));
    expect(r).toMatchObject({ clientIp: '6.6.6.6', proto: 'https', host: 'evil.example', port: '8443', trusted: true });
    // Portico rewrites these; underscore spellings are dropped even from trusted hops.
    expect(r.drop).toEqual(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x_forwarded_for', 'x_real_ip']);
    expect(r.keep?.has('forwarded')).toBe(true);
  });

  it('trusted peer without use-forwarded-headers: nothing believed, everything rewritten', () => {
    const r = resolveRealIp('10.0.0.1', undefined, false, 80, forged, config({ trust: LB4 }));
    expect(r).toMatchObject({ clientIp: '10.0.0.1', forwardedFor: '10.0.0.1', proto: 'http', host: 'app.example', port: '80', trusted: false });
    expect(r.drop).toContain('x-forwarded-for');
  });

  it('TLS terminated here gives https unless a trusted hop says otherwise', () => {
    expect(resolveRealIp('203.0.113.9', undefined, true, 443, forged, config({ useForwarded: true })).proto).toBe('https');
    const h = raw(['X-Forwarded-Proto', 'http']);
    expect(resolveRealIp('10.0.0.1', undefined, true, 443, h, config({ trust: LB4, useForwarded: true })).proto).toBe('http');
  });

  it('trusted hop values are validated; leftmost of a list is used', () => {
    const h = raw(['X-Forwarded-Proto', 'https, http'], ['X-Forwarded-Host', 'a.example:8443, b'], ['X-Forwarded-Port', '99999']);
    const r = resolveRealIp('10.0.0.1', undefined, false, 80, h, config({ trust: LB4, useForwarded: true }));
    expect(r).toMatchObject({ proto: 'https', host: 'a.example:8443', port: '80' });
    const bad = raw(['Host', 'ok.example'], ['X-Forwarded-Proto', 'gopher'], ['X-Forwarded-Host', 'bad host/'], ['X-Forwarded-Port', '0']);
    expect(resolveRealIp('10.0.0.1', undefined, false, 80, bad, config({ trust: LB4, useForwarded: true }))).toMatchObject({ proto: 'http', host: 'ok.example', port: '80' });
  });

  it('Forwarded mode: proto and host from the client element', () => {
    const h = raw(['Host', 'internal'], ['Forwarded', 'for=203.0.113.5;proto=https;host=shop.example, for=10.0.0.7;proto=http;host=internal']);
    const r = resolveRealIp('10.0.0.1', undefined, false, 80, h, config({ trust: LB4, header: 'Forwarded', useForwarded: true }));
    expect(r).toMatchObject({ clientIp: '203.0.113.5', proto: 'https', host: 'shop.example' });
  });

  it('compute-full-forwarded-for: trusted chain plus the peer', () => {
    const h = raw(['X-Forwarded-For', '1.1.1.1, 10.0.0.7']);
    expect(resolveRealIp('10.0.0.1', undefined, false, 80, h, config({ trust: LB4, full: true, useForwarded: true })).forwardedFor).toBe('1.1.1.1, 10.0.0.7, 10.0.0.1');
    expect(resolveRealIp('10.0.0.1', undefined, false, 80, h, config({ trust: LB4, useForwarded: true })).forwardedFor).toBe('1.1.1.1');
    // Untrusted: the forged chain never goes upstream.
    expect(resolveRealIp('8.8.8.8', undefined, false, 80, h, config({ trust: LB4, full: true, useForwarded: true })).forwardedFor).toBe('8.8.8.8');
    // No incoming chain: the peer alone.
    expect(resolveRealIp('10.0.0.1', undefined, false, 80, [], config({ trust: LB4, full: true, useForwarded: true })).forwardedFor).toBe('10.0.0.1');
    // Behind PROXY, the peer appended is the PROXY source.
    const p = resolveRealIp('10.0.0.1', proxyFrom('198.51.100.9'), false, 80, h, config({ trust: CDN, full: true, useForwarded: true }));
    expect(p.forwardedFor).toBe('1.1.1.1, 10.0.0.7, 198.51.100.9');
    expect(p.clientIp).toBe('1.1.1.1');
  });

  it('compute-full-forwarded-for from Forwarded: bare addresses in X-Forwarded-For, unknown for hidden nodes (QA-15)', () => {
    const cfg = config({ trust: LB4, header: 'Forwarded', full: true, useForwarded: true });
    const at = (v: string) => resolveRealIp('10.0.0.1', undefined, false, 80, raw(['Forwarded', v]), cfg).forwardedFor;
    expect(at('for="[2001:db8::1]:4711", for=10.1.1.1')).toBe('2001:db8::1, 10.1.1.1, 10.0.0.1');
    expect(at('for="203.0.113.5:8080"')).toBe('203.0.113.5, 10.0.0.1');
    expect(at('for=_hidden, for=10.1.1.1')).toBe('unknown, 10.1.1.1, 10.0.0.1');
    expect(at('for=unknown')).toBe('unknown, 10.0.0.1');
  });

  it('PROXY: destination port becomes X-Forwarded-Port, SSL TLV gives https', () => {
    const r = resolveRealIp('10.0.0.1', proxyFrom('203.0.113.5', { destinationPort: 443, sslClient: true }), false, 8080, raw(['Host', 'a']), config());
    expect(r).toMatchObject({ clientIp: '203.0.113.5', port: '443', proto: 'https', peerIp: '203.0.113.5' });
  });

  it('HTTP/2 :authority is the host', () => {
    expect(resolveRealIp('1.2.3.4', undefined, true, 443, raw([':authority', 'h2.example'], [':path', '/']), config()).host).toBe('h2.example');
  });

  it('fits src/forwarding.ts: upstreamHeaders drops what the result drops', () => {
    const r = resolveRealIp('203.0.113.9', undefined, false, 80, forged, config());
    const asForwarded: ForwardedValues = r;
    const out = upstreamHeaders(forged, undefined, asForwarded);
    const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const d of r.drop) expect(names.filter((n) => n === d).length).toBeLessThanOrEqual(d.includes('_') ? 0 : 1);
    expect(out).toContain('X-Request-Id');
    const xff = out[out.indexOf('x-forwarded-for') + 1];
    expect(xff).toBe('203.0.113.9');
    expect(out).not.toContain('evil.example');
  });

  it('never throws on hostile input', () => {
    const junk = ['', ',', '"', '\\', '[', ']:', ':::::', 'for=', 'for="\\', ';;;,,,', 'a'.repeat(10_000), '1.2.3.4'.repeat(100), '\u0000\uffff'];
    for (const v of junk) {
      for (const header of ['X-Forwarded-For', 'Forwarded', 'X-Client']) {
        const h = raw(['X-Forwarded-For', v], ['Forwarded', v], ['X-Client', v], ['X-Forwarded-Proto', v], ['X-Forwarded-Host', v], ['X-Forwarded-Port', v], ['Host', v]);
        expect(() => resolveRealIp(v, undefined, false, 80, h, config({ trust: ['0.0.0.0/0', '::/0'], header, useForwarded: true, full: true }))).not.toThrow();
      }
    }
    // Odd-length rawHeaders, undefined peer.
    expect(resolveRealIp(undefined, undefined, false, 80, ['Host'], config()).clientIp).toBe('');
  });
});

describe('Forwarded parser', () => {
  it('parses RFC 7239 examples', () => {
    expect(parseForwarded('for="_gazonk"', [])).toEqual([{ for: '_gazonk', bad: false }]);
    expect(parseForwarded('For="[2001:db8:cafe::17]:4711"', [])).toEqual([{ for: '[2001:db8:cafe::17]:4711', bad: false }]);
    expect(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43', [])).toEqual([{ for: '192.0.2.60', proto: 'http', by: '203.0.113.43', bad: false }]);
    expect(parseForwarded('for=192.0.2.43, for=198.51.100.17', []).map((e) => e.for)).toEqual(['192.0.2.43', '198.51.100.17']);
  });
  it('handles quoted-pair escapes, empty elements and junk', () => {
    expect(parseForwarded('for="a\\"b";host="x,y"', [])).toEqual([{ for: 'a"b', host: 'x,y', bad: false }]);
    expect(parseForwarded(',, for=1.2.3.4 ,,', [])).toEqual([{ for: '1.2.3.4', bad: false }]);
    const bad = parseForwarded('for, for=1.2.3.4', []);
    expect(bad.map((e) => e.bad)).toEqual([true, false]);
    expect(parseForwarded('for=1.2.3.4 x, for=5.6.7.8', []).map((e) => [e.bad, e.for])).toEqual([[true, undefined], [false, '5.6.7.8']]);
  });
  it('a stray or unclosed quote spoils only its own element; the walk goes on with the next one', () => {
    const walk = (v: string) => parseForwarded(v, []).map((e) => (e.bad ? 'bad' : e.for));
    expect(walk('for=garbage"x, for=10.1.1.1')).toEqual(['bad', '10.1.1.1']);
    expect(walk('for="unclosed, for=10.1.1.1')).toEqual(['bad', '10.1.1.1']);
    expect(walk('for=1.1.1.1;host="x, for=10.1.1.1;proto=https')).toEqual(['bad', '10.1.1.1']);
    // A quoted-string that only closes inside the next element (a quote a later hop wrote).
    expect(walk('for="6.6.6.6, for="[2001:db8::1]:4711"')).toEqual(['bad', '[2001:db8::1]:4711']);
    expect(walk('x="a", y, for=garbage"z", for=10.1.1.2, for="10.1.1.3"')).toEqual([undefined, 'bad', 'bad', '10.1.1.2', '10.1.1.3']);
    // Well-formed quoted commas and semicolons are still one element.
    expect(walk('for="[2001:db8::2]:80";host="a,b;c", for=10.1.1.4')).toEqual(['[2001:db8::2]:80', '10.1.1.4']);
  });
  it('from a trusted peer, garbage a client wrote cannot hide the element a trusted hop appended', () => {
    const c = config({ trust: ['10.0.0.0/8'], header: 'Forwarded', useForwarded: true });
    const client = (v: string) => resolveRealIp('10.0.0.1', undefined, false, 80, raw(['Forwarded', v]), c).clientIp;
    expect(client('for=garbage"x, for=10.1.1.1')).toBe('10.1.1.1');
    // The client sends `for=6.6.6.6, for="x`; the trusted hop appends its own element.
    expect(client('for=6.6.6.6, for="x, for=203.0.113.5')).toBe('203.0.113.5');
    expect(client('for=6.6.6.6, for=bad"x, for=203.0.113.5')).toBe('203.0.113.5');
    expect(client('for=6.6.6.6;host="x, for="[2001:db8::5]:4711"')).toBe('2001:db8::5');
  });
  it('stays linear on hostile quoting', () => {
    for (const unit of [',x="', 'x="a,', '"', ',"', 'a=b"', 'x="\\",']) {
      const v = unit.repeat(Math.ceil(16_384 / unit.length));
      const started = performance.now();
      parseForwarded(v, []);
      expect(performance.now() - started, unit).toBeLessThan(500);
    }
  });
});

describe('allowlist (portico.dev/whitelist-source-range, else whitelist-source-range)', () => {
  const withDefault = (ranges: string[] | undefined) => ({ ...config(), whitelistSourceRange: ranges === undefined ? undefined : CidrSet.from(ranges) });
  const fwd = (peer: string, ranges: string[] | undefined) => resolveRealIp(peer, undefined, false, 80, [], withDefault(ranges));

  it('no allowlist anywhere: every client', () => {
    expect(allowlistDenial({}, fwd('203.0.113.1', undefined))).toBeUndefined();
  });
  it('the default applies to routes without their own', () => {
    expect(allowlistDenial({}, fwd('10.1.2.3', ['10.0.0.0/8']))).toBeUndefined();
    expect(allowlistDenial({}, fwd('203.0.113.1', ['10.0.0.0/8']))).toBe('client 203.0.113.1 not in whitelist-source-range 10.0.0.0/8');
  });
  it("a route's own allowlist replaces the default", () => {
    const route = { allowSourceRanges: ['203.0.113.0/24'] };
    expect(allowlistDenial(route, fwd('203.0.113.1', ['10.0.0.0/8']))).toBeUndefined();
    expect(allowlistDenial(route, fwd('10.1.2.3', ['10.0.0.0/8']))).toBe('client 10.1.2.3 not in 203.0.113.0/24');
    expect(allowlistDenial({ allowSourceRanges: [] }, fwd('10.1.2.3', ['10.0.0.0/8']))).toBe('client 10.1.2.3 not in (empty allowlist)');
  });
  it('is decided on the real client IP (the PROXY source)', () => {
    const r = resolveRealIp('10.0.0.1', proxyFrom('203.0.113.9'), false, 80, [], withDefault(['203.0.113.0/24']));
    expect(allowlistDenial({}, r)).toBeUndefined();
    const lb = resolveRealIp('203.0.113.9', proxyFrom('10.0.0.1'), false, 80, [], withDefault(['203.0.113.0/24']));
    expect(allowlistDenial({}, lb)).toMatch(/^client 10\.0\.0\.1 not in/);
  });
});

describe('cidr', () => {
  it('normalizes addresses and refuses garbage', () => {
    const ok: [string, string][] = [
      ['1.2.3.4', '1.2.3.4'],
      ['::ffff:1.2.3.4', '1.2.3.4'],
      ['::FFFF:0102:0304', '1.2.3.4'],
      ['[2001:DB8::1]', '2001:db8::1'],
      ['fe80::1%eth0', 'fe80::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      [' 10.0.0.1 ', '10.0.0.1'],
      ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ];
    for (const [i, o] of ok) expect(normalizeIp(i), i).toBe(o);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4:80', '::1::', '1:2:3:4:5:6:7:8:9', 'g::1', '[::1', 'unknown', '_x', '1.2.3.4%eth0', '::ffff:1.2.3.256', '12345::', ':1', '1:'] as const) {
      expect(normalizeIp(bad), bad).toBeUndefined();
    }
    expect(normalizeIp(undefined as unknown as string)).toBeUndefined();
  });

  it('normalizes forwarding-header nodes', () => {
    expect(normalizeNode('1.2.3.4:567')).toBe('1.2.3.4');
    expect(normalizeNode('[::1]:80')).toBe('::1');
    expect(normalizeNode('"[2001:db8:cafe::17]:4711"')).toBe('2001:db8:cafe::17');
    expect(normalizeNode('[2001:db8::1]:_obf')).toBe('2001:db8::1');
    expect(normalizeNode('unknown')).toBeUndefined();
    expect(normalizeNode('_hidden')).toBeUndefined();
    expect(normalizeNode('1.2.3.4:')).toBeUndefined();
    expect(normalizeNode('[::1]x')).toBeUndefined();
  });

  it('parses CIDRs and matches', () => {
    expect(parseCidr('10.1.2.3/8')?.text).toBe('10.0.0.0/8');
    expect(parseCidr('192.168.1.7')?.text).toBe('192.168.1.7/32');
    expect(parseCidr('::1')?.text).toBe('::1/128');
    expect(parseCidr('2001:db8::/32')?.text).toBe('2001:db8::/32');
    expect(parseCidr('::ffff:10.0.0.0/104')?.text).toBe('10.0.0.0/8');
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', 'x/8', '10.0.0.0/8/8', 'fe80::/10%eth0']) expect(parseCidr(bad), bad).toBeUndefined();
    const set = CidrSet.from(['10.0.0.0/8', '2001:db8::/32', '192.168.1.1', '172.16.0.0/12']);
    const cases: [string, boolean][] = [
      ['10.2.3.4', true],
      ['::ffff:10.2.3.4', true],
      ['11.0.0.0', false],
      ['2001:db8:1::5', true],
      ['2001:db9::', false],
      ['192.168.1.1', true],
      ['192.168.1.2', false],
      ['172.31.255.255', true],
      ['172.32.0.0', false],
      ['garbage', false],
      ['', false],
    ];
    for (const [ip, want] of cases) expect(set.contains(ip), ip).toBe(want);
    expect(CidrSet.from(['0.0.0.0/0']).contains('8.8.8.8')).toBe(true);
    expect(CidrSet.from(['0.0.0.0/0']).contains('2600::1')).toBe(false);
    expect(CidrSet.from(['::/0']).contains('2600::1')).toBe(true);
    expect(new CidrSet().contains('1.2.3.4')).toBe(false);
    const { errors } = CidrSet.parse(['10.0.0.0/8', 'nope']);
    expect(errors).toEqual(['"nope" is not a valid CIDR or IP address']);
  });
});
