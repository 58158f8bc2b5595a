// Graceful shutdown as Kubernetes does it: SIGTERM, then the pod leaves the Service's endpoints a
// little later. /readyz fails at once, traffic is served through --shutdown-delay, then the
// listeners stop accepting, in-flight requests finish, kept-alive connections are closed politely
// (Connection: close on HTTP/1.1, GOAWAY on HTTP/2), and the process exits.

import http from 'node:http';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, waitFor } from './helpers/portico.ts';

let backend: EchoBackend;
const files = () => ({ 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.1:${backend.port}`]), ingress('app', 'app.test', [{ path: '/', service: 'app' }])) });

beforeAll(async () => {
  backend = await startEchoBackend('app', '127.0.0.1', 0);
});
afterAll(async () => {
  await backend?.close();
});

interface Outcome {
  ok: number;
  /** A request that reached Portico (its connection was accepted) but got no complete answer. */
  failed: string[];
  /** Connections refused: the listener had stopped accepting, as the load balancer expects by then. */
  refused: number;
  closes: number;
}

/**
 * One keep-alive client behind a load balancer: sends requests back to back; a connection the
 * server closes is replaced by a new one, but only while the load balancer still sends new
 * connections here (until `newConnectionsUntil`, the end of the shutdown delay). A request that
 * meets a kept-alive connection closing under it (sent just as the server closed it idle) is
 * sent again on a new connection, as RFC 9112 9.3.1 lets clients do and as load generators and
 * browsers do; any other error is a failure.
 */
async function client(port: number, until: () => boolean, newConnectionsUntil: () => number, out: Outcome): Promise<void> {
  let agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0, retried = false; i < 100_000 && !until(); i++) {
    const kept = Object.values(agent.freeSockets).some((list) => (list?.length ?? 0) > 0);
    if (!kept && Date.now() >= newConnectionsUntil()) break;
    const result = await new Promise<'ok' | 'refused' | 'retry' | string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: `/r${i}`, headers: { host: 'app.test' }, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.headers.connection === 'close') out.closes++;
          resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`);
        });
        res.on('error', (err) => resolve(`response error ${err.message}`));
      });
      req.on('error', (err: Error & { code?: string }) => {
        if (err.code === 'ECONNREFUSED') return resolve('refused');
        if (req.reusedSocket && err.code === 'ECONNRESET' && !retried) return resolve('retry');
        resolve(`${err.code ?? ''} ${err.message}`);
      });
      req.end();
    });
    retried = false;
    if (result === 'ok') out.ok++;
    else if (result === 'retry') {
      retried = true;
      i--;
    } else if (result === 'refused') {
      out.refused++;
      await sleep(20);
    } else {
      out.failed.push(result);
      agent.destroy();
      agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    }
  }
  agent.destroy();
}

describe('graceful shutdown', () => {
  it('SIGTERM: /readyz fails at once, traffic is served through the delay, then drained with 0 failed requests', async () => {
    const p = await startPortico({ workers: 2, args: ['--shutdown-delay', '1.5', '--shutdown-grace', '5'], files: files() });
    const out: Outcome = { ok: 0, failed: [], refused: 0, closes: 0 };
    let exited = false;
    p.proc.once('exit', () => (exited = true));
    try {
      let newConnectionsUntil = Infinity;
      const clients = Array.from({ length: 4 }, () => client(p.httpPort, () => exited || out.refused > 20, () => newConnectionsUntil, out));
      await waitFor('load', () => out.ok > 50);
      const signalled = Date.now();
      // The load balancer has taken the instance out a little before the delay ends.
      newConnectionsUntil = signalled + 1300;
      p.proc.kill('SIGTERM');
      await waitFor('/readyz to fail', async () => (await p.admin('/readyz').catch(() => undefined))?.status === 503, 1000, 20);
      const servedAtSignal = out.ok;
      // Well inside the delay, requests are still answered.
      await sleep(800);
      expect(out.ok).toBeGreaterThan(servedAtSignal);
      expect(out.refused).toBe(0);
      await Promise.all(clients);
      await waitFor('exit', () => exited, 10_000);
      expect(Date.now() - signalled).toBeGreaterThanOrEqual(1500);
      // Every request sent was answered: kept-alive connections ended with a Connection: close
      // answer or were closed while idle (RFC 9112 9.6), never in the middle of a request.
      expect(out.failed).toEqual([]);
      expect(p.proc.exitCode).toBe(0);
    } finally {
      await p.stop();
    }
  });

  it('an HTTP/2 session gets a GOAWAY when draining: its open stream finishes, and the session ends', async () => {
    const slow = http.createServer((req, res) => setTimeout(() => res.end('finished\n'), 600));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const slowPort = (slow.address() as { port: number }).port;
    const p = await startPortico({ workers: 1, args: ['--shutdown-grace', '5'], files: { 'all.yaml': toYaml(ingressClass(), service('slow'), endpointSlice('slow', [`127.0.0.1:${slowPort}`]), ingress('slow', 'slow.test', [{ path: '/', service: 'slow' }])) } });
    const session = http2.connect(`http://127.0.0.1:${p.httpPort}`);
    try {
      let goaway = false;
      session.on('goaway', () => (goaway = true));
      session.on('error', () => undefined);
      const body = new Promise<{ status: number; text: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/', ':authority': 'slow.test' });
        let status = 0;
        let text = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (text += d));
        stream.on('end', () => resolve({ status, text }));
        stream.on('error', reject);
      });
      await sleep(200);
      p.proc.kill('SIGTERM');
      expect(await body).toEqual({ status: 200, text: 'finished\n' });
      await waitFor('GOAWAY', () => goaway, 5000);
      await waitFor('exit', () => p.proc.exitCode !== null, 10_000);
      expect(p.proc.exitCode).toBe(0);
    } finally {
      session.destroy();
      await p.stop();
      slow.closeAllConnections();
      slow.close();
    }
  });
});
