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
