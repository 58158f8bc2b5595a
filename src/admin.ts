// The admin server, in the primary: health, readiness, metrics of all workers, status, routes.

import http from 'node:http';
import { CidrSet, parseCidr } from '../router/cidr.ts';
import type { WorkerMetrics } from './cluster-metrics.ts';
import type { Logger } from './log.ts';
import type { ServeOptions } from './options.ts';
import type { PrimaryState } from './primary.ts';

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function text(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

// Loopback is always allowed: a kubectl port-forward or a shell in the pod reads /debug/routes.
const LOOPBACK = new CidrSet([parseCidr('127.0.0.0/8')!, parseCidr('::1/128')!]);

/**
 * Whether a client may read /status and /debug/* (they list every endpoint address). Decided on
 * the socket's peer address only: forwarding headers are never trusted on the admin port.
 * `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) counts as loopback.
 */
export function adminDebugAllowed(peer: string | undefined, allowed: CidrSet): boolean {
  if (peer === undefined) return false;
  return LOOPBACK.contains(peer) || allowed.contains(peer);
}

/** Paths that stay open to every client: probes and scrapers. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export async function startAdminServer(options: ServeOptions, state: PrimaryState, workerMetrics: WorkerMetrics, log: Logger): Promise<http.Server> {
  const allowed = new CidrSet(options.adminAllowCidrs.map((c) => parseCidr(c)!).filter((c) => c !== undefined));
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed\n');
      if (!OPEN_PATHS.has(path) && !adminDebugAllowed(req.socket.remoteAddress, allowed)) {
        return text(res, 403, 'forbidden: served to loopback clients only (see --admin-allow-cidr)\n');
      }
      switch (path) {
        case '/healthz':
          return text(res, 200, 'ok\n');
        case '/readyz':
          if (state.shuttingDown()) return text(res, 503, 'not ready: shutting down\n');
          if (!state.ready()) return text(res, 503, 'not ready: waiting for every worker to serve a routing table\n');
          // Ready on a stale source: the last table keeps serving (the body says what is stale).
          {
            const src = state.source();
            return text(res, 200, src.stale ? `ready (source stale since ${src.staleSince}: ${src.detail ?? 'not current'})\n` : 'ready\n');
          }
        case '/metrics': {
          let workers = '';
          try {
            workers = await workerMetrics.metrics();
          } catch (err) {
            log.warn({ err: (err as Error).message }, 'could not collect worker metrics');
          }
          const own = await state.registry.metrics();
          return text(res, 200, `${own}\n${workers}`, state.registry.contentType);
        }
        case '/status':
          return json(res, 200, { source: state.source(), items: state.statuses(), problems: state.problems() });
        case '/debug/certificates':
          return json(res, 200, { items: state.certificates() });
        case '/debug/routes': {
          const t = state.table();
          return json(res, 200, t ? { version: t.version, ...t.ir } : { version: 0, virtualHosts: [], backends: {} });
        }
        default:
          return text(res, 404, 'not found\n');
      }
    } catch (err) {
      log.error({ err: (err as Error).message, path }, 'admin request failed');
      if (!res.headersSent) text(res, 500, 'internal error\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.adminPort, options.adminAddress, () => resolve());
  });
  log.info({ port: options.adminPort, address: options.adminAddress }, 'admin server ready');
  return server;
}
