// Real client IP end to end: a running `portico serve` behind real load balancers on loopback.
//
// Loopback addresses stand for distinct machines, so trusted CIDRs can tell them apart:
//   127.0.0.2, 127.0.0.3, 127.0.0.4   clients
//   127.0.0.10                         an L4 load balancer (haproxy, TCP mode, PROXY v1/v2), as an AWS NLB
//   127.0.0.20                         an L7 load balancer (nginx, X-Forwarded-For), as an ALB
// Portico listens on 127.0.0.1; the backend, in this process, echoes what it received.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, tlsSecret } from './helpers/certs.ts';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml, type Obj } from './helpers/manifests.ts';
import { freePort, sleep, startPortico, waitFor, type Portico } from './helpers/portico.ts';

const MISSING_HEADER_BODY = 'PROXY protocol header expected; check that the load balancer sends it';
const UNEXPECTED_HEADER_BODY = 'unexpected PROXY protocol header';

const have = (cmd: string, arg = '-v') => spawnSync(cmd, [arg]).status === 0;
const haveHaproxy = have('haproxy');
const haveNginx = have('nginx');
const haveCurl = have('curl', '--version');
const haveOpenssl = have('openssl', 'version');

interface Seen {
  headers: http.IncomingHttpHeaders;
  peer: string;
}

let backend: http.Server;
let backendPort = 0;

beforeAll(async () => {
  backend = http.createServer((req, res) => {
    const seen: Seen = { headers: req.headers, peer: req.socket.remoteAddress ?? '' };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(seen));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => backend.close(r));
});

/** app.local: open; allow.local: only 127.0.0.2 (portico.dev/whitelist-source-range). */
function manifests(extra: Obj[] = []): Record<string, string> {
  return {
    'apps.yaml': toYaml(
      ingressClass(),
      service('echo'),
      endpointSlice('echo', [`127.0.0.1:${backendPort}`]),
      ingress('app', 'app.local', [{ path: '/', service: 'echo' }]),
      ingress('allow', 'allow.local', [{ path: '/', service: 'echo' }], { annotations: { 'portico.dev/whitelist-source-range': '127.0.0.2/32, 10.0.0.0/8' } }),
      ...extra,
    ),
  };
}

function withTls(ing: Obj, host: string, secretName: string): Obj {
  return { ...ing, spec: { ...(ing.spec as Obj), tls: [{ hosts: [host], secretName }] } };
}

async function seen(port: number, opts: { address?: string; localAddress?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Seen & { status: number }> {
  const r = await request(port, '/', { host: opts.host ?? 'app.local', address: opts.address, localAddress: opts.localAddress, headers: opts.headers });
  expect(r.status, r.body).toBe(200);
  return { status: r.status, ...(JSON.parse(r.body) as Seen) };
}

/** A PROXY header claiming `client`, sent from the untrusted `from`: closed without an answer, counted. */
async function expectUntrustedProxyHeaderRefused(p: Portico, client: string, from: string): Promise<void> {
  const before = await metric(p, 'portico_proxy_protocol_untrusted_total');
  const r = await raw(p.httpPort, proxyV1(client) + get('app.local'), from);
  expect(r.closed).toBe(true);
  expect(r.text).toBe('');
  await waitFor('untrusted counter', async () => (await metric(p, 'portico_proxy_protocol_untrusted_total')) === before + 1);
}

/** Sends raw bytes from `localAddress` and collects the reply until the server closes (or `waitMs`). */
function raw(port: number, data: string | Buffer, localAddress: string, waitMs = 5000): Promise<{ text: string; closed: boolean }> {
  return rawExchange(port, data, { localAddress, waitMs });
}

const proxyV1 = (src: string, dst = '127.0.0.1', srcPort = 40000, dstPort = 80) => `PROXY TCP4 ${src} ${dst} ${srcPort} ${dstPort}\r\n`;
const get = (host: string, extra = '') => `GET / HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;
const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Seen;

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sk', '--max-time', '10', ...args], { timeout: 15_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout }));
  });
}

/** Runs `cmd` in the foreground and waits until `port` on `host` accepts connections. */
async function startPeer(name: string, cmd: string, args: string[], host: string, ports: number[]): Promise<ChildProcess> {
  const out: string[] = [];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (c: Buffer) => out.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => out.push(c.toString()));
  for (const port of ports) {
    await waitFor(`${name} on ${host}:${port}`, () => {
      if (child.exitCode !== null) throw new Error(`${name} exited: ${out.join('')}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect({ port, host }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
    });
  }
  return child;
}

async function stopPeer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

const metric = async (p: Portico, name: string, labels: Record<string, string> = {}) => (await p.metric(name, labels)) ?? 0;

/** Starts a TLS handshake from `localAddress` and waits until the server closes (bounded). */
function clientHello(port: number, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    const s = tls.connect({ socket, servername: 'secure.local', rejectUnauthorized: false });
    const timer = setTimeout(() => s.destroy(), 5000);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
const logCount = (p: Portico, needle: string) => p.logs.filter((l) => l.includes(needle)).length;

// ---------------------------------------------------------------------------------------------
describe.skipIf(!haveHaproxy)('behind an L4 load balancer sending PROXY protocol (haproxy, as an AWS NLB)', () => {
  const LB = '127.0.0.10';
  let portico: Portico;
  let haproxy: ChildProcess | undefined;
  let dir = '';
  const lb = { v1: 0, v2: 0, v2tls: 0 };
  const cert = makeCert('secure.local');

  beforeAll(async () => {
    portico = await startPortico({
      // Two workers: the once-a-minute mismatch log holds per peer across workers.
      workers: 2,
      files: manifests([
        tlsSecret('secure-tls', cert),
        withTls(ingress('secure', 'secure.local', [{ path: '/', service: 'echo' }]), 'secure.local', 'secure-tls'),
      ]),
      // The NLB is the only peer allowed to send PROXY headers. Its clients are not proxies, so
      // nothing they send in X-Forwarded-For is believed.
      args: ['--use-proxy-protocol', 'true', '--proxy-protocol-trusted-cidrs', `${LB}/32`],
    });
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-haproxy-'));
    lb.v1 = await freePort(LB);
    lb.v2 = await freePort(LB);
    lb.v2tls = await freePort(LB);
    const server = (port: number, opts: string) => `    server portico 127.0.0.1:${port} ${opts} source ${LB}\n`;
    const cfg =
      'global\n    maxconn 256\n' +
      'defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n' +
      `listen nlb_v1\n    bind ${LB}:${lb.v1}\n` + server(portico.httpPort, 'send-proxy') +
      `listen nlb_v2\n    bind ${LB}:${lb.v2}\n` + server(portico.httpPort, 'send-proxy-v2 proxy-v2-options crc32c') +
      `listen nlb_v2_tls\n    bind ${LB}:${lb.v2tls}\n` + server(portico.httpsPort, 'send-proxy-v2');
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    haproxy = await startPeer('haproxy', 'haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], LB, [lb.v1, lb.v2, lb.v2tls]);
  }, 60_000);

  afterAll(async () => {
    await stopPeer(haproxy);
    await portico?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('send-proxy (v1): the backend sees the client, not the load balancer', async () => {
    const s = await seen(lb.v1, { address: LB, localAddress: '127.0.0.2' });
    expect(s.headers['x-real-ip']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-proto']).toBe('http');
    // The port the client connected to is the load balancer's.
    expect(s.headers['x-forwarded-port']).toBe(String(lb.v1));
  });

  it('send-proxy-v2 (with CRC32C): the backend sees the client; the access log names the PROXY header', async () => {
    const s = await seen(lb.v2, { address: LB, localAddress: '127.0.0.3' });
    expect(s.headers['x-real-ip']).toBe('127.0.0.3');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.3');
    const line = await waitFor('access log line', () => portico.logs.find((l) => l.includes('"type":"access"') && l.includes('"client":"127.0.0.3"')));
    expect(JSON.parse(line).proxy_protocol).toMatchObject({ version: 2, command: 'PROXY', source: '127.0.0.3' });
  });

  it.skipIf(!haveCurl)('send-proxy-v2 to the HTTPS listener: PROXY header, then TLS, over HTTP/1.1 and HTTP/2', async () => {
    for (const version of ['--http1.1', '--http2']) {
      const r = await curl([version, '--interface', '127.0.0.4', '--resolve', `secure.local:${lb.v2tls}:${LB}`, '-w', '\n%{http_version}', `https://secure.local:${lb.v2tls}/`]);
      expect(r.code, r.out).toBe(0);
      const [body, httpVersion] = r.out.split('\n');
      expect(httpVersion).toBe(version === '--http2' ? '2' : '1.1');
      const s = JSON.parse(body) as Seen;
      expect(s.headers['x-real-ip']).toBe('127.0.0.4');
      expect(s.headers['x-forwarded-for']).toBe('127.0.0.4');
      expect(s.headers['x-forwarded-proto']).toBe('https');
      expect(s.headers['x-forwarded-port']).toBe(String(lb.v2tls));
    }
  });

  it('a client forging forwarding headers through the load balancer is not believed', async () => {
    const s = await seen(lb.v2, {
      address: LB,
      localAddress: '127.0.0.2',
      headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Real-IP': '6.6.6.6', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Port': '1', Forwarded: 'for=6.6.6.6', 'X_Forwarded_For': '6.6.6.6' },
    });
    expect(s.headers['x-real-ip']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-proto']).toBe('http');
    expect(s.headers['x-forwarded-host']).toBe('app.local');
    expect(s.headers['x-forwarded-port']).toBe(String(lb.v2));
    expect(s.headers.forwarded).toBeUndefined();
    expect(s.headers['x_forwarded_for']).toBeUndefined();
  });

  it('the allowlist is decided on the real client IP, not the load balancer', async () => {
    const allowed = await request(lb.v1, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.2' });
    expect(allowed.status).toBe(200);
    const denied = await request(lb.v1, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.3' });
    expect(denied.status).toBe(403);
    const deniedV2 = await request(lb.v2, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.4' });
    expect(deniedV2.status).toBe(403);
  });

  it('a PROXY header from a peer outside proxy-protocol-trusted-cidrs: closed without an answer, counted', async () => {
    // 127.0.0.3 claims to be a load balancer and forges a client address.
    await expectUntrustedProxyHeaderRefused(portico, '203.0.113.9', '127.0.0.3');
  });

  it('mismatch: plain HTTP on the PROXY listener (a health check or hairpin without PROXY) gets 400 naming the problem, logged once a minute per peer, counted every time', async () => {
    const before = await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' });
    const logsBefore = logCount(portico, 'got a plain HTTP request');
    // Six connections from one peer land on both workers (SO_REUSEPORT spreads them by port).
    for (let i = 0; i < 6; i++) {
      const r = await raw(portico.httpPort, get('app.local'), '127.0.0.5');
      expect(r.closed).toBe(true);
      expect(r.text).toMatch(/^HTTP\/1\.1 400 /);
      expect(r.text.slice(r.text.indexOf("\r\n\r\n") + 4)).toBe(MISSING_HEADER_BODY);
    }
    await waitFor('mismatch counter', async () => (await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_http' })) === before + 6);
    await waitFor('mismatch log', () => logCount(portico, 'got a plain HTTP request') === logsBefore + 1);
    await sleep(200);
    expect(logCount(portico, 'got a plain HTTP request')).toBe(logsBefore + 1);
    const text = portico.logs.filter((l) => l.includes('got a plain HTTP request')).at(-1)!;
    const line = JSON.parse(text);
    expect(line).toMatchObject({ peer: '127.0.0.5', kind: 'missing_header_http', component: 'listener' });
    // One `component` key per line (JSON.parse keeps the last of duplicates, so count the text).
    expect(text.match(/"component":/g)).toHaveLength(1);

    // Then TLS ClientHellos from the same peer, to both listeners: a kind of its own, so it gets
    // its own line (once a minute), although the peer's HTTP mismatch was just logged.
    const tlsBefore = await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' });
    const tlsLines = () => portico.logs.filter((l) => l.includes('got a TLS ClientHello') && l.includes('"peer":"127.0.0.5"'));
    for (let i = 0; i < 4; i++) await clientHello(i % 2 === 0 ? portico.httpsPort : portico.httpPort, '127.0.0.5');
    await waitFor('TLS mismatch counter', async () => (await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' })) === tlsBefore + 4);
    await waitFor('TLS mismatch log', () => tlsLines().length === 1);
    await sleep(200);
    expect(tlsLines().length).toBe(1);
    expect(JSON.parse(tlsLines()[0])).toMatchObject({ peer: '127.0.0.5', kind: 'missing_header_tls' });
    expect(logCount(portico, 'got a plain HTTP request')).toBe(logsBefore + 1);
  });

  it.skipIf(!haveOpenssl)('mismatch: a TLS ClientHello on the PROXY listener is closed, logged and counted', async () => {
    const before = await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' });
    const out = await new Promise<string>((resolve) => {
      const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${portico.httpsPort}`, '-bind', '127.0.0.6:0', '-servername', 'secure.local'], { timeout: 10_000 }, (_e, so, se) => resolve(`${so}${se}`));
      child.stdin?.end();
    });
    expect(out).not.toMatch(/BEGIN CERTIFICATE/);
    await waitFor('mismatch counter', async () => (await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'missing_header_tls' })) === before + 1);
    await waitFor('mismatch log', () => portico.logs.some((l) => l.includes('got a TLS ClientHello') && l.includes('127.0.0.6')));
  });
});

// ---------------------------------------------------------------------------------------------
describe.skipIf(!haveNginx)('behind an L7 load balancer setting X-Forwarded-For (nginx, as an ALB)', () => {
  const LB = '127.0.0.20';
  let portico: Portico;
  let nginx: ChildProcess | undefined;
  let dir = '';
  let lbPort = 0;

  beforeAll(async () => {
    portico = await startPortico({
      workers: 1,
      files: manifests(),
      args: ['--proxy-real-ip-cidr', `${LB}/32`, '--use-forwarded-headers', 'true'],
    });
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-nginx-'));
    mkdirSync(join(dir, 'tmp'));
    lbPort = await freePort(LB);
    // The ALB terminates TLS, so it says https; it appends the peer to any client-sent chain.
    const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    server {
        listen ${LB}:${lbPort};
        location / {
            proxy_pass http://127.0.0.1:${portico.httpPort};
            proxy_bind ${LB};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Port 443;
        }
    }
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    nginx = await startPeer('nginx', 'nginx', ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], LB, [lbPort]);
  }, 60_000);

  afterAll(async () => {
    await stopPeer(nginx);
    await portico?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the backend sees the client, not nginx; the trusted hop says https', async () => {
    const s = await seen(lbPort, { address: LB, localAddress: '127.0.0.2' });
    expect(s.peer).toBe('127.0.0.1');
    expect(s.headers['x-real-ip']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.2');
    expect(s.headers['x-forwarded-proto']).toBe('https');
    expect(s.headers['x-forwarded-port']).toBe('443');
    expect(s.headers['x-forwarded-host']).toBe('app.local');
  });

  it('a client-sent X-Forwarded-For that nginx appends to: the rightmost untrusted hop is the client', async () => {
    const s = await seen(lbPort, { address: LB, localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': '6.6.6.6, 7.7.7.7' } });
    expect(s.headers['x-real-ip']).toBe('127.0.0.3');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.3');
  });

  it('a client sending forged headers directly (not through the trusted hop): all replaced or removed', async () => {
    const r = await raw(
      portico.httpPort,
      get('app.local', 'X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Port: 443\r\nForwarded: for=6.6.6.6;proto=https\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\n'),
      '127.0.0.4',
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    const s = bodyOf(r.text);
    expect(s.headers['x-real-ip']).toBe('127.0.0.4');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.4');
    expect(s.headers['x-forwarded-proto']).toBe('http');
    expect(s.headers['x-forwarded-host']).toBe('app.local');
    expect(s.headers['x-forwarded-port']).toBe(String(portico.httpPort));
    expect(s.headers.forwarded).toBeUndefined();
    expect(s.headers['x_forwarded_for']).toBeUndefined();
    expect(s.headers['x_real_ip']).toBeUndefined();
  });

  it('the allowlist is decided on the client behind nginx', async () => {
    expect((await request(lbPort, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.2' })).status).toBe(200);
    const denied = await request(lbPort, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.3' });
    expect(denied.status).toBe(403);
    // Forging the allowed address does not help: nginx appends the real peer.
    const forged = await request(lbPort, '/', { host: 'allow.local', address: LB, localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': '127.0.0.2' } });
    expect(forged.status).toBe(403);
  });

  it('mismatch, the other way: a PROXY header on a listener without PROXY support gets 400 naming the problem, counted', async () => {
    const before = await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' });
    const logsBefore = logCount(portico, 'listener without use-proxy-protocol');
    for (let i = 0; i < 2; i++) {
      const r = await raw(portico.httpPort, proxyV1('127.0.0.2') + get('app.local'), '127.0.0.7');
      expect(r.closed).toBe(true);
      expect(r.text).toMatch(/^HTTP\/1\.1 400 /);
      expect(r.text).toContain(UNEXPECTED_HEADER_BODY);
    }
    await waitFor('mismatch counter', async () => (await metric(portico, 'portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' })) === before + 2);
    await waitFor('mismatch log', () => logCount(portico, 'listener without use-proxy-protocol') === logsBefore + 1);
    await sleep(200);
    expect(logCount(portico, 'listener without use-proxy-protocol')).toBe(logsBefore + 1);
  });
});

// ---------------------------------------------------------------------------------------------
describe('--config FILE: a ConfigMap manifest with string values (use-proxy-protocol: optional)', () => {
  let portico: Portico;
  let dir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-config-'));
    const file = join(dir, 'portico-config.yaml');
    writeFileSync(
      file,
      `apiVersion: v1
kind: ConfigMap
metadata:
  name: portico-controller
  namespace: portico-system
data:
  use-proxy-protocol: "optional"
  proxy-protocol-trusted-cidrs: "127.0.0.10/32"
  proxy-real-ip-cidr: "127.0.0.10/32,127.0.0.20/32"
  use-forwarded-headers: "true"
  compute-full-forwarded-for: "true"
`,
    );
    portico = await startPortico({ workers: 1, files: manifests(), args: ['--config', file] });
  }, 60_000);

  afterAll(async () => {
    await portico?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a connection with a PROXY header from the trusted balancer: its source is the peer, its chain is walked', async () => {
    // The NLB (127.0.0.10) forwards a connection from an in-cluster L7 proxy (127.0.0.20), which
    // itself names its client in X-Forwarded-For.
    const r = await raw(portico.httpPort, proxyV1('127.0.0.20') + get('app.local', 'X-Forwarded-For: 198.51.100.7\r\n'), '127.0.0.10');
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    const s = bodyOf(r.text);
    expect(s.headers['x-real-ip']).toBe('198.51.100.7');
    // compute-full-forwarded-for: the chain plus the hop that sent it.
    expect(s.headers['x-forwarded-for']).toBe('198.51.100.7, 127.0.0.20');
  });

  it('a connection without a PROXY header (a health check, hairpin traffic) is served with the socket peer', async () => {
    const s = await seen(portico.httpPort, { localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': '6.6.6.6' } });
    expect(s.headers['x-real-ip']).toBe('127.0.0.3');
    expect(s.headers['x-forwarded-for']).toBe('127.0.0.3');
  });

  it('a PROXY header from a peer outside proxy-protocol-trusted-cidrs is still refused', async () => {
    await expectUntrustedProxyHeaderRefused(portico, '127.0.0.20', '127.0.0.3');
  });

  it('the allowlist sees the PROXY source', async () => {
    const ok = await raw(portico.httpPort, proxyV1('127.0.0.2') + get('allow.local'), '127.0.0.10');
    expect(ok.text).toMatch(/^HTTP\/1\.1 200 /);
    const denied = await raw(portico.httpPort, proxyV1('192.0.2.1') + get('allow.local'), '127.0.0.10');
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 /);
  });
});

describe('--config FILE: flat YAML with booleans and lists, Forwarded (RFC 7239) as the client header', () => {
  let portico: Portico;
  let dir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-config-'));
    const file = join(dir, 'portico.yaml');
    writeFileSync(file, 'use-forwarded-headers: true\nproxy-real-ip-cidr:\n  - 127.0.0.20/32\n  - "::1/128"\nforwarded-for-header: Forwarded\n');
    portico = await startPortico({ workers: 1, files: manifests(), args: ['--config', file] });
  }, 60_000);

  afterAll(async () => {
    await portico?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a trusted hop\'s Forwarded chain: the rightmost untrusted element is the client, its proto is believed', async () => {
    const s = await seen(portico.httpPort, { localAddress: '127.0.0.20', headers: { Forwarded: 'for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711";proto=https' } });
    expect(s.headers['x-real-ip']).toBe('2001:db8:cafe::17');
    expect(s.headers['x-forwarded-for']).toBe('2001:db8:cafe::17');
    expect(s.headers['x-forwarded-proto']).toBe('https');
  });

  it('an unknown or obfuscated element ends the walk: what its writer could not identify is not believed', () => {
    return (async () => {
      const s = await seen(portico.httpPort, { localAddress: '127.0.0.20', headers: { Forwarded: 'for=192.0.2.60, for=unknown' } });
      expect(s.headers['x-real-ip']).toBe('127.0.0.20');
      const t = await seen(portico.httpPort, { localAddress: '127.0.0.20', headers: { Forwarded: 'for=192.0.2.61;proto=https, for=_hidden, for="127.0.0.20:80"' } });
      expect(t.headers['x-real-ip']).toBe('127.0.0.20');
      expect(t.headers['x-forwarded-proto']).toBe('http'); // the forged element's proto is not believed either
    })();
  });

  it('X-Forwarded-For is not the configured header, so it is not believed even from the trusted hop', async () => {
    const s = await seen(portico.httpPort, { localAddress: '127.0.0.20', headers: { 'X-Forwarded-For': '192.0.2.60' } });
    expect(s.headers['x-real-ip']).toBe('127.0.0.20');
  });

  it('an untrusted peer\'s Forwarded header is removed', async () => {
    const s = await seen(portico.httpPort, { localAddress: '127.0.0.3', headers: { Forwarded: 'for=192.0.2.60;proto=https' } });
    expect(s.headers['x-real-ip']).toBe('127.0.0.3');
    expect(s.headers['x-forwarded-proto']).toBe('http');
    expect(s.headers.forwarded).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
describe('--config FILE: whitelist-source-range, the default allowlist (and an unknown key)', () => {
  let portico: Portico;
  let dir = '';
  let file = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-config-'));
    file = join(dir, 'portico-config.yaml');
    // allow.local keeps its own annotation (127.0.0.2/32, 10.0.0.0/8); every other route gets the
    // default. `use-proxy-protocl` is a typo: warned about, not fatal.
    writeFileSync(
      file,
      `apiVersion: v1
kind: ConfigMap
metadata:
  name: portico-controller
data:
  whitelist-source-range: "127.0.0.3/32, 198.51.100.0/24"
  use-proxy-protocol: "optional"
  proxy-protocol-trusted-cidrs: "127.0.0.10/32"
  use-proxy-protocl: "true"
`,
    );
    portico = await startPortico({ workers: 1, files: manifests(), args: ['--config', file] });
  }, 60_000);

  afterAll(async () => {
    await portico?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a route without its own allowlist: clients in the default get 200, others 403', async () => {
    expect((await request(portico.httpPort, '/', { host: 'app.local', localAddress: '127.0.0.3' })).status).toBe(200);
    const denied = await request(portico.httpPort, '/', { host: 'app.local', localAddress: '127.0.0.2' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatch(/not allowed/);
    const line = await waitFor('access log of the 403', () => portico.logs.find((l) => l.includes('"type":"access"') && l.includes('"client":"127.0.0.2"') && l.includes('whitelist-source-range')));
    expect(JSON.parse(line)).toMatchObject({ status: 403 });
  });

  it("a route's own portico.dev/whitelist-source-range replaces the default", async () => {
    expect((await request(portico.httpPort, '/', { host: 'allow.local', localAddress: '127.0.0.2' })).status).toBe(200);
    expect((await request(portico.httpPort, '/', { host: 'allow.local', localAddress: '127.0.0.3' })).status).toBe(403);
  });

  it('decided on the real client IP: the PROXY source, not the load balancer', async () => {
    const ok = await raw(portico.httpPort, proxyV1('198.51.100.7') + get('app.local'), '127.0.0.10');
    expect(ok.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(bodyOf(ok.text).headers['x-real-ip']).toBe('198.51.100.7');
    const denied = await raw(portico.httpPort, proxyV1('192.0.2.1') + get('app.local'), '127.0.0.10');
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('upgrade requests (WebSocket) are held to the same allowlist', async () => {
    const upgrade = 'GET / HTTP/1.1\r\nHost: app.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    const denied = await raw(portico.httpPort, upgrade, '127.0.0.2', 3000);
    expect(denied.text).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('the unknown key is named in one warning at start, with the key it was probably meant to be', () => {
    const warnings = portico.logs.filter((l) => l.includes('does not know'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0])).toMatchObject({ level: 40, msg: `config file ${file}: ignoring keys Portico does not know: use-proxy-protocl (did you mean use-proxy-protocol?)` });
  });
});
