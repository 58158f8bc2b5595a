// Per-connection paths of the fast engine (issue 9): a client that asks to close is answered
// whole and closed by Portico without waiting for its FIN; bytes after such a request still get
// the staged close (no reset that could cost the client the answer); the open-connections gauge
// counts connections up and back down.

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, waitFor, type Portico } from './helpers/portico.ts';
import { startRawBackend, type RawBackend } from './helpers/raw-backend.ts';

let backend: RawBackend;
let portico: Portico;

beforeAll(async () => {
  backend = await startRawBackend();
  portico = await startPortico({
    workers: 1,
    args: ['--http1-engine', 'fast'],
    files: { 'all.yaml': toYaml(ingressClass(), service('raw'), endpointSlice('raw', [`127.0.0.1:${backend.port}`]), ingress('raw', 'nc.test', [{ path: '/', service: 'raw' }])) },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

/** Sends `parts` one write at a time, 100 ms apart, then reads until Portico closes. */
function exchangeParts(parts: (string | Buffer)[]): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ port: portico.httpPort, host: '127.0.0.1' });
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ text, closed: true }));
    s.setTimeout(8000, () => s.destroy());
    let i = 0;
    const next = (): void => {
      if (i < parts.length && !s.destroyed) s.write(parts[i++]);
      if (i < parts.length) setTimeout(next, 100);
    };
    s.once('connect', next);
  });
}

/**
 * Sends `data` on a client that never half-closes itself, and reads until Portico closes:
 * what arrived, whether Portico's FIN came (not a reset).
 */
function exchange(data: string): Promise<{ text: string; fin: boolean; error: string | undefined }> {
  return new Promise((resolve) => {
    const s = net.connect({ port: portico.httpPort, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let fin = false;
    let error: string | undefined;
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('end', () => {
      fin = true;
      s.destroy();
    });
    s.on('error', (e: Error & { code?: string }) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ text, fin, error }));
    // Bounded: a connection Portico never closed fails the test rather than hang it.
    s.setTimeout(8000, () => s.destroy());
    s.write(data);
  });
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: nc.test\r\n${extra}\r\n`;

describe('fast engine: closing new connections', () => {
  it('Connection: close is answered whole, then Portico closes (FIN, no reset) while the client keeps its side open', async () => {
    const r = await exchange(get('/a', 'Connection: close\r\n'));
    expect(r.error).toBeUndefined();
    expect(r.fin).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(r.text.endsWith('GET /a\n')).toBe(true);
  });

  it('an HTTP/1.0 request without keep-alive is answered whole, then closed', async () => {
    const r = await exchange('GET /b HTTP/1.0\r\nHost: nc.test\r\n\r\n');
    expect(r.error).toBeUndefined();
    expect(r.fin).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(r.text.endsWith('GET /b\n')).toBe(true);
  });

  it('bytes after a Connection: close request: that request alone is answered, whole, with a clean close', async () => {
    backend.clear();
    const r = await exchange(get('/c', 'Connection: close\r\n') + get('/d'));
    expect(r.error).toBeUndefined();
    expect(r.fin).toBe(true);
    expect(r.text.match(/HTTP\/1\.1 200 /g)?.length).toBe(1);
    expect(r.text.endsWith('GET /c\n')).toBe(true);
    expect(backend.requests.map((q) => q.target)).toEqual(['/c']);
  });

  it('a request with a body and Connection: close is answered whole', async () => {
    const r = await exchange(`POST /e HTTP/1.1\r\nHost: nc.test\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello`);
    expect(r.error).toBeUndefined();
    expect(r.fin).toBe(true);
    expect(r.text.endsWith('POST /e\n')).toBe(true);
  });

  it('a PROXY header on this listener (no PROXY protocol), also split across reads, is refused with 400 and counted; P... requests are served', async () => {
    const before = (await portico.metric('portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' })) ?? 0;
    const v1 = await exchangeParts(['PRO', 'XY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n', get('/p1', 'Connection: close\r\n')]);
    expect(v1.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(v1.text).toContain('unexpected PROXY protocol header');
    const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 10, 0, 0, 1, 10, 0, 0, 2, 4, 210, 0, 80]);
    const v2 = await exchangeParts([sig.subarray(0, 3), sig.subarray(3), get('/p2', 'Connection: close\r\n')]);
    expect(v2.text).toMatch(/^HTTP\/1\.1 400 /);
    await waitFor('mismatches counted', async () => (await portico.metric('portico_proxy_protocol_mismatch_total', { kind: 'unexpected_header' })) === before + 2);
    const post = await exchangeParts(['P', 'OST /p3 HTTP/1.1\r\nHost: nc.test\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok']);
    expect(post.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(post.text.endsWith('POST /p3\n')).toBe(true);
  });

  it('the open-connections gauge goes up for open connections and back to 0 once they close', async () => {
    for (let i = 0; i < 20; i++) expect((await exchange(get(`/n${i}`, 'Connection: close\r\n'))).text).toMatch(/^HTTP\/1\.1 200 /);
    const held = await Promise.all([0, 1, 2].map(() => new Promise<net.Socket>((resolve) => {
      const s = net.connect({ port: portico.httpPort, host: '127.0.0.1' }, () => resolve(s));
      s.on('error', () => undefined);
    })));
    await waitFor('3 open', async () => (await portico.metric('portico_open_connections', { listener: 'http' })) === 3);
    for (const s of held) s.destroy();
    await waitFor('0 open', async () => (await portico.metric('portico_open_connections', { listener: 'http' })) === 0);
  });
});
