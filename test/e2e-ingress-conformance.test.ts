// The scenarios of kubernetes-sigs/ingress-controller-conformance (default_backend, host_rules,
// ingress_class, load_balancing, path_rules), in our own words, through `portico serve` with
// echo backends that say which Service (and pod) answered. Its requests are Go's: HTTP/1.1 with
// User-Agent Go-http-client/1.1, and it checks the response's protocol and that Content-Length,
// Content-Type, Date and Server are present.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { endpointSlice, ingressClass, service, toYaml, type Obj } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

interface Echo {
  server: http.Server;
  port: number;
}

/** The conformance echo server: JSON naming the Service and pod, and what it received. */
function echo(serviceName: string, pod: string): Promise<Echo> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ service: serviceName, pod, method: req.method, path: req.url, proto: `HTTP/${req.httpVersion}`, host: req.headers.host, headers: req.headers });
      // Like Go's net/http: no Server field of its own.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

const SERVICES = ['echo-service', 'wildcard-foo-com', 'foo-bar-com', 'ingress-class-prefix', 'foo-exact', 'foo-prefix', 'aaa-slash-bbb-prefix', 'aaa-prefix', 'aaa-slash-bbb-slash-prefix', 'foo-slash-exact'];
const echoes = new Map<string, Echo[]>();
/** host_rules, ingress_class, path_rules: no default backend, so misses are 404. */
let portico: Portico;
/** default_backend and load_balancing: an Ingress with only a defaultBackend. */
let defaults: Portico;
let configDir: string | undefined;
const cert = makeCert('foo.bar.com');

const rule = (host: string | undefined, paths: [string, 'Exact' | 'Prefix', string, (number | string)?][]) => ({
  ...(host ? { host } : {}),
  http: { paths: paths.map(([path, pathType, svc, port]) => ({ path, pathType, backend: { service: { name: svc, port: typeof port === 'string' ? { name: port } : { number: port ?? 8080 } } } })) },
});
const ing = (name: string, spec: Obj): Obj => ({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'default' }, spec: { ingressClassName: 'portico', ...spec } });

beforeAll(async () => {
  for (const s of SERVICES) echoes.set(s, [await echo(s, `${s}-0`)]);
  // load_balancing: ten replicas of echo-service.
  for (let i = 1; i < 10; i++) echoes.get('echo-service')!.push(await echo('echo-service', `echo-service-${i}`));
  const objects: Obj[] = [ingressClass(), tlsSecret('conformance-tls', cert)];
  for (const [s, list] of echoes) {
    objects.push(service(s, 8080, 'default', { spec: { ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } }));
    list.forEach((e, i) => objects.push(endpointSlice(s, [`127.0.0.1:${e.port}`], 'default', `${s}-${i}`)));
  }
  const hostRules = ing('host-rules', { tls: [{ hosts: ['foo.bar.com'], secretName: 'conformance-tls' }], rules: [rule('*.foo.com', [['/', 'Prefix', 'wildcard-foo-com']]), rule('foo.bar.com', [['/', 'Prefix', 'foo-bar-com', 'http']])] });
  // This one runs with an ingress-nginx ConfigMap that turns the HTTPS redirect off globally.
  configDir = mkdtempSync(join(tmpdir(), 'portico-conformance-'));
  writeFileSync(join(configDir, 'config.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller}\ndata:\n  ssl-redirect: "false"\n');
  defaults = await startPortico({ workers: 2, files: { 'all.yaml': toYaml(...objects, hostRules, ing('default-backend', { defaultBackend: { service: { name: 'echo-service', port: { number: 8080 } } } })) }, args: ['--config', join(configDir, 'config.yaml')] });
  objects.push(
    hostRules,
    { ...ing('ingress-class', { rules: [rule('ingress-class', [['/', 'Prefix', 'ingress-class-prefix']])] }), spec: { ingressClassName: 'some-invalid-class-name', rules: [rule('ingress-class', [['/', 'Prefix', 'ingress-class-prefix']])] } },
    ing('path-rules', {
      rules: [
        rule('exact-path-rules', [['/foo', 'Exact', 'foo-exact']]),
        rule('prefix-path-rules', [['/foo', 'Prefix', 'foo-prefix'], ['/aaa/bbb', 'Prefix', 'aaa-slash-bbb-prefix'], ['/aaa', 'Prefix', 'aaa-prefix']]),
        rule('mixed-path-rules', [['/foo', 'Prefix', 'foo-prefix'], ['/foo', 'Exact', 'foo-exact']]),
        rule('trailing-slash-path-rules', [['/aaa/bbb/', 'Prefix', 'aaa-slash-bbb-slash-prefix'], ['/foo/', 'Exact', 'foo-slash-exact']]),
      ],
    }),
  );
  portico = await startPortico({ workers: 2, files: { 'all.yaml': toYaml(...objects) }, args: ['--publish-status-address', '192.0.2.1'] });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await defaults?.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
  for (const list of echoes.values()) for (const e of list) e.server.close();
});

interface Answer {
  status: number;
  proto: string;
  headers: http.IncomingHttpHeaders;
  body: { service?: string; pod?: string; method?: string; path?: string; proto?: string; host?: string; headers?: Record<string, string> } | undefined;
  peerDnsNames?: string;
}

/** A request as the conformance harness (Go's client) sends it. */
function send(method: string, host: string, path: string, scheme: 'http' | 'https' = 'http', to: Portico = portico): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const mod = scheme === 'https' ? https : http;
    const req = mod.request(
      {
        host: '127.0.0.1',
        port: scheme === 'https' ? to.httpsPort : to.httpPort,
        method,
        path,
        headers: { host, 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'identity' },
        agent: false,
        ...(scheme === 'https' ? { servername: host, rejectUnauthorized: false } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: Answer['body'];
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          const peer = scheme === 'https' ? (res.socket as TLSSocket).getPeerCertificate?.()?.subjectaltname : undefined;
          resolve({ status: res.statusCode ?? 0, proto: `HTTP/${res.httpVersion}`, headers: res.headers, body, ...(peer ? { peerDnsNames: peer } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('ingress-controller-conformance scenarios', () => {
  it.each([
    ['GET', 'my-host', ''],
    ['GET', 'my-host', 'sub-path'],
    ['POST', 'some-host', ''],
    ['PUT', '', 'resource'],
    ['DELETE', 'some-host', 'resource'],
    ['PATCH', 'my-host', 'resource'],
  ])('default_backend: %s %s/%s is served by the default backend, with Content-Length, Content-Type, Date and Server', async (method, host, path) => {
    const r = await send(method, host || '127.0.0.1', `/${path}`, 'http', defaults);
    expect(r.status).toBe(200);
    expect(r.proto).toBe('HTTP/1.1');
    for (const h of ['content-length', 'content-type', 'date', 'server']) expect(r.headers[h], h).toBeDefined();
    expect(r.body).toMatchObject({ service: 'echo-service', method, path: `/${path}`, proto: 'HTTP/1.1' });
    expect(r.body?.headers?.['user-agent']).toBe('Go-http-client/1.1');
  });

  it('host_rules: TLS for foo.bar.com with its certificate, wildcards cover one label, other hosts 404', async () => {
    const tls = await send('GET', 'foo.bar.com', '/', 'https');
    expect(tls.peerDnsNames).toMatch(/^DNS:foo\.bar\.com/);
    expect(tls).toMatchObject({ status: 200, body: { service: 'foo-bar-com', host: 'foo.bar.com' } });
    // Plain HTTP to a host with TLS: ingress-nginx redirects (308) unless ssl-redirect is off;
    // the conformance suite follows redirects manually and then expects the HTTPS answer.
    const plain = await send('GET', 'foo.bar.com', '/');
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe(`https://foo.bar.com:${portico.httpsPort}/`);
    // With the config file's ssl-redirect: "false", plain HTTP is served as the feature file says.
    expect(await send('GET', 'foo.bar.com', '/', 'http', defaults)).toMatchObject({ status: 200, body: { service: 'foo-bar-com', host: 'foo.bar.com' } });
    expect((await send('GET', 'subdomain.bar.com', '/')).status).toBe(404);
    expect(await send('GET', 'bar.foo.com', '/')).toMatchObject({ status: 200, body: { service: 'wildcard-foo-com', host: 'bar.foo.com' } });
    expect((await send('GET', 'baz.bar.foo.com', '/')).status).toBe(404);
    expect((await send('GET', 'foo.com', '/')).status).toBe(404);
  });

  it('ingress_class: an Ingress of another class gets no address in status, and is not served', async () => {
    const status = await portico.json('/status');
    const names = (status.items as { kind: string; metadata: { name: string }; status: { loadBalancer?: { ingress?: unknown[] } } }[]).filter((i) => i.kind === 'Ingress');
    expect(names.find((i) => i.metadata.name === 'ingress-class')).toBeUndefined();
    expect(names.find((i) => i.metadata.name === 'path-rules')?.status.loadBalancer?.ingress).toEqual([{ ip: '192.0.2.1' }]);
    expect((await send('GET', 'ingress-class', '/')).status).toBe(404);
  });

  it('load_balancing: 100 requests reach all 10 replicas', async () => {
    const pods = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = await send('GET', 'load-balancing', '/', 'http', defaults);
      expect(r.status).toBe(200);
      pods.add(r.body!.pod!);
    }
    expect(pods.size).toBe(10);
  });

  it.each([
    ['exact-path-rules', '/foo', 'foo-exact'],
    ['exact-path-rules', '/foo/', null],
    ['exact-path-rules', '/FOO', null],
    ['exact-path-rules', '/bar', null],
    ['prefix-path-rules', '/foo', 'foo-prefix'],
    ['prefix-path-rules', '/foo/', 'foo-prefix'],
    ['prefix-path-rules', '/FOO', null],
    ['prefix-path-rules', '/aaa/bbb', 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/bbb/ccc', 'aaa-slash-bbb-prefix'],
    ['prefix-path-rules', '/aaa/ccc', 'aaa-prefix'],
    ['prefix-path-rules', '/aaaccc', null],
    ['mixed-path-rules', '/foo', 'foo-exact'],
    ['trailing-slash-path-rules', '/aaa/bbb', 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/aaa/bbb/', 'aaa-slash-bbb-slash-prefix'],
    ['trailing-slash-path-rules', '/foo', null],
  ])('path_rules: %s %s -> %s', async (host, path, svc) => {
    const r = await send('GET', host, path);
    if (svc === null) expect(r.status).toBe(404);
    else expect(r).toMatchObject({ status: 200, body: { service: svc } });
  });
});
