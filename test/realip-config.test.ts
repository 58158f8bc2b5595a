import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REAL_IP_FLAGS, REAL_IP_KEYS, defaultRealIpConfig, loadConfigFile, parseConfigText, parseRealIpSettings, realIpSettingsToRecord, unknownConfigKeys } from '../src/realip/config.ts';

describe('real-IP settings', () => {
  it('defaults: PROXY off, nothing trusted', () => {
    const { config, errors, warnings } = parseRealIpSettings({});
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.useProxyProtocol).toBe('off');
    expect(config.proxyProtocolTrustedCidrs).toBeUndefined();
    expect(config.useForwardedHeaders).toBe(false);
    expect(config.proxyRealIpCidr.isEmpty).toBe(true);
    expect(config.forwardedForHeader).toBe('X-Forwarded-For');
    expect(config.computeFullForwardedFor).toBe(false);
    expect(parseRealIpSettings({}).config).toEqual(defaultRealIpConfig());
  });

  it('ConfigMap string forms', () => {
    const { config, errors } = parseRealIpSettings({
      'use-proxy-protocol': 'true',
      'proxy-protocol-trusted-cidrs': '10.0.0.0/16, 2001:db8::/32',
      'use-forwarded-headers': 'True',
      'proxy-real-ip-cidr': '10.0.0.0/8,192.168.0.0/16',
      'forwarded-for-header': 'Forwarded',
      'compute-full-forwarded-for': 'false',
    });
    expect(errors).toEqual([]);
    expect(config.useProxyProtocol).toBe('on');
    expect(config.proxyProtocolTrustedCidrs?.toJSON()).toEqual(['10.0.0.0/16', '2001:db8::/32']);
    expect(config.useForwardedHeaders).toBe(true);
    expect(config.proxyRealIpCidr.toJSON()).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(config.proxyRealIpCidr.contains('192.168.3.4')).toBe(true);
    expect(config.forwardedForHeader).toBe('Forwarded');
    expect(config.computeFullForwardedFor).toBe(false);
  });

  it('YAML forms: booleans and lists', () => {
    const { values, errors: fileErrors } = parseConfigText(`
use-proxy-protocol: optional
proxy-protocol-trusted-cidrs:
  - 10.0.1.0/24
  - 10.0.2.0/24
use-forwarded-headers: true
proxy-real-ip-cidr: [10.0.0.0/8, "fd00::/8"]
compute-full-forwarded-for: yes
unrelated-key: 5
`);
    expect(fileErrors).toEqual([]);
    const { config, errors } = parseRealIpSettings(values);
    expect(errors).toEqual([]);
    expect(config.useProxyProtocol).toBe('optional');
    expect(config.proxyProtocolTrustedCidrs?.toJSON()).toEqual(['10.0.1.0/24', '10.0.2.0/24']);
    expect(config.useForwardedHeaders).toBe(true);
    expect(config.proxyRealIpCidr.toJSON()).toEqual(['10.0.0.0/8', 'fd00::/8']);
    // YAML 1.2 reads `yes` as a string; it is accepted as a boolean word.
    expect(config.computeFullForwardedFor).toBe(true);
  });

  it('flag values: booleans, repeated flags, comma lists', () => {
    const { config, errors } = parseRealIpSettings({
      'use-proxy-protocol': false,
      'proxy-real-ip-cidr': ['10.0.0.0/8,172.16.0.0/12', '::1'],
      'use-forwarded-headers': true,
    });
    expect(errors).toEqual([]);
    expect(config.useProxyProtocol).toBe('off');
    expect(config.proxyRealIpCidr.toJSON()).toEqual(['10.0.0.0/8', '172.16.0.0/12', '::1/128']);
  });

  it('flags override the file when merged', () => {
    const file = parseConfigText('use-proxy-protocol: "true"\nproxy-real-ip-cidr: 10.0.0.0/8\n').values;
    const { config } = parseRealIpSettings({ ...file, 'use-proxy-protocol': 'optional' });
    expect(config.useProxyProtocol).toBe('optional');
    expect(config.proxyRealIpCidr.toString()).toBe('10.0.0.0/8');
  });

  it('bad values: clear errors, defaults kept, no throw', () => {
    const { config, errors } = parseRealIpSettings({
      'use-proxy-protocol': 'sometimes',
      'proxy-protocol-trusted-cidrs': '10.0.0.0/33',
      'use-forwarded-headers': 'maybe',
      'proxy-real-ip-cidr': ['10.0.0.0/8', 42],
      'forwarded-for-header': 'X Forwarded For',
      'compute-full-forwarded-for': 3,
    });
    expect(errors).toEqual([
      'use-proxy-protocol: expected true, false or optional, got "sometimes"',
      'proxy-protocol-trusted-cidrs: "10.0.0.0/33" is not a valid CIDR or IP address',
      'use-forwarded-headers: expected true or false, got "maybe"',
      'proxy-real-ip-cidr: list items must be strings, got 42',
      'forwarded-for-header: expected a header name such as X-Forwarded-For or Forwarded, got "X Forwarded For"',
      'compute-full-forwarded-for: expected true or false, got 3',
    ]);
    expect(config).toEqual(defaultRealIpConfig());
    expect(parseRealIpSettings(null as unknown as Record<string, unknown>).errors.length).toBe(1);
    expect(parseRealIpSettings({ 'proxy-real-ip-cidr': { a: 1 } }).errors).toEqual(['proxy-real-ip-cidr: expected a comma-separated string or a list of CIDRs, got {"a":1}']);
  });

  it('warns about risky combinations', () => {
    expect(parseRealIpSettings({ 'use-proxy-protocol': 'true' }).warnings[0]).toMatch(/every peer.*proxy-protocol-trusted-cidrs|proxy-protocol-trusted-cidrs.*every peer/);
    expect(parseRealIpSettings({ 'use-proxy-protocol': 'true', 'proxy-protocol-trusted-cidrs': '10.0.0.0/8' }).warnings).toEqual([]);
    expect(parseRealIpSettings({ 'proxy-real-ip-cidr': '0.0.0.0/0' }).warnings[0]).toMatch(/trusts every peer/);
    expect(parseRealIpSettings({ 'use-forwarded-headers': 'true' }).warnings[0]).toMatch(/no effect/);
    // Empty string means unset, as in a ConfigMap with the key left blank.
    expect(parseRealIpSettings({ 'use-proxy-protocol': 'true', 'proxy-protocol-trusted-cidrs': '' }).config.proxyProtocolTrustedCidrs).toBeUndefined();
  });

  it('round-trips through a plain record (for workers)', () => {
    const { config } = parseRealIpSettings({ 'use-proxy-protocol': 'optional', 'proxy-protocol-trusted-cidrs': '10.0.0.0/8', 'proxy-real-ip-cidr': '10.0.0.0/8,fd00::/8', 'forwarded-for-header': 'Forwarded', 'compute-full-forwarded-for': true });
    const again = parseRealIpSettings(JSON.parse(JSON.stringify(realIpSettingsToRecord(config))) as Record<string, unknown>);
    expect(again.errors).toEqual([]);
    expect(again.config).toEqual(config);
  });

  it('every key has a flag', () => {
    expect(REAL_IP_FLAGS.map((f) => f.name)).toEqual([...REAL_IP_KEYS]);
  });

  it('whitelist-source-range: the default allowlist, in every form the other lists take', () => {
    expect(parseRealIpSettings({}).config.whitelistSourceRange).toBeUndefined();
    const cm = parseRealIpSettings({ 'whitelist-source-range': '10.0.0.0/8, 192.168.0.0/16,2001:db8::/32' });
    expect(cm.errors).toEqual([]);
    expect(cm.config.whitelistSourceRange?.toJSON()).toEqual(['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32']);
    expect(cm.config.whitelistSourceRange?.contains('192.168.7.7')).toBe(true);
    expect(cm.config.whitelistSourceRange?.contains('172.16.0.1')).toBe(false);
    const yaml = parseRealIpSettings(parseConfigText('whitelist-source-range:\n  - 10.0.0.0/8\n  - 127.0.0.1\n').values);
    expect(yaml.config.whitelistSourceRange?.toJSON()).toEqual(['10.0.0.0/8', '127.0.0.1/32']);
    // Empty means no default allowlist (every client), as with ingress-nginx.
    expect(parseRealIpSettings({ 'whitelist-source-range': '' }).config.whitelistSourceRange).toBeUndefined();
    expect(parseRealIpSettings({ 'whitelist-source-range': ' , ' }).config.whitelistSourceRange).toBeUndefined();
    const bad = parseRealIpSettings({ 'whitelist-source-range': '10.0.0.0/8,10.0.0.300' });
    expect(bad.errors).toEqual(['whitelist-source-range: "10.0.0.300" is not a valid CIDR or IP address']);
    expect(bad.config.whitelistSourceRange).toBeUndefined();
    expect(parseRealIpSettings({ 'whitelist-source-range': 8 }).errors[0]).toMatch(/^whitelist-source-range: expected/);
    // It reaches the workers.
    const again = parseRealIpSettings(realIpSettingsToRecord(cm.config));
    expect(again.config.whitelistSourceRange?.toString()).toBe('10.0.0.0/8,192.168.0.0/16,2001:db8::/32');
  });

  it('names the config keys Portico does not know, with the key a typo was meant to be', () => {
    expect(unknownConfigKeys({ 'use-proxy-protocol': 'true', 'whitelist-source-range': '10.0.0.0/8' })).toEqual([]);
    expect(unknownConfigKeys({ 'use-proxy-protocl': 'true', 'proxy-body-size': '8m', 'Use-Forwarded-Headers': 'true', 'whitelist-source-ranges': 'x' })).toEqual([
      'use-proxy-protocl (did you mean use-proxy-protocol?)',
      'proxy-body-size',
      'Use-Forwarded-Headers (did you mean use-forwarded-headers?)',
      'whitelist-source-ranges (did you mean whitelist-source-range?)',
    ]);
    expect(unknownConfigKeys({ ['x'.repeat(10_000)]: 1 })).toEqual(['x'.repeat(10_000)]);
  });
});

describe('config file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-realip-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a flat YAML map', async () => {
    const f = join(dir, 'flat.yaml');
    await writeFile(f, 'use-proxy-protocol: true\nproxy-protocol-trusted-cidrs: "10.0.0.0/16"\n');
    const { values, errors } = await loadConfigFile(f);
    expect(errors).toEqual([]);
    const s = parseRealIpSettings(values);
    expect(s.config.useProxyProtocol).toBe('on');
    expect(s.config.proxyProtocolTrustedCidrs?.contains('10.0.3.3')).toBe(true);
  });

  it('reads an ingress-nginx style ConfigMap manifest', async () => {
    const f = join(dir, 'cm.yaml');
    await writeFile(f, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: portico\ndata:\n  use-forwarded-headers: "true"\n  proxy-real-ip-cidr: "10.0.0.0/8,192.168.0.0/16"\n');
    const { values, errors } = await loadConfigFile(f);
    expect(errors).toEqual([]);
    const s = parseRealIpSettings(values);
    expect(s.errors).toEqual([]);
    expect(s.config.useForwardedHeaders).toBe(true);
    expect(s.config.proxyRealIpCidr.size).toBe(2);
  });

  it('reports missing files, bad YAML and non-maps', async () => {
    expect((await loadConfigFile(join(dir, 'missing.yaml'))).errors[0]).toMatch(/missing\.yaml/);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'a: [1, 2\n');
    expect((await loadConfigFile(bad)).errors[0]).toMatch(/invalid YAML/);
    expect(parseConfigText('- a\n- b\n').errors[0]).toMatch(/expected a map/);
    expect(parseConfigText('').errors).toEqual([]);
  });
});
