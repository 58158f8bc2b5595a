// The PROXY protocol counters export every known series, at 0, as soon as the module is loaded:
// dashboards and alerts (rate(...) > 0) need the series before the first event.
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HEADER_LABELS, MALFORMED_REASONS, MISMATCH_KINDS } from '../src/realip/proxy-listener.ts';

async function series(name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const m = client.register.getSingleMetric(name);
  expect(m, name).toBeDefined();
  return (await m!.get()).values.map((v) => ({ labels: { ...v.labels } as Record<string, string | number>, value: v.value }));
}

describe('PROXY protocol metrics at startup', () => {
  it('every label combination is present at 0 before any connection', async () => {
    expect(await series('portico_proxy_protocol_mismatch_total')).toEqual(
      ['missing_header_http', 'missing_header_tls', 'missing_header_other', 'unexpected_header'].map((kind) => ({ labels: { kind }, value: 0 })),
    );
    expect(MISMATCH_KINDS.length).toBe(4);
    expect(await series('portico_proxy_protocol_malformed_total')).toEqual([
      { labels: { reason: 'invalid' }, value: 0 },
      { labels: { reason: 'truncated' }, value: 0 },
    ]);
    expect(MALFORMED_REASONS).toEqual(['invalid', 'truncated']);
    expect(await series('portico_proxy_protocol_headers_total')).toEqual([
      { labels: { version: '1', command: 'PROXY' }, value: 0 },
      { labels: { version: '2', command: 'PROXY' }, value: 0 },
      { labels: { version: '2', command: 'LOCAL' }, value: 0 },
    ]);
    expect(HEADER_LABELS.length).toBe(3);
    expect(await series('portico_proxy_protocol_untrusted_total')).toEqual([{ labels: {}, value: 0 }]);
  });

  it('and in the Prometheus text exposition', async () => {
    const text = await client.register.metrics();
    for (const kind of MISMATCH_KINDS) expect(text).toContain(`portico_proxy_protocol_mismatch_total{kind="${kind}"} 0`);
    for (const reason of MALFORMED_REASONS) expect(text).toContain(`portico_proxy_protocol_malformed_total{reason="${reason}"} 0`);
    for (const l of HEADER_LABELS) expect(text).toContain(`portico_proxy_protocol_headers_total{version="${l.version}",command="${l.command}"} 0`);
    expect(text).toContain('portico_proxy_protocol_untrusted_total 0');
  });
});
