// Both HTTP/1.1 engines (node:http + undici, and the raw-socket fast path) answer the same
// requests the same way: status, the headers the backend receives, and whether the connection
// closes. Cases found by trying Portico as a user (HTTP/1.0 health checks without Host, an
// absolute-form target against a different Host, an empty Host).

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRawBackend, type RawBackend } from './helpers/raw-backend.ts';
import { rawExchange } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

let backend: RawBackend;
// An upstream with odd response framing: answers by path.
let odd: net.Server;
const ODD: Record<string, string> = {
  '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nxxxx',
  '/te-gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nxxxx\r\n0\r\n\r\n',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nxxxx\r\n0\r\n\r\n',
};
const engines: Record<'node' | 'fast', Portico> = {} as never;

beforeAll(async () => {
  backend = await startRawBackend('127.0.0.1');
  odd = net.createServer((s) => {
    let seen = '';
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      seen += c.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      const path = seen.split(' ')[1];
      s.end(ODD[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
  const oddPort = (odd.address() as net.AddressInfo).port;
  const files = { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.1:${backend.port}`]), ingress('p', 'p.test', [{ path: '/', service: 'app' }]), ingress('d', undefined, [{ path: '/', service: 'app' }]), service('odd'), endpointSlice('odd', [`127.0.0.1:${oddPort}`]), ingress('odd', 'odd.test', [{ path: '/', service: 'odd' }])) };
  engines.node = await startPortico({ workers: 1, files, args: ['--http1-engine', 'node'] });
  engines.fast = await startPortico({ workers: 1, files, args: ['--http1-engine', 'fast'] });
}, 60_000);

afterAll(async () => {
  await engines.node?.stop();
  await engines.fast?.stop();
  await backend?.close();
  odd?.close();
});

const status = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

describe.each(['node', 'fast'] as const)('the %s engine', (engine) => {
  const send = (data: string) => rawExchange(engines[engine].httpPort, data, { waitMs: 2000 });

  it('routes an HTTP/1.0 request without Host (load balancer health checks) and gives the upstream a Host', async () => {
    const before = backend.requests.length;
    const r = await send('GET /health HTTP/1.0\r\n\r\n');
    expect(status(r.text)).toBe(200);
    const seen = backend.requests.slice(before);
    expect(seen).toHaveLength(1);
    const names = seen[0].headers.map(([k]) => k.toLowerCase());
    expect(names.filter((n) => n === 'host')).toHaveLength(1);
    expect(names).not.toContain('x-forwarded-host');
  });

  it('an absolute-form target wins over Host for routing, the upstream Host and X-Forwarded-Host alike', async () => {
    const before = backend.requests.length;
    const r = await send('GET http://p.test/reset HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(status(r.text)).toBe(200);
    const h = Object.fromEntries(backend.requests.slice(before)[0].headers.map(([k, v]) => [k.toLowerCase(), v]));
    expect(h.host).toBe('p.test');
    expect(h['x-forwarded-host']).toBe('p.test');
  });

  it('a keep-alive response tells the idle timeout (Keep-Alive: timeout=N), and 300 small header fields are taken', async () => {
    const r = await send(`GET /ka HTTP/1.1\r\nHost: p.test\r\n${Array.from({ length: 300 }, (_, i) => `X-F${i}: ${i}\r\n`).join('')}\r\n`);
    expect(status(r.text)).toBe(200);
    expect(r.text).toMatch(/\r\nkeep-alive: timeout=\d+\r\n/i);
  });

  it('an upstream Transfer-Encoding other than exactly chunked is a 502 (its coding would reach the client unlabelled)', async () => {
    for (const path of ['/te-gzip', '/te-gzip-chunked']) {
      const r = await send(`GET ${path} HTTP/1.1\r\nHost: odd.test\r\n\r\n`);
      expect(status(r.text), path).toBe(502);
    }
    const ok = await send('GET /chunked HTTP/1.1\r\nHost: odd.test\r\nConnection: close\r\n\r\n');
    expect(status(ok.text)).toBe(200);
    expect(ok.text).toMatch(/xxxx/);
  });

  it('an empty Host is 400 and closes the connection; nothing reaches the backend', async () => {
    const before = backend.requests.length;
    const r = await send('GET /foo HTTP/1.1\r\nHost:\r\n\r\n');
    expect(status(r.text)).toBe(400);
    expect(r.closed).toBe(true);
    expect(backend.requests.length).toBe(before);
  });
});
