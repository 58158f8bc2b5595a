// Messages between the primary and its workers over node:cluster IPC.
import type { RoutingIR } from '../router/types.ts';

/** Primary -> worker: a new routing table to compile and swap in. */
export interface TableMessage {
  readonly type: 'portico:table';
  readonly version: number;
  readonly ir: RoutingIR;
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

export type PrimaryMessage = TableMessage | ShutdownMessage;
export type WorkerMessage = HelloMessage | AckMessage;

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}
