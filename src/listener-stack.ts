// One traffic listener in a worker and the protocol servers behind it: plain (HTTP/1.1 on
// node:http or the fast path, h2c by prior knowledge) or HTTPS (TLS termination and SNI
// passthrough, then HTTP/1.1 or h2). The two main listeners (--http-port, --https-port) and each
// Gateway listener with a port of its own (RoutingIR.listeners) are one of these, routing on the
// table their `table` getter returns.

import type { Http2Session } from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import type { RoutingTable } from '../router/index.ts';
import { applyTicketKeys, type TicketKeyState } from '../tls/session-tickets.ts';
import type { CertificateStore } from '../tls/store.ts';
import type { ForwardedValues } from './forwarding.ts';
import type { FastHttp1Server } from './http1/server.ts';
import { createHttpsStack } from './https.ts';
import { createH2cServer, createHttp1Server, createTrafficListener, listen, plainHttpServe, type ListenMode } from './listeners.ts';
import type { Logger } from './log.ts';
import type { ServeOptions } from './options.ts';
import type { RealIpConfig } from './realip/client-ip.ts';
import type { AcceptHook } from './realip/proxy-listener.ts';
import { createRequestHandler, drain, type DownstreamRequest, type UpstreamPools } from './proxy.ts';
import type { DecisionContext } from './route-decision.ts';
import { createUpgradeHandler } from './upgrade.ts';

export interface ListenerSpec {
  /** Metrics and log name: `http`, `https`, or a Gateway listener's key. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** TLS: TLS Passthrough only (an SNI no route passes through is refused, nothing is terminated). */
  readonly protocol: 'HTTP' | 'HTTPS' | 'TLS';
  /** The table this listener routes on, read at the start of each request. */
  readonly table: () => RoutingTable | undefined;
}

/** What every listener of a worker shares. */
export interface StackDeps {
  readonly options: ServeOptions;
  readonly log: Logger;
  readonly pools: UpstreamPools;
  readonly store: CertificateStore;
  readonly decision: DecisionContext;
  readonly forwarding: (req: DownstreamRequest) => ForwardedValues;
  readonly realIp: RealIpConfig;
  /** PROXY protocol (or none) in front of the protocol servers. */
  readonly accept: (listener: string) => AcceptHook;
  /** With --http1-engine fast: a fast-path server for a listener (one upstream pool for all). */
  readonly fast?: (table: () => RoutingTable | undefined, handOff: (socket: net.Socket) => void) => FastHttp1Server;
}

export class ListenerStack {
  readonly spec: ListenerSpec;
  readonly server: net.Server;
  /** The TLS server of an HTTPS listener: certificates and ticket keys are applied to it. */
  readonly tlsServer: tls.Server | undefined;
  private readonly deps: StackDeps;
  private readonly idleClosers: (() => void)[] = [];
  private readonly disposers: (() => void)[] = [];
  private readonly sessions = new Set<Http2Session>();
  private closing = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly fast: FastHttp1Server | undefined;

  constructor(deps: StackDeps, spec: ListenerSpec) {
    this.deps = deps;
    this.spec = spec;
    const { options, log } = deps;
    const table = spec.table;
    const handler = createRequestHandler({ table, pools: deps.pools, log, options, forwarding: deps.forwarding, accessLog: log.isLevelEnabled('info'), decision: deps.decision });
    // WebSocket tunnels are long-lived; an hour of silence ends one (nginx's default is a minute).
    const upgrade = createUpgradeHandler({ table, forwarding: deps.forwarding, log, connectTimeoutMs: options.upstreamConnectTimeoutMs, responseTimeoutMs: options.upstreamTimeoutMs, idleTimeoutMs: 3_600_000, decision: deps.decision });
    const http1 = createHttp1Server(options, log, handler, upgrade);
    const h2 = createH2cServer(options, handler);
    // node:http's timeout sweep starts with the server (createHttp1Server): a stack that never
    // bound must stop it.
    this.disposers.push(() => http1.close(() => undefined), () => h2.close(() => undefined));
    // --http1-engine fast: HTTP/1.1 on raw sockets; upgrades (and what it does not serve) go to node:http.
    const fast = deps.fast?.(table, (s) => http1.emit('connection', s));
    this.fast = fast;
    this.idleClosers.push(() => http1.closeIdleConnections());
    if (fast !== undefined) this.idleClosers.push(() => { for (const c of fast.connections) c.closeIfIdle(); });
    // HTTP/2 sessions get a GOAWAY (session.close()) when this listener drains: open streams
    // finish, new ones go to a new connection. Closing the server alone would leave sessions
    // taking new streams.
    h2.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (drain.active || this.closing) session.close();
    });
    this.idleClosers.push(() => {
      for (const session of this.sessions) if (!session.closed) session.close();
    });
    if (spec.protocol === 'HTTP') {
      this.tlsServer = undefined;
      const accept = deps.accept(spec.name);
      // Without PROXY protocol the fast engine checks the first bytes for a PROXY header itself,
      // so its connections skip the accept step (a read, a put-back and a timer per connection).
      const firstBytes = fast !== undefined ? accept.unexpectedProxy : undefined;
      this.server = createTrafficListener({ name: spec.name, port: spec.port, host: spec.address, limits: options, log, ...(firstBytes === undefined ? { accept } : {}), serve: plainHttpServe(fast ?? http1, h2, options.headersTimeoutMs, firstBytes), sockets: this.sockets });
    } else {
      const stack = createHttpsStack({ store: deps.store, table, http1: fast ?? http1, h2, log, handshakeTimeoutMs: options.headersTimeoutMs, connectTimeoutMs: options.upstreamConnectTimeoutMs, realIp: deps.realIp, listener: spec.name, ...(spec.protocol === 'TLS' ? { passthroughOnly: true } : {}) });
      this.tlsServer = stack.tlsServer;
      deps.store.applyTo(stack.tlsServer, spec.name);
      this.server = createTrafficListener({ name: spec.name, port: spec.port, host: spec.address, limits: options, log, accept: deps.accept(spec.name), serve: stack.serve, allowHalfOpen: true, sockets: this.sockets });
    }
  }

  async listen(): Promise<ListenMode> {
    const mode = await listen(this.server, this.spec.port, this.spec.address);
    const bound = this.server.address();
    if (this.fast !== undefined && bound !== null && typeof bound === 'object') this.fast.localPort = bound.port;
    return mode;
  }

  /** New certificates (and, when given, ticket keys) for an HTTPS listener. */
  applyTls(ticketKeys: TicketKeyState | undefined): void {
    if (this.tlsServer === undefined) return;
    this.deps.store.applyTo(this.tlsServer, this.spec.name);
    if (ticketKeys !== undefined) applyTicketKeys(this.tlsServer, ticketKeys);
  }

  /** Closes connections that sit between requests, and sends HTTP/2 sessions a GOAWAY. */
  closeIdle(): void {
    for (const close of this.idleClosers) close();
  }

  /** Releases a stack that never bound (its port could not be bound and it is no longer wanted). */
  dispose(): void {
    if (this.server.listening) return;
    for (const d of this.disposers) d();
  }

  /** Ends every connection still open (after the grace period of a removed listener). */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * Stops accepting; resolves once the listening socket is closed. Connections already open are
   * left to the caller's sweep (closeIdle), so in-flight requests finish.
   */
  close(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.closeIdle();
    });
  }
}
