// --upstream-timeout is the time allowed for the upstream's answer once the request is sent (as
// nginx's proxy_read_timeout), and for an upstream that stops reading the body (proxy_send_timeout):
// an upload slower than it is still in progress and must not get a 504 (QA Q2).
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, type Portico } from './helpers/portico.ts';

let backend: http.Server;
const engines: Partial<Record<'node' | 'fast', Portico>> = {};

beforeAll(async () => {
  backend = http.createServer((req, res) => {
    if (req.url === '/no-read') {
      // Never reads the body: the proxy's writes back up.
      req.pause();
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.url === '/silent') return; // takes the whole body, never answers
      res.end(`got ${Buffer.concat(parts).length} bytes`);
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const port = (backend.address() as AddressInfo).port;
  const files = { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.1:${port}`]), ingress('app', 'up.test', [{ path: '/', service: 'app' }])) };
  for (const engine of ['node', 'fast'] as const) {
    engines[engine] = await startPortico({ workers: 1, files, args: ['--http1-engine', engine, '--upstream-timeout', '1'] });
  }
}, 60_000);

afterAll(async () => {
  for (const p of Object.values(engines)) await p?.stop();
  backend?.closeAllConnections();
  await new Promise((r) => backend?.close(r));
});

/** Sends a POST whose body trickles in `pieces` parts `gapMs` apart; resolves with the raw answer. */
function slowUpload(port: number, path: string, pieces: number, gapMs: number, pieceBytes = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(text));
    s.setTimeout(15_000, () => s.destroy());
    s.on('connect', async () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: up.test\r\nContent-Length: ${pieces * pieceBytes}\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < pieces && !s.destroyed && text === ''; i++) {
        await sleep(gapMs);
        s.write(Buffer.alloc(pieceBytes, 'a'));
      }
    });
  });
}

describe.each(['node', 'fast'] as const)('the %s engine with --upstream-timeout 1', (engine) => {
  it('an upload that takes longer than the timeout is still sent in full and answered', async () => {
    const text = await slowUpload(engines[engine]!.httpPort, '/upload', 10, 250);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/got 10 bytes$/);
  }, 20_000);

  it('once the body is sent, an upstream that does not answer in time gets 504', async () => {
    const started = Date.now();
    const text = await slowUpload(engines[engine]!.httpPort, '/silent', 4, 300);
    expect(text).toMatch(/^HTTP\/1\.1 504 /);
    // The timeout ran from the end of the upload (~1.2 s in), not from its start.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  }, 20_000);
});

describe('the fast engine with --upstream-timeout 1', () => {
  it('an upstream that stops reading the body gets 504 (it does not hang until the client gives up)', async () => {
    const text = await new Promise<string>((resolve) => {
      const s = net.connect(engines.fast!.httpPort, '127.0.0.1');
      let out = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (out += d));
      s.on('error', () => resolve(out));
      s.on('close', () => resolve(out));
      s.setTimeout(15_000, () => s.destroy());
      const size = 64 * 1024 * 1024;
      s.on('connect', () => {
        s.write(`POST /no-read HTTP/1.1\r\nHost: up.test\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
        const chunk = Buffer.alloc(1024 * 1024, 'b');
        let sent = 0;
        const pump = () => {
          while (sent < size && !s.destroyed && out === '') {
            sent += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
        };
        pump();
      });
    });
    expect(text).toMatch(/^HTTP\/1\.1 504 /);
  }, 20_000);
});
