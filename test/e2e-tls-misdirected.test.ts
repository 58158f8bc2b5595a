// 421 Misdirected Request, the same on the fast HTTP/1.1 engine, the node engine and HTTP/2
// (QA R16): a request whose Host has a certificate (or Gateway HTTPS listener) of its own other
// than the one the connection's SNI chose is 421; a connection set up without a server name (no
// SNI, or an IP address as SNI) is served by Host, on both the certificate check and the Gateway
// listener check: it was set up for no host, and a new connection (all a 421 asks for) would be
// the same. Clients are node:tls and node:http2, so SNI and Host are set independently.
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { endpointSlice, ingressClass, service, toYaml, type Obj } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

const GW = 'gateway.networking.k8s.io/v1';
let backend: EchoBackend;
const porticos: Record<string, Portico> = {};

const tlsIngress = (name: string, host: string, secretName: string): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: 'default' },
  spec: { ingressClassName: 'portico', tls: [{ hosts: [host], secretName }], rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'app', port: { number: 80 } } } }] } }] },
});

/** HTTP/1.1 over TLS: the status of GET / with this Host, SNI `servername` (undefined: none sent). */
function h1(port: number, servername: string | undefined, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    let out = '';
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 5000);
    socket.on('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d) => (out += d));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(out);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no response: ${JSON.stringify(out.slice(0, 80))}`));
    });
  });
}

/** HTTP/2 over TLS (ALPN h2): the status of GET / with this :authority, SNI `servername` (undefined: none). */
function h2(port: number, servername: string | undefined, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...(servername !== undefined ? { servername } : {}) });
    session.on('error', reject);
    const req = session.request({ ':path': '/', ':authority': host });
    req.on('response', (headers) => {
      resolve(Number(headers[':status']));
      session.close();
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  backend = await startEchoBackend('app', '127.0.0.1', 0);
  const a = makeCert('a.tls.test');
  const b = makeCert('b.tls.test');
  const fallback = makeCert('default.tls.test');
  const gwCert = makeCert('gw.tls.test');
  const files = {
    'all.yaml': toYaml(
      ingressClass(), service('app'), endpointSlice('app', [`127.0.0.1:${backend.port}`]),
      tlsSecret('a-tls', a), tlsSecret('b-tls', b), tlsSecret('fallback-tls', fallback), tlsSecret('gw-tls', gwCert),
      tlsIngress('a', 'a.tls.test', 'a-tls'), tlsIngress('b', 'b.tls.test', 'b-tls'),
      { apiVersion: GW, kind: 'GatewayClass', metadata: { name: 'portico' }, spec: { controllerName: 'portico.dev/gateway-controller' } },
    ),
  };
  await Promise.all(['fast', 'node'].map(async (engine) => {
    const p = await startPortico({ workers: 1, args: ['--http1-engine', engine, '--default-ssl-certificate', 'default/fallback-tls'], files });
    // A Gateway HTTPS listener on --https-port (its port is known only now): the listener check.
    p.write('gateway.yaml', toYaml(
      { apiVersion: GW, kind: 'Gateway', metadata: { name: 'gw', namespace: 'default' }, spec: { gatewayClassName: 'portico', listeners: [
        { name: 'gw', port: p.httpsPort, protocol: 'HTTPS', hostname: 'gw.tls.test', tls: { certificateRefs: [{ name: 'gw-tls' }] } },
        { name: 'any', port: p.httpsPort, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'fallback-tls' }] } },
      ] } },
      { apiVersion: GW, kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [{ name: 'app', port: 80 }] }] } },
    ));
    porticos[engine] = p;
  }));
  // Both Porticos serve the Gateway route before the cases run.
  for (const p of Object.values(porticos)) {
    const deadline = Date.now() + 15_000;
    while ((await h1(p.httpsPort, 'gw.tls.test', 'gw.tls.test').catch(() => 0)) !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(Object.values(porticos).map((p) => p.stop()));
  await backend?.close();
});

// [SNI, Host, expected status]
const CASES: [string | undefined, string, number][] = [
  ['a.tls.test', 'a.tls.test', 200],
  // The Host has a certificate of its own, other than the SNI's.
  ['a.tls.test', 'b.tls.test', 421],
  // The Host belongs to another Gateway listener than the SNI's.
  ['a.tls.test', 'gw.tls.test', 421],
  ['gw.tls.test', 'a.tls.test', 421],
  // No server name: served by Host, on the certificate check and the listener check alike.
  [undefined, 'a.tls.test', 200],
  [undefined, 'gw.tls.test', 200],
  ['127.0.0.1', 'a.tls.test', 200],
  ['127.0.0.1', 'gw.tls.test', 200],
];

describe.each(['fast', 'node'])('421 Misdirected Request, --http1-engine %s', (engine) => {
  it('HTTP/1.1 over TLS', async () => {
    const p = porticos[engine];
    const got = [];
    for (const [sni, host] of CASES) got.push(`${sni ?? '(none)'} ${host} ${await h1(p.httpsPort, sni, host)}`);
    expect(got).toEqual(CASES.map(([sni, host, want]) => `${sni ?? '(none)'} ${host} ${want}`));
  });

  it('HTTP/2', async () => {
    const p = porticos[engine];
    const got = [];
    for (const [sni, host] of CASES) got.push(`${sni ?? '(none)'} ${host} ${await h2(p.httpsPort, sni, host)}`);
    expect(got).toEqual(CASES.map(([sni, host, want]) => `${sni ?? '(none)'} ${host} ${want}`));
  });
});
