import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { rawExchange, request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, type Portico } from './helpers/portico.ts';

let backend: EchoBackend;
let portico: Portico;

beforeAll(async () => {
  backend = await startEchoBackend('app', '127.0.0.2', 0);
  portico = await startPortico({
    workers: 1,
    args: ['--max-header-size', '4096', '--headers-timeout', '1', '--request-timeout', '2', '--keepalive-timeout', '1', '--max-connections', '20'],
    files: { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), ingress('app', 'app.test', [{ path: '/', service: 'app' }])) },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function closedWithin(s: net.Socket, ms: number): Promise<{ closed: boolean; data: string; afterMs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let data = '';
    s.on('data', (c) => (data += c.toString()));
    const t = setTimeout(() => resolve({ closed: false, data, afterMs: Date.now() - started }), ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ closed: true, data, afterMs: Date.now() - started });
    });
  });
}

describe('malformed HTTP and limits', () => {
  it('a version other than HTTP/1.0 or 1.1 gets 505 and a closed connection', async () => {
    const r = await rawExchange(portico.httpPort, 'GET / HTTP/9.9\r\nHost: x\r\n\r\n');
    expect(r.text).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported/);
    expect(r.closed).toBe(true);
  });

  it('malformed requests get 400 and a closed connection', async () => {
    for (const bad of ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: app.test\r\nBad Header Line\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n']) {
      const r = await rawExchange(portico.httpPort, bad);
      expect(r.text).toMatch(/^HTTP\/1\.1 400 Bad Request/);
      expect(r.closed).toBe(true);
    }
  });

  it('a request head over --max-header-size gets 431 and a close', async () => {
    const r = await rawExchange(portico.httpPort, `GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 431/);
    expect(r.closed).toBe(true);
    // Just under the limit is fine.
    expect((await request(portico.httpPort, '/', { host: 'app.test', headers: { 'x-big': 'a'.repeat(3000) } })).status).toBe(200);
  });

  it('a request target over the limit gets 414 URI Too Long', async () => {
    const r = await rawExchange(portico.httpPort, `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1\.1 414 URI Too Long/);
    expect(r.closed).toBe(true);
  });

  it('a client that never finishes its headers is cut off after --headers-timeout', async () => {
    const s = await openSocket(portico.httpPort);
    s.write('GET / HTTP/1.1\r\nHost: app.test\r\n');
    const r = await closedWithin(s, 5000);
    expect(r.closed).toBe(true);
    expect(r.afterMs).toBeLessThan(4000);
    expect(r.data).toMatch(/^HTTP\/1\.1 408|^$/);
  });

  it('a connection that sends nothing is closed after --headers-timeout, not twice that', async () => {
    const s = await openSocket(portico.httpPort);
    const r = await closedWithin(s, 5000);
    expect(r.closed).toBe(true);
    expect(r.afterMs).toBeGreaterThanOrEqual(900);
    expect(r.afterMs).toBeLessThan(1800);
  });

  it('a client that never finishes its body is cut off after --request-timeout', async () => {
    const s = await openSocket(portico.httpPort);
    s.write('POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nonly-some');
    const r = await closedWithin(s, 6000);
    expect(r.closed).toBe(true);
    expect(r.afterMs).toBeLessThan(5500);
  });

  it('an idle keep-alive connection is closed after --keepalive-timeout', async () => {
    const s = await openSocket(portico.httpPort);
    s.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const r = await closedWithin(s, 5000);
    expect(r.data).toMatch(/^HTTP\/1\.1 200/);
    expect(r.closed).toBe(true);
    expect(r.afterMs).toBeGreaterThanOrEqual(900);
    expect(r.afterMs).toBeLessThan(1900); // not Node's default extra second
  });

  it('connections over --max-connections are closed at once; the others keep working', async () => {
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) held.push(await openSocket(portico.httpPort));
      await sleep(100);
      // The kernel accepts it; Portico closes (or resets) it at once.
      const extra = net.connect(portico.httpPort, '127.0.0.1');
      extra.on('error', () => undefined);
      const r = await closedWithin(extra, 3000);
      expect(r.closed).toBe(true);
      expect(r.afterMs).toBeLessThan(1000);
    } finally {
      for (const s of held) s.destroy();
    }
    await sleep(200);
    expect((await request(portico.httpPort, '/', { host: 'app.test' })).status).toBe(200);
  });
});
