// Messages between the primary and its workers over node:cluster IPC.
import type { EndpointSetsIR } from '../router/endpoints.ts';
import type { RoutingIR } from '../router/types.ts';
import type { TicketKeyState } from '../tls/session-tickets.ts';
import type { CertificateSnapshot } from '../tls/store.ts';

/** Primary -> worker: a new routing table to compile and swap in. */
export interface TableMessage {
  readonly type: 'portico:table';
  readonly version: number;
  readonly ir: RoutingIR;
  /** The certificate store, shipped with the table it belongs to. */
  readonly certificates: CertificateSnapshot;
  /** The last endpoint update the IR's endpoint sets already include. */
  readonly endpointsVersion: number;
  /** Gateway listeners (RoutingIR.listeners keys) not to bind yet: the primary is checking that their socket is free (ListenerGate). */
  readonly held?: readonly string[];
}

/** Primary -> worker: the Gateway listeners not to bind yet, all of them (a listener left out may be bound now). */
export interface ListenersHeldMessage {
  readonly type: 'portico:listeners-held';
  readonly keys: readonly string[];
}

/**
 * Primary -> worker: new endpoint sets for some backends of table `version`, whose routes did
 * not change (an EndpointSlice change). Applied in place; no route is recompiled. A worker
 * serving another version ignores it: the table it is about to get has these sets already.
 */
export interface EndpointsMessage {
  readonly type: 'portico:endpoints';
  readonly version: number;
  readonly endpointsVersion: number;
  readonly sets: EndpointSetsIR;
}

/** Primary -> worker: TLS session ticket key, shared so resumption works across workers. */
export interface TicketKeysMessage {
  readonly type: 'portico:ticket-keys';
  readonly state: TicketKeyState;
}

/** Primary -> worker: stop accepting, finish in-flight requests, exit. */
export interface ShutdownMessage {
  readonly type: 'portico:shutdown';
  readonly graceMs: number;
}

/** Worker -> primary: started, send me the current table. */
export interface HelloMessage {
  readonly type: 'portico:hello';
}

/** Worker -> primary: serving this version (or could not). */
export interface AckMessage {
  readonly type: 'portico:ack';
  readonly version: number;
  readonly error?: string;
}

/**
 * Worker -> primary: a warning about a client peer (a PROXY protocol mismatch, an untrusted
 * header). The primary logs it at most once a minute per key, across all workers.
 */
export interface PeerWarningMessage {
  readonly type: 'portico:peer-warning';
  readonly peer: string;
  /** Rate-limit key: the peer and the kind of event (`${peer} ${kind}`, see peerWarningKey). */
  readonly key: string;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/**
 * Worker -> primary: a Gateway listener socket (RoutingIR.listeners key) this worker cannot bind,
 * with the error, or (no error) can again or no longer needs to. The primary feeds the failing
 * ones into translation, which reports those listeners PortUnavailable; the worker keeps trying.
 */
export interface ListenerStateMessage {
  readonly type: 'portico:listener-state';
  readonly key: string;
  readonly error?: { readonly code: string; readonly message: string };
}

export type PrimaryMessage = TableMessage | EndpointsMessage | ShutdownMessage | TicketKeysMessage | ListenersHeldMessage;
export type WorkerMessage = HelloMessage | AckMessage | PeerWarningMessage | ListenerStateMessage;

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

/** A worker's exit code when it cannot bind its listeners: the primary stops instead of respawning. */
export const LISTEN_FAILED_EXIT_CODE = 78;
