// A worker process: receives routing tables from the primary, swaps them in, serves traffic.
// Routing changes swap one reference; the main listeners and their connections are never
// touched by them. Gateway listeners with ports of their own are bound and closed as tables
// add and drop them (listener-stack.ts).

import { isIP } from 'node:net';
import type { TicketKeyState } from '../tls/session-tickets.ts';
import { CertificateStore } from '../tls/store.ts';
import { compileTable, type RoutingTable } from '../router/index.ts';
import type { ForwardedValues } from './forwarding.ts';
import { LISTEN_FAILED_EXIT_CODE, isMessage, type AckMessage, type EndpointsMessage, type ListenerStateMessage, type ListenersHeldMessage, type PeerWarningMessage, type ShutdownMessage, type TableMessage, type TicketKeysMessage } from './ipc.ts';
import { ListenerStack, type StackDeps } from './listener-stack.ts';
import { bindMessage } from './listeners.ts';
import { createLogger } from './log.ts';
import { endpointUpdates, retainRouteSeries, tableSwaps, tableVersion } from './metrics.ts';
import type { ServeOptions } from './options.ts';
import { UpstreamPools, drain, requestHost, type DownstreamRequest } from './proxy.ts';
import { createFastHttp1, type FastHttp1Server } from './http1/server.ts';
import { rawIoUnavailable } from './http1/socket-io.ts';
import { UpstreamSocketPool } from './http1/upstream-pool.ts';
import { setEscapedSlashes } from './request-checks.ts';
import { parseRealIpSettings } from './realip/config.ts';
import { createProxyProtocolAccept, peerWarningKey, proxyHeaderTimeoutMs, realIpForRequest, type WarnLogger } from './realip/proxy-listener.ts';

const options = JSON.parse(process.env.PORTICO_OPTIONS ?? '{}') as ServeOptions;
const log = createLogger(options.logLevel ?? 'info', { component: 'worker', pid: process.pid }, true);
setEscapedSlashes(options.escapedSlashes ?? 'decode');

let current: RoutingTable | undefined;
let listening: Promise<void> | undefined;
const pools = new UpstreamPools(options);
const store = new CertificateStore();
let ticketKeys: TicketKeyState | undefined;

function send(msg: AckMessage | PeerWarningMessage | ListenerStateMessage | { type: 'portico:hello' }): void {
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
/** The tables the main listeners route on (a request may still hold the one before the current). */
const mainTables = new WeakSet<RoutingTable>();
/**
 * 421 Misdirected Request: an HTTPS request whose Host names a host with a certificate of its own,
 * other than the one this connection was set up for (its SNI). Hosts sharing the connection's
 * certificate may share the connection (HTTP/2 connection reuse). Called only for connections
 * with a server name (route-decision.ts: no SNI, or an IP as SNI, is served by Host).
 */
function misdirected(sni: string, host: string, routedOn: RoutingTable): boolean {
  // Sockets of their own have only Gateway listeners, told apart by listener (table.misdirected);
  // their certificates are not --https-port's.
  if (sni === host || isIP(sni) !== 0 || !mainTables.has(routedOn)) return false;
  // As --https-port picks certificates (by Ingress certificate names and Gateway listeners).
  const certificates = store.socket('https');
  const own = certificates.lookup(host);
  if (own === undefined || own.match === 'default') return false;
  return certificates.lookup(sni)?.id !== own.id;
}

const decision = { httpsPort: options.httpsPort, misdirected };

/** What every listener shares; the fast path's first server holds the one upstream pool. */
let fastRoot: FastHttp1Server | undefined;
const stackDeps: StackDeps = {
  options,
  log,
  pools,
  store,
  decision,
  forwarding: forwardingFor,
  realIp,
  accept: (listener) =>
    createProxyProtocolAccept({ mode: realIp.useProxyProtocol, trustedCidrs: realIp.proxyProtocolTrustedCidrs, log: peerWarnings, listener, headerTimeoutMs: proxyHeaderTimeoutMs(options.headersTimeoutMs) }),
  fast:
    options.http1Engine === 'fast'
      ? (tableFor, handOff) => {
          if (fastRoot === undefined) return (fastRoot = createFastHttp1({ limits: options, log, accessLog: log.isLevelEnabled('info'), table: tableFor, decision, realIp, handOff }));
          return fastRoot.sibling(handOff, tableFor);
        }
      : undefined,
};

/** Idle fast-path upstream connections to endpoints the table no longer has are closed. */
function pruneFastPool(t: RoutingTable): void {
  if (fastRoot === undefined) return;
  const live = new Set<string>();
  for (const b of t.backends.values()) for (const e of b.endpoints) live.add(UpstreamSocketPool.key({ address: e.address, port: e.port, tls: b.protocol === 'https' }));
  fastRoot.options.pool.retainOnly(live);
}

/** The two main listeners, then the Gateway listeners with ports of their own, by key. */
const stacks: ListenerStack[] = [];
const gatewayStacks = new Map<string, ListenerStack>();
/**
 * Gateway listeners that could not bind, by key: their stacks (tried again with backoff while the
 * table wants them) and the error the primary was told.
 */
const unbound = new Map<string, { stack: ListenerStack; reason: string }>();
/** Retrying unbound listeners: 0.5 s, doubling to 5 s, until every wanted listener is bound. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
let retryTimer: NodeJS.Timeout | undefined;
let retryDelayMs = RETRY_FIRST_MS;
/** Listeners the primary has not cleared for binding yet (ListenerGate): not bound, not reported. */
let held = new Set<string>();
/** Reconciliations run one at a time: two tables in a row must not bind one listener twice. */
let reconciling: Promise<void> = Promise.resolve();

function reconcile(t: RoutingTable): Promise<void> {
  reconciling = reconciling.then(() => (current === t && !drain.active ? reconcileGatewayListeners(t) : undefined)).catch((err: Error) => log.error({ err: err.message }, 'reconciling Gateway listeners failed'));
  return reconciling;
}

function scheduleRetry(): void {
  if (retryTimer !== undefined) return;
  retryTimer = setTimeout(() => {
    retryTimer = undefined;
    if (current !== undefined) void reconcile(current);
  }, retryDelayMs);
  retryTimer.unref();
  retryDelayMs = Math.min(retryDelayMs * 2, RETRY_MAX_MS);
}

async function startListeners(): Promise<void> {
  const plain = new ListenerStack(stackDeps, { name: 'http', address: options.bindAddress, port: options.httpPort, protocol: 'HTTP', table });
  const secure = new ListenerStack(stackDeps, { name: 'https', address: options.bindAddress, port: options.httpsPort, protocol: 'HTTPS', table });
  if (ticketKeys !== undefined) secure.applyTls(ticketKeys);
  stacks.push(plain, secure);
  const listenMode = await plain.listen();
  await secure.listen();
  // The fast engine's socket I/O: on the libuv handle, or through Node's streams and why (socket-io.ts).
  const socketIo = options.http1Engine !== 'fast' ? undefined : rawIoUnavailable === undefined ? 'handle' : 'stream';
  log.info({ http: options.httpPort, https: options.httpsPort, address: options.bindAddress, http1Engine: options.http1Engine, listenMode, ...(socketIo === undefined ? {} : { socketIo }) }, 'listeners ready');
  if (options.http1Engine === 'fast' && rawIoUnavailable !== undefined) log.warn({ reason: rawIoUnavailable }, 'fast engine: socket I/O through Node streams (slower than on the handle)');
}

const sameSocket = (a: ListenerStack['spec'], l: { protocol: string; address: string; port: number }): boolean => l.protocol === a.protocol && (l.address === '' ? options.bindAddress : l.address) === a.address && l.port === a.port;

/**
 * Binds the Gateway listeners the table has and this worker does not, and closes those it no
 * longer has (their open connections finish their requests). The main listeners never change.
 * A listener that cannot be bound is reported to the primary (its status says PortUnavailable)
 * and tried again with backoff; the table keeps it, so it is served as soon as it binds.
 */
async function reconcileGatewayListeners(t: RoutingTable): Promise<void> {
  const wanted = new Map((t.ir.listeners ?? []).map((l) => [l.key, l]));
  for (const [key, stack] of gatewayStacks) {
    const want = wanted.get(key);
    if (want !== undefined && sameSocket(stack.spec, want)) continue;
    gatewayStacks.delete(key);
    void retire(stack);
  }
  for (const [key, u] of unbound) {
    const want = wanted.get(key);
    if (want !== undefined && sameSocket(u.stack.spec, want)) continue;
    unbound.delete(key);
    u.stack.dispose();
    // No longer wanted as it was: the primary forgets the failure (a new one is reported below).
    send({ type: 'portico:listener-state', key });
  }
  for (const [key, l] of wanted) {
    if (gatewayStacks.has(key) || held.has(key)) continue;
    const address = l.address === '' ? options.bindAddress : l.address;
    const failed = unbound.get(key);
    const stack = failed?.stack ?? new ListenerStack(stackDeps, { name: key, address, port: l.port, protocol: l.protocol, table: () => current?.listener(key) });
    if (ticketKeys !== undefined) stack.applyTls(ticketKeys);
    try {
      await stack.listen();
    } catch (err) {
      const e = err as Error & { code?: string };
      const reason = e.message;
      if (failed?.reason !== reason) {
        log.error({ listener: key, address, port: l.port, err: reason }, 'cannot bind a Gateway listener; its routes are not served until it can (retrying)');
        send({ type: 'portico:listener-state', key, error: { code: e.code ?? 'ERROR', message: bindMessage(e) } });
      }
      unbound.set(key, { stack, reason });
      continue;
    }
    if (failed !== undefined) {
      unbound.delete(key);
      send({ type: 'portico:listener-state', key });
    }
    gatewayStacks.set(key, stack);
    log.info({ listener: key, address, port: l.port, protocol: l.protocol }, 'Gateway listener bound');
  }
  if (unbound.size > 0) scheduleRetry();
  else retryDelayMs = RETRY_FIRST_MS;
}

/** A listener the table dropped: stop accepting, let requests in flight finish, then close what is left. */
async function retire(stack: ListenerStack): Promise<void> {
  log.info({ listener: stack.spec.name, port: stack.spec.port }, 'Gateway listener removed; closing it');
  const sweep = setInterval(() => stack.closeIdle(), 250);
  const deadline = setTimeout(() => stack.destroyAll(), options.shutdownGraceMs);
  deadline.unref();
  await stack.close();
  clearInterval(sweep);
  clearTimeout(deadline);
}


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
  held = new Set(msg.held ?? []);
  // Certificates first, so a new host's first handshake already finds its certificate.
  const report = store.update(msg.certificates);
  for (const f of report.failed) log.error({ certificate: f.id, err: f.reason }, 'certificate rejected by TLS; its hosts get the default certificate');
  for (const stack of [...stacks, ...gatewayStacks.values()]) stack.applyTls(undefined);
  current = table;
  mainTables.add(table);
  retainRouteSeries(msg.ir);
  tableSwaps.inc();
  tableVersion.set(table.version);
  pools.retainOnly(table);
  pruneFastPool(table);
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
  if (current === table && !drain.active) {
    // A new table starts the retry backoff over.
    retryDelayMs = RETRY_FIRST_MS;
    await reconcile(table);
  }
  send({ type: 'portico:ack', version: table.version });
}

function shutdown(msg: ShutdownMessage): void {
  const deadline = setTimeout(() => process.exit(0), msg.graceMs);
  deadline.unref();
  // Drain: responses from now on close their connections, and connections that sit idle between
  // requests are closed as they become idle, so the worker exits as soon as in-flight requests end.
  drain.active = true;
  const all = [...stacks, ...gatewayStacks.values()];
  const sweep = () => {
    for (const stack of all) stack.closeIdle();
    fastRoot?.closeIdleConnections();
  };
  setInterval(sweep, 250).unref();
  if (all.length === 0) process.exit(0);
  void Promise.all(all.map((stack) => stack.close())).then(() => pools.closeAll().finally(() => process.exit(0)));
  sweep();
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
  pruneFastPool(table);
}

process.on('message', (msg: unknown) => {
  if (isMessage<TableMessage>(msg, 'portico:table')) void onTable(msg);
  else if (isMessage<EndpointsMessage>(msg, 'portico:endpoints')) onEndpoints(msg);
  else if (isMessage<TicketKeysMessage>(msg, 'portico:ticket-keys')) {
    ticketKeys = msg.state;
    for (const stack of [...stacks, ...gatewayStacks.values()]) stack.applyTls(msg.state);
  }
  else if (isMessage<ListenersHeldMessage>(msg, 'portico:listeners-held')) {
    held = new Set(Array.isArray(msg.keys) ? msg.keys.map(String) : []);
    if (current !== undefined && listening !== undefined) {
      void listening.then(() => {
        if (current !== undefined) void reconcile(current);
      });
    }
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
