// Session ticket keys shared by all workers, so a client resumes its TLS session (TLS 1.2 tickets
// and TLS 1.3 PSK tickets alike) whichever worker accepts its next connection. Without this,
// each worker's contexts have their own random key and resumption only works by luck.
//
// Policy
// - The primary owns the key: it makes one at start (crypto.randomBytes(48)) and a new one every
//   `rotateEveryMs` (default 12 h). Keys live only in memory and travel over the cluster IPC
//   channel as base64 inside a JSON message (never logged, never written to disk).
// - Node accepts exactly one 48-byte key per server (`server.setTicketKeys(buf)`: 16-byte key
//   name, 16-byte HMAC key, 16-byte AES key); there is no decrypt-only slot for the previous
//   key. So rotation is a switch: the primary broadcasts the new state to every worker at once
//   and each applies it on receipt. Tickets sealed with the old key then fail to decrypt and
//   those clients do one full handshake and get a new ticket. That cost is small because a
//   ticket is only honoured for the session timeout (Node's default 300 s): only tickets issued
//   in the last few minutes before a rotation are lost. The previous key is therefore not kept
//   (it could not be used, and old key material is better gone).
// - A worker that starts (or restarts) receives the current state with its first routing table,
//   before it accepts connections.
// - The few milliseconds in which workers disagree during a broadcast cost at most a full
//   handshake for a client resuming in that window; they never fail a connection.
//
// Worker side:
//   on IPC message { type: 'ticket-keys', state }:  applyTicketKeys(server, state)
// Beware: server.setSecureContext() replaces the keys with random ones. CertificateStore.applyTo
// carries them over; any other caller of setSecureContext must do the same.

import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';

export const TICKET_KEY_BYTES = 48;
export const DEFAULT_TICKET_ROTATION_MS = 12 * 3600_000;

/** JSON-serialisable; ship it to workers as is. */
export interface TicketKeyState {
  /** Increases by one per rotation; lets a worker ignore a stale message. */
  generation: number;
  /** base64 of 48 random bytes. */
  key: string;
  /** When this key was made (ISO 8601). */
  createdAt: string;
}

export function generateTicketKey(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

export function initialTicketKeys(now: Date = new Date()): TicketKeyState {
  return { generation: 1, key: generateTicketKey().toString('base64'), createdAt: now.toISOString() };
}

export function rotateTicketKeys(state: TicketKeyState, now: Date = new Date()): TicketKeyState {
  return { generation: state.generation + 1, key: generateTicketKey().toString('base64'), createdAt: now.toISOString() };
}

export function ticketKeysDue(state: TicketKeyState, rotateEveryMs: number, now: Date = new Date()): boolean {
  const made = Date.parse(state.createdAt);
  return !Number.isFinite(made) || now.getTime() - made >= rotateEveryMs;
}

/** The 48-byte key of a state, or undefined when the state is not well formed. */
export function ticketKeyBuffer(state: TicketKeyState): Buffer | undefined {
  if (state === null || typeof state !== 'object' || typeof state.key !== 'string') return undefined;
  const buf = Buffer.from(state.key, 'base64');
  return buf.length === TICKET_KEY_BYTES && buf.toString('base64') === state.key ? buf : undefined;
}

const appliedGeneration = new WeakMap<tls.Server, number>();

/**
 * Worker side: installs the state's key on a TLS server (also valid for https and http2 secure
 * servers). Ignores malformed states and states older than the one already applied. Returns
 * whether the key changed. Affects new handshakes only; open connections are untouched.
 */
export function applyTicketKeys(server: tls.Server, state: TicketKeyState): boolean {
  const buf = ticketKeyBuffer(state);
  if (buf === undefined) return false;
  const applied = appliedGeneration.get(server);
  if (applied !== undefined && state.generation < applied) return false;
  if (server.getTicketKeys().equals(buf)) return false;
  server.setTicketKeys(buf);
  appliedGeneration.set(server, state.generation);
  return true;
}

/**
 * Primary side: holds the current state and rotates it on a timer, calling `broadcast` with each
 * new state (send it to every worker). The timer is unref'd so it never keeps the process alive.
 */
export class TicketKeyRotator {
  private current: TicketKeyState;
  private timer: NodeJS.Timeout | undefined;
  private readonly rotateEveryMs: number;
  private readonly broadcast: (state: TicketKeyState) => void;

  constructor(options: { rotateEveryMs?: number; broadcast: (state: TicketKeyState) => void; initial?: TicketKeyState }) {
    this.rotateEveryMs = options.rotateEveryMs ?? DEFAULT_TICKET_ROTATION_MS;
    this.broadcast = options.broadcast;
    this.current = options.initial ?? initialTicketKeys();
  }

  /** The state to hand to a worker that just started. */
  get state(): TicketKeyState {
    return this.current;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.rotate(), this.rotateEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  rotate(now: Date = new Date()): TicketKeyState {
    this.current = rotateTicketKeys(this.current, now);
    this.broadcast(this.current);
    return this.current;
  }
}
