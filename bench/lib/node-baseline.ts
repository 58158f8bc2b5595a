// The floor for a Node.js proxy on this machine: node:http server + undici Pool, streaming the
// response back through a dispatch handler as Portico does, and nothing else (no routing table,
// no header rewriting, no metrics, no logging, no h2c sniffing). `npm run bench -- --baseline`
// runs it as a third contender, so Portico's own cost can be told apart from Node's.
//   node bench/lib/node-baseline.ts LISTEN_PORT BACKEND_PORT WORKERS
// WORKERS > 1 forks that many processes sharing the port with SO_REUSEPORT, like Portico's workers.

import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Pool, type Dispatcher } from 'undici';

const [listenPort, backendPort, workers] = process.argv.slice(2).map(Number);

if (process.env.BASELINE_CHILD === undefined && workers > 1) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), process.argv.slice(2), { env: { ...process.env, BASELINE_CHILD: '1' } }));
  const stop = (): void => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const pool = new Pool(`http://127.0.0.1:${backendPort}`, { connections: 256, pipelining: 1, keepAliveTimeout: 4_000 });

  class Handler implements Dispatcher.DispatchHandler {
    readonly res: http.ServerResponse;
    constructor(res: http.ServerResponse) {
      this.res = res;
    }
    onRequestStart(): void {
      // nothing to set up
    }
    onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
      const out: Record<string, string | string[]> = {};
      for (const k in headers) if (k !== 'connection' && k !== 'keep-alive' && headers[k] !== undefined) out[k] = headers[k]!;
      this.res.writeHead(statusCode, out);
    }
    onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
      this.res.write(chunk);
    }
    onResponseEnd(): void {
      this.res.end();
    }
    onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
      if (!this.res.headersSent) {
        this.res.writeHead(502);
        this.res.end(err.message);
      } else this.res.destroy();
    }
  }

  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: req.rawHeaders, body: null, blocking: false }, new Handler(res));
  });
  server.listen({ port: listenPort, host: '127.0.0.1', reusePort: true, backlog: 4096 });
  process.on('SIGTERM', () => process.exit(0));
}
