// The floor of any Node.js proxy on this machine: a net server that gives every client
// connection its own kept-alive upstream socket to the backend and copies bytes both ways, with
// no parsing at all (each upstream socket serves one client connection, so responses pair with
// requests by order alone). What it costs per request is Node's own per-read and per-write cost
// (libuv, the stream layer, one Buffer per read); a proxy that parses, routes and rewrites can
// only be slower. `npm run bench` runs it as the `node-relay` contender in the plain HTTP
// scenarios. It forwards the client's bytes as they are, so in http-newconn the client's
// `Connection: close` reaches the backend and the relay connects upstream once per request too
// (a cost Portico and nginx do not pay there): read that row as an upper bound.
//   node bench/lib/node-relay.ts LISTEN_PORT BACKEND_PORT WORKERS
// WORKERS > 1 forks that many processes sharing the port with SO_REUSEPORT, like Portico's workers.

import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const [listenPort, backendPort, workers] = process.argv.slice(2).map(Number);

if (process.env.RELAY_CHILD === undefined && workers > 1) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), process.argv.slice(2), { env: { ...process.env, RELAY_CHILD: '1' } }));
  const stop = (): void => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ port: backendPort, host: '127.0.0.1', noDelay: true });
    // pipe() gives backpressure both ways and ends each side when the other ends.
    client.pipe(upstream);
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  server.listen({ port: listenPort, host: '127.0.0.1', reusePort: true, backlog: 4096 });
  process.on('SIGTERM', () => process.exit(0));
}
