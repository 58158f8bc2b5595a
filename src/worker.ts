// A worker process: receives routing tables from the primary, swaps them in, serves traffic.
// Routing changes swap one reference; listeners and connections are never touched by them.

import type { Http2Session } from 'node:http2';
import { isIP, type Server } from 'node:net';
import { applyTicketKeys, type TicketKeyState } from '../tls/session-tickets.ts';
import { CertificateStore } from '../tls/store.ts';
import { createHttpsStack, type HttpsStack } from './https.ts';
import { compileTable, type RoutingTable } from '../router/index.ts';
import type { ForwardedValues } from './forwarding.ts';
import { LISTEN_FAILED_EXIT_CODE, isMessage, type AckMessage, type EndpointsMessage, type PeerWarningMessage, type ShutdownMessage, type TableMessage, type TicketKeysMessage } from './ipc.ts';
import { createH2cServer, createHttp1Server, createTrafficListener, listen, plainHttpServe } from './listeners.ts';
import { createLogger } from './log.ts';
import { endpointUpdates, retainRouteSeries, tableSwaps, tableVersion } from './metrics.ts';
import type { ServeOptions } from './options.ts';
import { UpstreamPools, createRequestHandler, drain, requestHost, type DownstreamRequest } from './proxy.ts';
import { createUpgradeHandler } from './upgrade.ts';
import { createFastHttp1 } from './http1/server.ts';
import { setEscapedSlashes } from './request-checks.ts';
import { parseRealIpSettings } from './realip/config.ts';
import { createProxyProtocolAccept, peerWarningKey, proxyHeaderTimeoutMs, realIpForRequest, type WarnLogger } from './realip/proxy-listener.ts';

const options = JSON.parse(process.env.PORTICO_OPTIONS ?? '{}') as ServeOptions;
const log = createLogger(options.logLevel ?? 'info', { component: 'worker', pid: process.pid }, true);
setEscapedSlashes(options.escapedSlashes ?? 'decode');

let current: RoutingTable | undefined;
let servers: Server[] = [];
let listening: Promise<void> | undefined;
const pools = new UpstreamPools(options);
const store = new CertificateStore();
let https: HttpsStack | undefined;
let ticketKeys: TicketKeyState | undefined;

function send(msg: AckMessage | PeerWarningMessage | { type: 'portico:hello' }): void {
  if (process.connected) process.send?.(msg);
}

/** Peer warnings go to the primary, which rate-limits them per peer and kind across all workers. */
const peerWarnings: WarnLogger = {
  warn(obj, msg) {
    const fields: Record<string, unknown> = { ...(obj as Record<string, unknown>), worker_pid: process.pid };
    const peer = String(fields.peer ?? '');
    if (process.connected) send({ type: 'portico:peer-warning', peer, key: peerWarningKey(peer, fields.kind), fields, msg });
    else log.warn(fields, msg);
  },
};

// The primary validated these settings; a worker only re-reads them.
const realIp = parseRealIpSettings(options.realIp ?? {}).config;

/** Client IP and forwarding headers: PROXY source and trusted hops, per the real-IP settings. */
function forwardingFor(req: DownstreamRequest): ForwardedValues {
  const r = realIpForRequest(req, realIp);
  // HTTP/2 has :authority, not Host; the real-IP layer reads Host.
  return r.host === '' ? { ...r, host: requestHost(req) ?? '' } : r;
}

const table = () => current;
/**
 * 421 Misdirected Request: an HTTPS request whose Host names a host with a certificate of its own,
 * other than the one this connection was set up for (its SNI). Hosts sharing the connection's
 * certificate may share the connection (HTTP/2 connection reuse).
 */
function misdirected(sni: string, host: string): boolean {
  // An IP address is not a server name (RFC 6066 3), though some clients (wrk) send one.
  if (sni === host || isIP(sni) !== 0) return false;
  const own = store.lookup(host);
  if (own === undefined || own.match === 'default') return false;
  return store.lookup(sni)?.id !== own.id;
}

const decision = { httpsPort: options.httpsPort, misdirected };
const handler = createRequestHandler({ table, pools, log, options, forwarding: forwardingFor, accessLog: log.isLevelEnabled('info'), decision });
// WebSocket tunnels are long-lived; an hour of silence ends one (nginx's default is a minute).
const upgrade = createUpgradeHandler({ table, forwarding: forwardingFor, log, connectTimeoutMs: options.upstreamConnectTimeoutMs, responseTimeoutMs: options.upstreamTimeoutMs, idleTimeoutMs: 3_600_000, decision });

async function startListeners(): Promise<void> {
  const http1 = createHttp1Server(options, log, handler, upgrade);
  const h2c = createH2cServer(options, handler);
  const acceptFor = (listener: string) =>
    createProxyProtocolAccept({ mode: realIp.useProxyProtocol, trustedCidrs: realIp.proxyProtocolTrustedCidrs, log: peerWarnings, listener, headerTimeoutMs: proxyHeaderTimeoutMs(options.headersTimeoutMs) });
  // --http1-engine fast: plain HTTP/1.1 on raw sockets; upgrades and h2c backends are handed to http1.
  const fast = options.http1Engine === 'fast' ? createFastHttp1({ limits: options, log, accessLog: log.isLevelEnabled('info'), table, decision, realIp, handOff: (s) => http1.emit('connection', s) }) : undefined;
  if (fast !== undefined) shutdownHooks.push(() => fast.closeIdleConnections());
  const plain = createTrafficListener({ name: 'http', port: options.httpPort, host: options.bindAddress, limits: options, log, accept: acceptFor('http'), serve: plainHttpServe(fast ?? http1, h2c, options.headersTimeoutMs) });
  // HTTPS: the same kinds of HTTP servers, behind TLS termination (and passthrough).
  const https1 = createHttp1Server(options, log, handler, upgrade);
  const h2 = createH2cServer(options, handler);
  // The fast path serves TLS-terminated HTTP/1.1 too (same options and upstream pool).
  const fastTls = fast?.sibling((s) => https1.emit('connection', s));
  if (fastTls !== undefined) shutdownHooks.push(() => fastTls.closeIdleConnections());
  https = createHttpsStack({ store, table, http1: fastTls ?? https1, h2, log, handshakeTimeoutMs: options.headersTimeoutMs, connectTimeoutMs: options.upstreamConnectTimeoutMs });
  if (ticketKeys !== undefined) applyTicketKeys(https.tlsServer, ticketKeys);
  store.applyTo(https.tlsServer);
  const secure = createTrafficListener({ name: 'https', port: options.httpsPort, host: options.bindAddress, limits: options, log, accept: acceptFor('https'), serve: https.serve, allowHalfOpen: true });
  servers = [plain, secure];
  // Draining HTTP/2 sessions get a GOAWAY (session.close()): their open streams finish, new ones
  // go to a new connection. Closing the servers alone would leave sessions taking new streams.
  const sessions = new Set<Http2Session>();
  for (const server of [h2c, h2]) {
    server.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      if (drain.active) session.close();
    });
  }
  shutdownHooks.push(() => http1.closeIdleConnections(), () => h2c.close(), () => https1.closeIdleConnections(), () => h2.close(), () => {
    for (const session of sessions) if (!session.closed) session.close();
  });
  const listenMode = await listen(plain, options.httpPort, options.bindAddress);
  await listen(secure, options.httpsPort, options.bindAddress);
  log.info({ http: options.httpPort, https: options.httpsPort, address: options.bindAddress, http1Engine: options.http1Engine, listenMode }, 'listeners ready');
}
const shutdownHooks: (() => void)[] = [];

async function onTable(msg: TableMessage): Promise<void> {
  let table: RoutingTable;
  try {
    table = compileTable(msg.ir, msg.version);
    table.updateEndpoints({}, msg.endpointsVersion ?? 0);
  } catch (err) {
    log.error({ err: (err as Error).message, version: msg.version }, 'rejected routing table; keeping the current one');
    send({ type: 'portico:ack', version: current?.version ?? 0, error: (err as Error).message });
    return;
  }
  if (current !== undefined && msg.version <= current.version) return;
  // Certificates first, so a new host's first handshake already finds its certificate.
  const report = store.update(msg.certificates);
  for (const f of report.failed) log.error({ certificate: f.id, err: f.reason }, 'certificate rejected by TLS; its hosts get the default certificate');
  if (https !== undefined) store.applyTo(https.tlsServer);
  current = table;
  retainRouteSeries(msg.ir);
  tableSwaps.inc();
  tableVersion.set(table.version);
  pools.retainOnly(table);
  if (listening === undefined) {
    listening = startListeners();
    try {
      await listening;
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'cannot listen');
      process.exit(LISTEN_FAILED_EXIT_CODE);
    }
  } else {
    await listening;
  }
  send({ type: 'portico:ack', version: table.version });
}

function shutdown(msg: ShutdownMessage): void {
  const deadline = setTimeout(() => process.exit(0), msg.graceMs);
  deadline.unref();
  // Drain: responses from now on close their connections, and connections that sit idle between
  // requests are closed as they become idle, so the worker exits as soon as in-flight requests end.
  drain.active = true;
  const sweep = setInterval(() => {
    for (const hook of shutdownHooks) hook();
  }, 250);
  sweep.unref();
  let open = servers.length;
  if (open === 0) process.exit(0);
  for (const s of servers) {
    s.close(() => {
      if (--open === 0) void pools.closeAll().finally(() => process.exit(0));
    });
  }
  for (const hook of shutdownHooks) hook();
}

/** An EndpointSlice change: swap those backends' endpoint sets in the table being served. */
function onEndpoints(msg: EndpointsMessage): void {
  const table = current;
  // Another version: the table this worker gets next (or has) already holds these sets.
  if (table === undefined || msg.version !== table.version || msg.endpointsVersion <= table.endpointsVersion) return;
  try {
    table.updateEndpoints(msg.sets, msg.endpointsVersion);
  } catch (err) {
    log.error({ err: (err as Error).message, version: msg.version, endpointsVersion: msg.endpointsVersion }, 'rejected an endpoint update; keeping the current endpoints');
    return;
  }
  endpointUpdates.inc();
  // Pools of endpoints that left close once their requests are done: in-flight ones finish.
  pools.retainOnly(table);
}

process.on('message', (msg: unknown) => {
  if (isMessage<TableMessage>(msg, 'portico:table')) void onTable(msg);
  else if (isMessage<EndpointsMessage>(msg, 'portico:endpoints')) onEndpoints(msg);
  else if (isMessage<TicketKeysMessage>(msg, 'portico:ticket-keys')) {
    ticketKeys = msg.state;
    if (https !== undefined) applyTicketKeys(https.tlsServer, msg.state);
  }
  else if (isMessage<ShutdownMessage>(msg, 'portico:shutdown')) shutdown(msg);
});
// The primary decides when a worker stops; a signal to the process group must not race it.
process.on('SIGTERM', () => undefined);
process.on('SIGINT', () => undefined);
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => {
  log.fatal({ err: err.stack ?? err.message }, 'uncaught exception; worker exits and the primary respawns it');
  process.exit(1);
});
send({ type: 'portico:hello' });
