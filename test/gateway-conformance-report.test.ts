// The conformance report's bookkeeping (test/gateway-conformance-report.ts): every scenario it
// maps exists in its suite, and features follow test outcomes (one failure removes a feature).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_FEATURES } from '../controller/gateway/gateways.ts';
import { buildReport, SCENARIOS } from './gateway-conformance-report.ts';

const results = (failing: string[] = []) => {
  const files = new Map<string, { title: string; status: string }[]>();
  for (const key of Object.keys(SCENARIOS)) {
    const [file, title] = key.split(' > ');
    files.set(file, [...(files.get(file) ?? []), { title, status: failing.includes(key) ? 'failed' : 'passed' }]);
  }
  return { testResults: [...files].map(([name, assertionResults]) => ({ name: `/x/test/${name}`, assertionResults })) };
};

describe('conformance report', () => {
  it('maps only scenarios that exist, by their exact titles', () => {
    for (const key of Object.keys(SCENARIOS)) {
      const [file, title] = key.split(' > ');
      expect(readFileSync(join(import.meta.dirname, file), 'utf8'), key).toContain(`it('${title}'`);
    }
  });

  it('lists a feature only when its tests ran and passed', () => {
    const all = buildReport(results(), '1.0.0', '2026-01-01T00:00:00Z') as any;
    expect(all).toMatchObject({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'ConformanceReport', gatewayAPIVersion: 'v1.6.1' });
    expect(all.supportedFeatures).toEqual(expect.arrayContaining(['Gateway', 'HTTPRoute', 'GRPCRoute', 'TLSRoute', 'HTTPRouteQueryParamMatching', 'HTTPRouteBackendProtocolH2C']));
    const http = all.profiles.find((p: any) => p.name === 'GATEWAY-HTTP');
    expect(http.core.statistics.Failed).toBe(0);
    expect(http.core).toMatchObject({ result: 'success', statistics: { Failed: 0, Skipped: 0 } });
    const query = 'e2e-gateway.test.ts > query parameter matches: case-sensitive, more matches win, a longer path beats them; the query reaches the backend unchanged';
    const one = buildReport(results([query]), '1.0.0', '2026-01-01T00:00:00Z') as any;
    expect(one.supportedFeatures).not.toContain('HTTPRouteQueryParamMatching');
    expect(one.profiles.find((p: any) => p.name === 'GATEWAY-HTTP').extended.unsupportedFeatures).toContain('HTTPRouteQueryParamMatching');
  });

  it('the GatewayClass status lists exactly the features a fully passing run supports', () => {
    expect([...SUPPORTED_FEATURES]).toEqual((buildReport(results(), '1.0.0', '2026-01-01T00:00:00Z') as any).supportedFeatures);
  });
});
