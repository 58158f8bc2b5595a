import https from 'node:https';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { curl, makeCert, sClient, tlsSecret, type TestCert } from './helpers/certs.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingressClass, service, toYaml, type Obj } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';

let portico: Portico;
let backend: EchoBackend;
let exact: TestCert;
let wildcard: TestCert;
let other: TestCert;
let fallback: TestCert;
let passthroughCert: TestCert;
let opaqueCert: TestCert;
let passthroughServer: https.Server;

const tlsIngress = (name: string, hosts: string[], secretName: string | undefined, annotations: Record<string, string> = {}, svc = 'app'): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name, namespace: 'default', annotations },
  spec: {
    ingressClassName: 'portico',
    tls: [{ hosts, ...(secretName ? { secretName } : {}) }],
    rules: hosts.map((host) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: svc, port: { number: 80 } } } }] } })),
  },
});

/** HTTPS GET with SNI and Host set independently, over a given agent. */
function httpsGet(port: number, servername: string, host: string, path = '/', agent?: https.Agent): Promise<{ status: number; body: string; socketPort?: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername, headers: { host }, rejectUnauthorized: false, agent: agent ?? false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socketPort: res.socket?.localPort }));
    });
    req.on('error', reject);
    req.end();
  });
}


beforeAll(async () => {
  exact = makeCert('a.tls.test');
  wildcard = makeCert('*.wild.tls.test');
  other = makeCert('b.tls.test');
  fallback = makeCert('default.tls.test');
  passthroughCert = makeCert('pass.tls.test');
  opaqueCert = makeCert('opaque.tls.test');
  backend = await startEchoBackend('app', '127.0.0.2', 0);
  passthroughServer = https.createServer({ cert: passthroughCert.certPem, key: passthroughCert.keyPem }, (req, res) => res.end('terminated by the backend itself\n'));
  await new Promise<void>((r) => passthroughServer.listen(0, '127.0.0.5', r));
  const ptPort = (passthroughServer.address() as { port: number }).port;
  const mismatched = { certPem: exact.certPem, keyPem: other.keyPem };
  portico = await startPortico({
    workers: 2,
    args: ['--default-ssl-certificate', 'default/fallback-tls'],
    files: {
      'base.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), service('pt'), endpointSlice('pt', [`127.0.0.5:${ptPort}`])),
      'secrets.yaml': toYaml(tlsSecret('a-tls', exact), tlsSecret('wild-tls', wildcard), tlsSecret('b-tls', other), tlsSecret('fallback-tls', fallback), tlsSecret('broken-tls', mismatched), { ...tlsSecret('opaque-tls', opaqueCert), type: 'Opaque' }),
      'ingresses.yaml': toYaml(
        tlsIngress('a', ['a.tls.test'], 'a-tls'),
        tlsIngress('wild', ['x.wild.tls.test'], 'wild-tls'),
        tlsIngress('b', ['b.tls.test'], 'b-tls'),
        tlsIngress('broken', ['broken.tls.test'], 'broken-tls'),
        tlsIngress('missing', ['missing.tls.test'], 'no-such-secret'),
        tlsIngress('opaque', ['opaque.tls.test'], 'opaque-tls'),
        tlsIngress('uncovered', ['uncovered.tls.test'], 'a-tls'),
        tlsIngress('pass', ['pass.tls.test'], undefined, { 'portico.dev/ssl-passthrough': 'true' }, 'pt'),
        tlsIngress('pass-deny', ['passdeny.tls.test'], undefined, { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true', 'nginx.ingress.kubernetes.io/whitelist-source-range': '127.0.0.9/32' }, 'pt'),
        tlsIngress('pass-allow', ['passallow.tls.test'], undefined, { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true', 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8, 127.0.0.0/8' }, 'pt'),
      ),
    },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
  passthroughServer?.closeAllConnections();
  passthroughServer?.close();
});

describe('SNI certificate selection (openssl s_client)', () => {
  it('an exact name gets its certificate', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'a.tls.test' })).serial).toBe(exact.serial);
    expect((await sClient(portico.httpsPort, { servername: 'A.TLS.test' })).serial).toBe(exact.serial);
  });

  it('a wildcard certificate covers one label', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'x.wild.tls.test' })).serial).toBe(wildcard.serial);
    expect((await sClient(portico.httpsPort, { servername: 'other.wild.tls.test' })).serial).toBe(wildcard.serial);
    expect((await sClient(portico.httpsPort, { servername: 'a.b.wild.tls.test' })).serial).toBe(fallback.serial);
  });

  it('unknown names and clients without SNI get the default certificate', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'unknown.test' })).serial).toBe(fallback.serial);
    expect((await sClient(portico.httpsPort)).serial).toBe(fallback.serial);
  });
});

describe('HTTPS traffic', () => {
  it('serves HTTP/1.1 and HTTP/2 (ALPN) with X-Forwarded-Proto https', async () => {
    const h1 = await curl(['--http1.1', '-w', '\\n%{http_version}', '--resolve', `a.tls.test:${portico.httpsPort}:127.0.0.1`, `https://a.tls.test:${portico.httpsPort}/one`]);
    expect(h1.trim().split('\n').at(-1)).toBe('1.1');
    expect(JSON.parse(h1.split('\n')[0]).headers['x-forwarded-proto']).toBe('https');
    const h2 = await curl(['--http2', '-w', '\\n%{http_version}', '--resolve', `a.tls.test:${portico.httpsPort}:127.0.0.1`, `https://a.tls.test:${portico.httpsPort}/two`]);
    expect(h2.trim().split('\n').at(-1)).toBe('2');
    expect(JSON.parse(h2.split('\n')[0])).toMatchObject({ url: '/two', headers: { host: 'a.tls.test:' + portico.httpsPort, 'x-forwarded-proto': 'https' } });
    // curl --http1.0 offers ALPN http/1.0 alone; the answer is HTTP/1.1's (RFC 9110 6.2).
    const h10 = await curl(['--http1.0', '-w', '\n%{http_code}', '--resolve', `a.tls.test:${portico.httpsPort}:127.0.0.1`, `https://a.tls.test:${portico.httpsPort}/ten`]);
    expect(h10.trim().split('\n').at(-1)).toBe('200');
    expect(JSON.parse(h10.split('\n')[0])).toMatchObject({ url: '/ten' });
  });

  it('negotiates ALPN h2, or http/1.1 when offered alone', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'a.tls.test', alpn: 'h2,http/1.1' })).out).toMatch(/ALPN protocol: h2/);
    expect((await sClient(portico.httpsPort, { servername: 'a.tls.test', alpn: 'http/1.1' })).out).toMatch(/ALPN protocol: http\/1\.1/);
  });

  it('refuses TLS below the minimum version', async () => {
    const r = await sClient(portico.httpsPort, { servername: 'a.tls.test', extra: ['-tls1_1'] });
    expect(r.serial).toBeUndefined();
  });

  it('421 when the Host belongs to another certificate than the connection SNI', async () => {
    expect((await httpsGet(portico.httpsPort, 'a.tls.test', 'b.tls.test')).status).toBe(421);
    // Same certificate for both names, or a Host without a certificate of its own: served.
    expect((await httpsGet(portico.httpsPort, 'x.wild.tls.test', 'y.wild.tls.test')).status).toBe(404);
    expect((await httpsGet(portico.httpsPort, 'a.tls.test', 'a.tls.test:443')).status).toBe(200);
  });

  it('no 421 when the client sent an IP address as SNI (not a server name, RFC 6066; wrk does it)', async () => {
    expect((await httpsGet(portico.httpsPort, '127.0.0.1', 'a.tls.test')).status).toBe(200);
  });

  it('plain HTTP to a TLS host is redirected to HTTPS with 308', async () => {
    const r = await request(portico.httpPort, '/x?y=1', { host: 'a.tls.test' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://a.tls.test:${portico.httpsPort}/x?y=1`);
  });
});

describe('bad Secrets', () => {
  it('a key that does not match, a missing Secret, or one not of type kubernetes.io/tls falls back to the default certificate, with a reason', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'broken.tls.test' })).serial).toBe(fallback.serial);
    expect((await sClient(portico.httpsPort, { servername: 'opaque.tls.test' })).serial).toBe(fallback.serial);
    expect((await sClient(portico.httpsPort, { servername: 'missing.tls.test' })).serial).toBe(fallback.serial);
    const { problems } = await portico.json('/status');
    const messages = problems.map((p: { message: string }) => p.message).join('\n');
    expect(messages).toMatch(/broken-tls.*(does not match|key)/);
    expect(messages).toMatch(/Secret default\/no-such-secret not found/);
    expect(messages).toMatch(/spec\.tls host uncovered\.tls\.test is not covered by Secret default\/a-tls/);
    expect(messages).toMatch(/opaque-tls: type is "Opaque", not kubernetes\.io\/tls/);
    expect(await portico.metric('portico_tls_invalid_secrets')).toBe(3);
    expect(portico.logs.some((l) => l.includes('broken-tls'))).toBe(true);
    // The hosts are still served, over the default certificate.
    expect((await httpsGet(portico.httpsPort, 'broken.tls.test', 'broken.tls.test')).status).toBe(200);
  });
});

describe('certificate rotation', () => {
  it('a Secret update serves the new certificate to new handshakes and leaves open connections alone', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const before = await httpsGet(portico.httpsPort, 'b.tls.test', 'b.tls.test', '/', agent);
    expect(before.status).toBe(200);
    expect((await sClient(portico.httpsPort, { servername: 'b.tls.test' })).serial).toBe(other.serial);

    const rotated = makeCert('b.tls.test');
    const version = (await portico.json('/debug/routes')).version;
    portico.write('rotated.yaml', toYaml(tlsSecret('b-tls', rotated)));
    portico.write('secrets.yaml', toYaml(tlsSecret('a-tls', exact), tlsSecret('wild-tls', wildcard), tlsSecret('fallback-tls', fallback), tlsSecret('broken-tls', { certPem: exact.certPem, keyPem: other.keyPem })));
    await portico.waitVersion(version + 1);
    await waitFor('new serial', async () => (await sClient(portico.httpsPort, { servername: 'b.tls.test' })).serial === rotated.serial, 10_000, 100);

    // The keep-alive connection opened before the rotation still works, on the same socket.
    const after = await httpsGet(portico.httpsPort, 'b.tls.test', 'b.tls.test', '/', agent);
    expect(after.status).toBe(200);
    expect(after.socketPort).toBe(before.socketPort);
    agent.destroy();
  });
});

describe('TLS passthrough', () => {
  it('splices the encrypted stream to a backend that terminates TLS itself', async () => {
    expect((await sClient(portico.httpsPort, { servername: 'pass.tls.test' })).serial).toBe(passthroughCert.serial);
    const r = await httpsGet(portico.httpsPort, 'pass.tls.test', 'pass.tls.test');
    expect(r.body).toBe('terminated by the backend itself\n');
    // Other hosts on the same port are still terminated by Portico.
    expect((await sClient(portico.httpsPort, { servername: 'a.tls.test' })).serial).toBe(exact.serial);
  });

  it("holds the Ingress's whitelist-source-range: a client outside it never reaches the backend", async () => {
    // The client is 127.0.0.1: inside 127.0.0.0/8, outside 127.0.0.9/32.
    expect((await httpsGet(portico.httpsPort, 'passallow.tls.test', 'passallow.tls.test')).body).toBe('terminated by the backend itself\n');
    await expect(httpsGet(portico.httpsPort, 'passdeny.tls.test', 'passdeny.tls.test')).rejects.toThrow();
    // Refused before the backend's TLS: no certificate at all, not the backend's.
    expect((await sClient(portico.httpsPort, { servername: 'passdeny.tls.test' })).serial).toBeUndefined();
    expect(await portico.metric('portico_tls_passthrough_rejected_total', { reason: 'not-allowed' })).toBeGreaterThanOrEqual(2);
  });

  it('copes with a ClientHello sent a byte at a time', async () => {
    const net = await import('node:net');
    // Capture a real ClientHello, then replay it one byte per write.
    const capture = await new Promise<Buffer>((resolve) => {
      const srv = net.createServer((s) => s.once('data', (d) => { resolve(d); s.destroy(); srv.close(); }));
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ port: (srv.address() as { port: number }).port, host: '127.0.0.1', servername: 'pass.tls.test', rejectUnauthorized: false });
        c.on('error', () => undefined);
      });
    });
    const socket = net.connect(portico.httpsPort, '127.0.0.1');
    socket.setNoDelay(true);
    const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    for (const byte of capture) {
      socket.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    const first = await reply;
    socket.destroy();
    // A ServerHello from the backend: a TLS handshake record.
    expect(first[0]).toBe(0x16);
  });

  it('closes a connection whose ClientHello is garbage, and counts it', async () => {
    const { rawExchange } = await import('./helpers/http.ts');
    const before = (await portico.metric('portico_tls_passthrough_rejected_total', { listener: 'https', reason: 'not-tls' })) ?? 0;
    const r = await rawExchange(portico.httpsPort, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.closed).toBe(true);
    await waitFor('metric', async () => ((await portico.metric('portico_tls_passthrough_rejected_total', { listener: 'https', reason: 'not-tls' })) ?? 0) > before);
  });
});

describe('session resumption', () => {
  it('a TLS session resumes on any worker (ticket keys are shared)', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'portico-sess-'));
    try {
      const sess = join(dir, 'session.pem');
      // TLS 1.2 keeps the check simple: one ticket, offered on every later connection.
      const first = await sClient(portico.httpsPort, { servername: 'a.tls.test', extra: ['-tls1_2', '-sess_out', sess] });
      expect(first.out).toMatch(/^New, /m);
      let reused = 0;
      for (let i = 0; i < 8; i++) {
        const again = await sClient(portico.httpsPort, { servername: 'a.tls.test', extra: ['-tls1_2', '-sess_in', sess] });
        if (/^Reused, /m.test(again.out)) reused++;
      }
      // Connections spread over both workers (SO_REUSEPORT hashes source ports); all resume.
      expect(reused).toBe(8);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('upstream TLS', () => {
  it('a Service port with appProtocol https is reached over TLS', async () => {
    const upstreamCert = makeCert('upstream.internal');
    const secureBackend = https.createServer({ cert: upstreamCert.certPem, key: upstreamCert.keyPem }, (req, res) => res.end(`secure backend saw ${req.headers.host} ${req.socket.constructor.name}\n`));
    await new Promise<void>((r) => secureBackend.listen(0, '127.0.0.6', r));
    const port = (secureBackend.address() as { port: number }).port;
    try {
      portico.write('upstream-tls.yaml', toYaml(
        service('secure', 80, 'default', { appProtocol: 'https' }),
        endpointSlice('secure', [`127.0.0.6:${port}`]),
        { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'secure-upstream', namespace: 'default' }, spec: { ingressClassName: 'portico', rules: [{ host: 'up.tls.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'secure', port: { number: 80 } } } }] } }] } },
      ));
      const r = await waitFor('route', async () => {
        const res = await request(portico.httpPort, '/', { host: 'up.tls.test' });
        return res.status === 200 ? res : undefined;
      });
      expect(r.body).toBe('secure backend saw up.tls.test TLSSocket\n');
    } finally {
      secureBackend.closeAllConnections();
      secureBackend.close();
    }
  });
});

describe('connection accounting', () => {
  it('an HTTP/2 connection the client closed frees its --max-connections slot at once', async () => {
    const small = await startPortico({ workers: 1, args: ['--max-connections', '3'], files: { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), tlsSecret('a-tls', exact), tlsIngress('a', ['a.tls.test'], 'a-tls')) } });
    try {
      const codes: string[] = [];
      for (let i = 0; i < 6; i++) {
        codes.push((await curl(['--http2', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--resolve', `a.tls.test:${small.httpsPort}:127.0.0.1`, `https://a.tls.test:${small.httpsPort}/`]).catch(() => 'failed')).trim());
      }
      expect(codes).toEqual(Array(6).fill('200 2'));
    } finally {
      await small.stop();
    }
  });
});

describe('strict SNI', () => {
  it('--strict-sni refuses handshakes whose SNI matches no certificate', async () => {
    const strict = await startPortico({ workers: 1, args: ['--strict-sni'], files: { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), tlsSecret('a-tls', exact), tlsIngress('a', ['a.tls.test'], 'a-tls')) } });
    try {
      expect((await sClient(strict.httpsPort, { servername: 'a.tls.test' })).serial).toBe(exact.serial);
      const refused = await sClient(strict.httpsPort, { servername: 'nope.test' });
      expect(refused.serial).toBeUndefined();
      expect(refused.out).toMatch(/alert handshake failure/); // an alert the client can report, not a bare close
      expect((await sClient(strict.httpsPort)).serial).toBeUndefined();
      await waitFor('counted', async () => ((await strict.metric('portico_tls_handshake_errors_total', { reason: 'no_certificate' })) ?? 0) >= 1);
    } finally {
      await strict.stop();
    }
  });

  it('without --default-ssl-certificate, a self-signed certificate is generated and logged', async () => {
    const plain = await startPortico({ workers: 1, files: { 'all.yaml': toYaml(ingressClass()) } });
    try {
      const r = await sClient(plain.httpsPort, { servername: 'anything.test' });
      expect(r.subject).toMatch(/Fake Certificate/);
      expect(plain.logs.some((l) => l.includes('self-signed'))).toBe(true);
    } finally {
      await plain.stop();
    }
    // With a usable --default-ssl-certificate (the main instance), none is generated.
    expect(portico.logs.some((l) => l.includes('generated a self-signed'))).toBe(false);
  });
});
