// HTTPRoute CORS through a real `portico serve` (HTTPRouteCORS), on both HTTP/1.1 engines and
// HTTP/2: preflights are answered by Portico and never reach the backend; an allowed origin's
// answers carry the CORS headers, a disallowed origin's carry none. A backendRef's own CORS or
// RequestRedirect applies to the share of requests that backendRef is picked for.
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { gateway, gatewayClass, httpRoute, namespace, ref, send, serviceFor, startEchoPod, toYaml, type EchoPod, type Obj } from './gateway-helpers.ts';

const corsRule = (path: string, cors: Obj): Obj => ({ matches: [{ path: { type: 'PathPrefix', value: path } }], filters: [{ type: 'CORS', cors }], backendRefs: [ref('v1')] });

describe.each(['node', 'fast'])('--http1-engine %s', (engine) => {
  let portico: Portico;
  let pod: EchoPod;
  let pod2: EchoPod;
  let port: number;

  beforeAll(async () => {
    pod = await startEchoPod('infra', 'v1', 'v1-pod-0');
    pod2 = await startEchoPod('infra', 'v2', 'v2-pod-0');
    portico = await startPortico({ files: {}, workers: 1, args: ['--http1-engine', engine] });
    port = portico.httpPort;
    portico.write('all.yaml', toYaml(
      namespace('infra'),
      gatewayClass(),
      gateway('gw', [{ name: 'http', port, protocol: 'HTTP' }]),
      ...serviceFor([pod]), ...serviceFor([pod2]),
      // backendRef filters: CORS and RequestRedirect apply to the share their backendRef is picked for.
      httpRoute('per-backend', { parentRefs: [{ name: 'gw' }], hostnames: ['per-backend.test'], rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/cors' } }], backendRefs: [{ ...ref('v1'), filters: [{ type: 'CORS', cors: { allowOrigins: ['https://a.test'], allowMethods: ['PUT'] } }] }, ref('v2')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/redirect' } }], backendRefs: [{ ...ref('v1'), filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'moved.test', statusCode: 302 } }] }, ref('v2')] },
      ] }),
      httpRoute('cors', { parentRefs: [{ name: 'gw' }], hostnames: ['cors.test'], rules: [
        corsRule('/cors-1', { allowOrigins: ['https://www.foo.com', 'https://*.bar.com'], allowMethods: ['GET', 'OPTIONS'], allowHeaders: ['x-header-1', 'x-header-2'], exposeHeaders: ['x-header-3', 'x-header-4'], allowCredentials: true, maxAge: 3600 }),
        corsRule('/cors-2', { allowOrigins: ['https://www.foo.com'], allowMethods: ['*'] }),
        corsRule('/cors-wildcard-origin', { allowOrigins: ['*'], allowMethods: ['PUT'], allowCredentials: false }),
        corsRule('/cors-wildcard-methods-headers', { allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: true }),
        corsRule('/cors-wildcard-methods-headers-unauth', { allowOrigins: ['*'], allowMethods: ['*'], allowHeaders: ['*'], allowCredentials: false }),
      ] }),
    ));
    await waitFor('route served', async () => (await send(port, 'cors.test', '/cors-1')).echo?.service === 'v1', 20_000);
  }, 60_000);

  afterAll(async () => {
    await portico?.stop();
    await pod?.close();
    await pod2?.close();
  });

  const preflight = (path: string, origin: string, method: string, headers?: string) =>
    send(port, 'cors.test', path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) } });
  const list = (v: unknown) => String(v ?? '').split(',').map((x) => x.trim()).filter(Boolean).sort();

  describe('CORS (HTTPRouteCORS)', () => {
    it('preflights from allowed origins are answered by Portico with the configured headers; the backend sees none', async () => {
      const before = pod.received;
      for (const origin of ['https://www.foo.com', 'https://www.bar.com', 'https://xpto.www.bar.com']) {
        const r = await preflight('/cors-1', origin, 'GET', 'x-header-1, x-header-2');
        expect([r.status, r.headers['access-control-allow-origin'], list(r.headers['access-control-allow-methods']), list(r.headers['access-control-allow-headers']), list(r.headers['access-control-expose-headers']), r.headers['access-control-max-age'], r.headers['access-control-allow-credentials']]).toEqual([204, origin, ['GET', 'OPTIONS'], ['x-header-1', 'x-header-2'], ['x-header-3', 'x-header-4'], '3600', 'true']);
      }
      expect(pod.received).toBe(before);
    });

    it('a disallowed origin gets no allow-origin, to preflights and requests alike', async () => {
      const p = await preflight('/cors-1', 'https://foobar.com', 'GET');
      expect([200, 204, 403]).toContain(p.status);
      expect(p.headers['access-control-allow-origin']).toBeUndefined();
      const r = await send(port, 'cors.test', '/cors-1', { headers: { origin: 'https://foobar.com' } });
      expect([r.status, r.headers['access-control-allow-origin']]).toEqual([200, undefined]);
      // The answer still depends on the Origin: caches must key on it.
      expect(String(r.headers.vary)).toMatch(/\bOrigin\b/);
    });

    it('requests from allowed origins reach the backend and come back with allow-origin (and credentials, expose)', async () => {
      const r = await send(port, 'cors.test', '/cors-1', { headers: { origin: 'https://www.bar.com' } });
      expect([r.echo?.service, r.headers['access-control-allow-origin'], r.headers['access-control-allow-credentials'], list(r.headers['access-control-expose-headers'])]).toEqual(['v1', 'https://www.bar.com', 'true', ['x-header-3', 'x-header-4']]);
    });

    it('wildcards: methods `*` allow the requested one; origin `*` without credentials is `*`; with credentials the origin is echoed', async () => {
      const two = await preflight('/cors-2', 'https://www.foo.com', 'POST');
      expect([two.headers['access-control-allow-origin'], ['POST', '*'].includes(String(two.headers['access-control-allow-methods'])), two.headers['access-control-allow-credentials']]).toEqual(['https://www.foo.com', true, undefined]);
      const any = await preflight('/cors-wildcard-origin', 'https://foobar.com:12345', 'PUT');
      expect([['*', 'https://foobar.com:12345'].includes(String(any.headers['access-control-allow-origin'])), any.headers['access-control-allow-methods'], any.headers['access-control-allow-credentials']]).toEqual([true, 'PUT', undefined]);
      const cred = await preflight('/cors-wildcard-methods-headers', 'https://other.foo.com', 'PUT', 'x-header-1, x-header-2');
      expect([cred.headers['access-control-allow-origin'], cred.headers['access-control-allow-methods'], list(cred.headers['access-control-allow-headers']), cred.headers['access-control-allow-credentials']]).toEqual(['https://other.foo.com', 'PUT', ['x-header-1', 'x-header-2'], 'true']);
    });
  });

    it('-unauth: `*` or the requested values, no credentials; simple requests likewise', async () => {
      const p = await preflight('/cors-wildcard-methods-headers-unauth', 'https://other.foo.com', 'PUT', 'x-header-1, x-header-2');
      expect(p.status).toBe(204);
      expect(['*', 'https://other.foo.com']).toContain(p.headers['access-control-allow-origin']);
      expect(['*', 'PUT']).toContain(p.headers['access-control-allow-methods']);
      expect(p.headers['access-control-allow-credentials']).toBeUndefined();
      const put = await send(port, 'cors.test', '/cors-wildcard-origin', { method: 'PUT', headers: { origin: 'https://foobar.com' } });
      expect([put.status, ['*', 'https://foobar.com'].includes(String(put.headers['access-control-allow-origin']))]).toEqual([200, true]);
      const get = await send(port, 'cors.test', '/cors-wildcard-methods-headers', { headers: { origin: 'https://other.foo.com' } });
      expect([get.headers['access-control-allow-origin'], get.headers['access-control-allow-credentials']]).toEqual(['https://other.foo.com', 'true']);
    });

    it('CORS on a backendRef: its share of preflights is answered by Portico, its answers carry allow-origin; the other share is forwarded as is', async () => {
      // One worker: the 50/50 pick alternates exactly.
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await send(port, 'per-backend.test', '/cors', { method: 'OPTIONS', headers: { origin: 'https://a.test', 'access-control-request-method': 'PUT' } });
        got.push(`${r.status} ${r.echo?.service ?? '-'} ${r.headers['access-control-allow-origin'] ?? '-'} ${r.headers['access-control-allow-methods'] ?? '-'}`);
      }
      expect(got.sort()).toEqual(['200 v2 - -', '200 v2 - -', '204 - https://a.test PUT', '204 - https://a.test PUT']);
      const simple: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await send(port, 'per-backend.test', '/cors', { headers: { origin: 'https://a.test' } });
        simple.push(`${r.echo?.service} ${r.headers['access-control-allow-origin'] ?? '-'}`);
      }
      expect(simple.sort()).toEqual(['v1 https://a.test', 'v1 https://a.test', 'v2 -', 'v2 -']);
    });

    it('RequestRedirect on a backendRef: its share is redirected, the other forwarded', async () => {
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await send(port, 'per-backend.test', '/redirect/x?q=1');
        got.push(r.status === 200 ? `200 ${r.echo?.service}` : `${r.status} ${r.headers.location}`);
      }
      // The listener's port is kept (no port or scheme in the filter).
      expect(got.sort()).toEqual(['200 v2', '200 v2', `302 http://moved.test:${port}/redirect/x?q=1`, `302 http://moved.test:${port}/redirect/x?q=1`]);
    });

    it('over HTTP/2 (h2c): the preflight is answered by Portico, the request gets allow-origin', async () => {
      const before = pod.received;
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const ask = (headers: http2.OutgoingHttpHeaders) => new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const s = session.request({ ':authority': 'cors.test', ...headers });
        let h: http2.IncomingHttpHeaders = {};
        s.on('response', (r) => (h = r));
        s.on('error', reject);
        s.resume();
        s.on('end', () => resolve(h));
        s.end();
      });
      try {
        const p = await ask({ ':method': 'OPTIONS', ':path': '/cors-1', origin: 'https://www.foo.com', 'access-control-request-method': 'GET' });
        expect([p[':status'], p['access-control-allow-origin'], p['access-control-max-age']]).toEqual([204, 'https://www.foo.com', '3600']);
        expect(pod.received).toBe(before);
        const r = await ask({ ':method': 'GET', ':path': '/cors-1', origin: 'https://www.bar.com' });
        expect([r[':status'], r['access-control-allow-origin'], r['access-control-allow-credentials']]).toEqual([200, 'https://www.bar.com', 'true']);
      } finally {
        session.close();
      }
    });
});
