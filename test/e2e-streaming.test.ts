import http from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

const SIZE = 50 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
let portico: Portico;
let backend: http.Server;

/** Current resident memory of a process (VmRSS), in bytes. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const MB = 1024 * 1024;
// Bytes the backend has written into the download so far, and read from the upload.
let downloadSent = 0;
let uploadRead = 0;
let holdUpload: (() => void) | undefined;

beforeAll(async () => {
  // Streams 50 MB out with backpressure, and counts what is streamed in.
  backend = http.createServer((req, res) => {
    if (req.url === '/download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      downloadSent = 0;
      const pump = () => {
        while (downloadSent < SIZE) {
          downloadSent += CHUNK.length;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    // The upload is not read until the test says so: the proxy must hold the client back.
    uploadRead = 0;
    req.pause();
    holdUpload = () => req.resume();
    req.on('data', (c: Buffer) => (uploadRead += c.length));
    req.on('end', () => res.end(JSON.stringify({ bytes: uploadRead, chunked: req.headers['transfer-encoding'] === 'chunked' })));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.2', r));
  const port = (backend.address() as { port: number }).port;
  portico = await startPortico({
    workers: 1,
    logLevel: 'warn',
    files: { 'all.yaml': toYaml(ingressClass(), service('big'), endpointSlice('big', [`127.0.0.2:${port}`]), ingress('big', 'big.test', [{ path: '/', service: 'big' }])) },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  backend?.closeAllConnections();
  backend?.close();
});

describe('streaming', () => {
  it('streams a 50 MB download with backpressure, not buffering it', async () => {
    const [worker] = await portico.workerPids();
    const before = rss(worker);
    let received = 0;
    let res!: http.IncomingMessage;
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: portico.httpPort, path: '/download', headers: { host: 'big.test' } }, (r) => {
        res = r;
        r.pause();
        resolve();
      }).on('error', reject);
    });
    // The client reads nothing for a second: the backend must be held back by the proxy.
    await new Promise((r) => setTimeout(r, 1000));
    const sentWhilePaused = downloadSent;
    const rssWhilePaused = rss(worker);
    expect(sentWhilePaused).toBeLessThan(24 * MB);
    expect(rssWhilePaused - before).toBeLessThan(24 * MB);
    await new Promise<void>((resolve, reject) => {
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('end', resolve);
      res.on('error', reject);
      res.resume();
    });
    expect(received).toBe(SIZE);
  }, 60_000);

  it('streams a 50 MB upload with backpressure, not buffering it', async () => {
    const [worker] = await portico.workerPids();
    const before = rss(worker);
    let sent = 0;
    let finished = false;
    const result = new Promise<{ bytes: number; chunked: boolean }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: portico.httpPort, path: '/upload', method: 'POST', headers: { host: 'big.test' } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(JSON.parse(body)));
      });
      req.on('error', reject);
      const pump = () => {
        while (sent < SIZE) {
          sent += CHUNK.length;
          if (!req.write(CHUNK)) return void req.once('drain', pump);
        }
        finished = true;
        req.end();
      };
      pump();
    });
    // The backend reads nothing for a second: the client must be held back by the proxy.
    await new Promise((r) => setTimeout(r, 1000));
    expect(finished).toBe(false);
    expect(sent).toBeLessThan(24 * MB);
    expect(rss(worker) - before).toBeLessThan(24 * MB);
    holdUpload?.();
    expect(await result).toEqual({ bytes: SIZE, chunked: true });
  }, 60_000);
});
