// The HTTPS listener's protocol stack: TLS passthrough (by SNI, before any TLS is terminated),
// then TLS termination with SNI certificate selection, then HTTP/2 or HTTP/1.1 by ALPN. Both
// HTTP servers are the same kind the plain listener uses, so limits, upgrades and errors behave
// the same over TLS.

import type http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import client from 'prom-client';
import { pickEndpoint, pickPassthroughBackend, type RoutingTable } from '../router/index.ts';
import { peekClientHello } from '../tls/clienthello.ts';
import { handlePassthrough, passthroughRejected } from '../tls/passthrough.ts';
import type { CertificateStore } from '../tls/store.ts';
import type { ConnectionSink } from './listeners.ts';
import type { Logger } from './log.ts';
import { allowlistDenial } from './realip/allowlist.ts';
import { resolveRealIp, type RealIpConfig } from './realip/client-ip.ts';
import { getProxyInfo } from './realip/proxy-listener.ts';

const tlsHandshakeErrors = new client.Counter({
  name: 'portico_tls_handshake_errors_total',
  help: 'TLS handshakes that failed, by reason (e.g. no certificate under --strict-sni)',
  labelNames: ['reason'] as const,
});

export interface HttpsStackOptions {
  readonly store: CertificateStore;
  readonly table: () => RoutingTable | undefined;
  /** HTTP/1.1 after TLS: node:http's server, or the fast path (src/http1/server.ts). */
  readonly http1: ConnectionSink;
  readonly h2: http2.Http2Server;
  readonly log: Logger;
  readonly handshakeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** For the allowlists of passthrough hosts: the client is the TCP peer or a trusted PROXY source. */
  readonly realIp: RealIpConfig;
  /**
   * A TLS Passthrough listener of its own (protocol TLS): nothing is terminated here, so a
   * connection whose SNI no passthrough route matches (or that has none) is refused.
   */
  readonly passthroughOnly?: boolean;
  /** The listener's name in metrics (`https`, or a Gateway listener's key). */
  readonly listener?: string;
}

export interface HttpsStack {
  readonly tlsServer: tls.Server;
  /** Hands an accepted TCP connection to passthrough or to TLS termination. */
  serve(socket: net.Socket): void;
}

function handshakeReason(err: Error & { code?: string }): string {
  const m = err.message;
  // Strict SNI refuses with a context that has no certificate: OpenSSL then finds no signature
  // algorithm to use.
  if (m.includes('no suitable signature algorithm') || m.includes('no certificate for server name') || m.includes('SNI')) return 'no_certificate';
  if (err.code === 'ECONNRESET' || m.includes('socket hang up')) return 'client_closed';
  if (m.includes('timed out') || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (m.includes('version')) return 'protocol_version';
  if (m.includes('no shared cipher') || m.includes('cipher')) return 'no_shared_cipher';
  if (m.includes('alpn') || m.includes('no_application_protocol')) return 'alpn';
  return 'other';
}

export function createHttpsStack(o: HttpsStackOptions): HttpsStack {
  const listener = o.listener ?? 'https';
  // Certificates by this socket's listeners (CertificateStore.socket): `https` is --https-port.
  const certificates = o.store.socket(listener);
  const tlsServer = tls.createServer({ ...o.store.serverOptions(listener), handshakeTimeout: o.handshakeTimeoutMs });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    // ALPN picked the protocol: h2, or HTTP/1.1 (also for clients that offered no ALPN).
    (socket.alpnProtocol === 'h2' ? o.h2 : o.http1).emit('connection', socket);
  });
  let lastLog = 0;
  let lastRefusalLog = 0;
  tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    const reason = handshakeReason(err);
    tlsHandshakeErrors.labels(reason).inc();
    const now = Date.now();
    if (reason !== 'client_closed' && now - lastLog > 10_000) {
      lastLog = now;
      o.log.warn({ reason, err: err.message, client: socket.remoteAddress, sni: socket.servername || undefined }, 'TLS handshake failed');
    }
    socket.destroy();
  });

  const terminate = (socket: net.Socket): void => {
    // The listener is half-open for passthrough's sake; a connection terminated here closes when
    // the client does (an HTTP/2 session would otherwise hold it until its idle timeout).
    socket.allowHalfOpen = false;
    tlsServer.emit('connection', socket);
  };

  /**
   * A passthrough-only listener closes what it cannot pass through: it has nothing to terminate
   * with. So does a socket beside TLS Passthrough for a name nothing else on it claims (no HTTPS
   * listener, no Ingress on --https-port: CertificateStore claims()), as TLSRouteHostnameIntersection expects.
   */
  const refuse = (socket: net.Socket, serverName: string | undefined): void => {
    passthroughRejected.labels(listener, 'no-backend').inc();
    const now = Date.now();
    if (now - lastRefusalLog > 10_000) {
      lastRefusalLog = now;
      o.log.warn({ listener, sni: serverName ?? '(none)' }, 'TLS connection refused: no TLSRoute on this listener routes its server name and nothing here terminates it (logged at most every 10 s; portico_tls_passthrough_rejected_total counts them all)');
    }
    socket.destroy();
  };

  const serve = (socket: net.Socket): void => {
    const table = o.table();
    if (o.passthroughOnly !== true && (table === undefined || !table.hasPassthrough)) return terminate(socket);
    // Some hosts are passed through: read the ClientHello's SNI before deciding.
    void peekClientHello(socket, { timeoutMs: o.handshakeTimeoutMs }).then((hello) => {
      socket.on('error', () => undefined);
      if (!hello.ok && hello.error === 'invalid-sni' && (o.passthroughOnly === true || !certificates.claims(undefined))) return refuse(socket, undefined);
      if (!hello.ok && hello.error === 'invalid-sni') {
        // A well-formed ClientHello whose server_name is no host name (an IP address, as wrk
        // sends): it cannot be a passthrough host, so TLS is terminated here, as with no SNI.
        socket.unshift(hello.buffered);
        terminate(socket);
        return;
      }
      if (!hello.ok) {
        passthroughRejected.labels(listener, hello.error).inc();
        socket.destroy();
        return;
      }
      const route = o.table()?.passthroughRoute(hello.serverName);
      if (route !== undefined) {
        // whitelist-source-range holds for encrypted connections too, decided before any byte
        // reaches the backend; there are no HTTP headers, so X-Forwarded-For plays no part.
        const client = resolveRealIp(socket.remoteAddress, getProxyInfo(socket), false, socket.localPort ?? 0, [], o.realIp);
        const denied = allowlistDenial(route, client);
        if (denied !== undefined) {
          passthroughRejected.labels(listener, 'not-allowed').inc();
          const now = Date.now();
          if (now - lastRefusalLog > 10_000) {
            lastRefusalLog = now;
            o.log.warn({ sni: hello.serverName, client: client.clientIp, reason: denied }, 'TLS passthrough connection refused by the allowlist (logged at most every 10 s; portico_tls_passthrough_rejected_total counts them all)');
          }
          socket.destroy();
          return;
        }
      }
      if (route === undefined && (o.passthroughOnly === true || !certificates.claims(hello.serverName))) return refuse(socket, hello.serverName);
      socket.unshift(hello.buffered);
      if (route === undefined) {
        // No resume(): TLS reads the buffered ClientHello itself, then takes over the socket's
        // handle; a flowing socket would hand the next bytes to JS listeners instead.
        terminate(socket);
        return;
      }
      void handlePassthrough(socket, {
        listener,
        connectTimeoutMs: o.connectTimeoutMs,
        helloTimeoutMs: o.handshakeTimeoutMs,
        selectBackend: () => {
          // One weighted pick per connection (a TLSRoute's backendRefs); none: refused.
          const backend = pickPassthroughBackend(route);
          const ep = backend === undefined ? undefined : pickEndpoint(backend);
          return ep === undefined ? undefined : { host: ep.address, port: ep.port };
        },
      }).then((outcome) => {
        if (outcome.result !== 'rejected') return;
        // Clients choose the names they ask for: at most one line per 10 s, the counter has the rest.
        const now = Date.now();
        if (now - lastRefusalLog > 10_000) {
          lastRefusalLog = now;
          o.log.warn({ sni: outcome.serverName, reason: outcome.reason, detail: outcome.detail }, 'TLS passthrough connection refused (logged at most every 10 s; portico_tls_passthrough_rejected_total counts them all)');
        }
      });
    });
  };

  return { tlsServer, serve };
}
