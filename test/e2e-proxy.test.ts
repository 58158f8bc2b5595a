import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { curl } from './helpers/certs.ts';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { freePort, sleep, startPortico, waitFor, type Portico } from './helpers/portico.ts';

let portico: Portico;
let a1: EchoBackend;
let a2: EchoBackend;
let b: EchoBackend;
let slow: http.Server;
let slowPort: number;
let deadPort: number;

beforeAll(async () => {
  a1 = await startEchoBackend('a1', '127.0.0.2', 0);
  a2 = await startEchoBackend('a2', '127.0.0.2', 0);
  b = await startEchoBackend('b', '127.0.0.3', 0);
  slow = http.createServer((req, res) => setTimeout(() => res.end('late\n'), 3000));
  slowPort = await freePort('127.0.0.4');
  await new Promise<void>((r) => slow.listen(slowPort, '127.0.0.4', r));
  deadPort = await freePort('127.0.0.5');
  portico = await startPortico({
    files: {
      'class.yaml': toYaml(ingressClass()),
      'services.yaml': toYaml(
        service('a'), endpointSlice('a', [`127.0.0.2:${a1.port}`]),
        service('a2'), endpointSlice('a2', [`127.0.0.2:${a2.port}`]),
        service('b'), endpointSlice('b', [`127.0.0.3:${b.port}`]),
        service('slow'), endpointSlice('slow', [`127.0.0.4:${slowPort}`]),
        service('dead'), endpointSlice('dead', [`127.0.0.5:${deadPort}`]),
        service('empty'), endpointSlice('empty', [{ at: '127.0.0.9:80', ready: false, serving: false }]),
      ),
      'ingress.yaml': toYaml(
        ingress('app', 'app.test', [{ path: '/', service: 'a' }, { path: '/b', service: 'b' }, { path: '/exact', pathType: 'Exact', service: 'b' }]),
        ingress('errors', 'errors.test', [{ path: '/missing', service: 'nope' }, { path: '/empty', service: 'empty' }, { path: '/dead', service: 'dead' }]),
        ingress('slow', 'errors.test', [{ path: '/slow', service: 'slow' }], { annotations: { 'portico.dev/proxy-read-timeout': '0.5' } }),
        ingress('wild', '*.wild.test', [{ path: '/', service: 'a2' }]),
        ingress('layered', 'deep.layer.test', [{ path: '/api', service: 'a' }]),
        ingress('layered-wild', '*.layer.test', [{ path: '/shop', service: 'a2' }]),
        ingress('layered-any', undefined, [{ path: '/anyhost', service: 'b' }]),
        ingress('allow', 'allow.test', [{ path: '/', service: 'a' }], { annotations: { 'portico.dev/whitelist-source-range': '127.0.0.20/31, 10.0.0.0/8' } }),
        ingress('allow-bad', 'allow-bad.test', [{ path: '/', service: 'a' }], { annotations: { 'portico.dev/whitelist-source-range': 'not-a-cidr' } }),
      ),
      'tls.yaml': toYaml(
        { ...ingress('secure', 'secure.test', [{ path: '/', service: 'a' }]), spec: { ingressClassName: 'portico', tls: [{ hosts: ['secure.test'], secretName: 'secure-tls' }], rules: [{ host: 'secure.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'a', port: { number: 80 } } } }] } }] } },
        { ...ingress('secure-off', 'nredirect.test', [{ path: '/', service: 'a' }], { annotations: { 'portico.dev/ssl-redirect': 'false' } }), spec: { ingressClassName: 'portico', tls: [{ hosts: ['nredirect.test'], secretName: 'secure-tls' }], rules: [{ host: 'nredirect.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'a', port: { number: 80 } } } }] } }] } },
      ),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await Promise.all([a1?.close(), a2?.close(), b?.close()]);
  slow?.closeAllConnections();
  slow?.close();
});

const echo = (r: { body: string }) => JSON.parse(r.body) as { backend: string; url: string; headers: Record<string, string>; bodyBytes: number; method: string };

describe('proxying Ingress traffic', () => {
  it('routes by host and path to real backends', async () => {
    expect(echo(await request(portico.httpPort, '/', { host: 'app.test' })).backend).toBe('a1');
    expect(echo(await request(portico.httpPort, '/b/c?q=1', { host: 'APP.test:8080' }))).toMatchObject({ backend: 'b', url: '/b/c?q=1' });
    expect(echo(await request(portico.httpPort, '/exact', { host: 'app.test' })).backend).toBe('b');
    expect(echo(await request(portico.httpPort, '/exact/x', { host: 'app.test' })).backend).toBe('a1');
    expect(echo(await request(portico.httpPort, '/', { host: 'x.wild.test' })).backend).toBe('a2');
  });

  it('keeps Host, sets X-Forwarded-*, X-Real-IP, and strips hop-by-hop and forged headers', async () => {
    const r = echo(await request(portico.httpPort, '/h', {
      host: 'app.test',
      localAddress: '127.0.0.7',
      headers: { connection: 'keep-alive, X-Secret-Hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', te: 'gzip', 'x-forwarded-for': '6.6.6.6', 'x-real-ip': '6.6.6.6', x_forwarded_for: '6.6.6.6', 'x-custom': 'kept' },
    }));
    expect(r.headers.host).toBe('app.test');
    expect(r.headers['x-forwarded-for']).toBe('127.0.0.7');
    expect(r.headers['x-real-ip']).toBe('127.0.0.7');
    expect(r.headers['x-forwarded-proto']).toBe('http');
    expect(r.headers['x-forwarded-host']).toBe('app.test');
    expect(r.headers['x-forwarded-port']).toBe(String(portico.httpPort));
    expect(r.headers['x-custom']).toBe('kept');
    for (const h of ['x-secret-hop', 'keep-alive', 'proxy-connection', 'te', 'x_forwarded_for']) expect(r.headers[h]).toBeUndefined();
  });

  it('passes request bodies and methods through', async () => {
    const r = echo(await request(portico.httpPort, '/upload', { host: 'app.test', method: 'POST', body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } }));
    expect(r).toMatchObject({ method: 'POST', bodyBytes: 100_000 });
    const chunked = echo(await request(portico.httpPort, '/upload', { host: 'app.test', method: 'PUT', headers: { 'transfer-encoding': 'chunked' }, body: 'abc' }));
    expect(chunked).toMatchObject({ method: 'PUT', bodyBytes: 3 });
  });

  it('a path the host does not serve falls through to the wildcard rules, then to the host-less ones', async () => {
    expect(echo(await request(portico.httpPort, '/api/x', { host: 'deep.layer.test' })).backend).toBe('a1');
    expect(echo(await request(portico.httpPort, '/shop', { host: 'deep.layer.test' })).backend).toBe('a2');
    expect(echo(await request(portico.httpPort, '/anyhost', { host: 'deep.layer.test' })).backend).toBe('b');
    expect(echo(await request(portico.httpPort, '/anyhost', { host: 'unknown.example' })).backend).toBe('b');
    expect((await request(portico.httpPort, '/elsewhere', { host: 'deep.layer.test' })).status).toBe(404);
  });

  it('Expect: 100-continue (curl sends it for large uploads): 100, then the body goes upstream', async () => {
    const out = await curl(['-s', '-H', 'Host: app.test', '-H', 'Expect: 100-continue', '--data-binary', 'x'.repeat(2048), '-w', '\n%{http_code}', `http://127.0.0.1:${portico.httpPort}/upload`]);
    const cut = out.lastIndexOf('\n');
    const body = out.slice(0, cut);
    expect(out.slice(cut + 1), out).toBe('200');
    const r = JSON.parse(body) as { bodyBytes: number; headers: Record<string, string> };
    expect(r.bodyBytes).toBe(2048);
    expect(r.headers.expect).toBeUndefined();
  });

  it('a request with two Host headers, or a malformed one, gets 400 and a closed connection', async () => {
    const two = await rawExchange(portico.httpPort, 'GET / HTTP/1.1\r\nHost: app.test\r\nHost: b.test\r\n\r\n');
    expect(two.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(two.text).toContain('more than one Host header');
    expect(two.closed).toBe(true);
    const bad = await rawExchange(portico.httpPort, 'GET / HTTP/1.1\r\nHost: app.test/evil\r\n\r\n');
    expect(bad.text).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('an absolute-form request target is routed by its authority, not the Host header (RFC 9112 3.2.2)', async () => {
    const r = await rawExchange(portico.httpPort, 'GET http://app.test/b/x?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    const e = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { backend: string; url: string; headers: Record<string, string> };
    expect(e).toMatchObject({ backend: 'b', url: '/b/x?q=1' });
    expect(e.headers.host).toBe('app.test');
  });

  it('an HTTP/1.1 request without Host gets 400 with a short body; an HTTP/1.0 one is routed', async () => {
    const none = await rawExchange(portico.httpPort, 'GET / HTTP/1.1\r\n\r\n');
    expect(none.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(none.text).toContain('bad request: missing Host header');
    expect(none.closed).toBe(true);
    const old = await rawExchange(portico.httpPort, 'GET / HTTP/1.0\r\n\r\n');
    expect(old.text).toMatch(/^HTTP\/1\.1 404 /); // no host-less rule in this table
  });

  it('asterisk-form: OPTIONS * is answered by Portico, any other method gets 400', async () => {
    const options = await rawExchange(portico.httpPort, 'OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
    expect(options.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(options.text).toMatch(/\r\nallow: GET, HEAD, POST/i);
    const get = await rawExchange(portico.httpPort, 'GET * HTTP/1.1\r\nHost: app.test\r\n\r\n');
    expect(get.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(get.closed).toBe(true);
  });

  it('a path that climbs above the root, or has a broken percent-escape, gets 400; a harmless .. is routed', async () => {
    for (const path of ['/b/../../etc/passwd', '/..', '/b/%2e%2E/%2e./x', '/b/%zz', '/b/%4', '/b/..\\admin', '/admin\\x', '/b//..']) {
      const r = await rawExchange(portico.httpPort, `GET ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
      expect(r.text, path).toMatch(/^HTTP\/1\.1 400 /);
      expect(r.closed, path).toBe(true);
    }
    const ok = await request(portico.httpPort, '/a/../b/x?q=..%zz', { host: 'app.test' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ backend: 'b', url: '/a/../b/x?q=..%zz' });
  });

  it('a GET on a kept-alive upstream connection that the upstream closes at that moment is retried, not answered 502', async () => {
    // An upstream that closes any connection that was idle for more than 150 ms when a request
    // arrives on it, without answering: the keep-alive race, every time.
    const racy = net.createServer((s) => {
      let buf = '';
      let last = Date.now();
      s.on('data', (c) => {
        buf += c.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          buf = buf.slice(end + 4);
          if (Date.now() - last > 150) return void s.destroy();
          last = Date.now();
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
        }
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => racy.listen(0, '127.0.0.6', r));
    const port = (racy.address() as net.AddressInfo).port;
    try {
      portico.write('racy.yaml', toYaml(service('racy'), endpointSlice('racy', [`127.0.0.6:${port}`]), ingress('racy', 'racy.test', [{ path: '/', service: 'racy' }])));
      await waitFor('route', async () => (await request(portico.httpPort, '/', { host: 'racy.test' })).status === 200);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        await sleep(250);
        // Both workers' pools hold an idle connection by now; each reuse meets a close.
        statuses.push((await request(portico.httpPort, '/', { host: 'racy.test' })).status, (await request(portico.httpPort, '/', { host: 'racy.test' })).status);
      }
      expect(statuses).toEqual(Array(8).fill(200));
    } finally {
      portico.remove('racy.yaml');
      racy.close();
    }
  });

  it('CONNECT gets 405 and a closed connection', async () => {
    const r = await rawExchange(portico.httpPort, 'CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 405 /);
    expect(r.closed).toBe(true);
  });

  it('round-robins across ready endpoints', async () => {
    const port = await freePort('127.0.0.10');
    const r1 = await startEchoBackend('r1', '127.0.0.10', port);
    const r2 = await startEchoBackend('r2', '127.0.0.11', port);
    try {
      portico.write('rr.yaml', toYaml(service('rr'), endpointSlice('rr', [`127.0.0.10:${port}`, `127.0.0.11:${port}`]), ingress('rr', 'rr.test', [{ path: '/', service: 'rr' }])));
      await waitFor('rr route', async () => (await request(portico.httpPort, '/', { host: 'rr.test' })).status === 200);
      // One keep-alive connection pins one worker, whose cursor alternates.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) seen.push(echo(await request(portico.httpPort, '/', { host: 'rr.test', agent })).backend);
      agent.destroy();
      expect(seen.filter((s) => s === 'r1')).toHaveLength(3);
      expect(seen.filter((s) => s === 'r2')).toHaveLength(3);
    } finally {
      await Promise.all([r1.close(), r2.close()]);
    }
  });
});

describe('source allowlist', () => {
  it('portico.dev/whitelist-source-range serves listed client addresses and denies others with 403', async () => {
    expect((await request(portico.httpPort, '/', { host: 'allow.test', localAddress: '127.0.0.20' })).status).toBe(200);
    expect((await request(portico.httpPort, '/', { host: 'allow.test', localAddress: '127.0.0.21' })).status).toBe(200);
    const denied = await request(portico.httpPort, '/', { host: 'allow.test', localAddress: '127.0.0.22' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatch(/not allowed/);
  });

  it('an unreadable allowlist denies everyone and is reported, rather than opening the route', async () => {
    expect((await request(portico.httpPort, '/', { host: 'allow-bad.test', localAddress: '127.0.0.20' })).status).toBe(403);
    const { problems } = await portico.json('/status');
    expect(problems.some((p: { name?: string; message: string }) => p.name === 'allow-bad' && /not a CIDR/.test(p.message))).toBe(true);
  });
});

describe('HTTPS redirect', () => {
  it('an Ingress with TLS redirects plain HTTP to HTTPS with 308, unless turned off', async () => {
    const r = await request(portico.httpPort, '/a/b?c=d', { host: 'Secure.test:1234' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://secure.test:${portico.httpsPort}/a/b?c=d`);
    expect((await request(portico.httpPort, '/', { host: 'nredirect.test' })).status).toBe(200);
  });
});

describe('errors', () => {
  it('404 when no route matches', async () => {
    const r = await request(portico.httpPort, '/', { host: 'unknown.test' });
    expect(r.status).toBe(404);
    expect(r.body).toMatch(/no route/);
  });

  it('503 for a Service that does not exist or has no ready endpoints', async () => {
    const missing = await request(portico.httpPort, '/missing', { host: 'errors.test' });
    expect(missing.status).toBe(503);
    // The reason is for operators (access log, /status), not for clients: no Service names in the body.
    expect(missing.body).toBe('service unavailable\n');
    const empty = await request(portico.httpPort, '/empty', { host: 'errors.test' });
    expect(empty.status).toBe(503);
    expect(empty.body).toBe('service unavailable\n');
    await waitFor('the reasons in the access log', () => portico.logs.some((l) => l.includes('"path":"/missing"') && l.includes('Service default/nope not found')) && portico.logs.some((l) => l.includes('"path":"/empty"') && l.includes('no ready endpoints')));
  });

  it('502 when the endpoint refuses the connection', async () => {
    const r = await request(portico.httpPort, '/dead', { host: 'errors.test' });
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/upstream connect error/);
  });

  it('504 when the upstream does not answer in time', async () => {
    const started = Date.now();
    const r = await request(portico.httpPort, '/slow', { host: 'errors.test' });
    expect(r.status).toBe(504);
    expect(r.body).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(2900);
  });

  it('reports the missing Service in /status, naming the file', async () => {
    const status = await portico.json('/status');
    expect(status.problems).toContainEqual(expect.objectContaining({ kind: 'Ingress', name: 'errors', origin: expect.stringContaining('ingress.yaml'), message: expect.stringContaining('Service default/nope not found') }));
    expect(status.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual(expect.arrayContaining(['app', 'errors', 'slow', 'wild']));
  });
});

describe('observability', () => {
  it('writes one JSON access log line per request', async () => {
    await request(portico.httpPort, '/logged-path', { host: 'app.test' });
    const line = await waitFor('access log', () => portico.logs.find((l) => l.includes('/logged-path')), 5000);
    expect(JSON.parse(line)).toMatchObject({ type: 'access', method: 'GET', host: 'app.test', path: '/logged-path', status: 200, route: 'default/app#0.0' });
  });

  it('exposes Prometheus metrics aggregated over workers', async () => {
    await request(portico.httpPort, '/', { host: 'app.test' });
    expect(await portico.metric('portico_requests_total', { namespace: 'default', ingress: 'app', host: 'app.test', path: '/', service: 'a', method: 'GET', status: '2xx' })).toBeGreaterThan(0);
    expect(await portico.metric('portico_table_version')).toBeGreaterThanOrEqual(1);
    expect(await portico.metric('portico_table_swaps_total')).toBeGreaterThanOrEqual(2);
    const text = await (await portico.admin('/metrics')).text();
    expect(text).toMatch(/portico_upstream_response_seconds_bucket/);
  });

  it('serves health, readiness and the route table', async () => {
    expect((await portico.admin('/healthz')).status).toBe(200);
    expect((await portico.admin('/readyz')).status).toBe(200);
    const routes = await portico.json('/debug/routes');
    expect(routes.version).toBeGreaterThanOrEqual(1);
    expect(routes.virtualHosts.map((v: { hostname: string }) => v.hostname)).toContain('app.test');
  });

  it('--log-level warn silences access logs', async () => {
    const quiet = await startPortico({ files: { 'all.yaml': toYaml(ingressClass(), service('a'), endpointSlice('a', [`127.0.0.2:${a1.port}`]), ingress('q', 'q.test', [{ path: '/', service: 'a' }])) }, logLevel: 'warn', workers: 1 });
    try {
      expect((await request(quiet.httpPort, '/quiet', { host: 'q.test' })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
      expect(quiet.logs.filter((l) => l.includes('/quiet'))).toEqual([]);
    } finally {
      await quiet.stop();
    }
  });
});
