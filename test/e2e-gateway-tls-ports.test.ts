// TLS listeners on sockets of their own through a real `portico serve`: a TLS Passthrough
// listener on a port of its own (and on a Gateway's own address) splices TLSRoute hostnames,
// still encrypted, to TLS echo backends that report the SNI they saw, and refuses any other SNI
// (or none) rather than terminate it; HTTPS and TLS Passthrough listeners on one port of their
// own are told apart by SNI; an HTTPS listener on a port of its own terminates with its
// certificate and serves its routes.
import { once } from 'node:events';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { makeCert, sClient, tlsSecret, type TestCert } from './helpers/certs.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, serviceFor, startEchoPod, statusOf, toYaml, type EchoPod, type Obj, startTlsEcho, tlsExchange } from './gateway-helpers.ts';

let portico: Portico;
const servers: tls.Server[] = [];
let pod: EchoPod;
let cert: TestCert;
let pTls: number;
let pMixed: number;
let pHttps: number;
let pAddr: number;

/** A TLS echo backend: answers `name sni=<servername>` to any bytes. */
const tlsEcho = (name: string): Promise<number> => startTlsEcho(name, ['*.test', '*.mixed.test', '*.pass.test'], servers);

const svc = (name: string, port: number): Obj[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'infra' }, spec: { ports: [{ name: 'tls', port: 443, targetPort: 8443 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'infra', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'tls', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
];
const tlsRoute = (name: string, parentRefs: Obj[], hostnames: string[], backend: string): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'TLSRoute', metadata: { name, namespace: 'infra' }, spec: { parentRefs, hostnames, rules: [{ backendRefs: [{ name: backend, port: 443 }] }] } });
const passthrough = (name: string, port: number, hostname?: string): Obj => ({ name, port, protocol: 'TLS', ...(hostname ? { hostname } : {}), tls: { mode: 'Passthrough' } });

/** Connects (SNI optional), sends a line, returns what came back, or `rejected` when the connection failed or closed empty. */
function dial(port: number, servername: string | undefined, host = '127.0.0.1'): Promise<string> {
  // A line an HTTP server answers at once (400), should Portico terminate it.
  return tlsExchange({ host, port, ...(servername !== undefined ? { servername } : {}) });
}

/** An HTTPS request with SNI and Host `host`: `status ns/service` of the echo pod that answered. */
function httpsGet(port: number, host: string, servername = host): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername, headers: { host }, rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        let who = '';
        try {
          const echo = JSON.parse(body) as { namespace: string; service: string };
          who = ` ${echo.namespace}/${echo.service}`;
        } catch {
          // Not an echo: Portico answered itself.
        }
        resolve(`${res.statusCode}${who}`);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`error ${e.message}`));
    req.end();
  });
}

beforeAll(async () => {
  const a = await tlsEcho('tls-a');
  const b = await tlsEcho('tls-b');
  pod = await startEchoPod('infra', 'v1', 'v1-pod-0');
  cert = makeCert('secure.test', ['secure.test', 'app.test']);
  pTls = await freePort();
  pMixed = await freePort();
  pHttps = await freePort();
  pAddr = await freePort('127.0.0.3');
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    ...svc('tls-a', a),
    ...svc('tls-b', b),
    ...serviceFor([pod]),
    tlsSecret('site', cert, 'infra'),
    gateway('pass', [passthrough('tls', pTls)]),
    gateway('mixed', [
      { name: 'https', port: pMixed, protocol: 'HTTPS', hostname: 'secure.test', tls: { certificateRefs: [{ name: 'site' }] } },
      passthrough('tls', pMixed, '*.mixed.test'),
    ]),
    gateway('own-https', [{ name: 'https', port: pHttps, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'site' }] } }]),
    gateway('own-address', [passthrough('tls', pAddr)], 'infra', { addresses: [{ type: 'IPAddress', value: '127.0.0.3' }] }),
    tlsRoute('to-a', [{ name: 'pass' }, { name: 'own-address' }], ['app.pass.test'], 'tls-a'),
    tlsRoute('to-b', [{ name: 'mixed', sectionName: 'tls' }], ['a.mixed.test'], 'tls-b'),
    httpRoute('web', { parentRefs: [{ name: 'mixed', sectionName: 'https' }, { name: 'own-https' }], rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] }),
  ));
  await waitFor('TLS listeners bound', async () => (await dial(pTls, 'app.pass.test')).startsWith('tls-a') && (await dial(pMixed, 'a.mixed.test')).startsWith('tls-b'), 20_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  for (const s of servers) s.close();
  await pod?.close();
});

describe('TLS listeners on ports of their own', () => {
  it('status: every listener Accepted and Programmed, TLSRoutes attached', async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    for (const name of ['pass', 'mixed', 'own-https', 'own-address']) {
      const gw = statusOf(items, 'Gateway', 'infra', name);
      expect(gw.listeners.map((l: any) => `${name}/${l.name} ${condition(l.conditions, 'Accepted')?.status} ${condition(l.conditions, 'Programmed')?.status}`)).toEqual(gw.listeners.map((l: any) => `${name}/${l.name} True True`));
    }
    expect(statusOf(items, 'TLSRoute', 'infra', 'to-a').parents.map((p: any) => condition(p.conditions, 'Accepted')?.status)).toEqual(['True', 'True']);
  });

  it('TLS Passthrough on a port of its own: a routed SNI reaches its backend still encrypted; any other SNI, or none, is refused', async () => {
    expect(await dial(pTls, 'app.pass.test')).toBe('tls-a sni=app.pass.test');
    expect(await dial(pTls, 'other.test')).toBe('rejected');
    expect(await dial(pTls, undefined)).toBe('rejected');
    // Not terminated by Portico either: no certificate is ever served on that port.
    expect((await sClient(pTls, { servername: 'other.test' })).serial).toBeUndefined();
    // The route's hostname belongs to that listener only, not to Portico's HTTPS port.
    expect(await dial(portico.httpsPort, 'app.pass.test')).not.toMatch(/^tls-a/);
  });

  it('on a Gateway address: the TLS listener is bound there (only there) and passes its routes through', async () => {
    expect(await dial(pAddr, 'app.pass.test', '127.0.0.3')).toBe('tls-a sni=app.pass.test');
    expect(await dial(pAddr, 'other.test', '127.0.0.3')).toBe('rejected');
    expect(await dial(pAddr, 'app.pass.test', '127.0.0.1')).toBe('rejected');
  });

  it('HTTPS and TLS Passthrough on one port of their own: told apart by SNI; an unrouted name under the TLS listener is refused', async () => {
    expect(await dial(pMixed, 'a.mixed.test')).toBe('tls-b sni=a.mixed.test');
    expect(await dial(pMixed, 'b.mixed.test')).toBe('rejected');
    const served = await sClient(pMixed, { servername: 'secure.test' });
    expect(served.serial).toBe(cert.serial);
    expect(await httpsGet(pMixed, 'secure.test')).toBe('200 infra/v1');
  });

  it('HTTPS (Terminate) on a port of its own: its certificate, its routes', async () => {
    expect((await sClient(pHttps, { servername: 'app.test' })).serial).toBe(cert.serial);
    expect(await httpsGet(pHttps, 'app.test')).toBe('200 infra/v1');
  });
});

describe('a TLS Passthrough listener of its own behind a PROXY protocol load balancer, with an allowlist', () => {
  let proxied: Portico;
  let port: number;

  /** A PROXY v1 header for client `source`, then TLS with this SNI over the same connection, from `localAddress`. */
  function dialProxied(servername: string, localAddress: string, source = '192.0.2.7'): Promise<string> {
    return new Promise((resolve) => {
      const raw = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
        raw.write(`PROXY TCP4 ${source} 127.0.0.1 40000 ${port}\r\n`);
        void tlsExchange({ socket: raw, servername }).then(resolve);
      });
      raw.on('error', () => resolve('rejected'));
    });
  }

  beforeAll(async () => {
    const a = await tlsEcho('tls-proxied');
    port = await freePort();
    proxied = await startPortico({ workers: 1, args: ['--use-proxy-protocol', 'true', '--proxy-protocol-trusted-cidrs', '127.0.0.1/32', '--whitelist-source-range', '192.0.2.0/24'], files: { 'all.yaml': toYaml(namespace('infra'), gatewayClass(), ...svc('tls-a', a), gateway('pass', [passthrough('tls', port)]), tlsRoute('to-a', [{ name: 'pass' }], ['app.pass.test'], 'tls-a')) } });
    await waitFor('listener bound', async () => (await dialProxied('app.pass.test', '127.0.0.1')).startsWith('tls-proxied'), 20_000);
  }, 60_000);

  afterAll(async () => {
    await proxied?.stop();
  });

  it('the PROXY header is read before the SNI and never reaches the backend; an untrusted peer sending one is refused', async () => {
    expect(await dialProxied('app.pass.test', '127.0.0.1')).toBe('tls-proxied sni=app.pass.test');
    expect(await dialProxied('other.test', '127.0.0.1')).toBe('rejected');
    expect(await dialProxied('app.pass.test', '127.0.0.2')).toBe('rejected');
  });

  it('the whitelist-source-range setting holds for its passthrough routes, on the client the PROXY header names', async () => {
    expect(await dialProxied('app.pass.test', '127.0.0.1', '198.51.100.1')).toBe('rejected');
    expect(await dialProxied('app.pass.test', '127.0.0.1', '192.0.2.200')).toBe('tls-proxied sni=app.pass.test');
    expect(await proxied.metric('portico_tls_passthrough_rejected_total', { reason: 'not-allowed' })).toBe(1);
  });
});
