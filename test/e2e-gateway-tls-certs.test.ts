// Which certificate a Gateway HTTPS listener's socket serves, through a real `portico serve`
// (QA-9): the SNI picks the listener (as routing matches hostnames) and the listener's own
// certificate is served whether or not it names the SNI; of several certificateRefs, the one
// naming the SNI. Beside Ingress TLS on --https-port, the more specific claim wins. And beside
// TLS Passthrough (QA-4), a name nothing on the socket serves is refused, not terminated.
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_CERTIFICATE_CN } from '../tls/selfsigned.ts';
import { makeCert, tlsSecret, type TestCert } from './helpers/certs.ts';
import { ingress, ingressClass } from './helpers/manifests.ts';
import { freePort, startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { gateway, gatewayClass, httpRoute, namespace, serviceFor, startEchoPod, toYaml, type EchoPod, type Obj, startTlsEcho } from './gateway-helpers.ts';

const OWN_ADDRESS = '127.0.0.7';
let portico: Portico;
let pass: Portico;
let wildPort: number;
let mixedPort: number;
const pods: EchoPod[] = [];
const servers: tls.Server[] = [];
const certs: Record<string, TestCert> = {};

interface Hello {
  /** The served certificate's fingerprint, or `fake` for Portico's own, or `rejected`. */
  cert: string;
  /** What came back after the handshake (passthrough backends answer), when `payload` was sent. */
  data?: string;
}
const fingerprint = (c: TestCert): string => new X509Certificate(c.certPem).fingerprint256;

/** A handshake with this SNI ('' for none: an IP address as host sends none). */
function hello(host: string, port: number, servername: string, payload?: string): Promise<Hello> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(servername !== '' ? { servername } : {}) });
    let cert = 'rejected';
    let data = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      cert = peer.subject?.CN === FAKE_CERTIFICATE_CN ? 'fake' : peer.fingerprint256;
      if (payload === undefined) socket.destroy();
      else socket.write(payload);
    });
    socket.on('data', (d) => (data += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(payload === undefined ? { cert } : { cert, data });
    });
  });
}

const listener = (name: string, port: number, secrets: string[], hostname?: string): Obj => ({ name, port, protocol: 'HTTPS', ...(hostname ? { hostname } : {}), tls: { certificateRefs: secrets.map((s) => ({ name: s })) } });

beforeAll(async () => {
  pods.push(await startEchoPod('infra', 'v1', 'v1-pod-0'));
  certs.cnonly = makeCert('cnonly.test', []);
  certs.wild = makeCert('wild.test', ['*.wild.test']);
  certs.a = makeCert('a.multi.test');
  certs.b = makeCert('b.multi.test');
  certs.ingress = makeCert('ing.test', ['ing.test', '*.shared.test']);
  certs.gwShared = makeCert('gw-shared', []);
  certs.mixed = makeCert('secure.test');
  portico = await startPortico({ files: {} });
  wildPort = await freePort();
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    ingressClass(),
    ...Object.entries(certs).map(([name, c]) => tlsSecret(name.toLowerCase(), c, 'infra')),
    ...serviceFor(pods),
    // QA-9's Gateway `single`: one HTTPS listener without hostname, a CN-only certificate, on an address of its own.
    gateway('single', [listener('https', portico.httpsPort, ['cnonly'])], 'infra', { addresses: [{ type: 'IPAddress', value: OWN_ADDRESS }] }),
    // A socket of its own: a wildcard listener, and one with two certificates.
    gateway('wild', [listener('wild', wildPort, ['wild'], '*.wild.test'), listener('multi', wildPort, ['a', 'b'], '*.multi.test')]),
    // --https-port: beside the Ingress's certificate for ing.test and *.shared.test.
    gateway('main', [listener('shared', portico.httpsPort, ['gwshared'], 'gw.shared.test')]),
    withTls(ingress('ing', 'ing.test', [{ path: '/', service: 'v1', port: 8080 }], { namespace: 'infra' }), [{ hosts: ['ing.test'], secretName: 'ingress' }]),
    httpRoute('all', { parentRefs: [{ name: 'single' }, { name: 'wild' }, { name: 'main' }], rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] }),
  ));
  await waitFor('own address served', async () => (await hello(OWN_ADDRESS, portico.httpsPort, 'other.test')).cert === fingerprint(certs.cnonly), 20_000);
}, 60_000);

const withTls = (ing: Obj, tlsEntries: Obj[]): Obj => ({ ...ing, spec: { ...(ing.spec as Obj), tls: tlsEntries } });

afterAll(async () => {
  await portico?.stop();
  await pass?.stop();
  for (const s of servers) s.close();
  await Promise.all(pods.map((p) => p.close()));
});

/** An HTTPS GET with this SNI and Host: the status. */
function get(host: string, port: number, servername: string, hostHeader: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.request({ host, port, servername, path: '/', headers: { host: hostHeader }, rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e) => resolve(e.message));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

describe('Gateway HTTPS listeners serve their own certificates (QA-9)', () => {
  it('a listener without hostname answers every SNI, and no SNI, with its certificate (CN-only)', async () => {
    for (const sni of ['other.test', 'cnonly.test', 'a.b.c.test', '']) expect((await hello(OWN_ADDRESS, portico.httpsPort, sni)).cert, sni || '(no SNI)').toBe(fingerprint(certs.cnonly));
  });

  it('a wildcard listener covers any number of labels; a name no listener matches gets the fake certificate', async () => {
    expect((await hello('127.0.0.1', wildPort, 'a.wild.test')).cert).toBe(fingerprint(certs.wild));
    expect((await hello('127.0.0.1', wildPort, 'a.b.wild.test')).cert).toBe(fingerprint(certs.wild));
    expect((await hello('127.0.0.1', wildPort, 'other.test')).cert).toBe('fake');
    expect((await hello('127.0.0.1', wildPort, '')).cert).toBe('fake');
    // The Ingress's certificate belongs to --https-port, not to this socket.
    expect((await hello('127.0.0.1', wildPort, 'ing.test')).cert).toBe('fake');
  });

  it('of several certificateRefs, the one naming the SNI, else the first', async () => {
    expect((await hello('127.0.0.1', wildPort, 'b.multi.test')).cert).toBe(fingerprint(certs.b));
    expect((await hello('127.0.0.1', wildPort, 'a.multi.test')).cert).toBe(fingerprint(certs.a));
    expect((await hello('127.0.0.1', wildPort, 'x.y.multi.test')).cert).toBe(fingerprint(certs.a));
  });

  it('--https-port beside Ingress TLS: the listener\'s exact hostname beats the Ingress certificate\'s wildcard, the Ingress keeps its names', async () => {
    const p = portico.httpsPort;
    expect((await hello('127.0.0.1', p, 'gw.shared.test')).cert).toBe(fingerprint(certs.gwShared));
    expect((await hello('127.0.0.1', p, 'other.shared.test')).cert).toBe(fingerprint(certs.ingress));
    expect((await hello('127.0.0.1', p, 'ing.test')).cert).toBe(fingerprint(certs.ingress));
    expect((await hello('127.0.0.1', p, 'nothing.test')).cert).toBe('fake');
    expect((await hello('127.0.0.1', p, '')).cert).toBe('fake');
    // The other Gateways' certificates are theirs: not served here by the names they carry.
    expect((await hello('127.0.0.1', p, 'a.multi.test')).cert).toBe('fake');
  });

  it('421 for an Ingress host follows the socket: on --https-port over another certificate\'s connection, not on a socket of its own', async () => {
    expect(await get('127.0.0.1', portico.httpsPort, 'ing.test', 'ing.test')).toBe(200);
    expect(await get('127.0.0.1', portico.httpsPort, 'gw.shared.test', 'ing.test')).toBe(421);
    // The catch-all listener's connection serves any Host its routes do; ing.test's certificate is --https-port's.
    expect(await get(OWN_ADDRESS, portico.httpsPort, 'other.test', 'ing.test')).toBe(200);
  });
});

/** A TLS echo backend: answers `name sni=<servername>` to any bytes. */
const tlsEcho = (name: string): Promise<number> => startTlsEcho(name, ['abc.example.com'], servers);

describe('beside TLS Passthrough, names nothing on the socket serves are refused (QA-4)', () => {
  beforeAll(async () => {
    const backend = await tlsEcho('tls-backend');
    mixedPort = await freePort();
    pass = await startPortico({ files: {} });
    pass.write('all.yaml', toYaml(
      namespace('infra'),
      gatewayClass(),
      tlsSecret('mixed', certs.mixed, 'infra'),
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'tls-backend', namespace: 'infra' }, spec: { ports: [{ name: 'tls', port: 443, targetPort: 8443 }] } },
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'tls-backend-1', namespace: 'infra', labels: { 'kubernetes.io/service-name': 'tls-backend' } }, addressType: 'IPv4', ports: [{ name: 'tls', port: backend }], endpoints: [{ addresses: ['127.0.0.1'] }] },
      // TLSRouteHostnameIntersection's shape: one TLS Passthrough listener on --https-port, nothing else there.
      gateway('gw', [{ name: 'tls', port: pass.httpsPort, protocol: 'TLS', hostname: 'abc.example.com', tls: { mode: 'Passthrough' } }]),
      // A socket of its own with an HTTPS and a TLS Passthrough listener.
      gateway('mixed', [listener('https', mixedPort, ['mixed'], 'secure.test'), { name: 'tls', port: mixedPort, protocol: 'TLS', hostname: 'abc.example.com', tls: { mode: 'Passthrough' } }]),
      { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'TLSRoute', metadata: { name: 'r', namespace: 'infra' }, spec: { parentRefs: [{ name: 'gw' }, { name: 'mixed' }], hostnames: ['abc.example.com'], rules: [{ backendRefs: [{ name: 'tls-backend', port: 443 }] }] } },
    ));
    await waitFor('passthrough served', async () => (await hello('127.0.0.1', pass.httpsPort, 'abc.example.com', 'hi')).data?.startsWith('tls-backend sni=abc.example.com'), 20_000);
  }, 60_000);

  it('--https-port with no Ingress and no HTTPS listener: another SNI, or none, is refused during the handshake', async () => {
    expect(await hello('127.0.0.1', pass.httpsPort, 'non.matching.com')).toEqual({ cert: 'rejected' });
    expect(await hello('127.0.0.1', pass.httpsPort, '')).toEqual({ cert: 'rejected' });
    expect(await pass.metric('portico_tls_passthrough_rejected_total', { listener: 'https', reason: 'no-backend' })).toBeGreaterThanOrEqual(2);
  });

  it('a socket with HTTPS and TLS listeners terminates only its HTTPS listeners\' names', async () => {
    expect((await hello('127.0.0.1', mixedPort, 'abc.example.com', 'hi')).data).toBe('tls-backend sni=abc.example.com');
    expect((await hello('127.0.0.1', mixedPort, 'secure.test')).cert).toBe(fingerprint(certs.mixed));
    expect(await hello('127.0.0.1', mixedPort, 'non.matching.com')).toEqual({ cert: 'rejected' });
  });

  it('once an Ingress is served on --https-port, other names are terminated there again (as ingress-nginx does)', async () => {
    pass.write('ingress.yaml', toYaml(ingressClass(), ...serviceFor(pods), ingress('ing', 'ing.test', [{ path: '/', service: 'v1', port: 8080 }], { namespace: 'infra' })));
    await waitFor('terminated', async () => (await hello('127.0.0.1', pass.httpsPort, 'non.matching.com')).cert === 'fake', 10_000);
    expect((await hello('127.0.0.1', pass.httpsPort, 'abc.example.com', 'hi')).data).toBe('tls-backend sni=abc.example.com');
    pass.remove('ingress.yaml');
    await waitFor('refused again', async () => (await hello('127.0.0.1', pass.httpsPort, 'non.matching.com')).cert === 'rejected', 10_000);
  });
});
