// Canary Ingresses through a real `portico serve --manifests` (QA-12): with two echo backends, a
// canary takes only its share of its main Ingress's traffic, by weight (smooth weighted
// round-robin is exact within one worker, hence --workers 1), by header and by cookie, and an
// older canary does not take the host from its main.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml, type Obj } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';
import { startEchoPod, type EchoPod } from './gateway-helpers.ts';

const N = 'nginx.ingress.kubernetes.io/';
const OLDER = '2025-01-01T00:00:00Z';

const aged = (o: Obj, creationTimestamp: string): Obj => ({ ...o, metadata: { ...(o.metadata as Obj), creationTimestamp } });

describe('canary Ingresses (e2e)', () => {
  let portico: Portico;
  let main: EchoPod;
  let canary: EchoPod;

  beforeAll(async () => {
    main = await startEchoPod('default', 'main', 'main-0');
    canary = await startEchoPod('default', 'canary', 'canary-0');
    const pair = (host: string, annotations: Record<string, string>): Obj[] => [
      // The canary is the older of the two: it must still not take the host.
      aged(ingress(`${host}-canary`, host, [{ path: '/', service: 'canary' }], { annotations: { [`${N}canary`]: 'true', ...annotations } }), OLDER),
      ingress(`${host}-main`, host, [{ path: '/', service: 'main' }]),
    ];
    portico = await startPortico({
      workers: 1,
      files: {
        'all.yaml': toYaml(
          ingressClass(),
          service('main'),
          endpointSlice('main', [`127.0.0.1:${main.port}`]),
          service('canary'),
          endpointSlice('canary', [`127.0.0.1:${canary.port}`]),
          ...pair('w0.test', { [`${N}canary-weight`]: '0' }),
          ...pair('w30.test', { [`${N}canary-weight`]: '30' }),
          ...pair('hdr.test', { [`${N}canary-by-header`]: 'X-Canary', [`${N}canary-by-cookie`]: 'use_canary' }),
          ...pair('val.test', { [`${N}canary-by-header`]: 'X-Group', [`${N}canary-by-header-value`]: 'beta' }),
          // A canary Portico cannot honour is not served at all.
          ...pair('bad.test', { [`${N}canary-weight`]: '101' }),
          // A canary alone serves nothing.
          aged(ingress('lonely-canary', 'lonely.test', [{ path: '/', service: 'canary' }], { annotations: { [`${N}canary`]: 'true' } }), OLDER),
        ),
      },
    });
  }, 30_000);

  afterAll(async () => {
    await portico?.stop();
    await main?.close();
    await canary?.close();
  });

  /** Which service answered each of `n` requests, counted. */
  async function count(host: string, n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await request(portico.httpPort, '/', { host, headers });
      const who = r.status === 200 ? (JSON.parse(r.body) as { service: string }).service : `status ${r.status}`;
      counts[who] = (counts[who] ?? 0) + 1;
    }
    return counts;
  }

  it('weight 0: no request reaches the canary, though it is the older Ingress', async () => {
    expect(await count('w0.test', 50)).toEqual({ main: 50 });
  });

  it('weight 30: about 30% of 200 requests reach the canary', async () => {
    const c = await count('w30.test', 200);
    expect((c.main ?? 0) + (c.canary ?? 0)).toBe(200);
    expect(Math.abs((c.canary ?? 0) - 60)).toBeLessThanOrEqual(3);
  });

  it('canary-by-header: always -> canary, never -> main, then the cookie, else the weight (0)', async () => {
    expect(await count('hdr.test', 5, { 'x-canary': 'always' })).toEqual({ canary: 5 });
    expect(await count('hdr.test', 5, { 'x-canary': 'never', cookie: 'use_canary=always' })).toEqual({ main: 5 });
    expect(await count('hdr.test', 5, { cookie: 'a=b; use_canary=always' })).toEqual({ canary: 5 });
    expect(await count('hdr.test', 5, { 'x-canary': 'maybe' })).toEqual({ main: 5 });
    expect(await count('hdr.test', 5)).toEqual({ main: 5 });
  });

  it('canary-by-header-value: only that value picks the canary', async () => {
    expect(await count('val.test', 3, { 'x-group': 'beta' })).toEqual({ canary: 3 });
    expect(await count('val.test', 3, { 'x-group': 'always' })).toEqual({ main: 3 });
  });

  it('a canary it cannot honour is not served and is reported; a lonely canary serves nothing', async () => {
    expect(await count('bad.test', 10)).toEqual({ main: 10 });
    expect(await count('lonely.test', 1)).toEqual({ 'status 404': 1 });
    const status = await portico.json<{ problems: { name?: string; severity: string; message: string }[] }>('/status');
    expect(status.problems).toContainEqual(expect.objectContaining({ name: 'bad.test-canary', severity: 'error', message: expect.stringMatching(/canary-weight.*not served/) }));
    expect(status.problems).toContainEqual(expect.objectContaining({ name: 'lonely-canary', severity: 'error', message: expect.stringMatching(/no main .*Ingress/) }));
    expect(status.problems.filter((p) => /already served by the older/.test(p.message))).toEqual([]);
  });
});
