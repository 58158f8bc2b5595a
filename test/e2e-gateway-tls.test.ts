// TLSRoute on a TLS Passthrough listener through a real `portico serve`: TLS clients connect to
// Portico's HTTPS port and talk, still encrypted, to TLS echo backends that report the SNI they
// saw (so the test knows the bytes were not terminated by Portico).
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { makeCert, sClient, tlsSecret, type TestCert } from './helpers/certs.ts';
import { condition, gateway, gatewayClass, httpRoute, namespace, send, serviceFor, startEchoPod, statusOf, toYaml, type EchoPod, type Obj, startTlsEcho } from './gateway-helpers.ts';

let portico: Portico;
const servers: tls.Server[] = [];
const pods: EchoPod[] = [];
let cert: TestCert;

/** A TLS echo backend: answers `name sni=<servername>` to any bytes. */
const tlsEcho = (name: string): Promise<number> => startTlsEcho(name, ['abc.example.com', '*.example.com', '*.test'], servers);

const svc = (name: string, port: number): Obj[] => [
  { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'infra' }, spec: { ports: [{ name: 'tls', port: 443, targetPort: 8443 }] } },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-1`, namespace: 'infra', labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', ports: [{ name: 'tls', port }], endpoints: [{ addresses: ['127.0.0.1'] }] },
];
const tlsRoute = (name: string, hostnames: string[], backend: string, extra: Obj = {}): Obj => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'TLSRoute', metadata: { name, namespace: 'infra' }, spec: { parentRefs: [{ name: 'gw' }], hostnames, rules: [{ backendRefs: [{ name: backend, port: 443 }] }], ...extra } });

/** Connects with SNI, sends a line, returns what came back, or `rejected` when the connection failed or closed empty. */
function dial(servername: string, payload = 'hello'): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: portico.httpsPort, servername, rejectUnauthorized: false });
    let out = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('secureConnect', () => socket.write(payload));
    socket.on('data', (d) => (out += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out === '' ? 'rejected' : out);
    });
  });
}

/** `n` connections with this SNI, 5 at a time: how many each backend answered (or `rejected`). */
async function dialMany(servername: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  await Promise.all(Array.from({ length: 5 }, async () => {
    while (next < n) {
      next++;
      const who = (await dial(servername)).split(' ')[0];
      counts[who] = (counts[who] ?? 0) + 1;
    }
  }));
  return counts;
}

beforeAll(async () => {
  const p1 = await tlsEcho('tls-backend');
  const p2 = await tlsEcho('tls-backend-2');
  const p3 = await tlsEcho('tls-backend-3');
  for (const svc of ['v1', 'v2']) pods.push(await startEchoPod('infra', svc, `${svc}-pod-0`));
  cert = makeCert('example.org', ['example.org', 'unknown-example.org', 'second-example.org', 'app.test', '*.wildcard.org']);
  portico = await startPortico({ files: {} });
  portico.write('all.yaml', toYaml(
    namespace('infra'),
    gatewayClass(),
    gateway('gw', [
      { name: 'tls', port: portico.httpsPort, protocol: 'TLS', hostname: '*.example.com', tls: { mode: 'Passthrough' } },
      // No TLSRoute attaches here: its name is refused.
      { name: 'lonely', port: portico.httpsPort, protocol: 'TLS', hostname: 'lonely.test', tls: { mode: 'Passthrough' } },
      // One route for one name under the wildcard: the other names are refused.
      { name: 'quiet', port: portico.httpsPort, protocol: 'TLS', hostname: '*.quiet.test', tls: { mode: 'Passthrough' } },
      { name: 'http', port: portico.httpPort, protocol: 'HTTP' },
      // HTTPRouteHTTPSListener: terminated here, with the Secret's certificate, on the same port
      { name: 'https', port: portico.httpsPort, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } },
      { name: 'https-with-hostname', port: portico.httpsPort, protocol: 'HTTPS', hostname: 'second-example.org', tls: { certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } },
      { name: 'https-with-wildcard-hostname', port: portico.httpsPort, protocol: 'HTTPS', hostname: '*.wildcard.org', tls: { certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } },
      { name: 'https-with-hostname-matching-wildcard', port: portico.httpsPort, protocol: 'HTTPS', hostname: 'fourth-example.wildcard.org', tls: { certificateRefs: [{ name: 'tls-validity-checks-certificate' }] } },
    ]),
    tlsSecret('tls-validity-checks-certificate', cert, 'infra'),
    ...pods.flatMap((p) => serviceFor([p])),
    httpRoute('httproute-https-test', { parentRefs: [{ name: 'gw' }], hostnames: ['example.org'], rules: [{ backendRefs: [{ name: 'v1', port: 8080 }] }] }),
    // HTTPRouteHTTPSListenerDetectMisdirectedRequests: one route per HTTPS listener
    ...([['https', 'v1', ['example.org']], ['https-with-hostname', 'v2', []], ['https-with-wildcard-hostname', 'v1', []], ['https-with-hostname-matching-wildcard', 'v2', []]] as const).map(([section, backend, hostnames]) =>
      httpRoute(`misdirected-${section}`, { parentRefs: [{ name: 'gw', sectionName: section }], hostnames: [...hostnames], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/detect-misdirected-requests' } }], backendRefs: [{ name: backend, port: 8080 }] }] })),
    // The usual pair: HTTP redirects to HTTPS, HTTPS serves; one hostname, one listener each.
    httpRoute('redirect-to-https', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['app.test'], rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }] }),
    httpRoute('app', { parentRefs: [{ name: 'gw', sectionName: 'https' }], hostnames: ['app.test'], rules: [{ backendRefs: [{ name: 'v2', port: 8080 }] }] }),
    httpRoute('httproute-https-test-no-hostname', { parentRefs: [{ name: 'gw', sectionName: 'https-with-hostname' }], rules: [{ backendRefs: [{ name: 'v2', port: 8080 }] }] }),
    ...svc('tls-backend', p1), ...svc('tls-backend-2', p2), ...svc('tls-backend-3', p3),
    tlsRoute('exact', ['abc.example.com'], 'tls-backend'),
    // `*.com` narrowed to the listener's `*.example.com` (TLSRouteHostnameIntersection)
    tlsRoute('wider', ['*.com'], 'tls-backend-2'),
    tlsRoute('missing', ['missing.example.com'], 'nonexistent'),
    // Several weighted backendRefs: connections shared by weight; weight 0 gets none, and an
    // unresolvable reference's share is refused.
    tlsRoute('split', ['split.example.com'], 'unused', { rules: [{ backendRefs: [{ name: 'tls-backend', port: 443, weight: 50 }, { name: 'tls-backend-2', port: 443, weight: 50 }, { name: 'tls-backend-3', port: 443, weight: 0 }] }] }),
    tlsRoute('half-missing', ['half.example.com'], 'unused', { rules: [{ backendRefs: [{ name: 'tls-backend', port: 443 }, { name: 'nonexistent', port: 443 }] }] }),
    tlsRoute('quiet', ['a.quiet.test'], 'tls-backend', { parentRefs: [{ name: 'gw', sectionName: 'quiet' }] }),
    httpRoute('disallowed-kind', { parentRefs: [{ name: 'gw', sectionName: 'tls' }], rules: [{ backendRefs: [{ name: 'tls-backend', port: 443 }] }] }),
  ));
  await waitFor('passthrough served', async () => (await dial('abc.example.com')).startsWith('tls-backend sni='), 20_000);
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  for (const s of servers) s.close();
  await Promise.all(pods.map((p) => p.close()));
});

/** An HTTPS request with SNI = Host, verifying Portico's certificate against the Secret's. */
function httpsWho(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: portico.httpsPort, path: '/', servername: host, headers: { host }, ca: cert.certPem, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(body).service : String(res.statusCode)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request over TLS with this SNI and this :authority: the answering Service, or the status. */
async function h2Who(sni: string, authority: string, path: string): Promise<string> {
  const session = http2.connect(`https://127.0.0.1:${portico.httpsPort}`, { servername: sni, ca: cert.certPem, checkServerIdentity: () => undefined });
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, ':authority': authority });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c) => (body += c));
      req.on('end', () => resolve(status === 200 ? JSON.parse(body).service : String(status)));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

describe('HTTPS listeners beside a TLS Passthrough one', () => {
  it('a request whose Host belongs to another listener than its SNI chose is 421 (HTTPRouteHTTPSListenerDetectMisdirectedRequests)', async () => {
    const rows: [string, string, string][] = [
      ['example.org', 'example.org', 'v1'], ['example.org', 'second-example.org', '421'], ['example.org', 'unknown-example.org', '404'],
      ['second-example.org', 'second-example.org', 'v2'], ['second-example.org', 'example.org', '421'], ['second-example.org', 'unknown-example.org', '421'],
      ['third-example.wildcard.org', 'third-example.wildcard.org', 'v1'], ['third-example.wildcard.org', 'fith-example.wildcard.org', 'v1'],
      ['third-example.wildcard.org', 'fourth-example.wildcard.org', '421'], ['third-example.wildcard.org', 'second-example.org', '421'], ['third-example.wildcard.org', 'unknown-example.org', '421'],
      ['fourth-example.wildcard.org', 'fourth-example.wildcard.org', 'v2'], ['fourth-example.wildcard.org', 'fith-example.wildcard.org', '421'],
      ['unknown-example.org', 'example.org', 'v1'], ['unknown-example.org', 'unknown-example.org', '404'],
    ];
    const got: string[] = [];
    for (const [sni, host] of rows) got.push(`${sni} ${host} ${await h2Who(sni, host, '/detect-misdirected-requests')}`);
    expect(got).toEqual(rows.map(([sni, host, want]) => `${sni} ${host} ${want}`));
  });

  it('terminate with the listener certificate and route by Host (HTTPRouteHTTPSListener)', async () => {
    expect(await httpsWho('example.org')).toBe('v1');
    expect(await httpsWho('unknown-example.org')).toBe('404');
    expect(await httpsWho('second-example.org')).toBe('v2');
    // Each listener serves its own routes only: the redirect on HTTP, the app on HTTPS (no loop).
    const plain = await send(portico.httpPort, 'app.test', '/cart?x=1');
    expect([plain.status, plain.headers.location]).toEqual([301, 'https://app.test/cart?x=1']);
    expect(await httpsWho('app.test')).toBe('v2');
    // The passthrough host still goes through untouched.
    expect(await dial('abc.example.com')).toBe('tls-backend sni=abc.example.com');
  });
});

describe('TLSRoute through portico serve (TLS Passthrough)', () => {
  it('routes by SNI, still encrypted, the exact name before the wildcard; several labels under a wildcard', async () => {
    expect(await dial('abc.example.com')).toBe('tls-backend sni=abc.example.com');
    expect(await dial('other.example.com')).toBe('tls-backend-2 sni=other.example.com');
    expect(await dial('deep.other.example.com')).toBe('tls-backend-2 sni=deep.other.example.com');
  });

  it('the client sees the certificate of the backend (openssl s_client and node tls), not one of Portico', async () => {
    const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: portico.httpsPort, servername: 'abc.example.com', rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate());
        socket.destroy();
      });
      socket.on('error', reject);
    });
    expect(peer.subject.CN).toBe('tls-backend');
    const s = await sClient(portico.httpsPort, { servername: 'other.example.com' });
    expect(s.subject).toMatch(/CN\s*=\s*tls-backend-2/);
    // A name Portico terminates gets the listener's certificate instead.
    expect((await sClient(portico.httpsPort, { servername: 'example.org' })).serial).toBe(cert.serial);
  });

  it('an unresolvable backend refuses its hostname; other names are not passed through', async () => {
    expect(await dial('missing.example.com')).toBe('rejected');
    // Not a passthrough host: Portico terminates TLS itself and answers HTTP (no route: 404).
    expect(await dial('example.com', 'GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 404 /);
  });

  it('a name a TLS listener accepts but no TLSRoute routes is refused, not terminated here', async () => {
    expect(await dial('lonely.test')).toBe('rejected');
    expect(await dial('a.quiet.test')).toBe('tls-backend sni=a.quiet.test');
    expect(await dial('b.quiet.test')).toBe('rejected');
    expect(await dial('deep.b.quiet.test')).toBe('rejected');
  });

  it('several weighted backendRefs: 100 connections split 50/50 within 2 points, weight 0 gets none (one pick per connection)', async () => {
    // Each worker picks by smooth weighted round-robin, alternating; two workers stay within one each.
    const counts = await dialMany('split.example.com', 100);
    expect(Object.keys(counts).sort()).toEqual(['tls-backend', 'tls-backend-2']);
    expect(Math.abs(counts['tls-backend'] - 50)).toBeLessThanOrEqual(2);
    // The SNI reaches the backend unchanged, whichever one it is.
    expect(await dial('split.example.com')).toMatch(/^tls-backend(-2)? sni=split\.example\.com$/);
  });

  it('an unresolvable backendRef beside a good one: its share of the connections is refused', async () => {
    const counts = await dialMany('half.example.com', 40);
    expect(Object.keys(counts).sort()).toEqual(['rejected', 'tls-backend']);
    expect(Math.abs(counts.rejected - 20)).toBeLessThanOrEqual(2);
  });

  it('status: accepted routes, BackendNotFound, an HTTPRoute not allowed on the TLS listener', async () => {
    const { items } = await portico.json<{ items: any[] }>('/status');
    const ok = statusOf(items, 'TLSRoute', 'infra', 'exact').parents[0].conditions;
    expect(condition(ok, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(condition(statusOf(items, 'TLSRoute', 'infra', 'missing').parents[0].conditions, 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    const split = statusOf(items, 'TLSRoute', 'infra', 'split').parents[0].conditions;
    expect([condition(split, 'Accepted')?.reason, condition(split, 'ResolvedRefs')?.reason]).toEqual(['Accepted', 'ResolvedRefs']);
    const half = statusOf(items, 'TLSRoute', 'infra', 'half-missing').parents[0].conditions;
    expect(condition(half, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    expect(condition(half, 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    expect(condition(statusOf(items, 'HTTPRoute', 'infra', 'disallowed-kind').parents[0].conditions, 'Accepted')).toMatchObject({ status: 'False', reason: 'NotAllowedByListeners' });
    const gw = statusOf(items, 'Gateway', 'infra', 'gw');
    expect(condition(gw.conditions, 'Accepted')).toMatchObject({ status: 'True', reason: 'Accepted' });
    for (const l of gw.listeners) for (const type of ['Accepted', 'Programmed', 'ResolvedRefs']) expect(condition(l.conditions, type)?.status, `${l.name} ${type}`).toBe('True');
    const listener = gw.listeners.find((l: any) => l.name === 'tls');
    expect(listener.supportedKinds.map((k: any) => k.kind)).toEqual(['TLSRoute']);
    expect(listener.attachedRoutes).toBe(5);
    for (const type of ['Accepted', 'Programmed', 'ResolvedRefs']) expect(condition(listener.conditions, type)?.status).toBe('True');
  });
});
