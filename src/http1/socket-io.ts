// How the fast path reads and writes a socket. On a plain TCP socket it works on the libuv handle
// under Node's stream layer: a read is handed over as a Buffer view of what libuv read, without
// Readable.push and a 'data' event; a write goes to the handle without a Writable and a WriteWrap
// per call. That layer is most of what a Node proxy spends per request beyond the system calls
// (bench/README.md). End of stream and read errors still go through Node's own handler, so 'end',
// 'error' and 'close' are emitted as they always are. The same holds for a TLS socket's handle
// (TLSWrap) after its handshake, cleartext in and out. A TLSWrap takes one write at a time (a
// second while one is under way aborts the process), so writes here are one at a time on every
// handle: the next waits, with any others, for the one under way; and whatever else writes to the
// socket (its end, node:http after a hand-off) comes after the last of them (end, whenFlushed).
// Sockets with bytes already buffered in the stream, and platforms whose binding does not look as
// expected, use the stream (StreamIo), with the same interface.

import type net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** Whoever reads the socket. */
export interface IoSink {
  onIoData(chunk: Buffer): void;
  /** Written bytes the socket held back (write() returned false) are all with the kernel now. */
  onIoDrain(): void;
}

export interface SocketIo {
  /** Handle-level (true) or through the socket's stream. */
  readonly raw: boolean;
  /** Strings are heads: latin1, byte for byte. False when the caller should wait for onIoDrain. */
  write(data: string | Buffer): boolean;
  /** Writes between cork() and uncork() leave in one write. */
  cork(): void;
  uncork(): void;
  pause(): void;
  resume(): void;
  isPaused(): boolean;
  /** Bytes written and not yet taken by the kernel. */
  pendingBytes(): number;
  /** Writes `data` (latin1) if given, then ends the socket's writable side once all is written. */
  end(data?: string): void;
  /** Calls `fn` once nothing written here is still on its way down (at once if nothing is). */
  whenFlushed(fn: () => void): void;
  /**
   * Stops handing reads and drains to the sink: from here the socket is Node's stream again,
   * with nothing buffered by this layer, read (and paused or not) as a stream.
   */
  detach(): void;
}

/** Above this many bytes waiting for the kernel, write() asks the caller to wait (net's default). */
const HIGH_WATER_MARK = 16 * 1024;

interface WriteReq {
  oncomplete: (status: number) => void;
  /** Keeps the written buffer alive until the kernel has it. */
  buffer: unknown;
}

interface StreamWrapBinding {
  readonly streamBaseState: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kArrayBufferOffset: number;
  readonly kLastWriteWasAsync: number;
  readonly WriteWrap: new () => WriteReq;
}

interface StreamHandle {
  onread: (arrayBuffer: ArrayBuffer) => unknown;
  reading: boolean;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Buffer): number;
  writeLatin1String(req: WriteReq, data: string): number;
}

/** The stream binding node:net itself uses, or why it cannot be used. */
function loadBinding(): StreamWrapBinding | string {
  if (process.env.PORTICO_SOCKET_IO === 'stream') return 'PORTICO_SOCKET_IO=stream';
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as Partial<StreamWrapBinding>;
    // The layout node:net relies on (lib/internal/stream_base_commons.js); anything else and the
    // stream is used, never a guess.
    if (!(binding.streamBaseState instanceof Int32Array)) return 'stream_wrap has no streamBaseState';
    for (const k of ['kReadBytesOrError', 'kArrayBufferOffset', 'kLastWriteWasAsync'] as const) {
      const v = binding[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= binding.streamBaseState.length) return `stream_wrap.${k} is not an index of streamBaseState`;
    }
    if (typeof binding.WriteWrap !== 'function') return 'stream_wrap has no WriteWrap';
    return binding as StreamWrapBinding;
  } catch (err) {
    return `process.binding('stream_wrap'): ${(err as Error).message}`;
  }
}

const binding = loadBinding();

/** Why handle-level I/O is off (logged at start), or undefined when it is on. */
export const rawIoUnavailable: string | undefined = typeof binding === 'string' ? binding : undefined;

/** The socket's plain TCP handle when handle-level I/O can take it over now. */
function tcpHandle(socket: net.Socket): StreamHandle | undefined {
  if (typeof binding === 'string') return undefined;
  const s = socket as net.Socket & { _handle?: (StreamHandle & { constructor: { name: string } }) | null; encrypted?: boolean };
  const h = s._handle;
  if (h === null || h === undefined) return undefined;
  // A TLS socket once its handshake is done (what follows it, tickets and key updates, stays
  // inside TLSWrap).
  const kind = h.constructor.name;
  if ((s as { encrypted?: boolean }).encrypted === true ? kind !== 'TLSWrap' || (s as { _secureEstablished?: boolean })._secureEstablished !== true : kind !== 'TCP') return undefined;
  if (typeof h.onread !== 'function' || typeof h.writeBuffer !== 'function' || typeof h.writeLatin1String !== 'function' || typeof h.readStart !== 'function') return undefined;
  // Bytes already in the stream (put back by whoever had the socket) or writes it still holds
  // would be reordered against the handle's.
  if (s.connecting || s.destroyed || s.readableLength > 0 || s.writableLength > 0 || s.writableCorked > 0) return undefined;
  return h;
}

/** Parts written together as one buffer (strings as latin1). */
function joined(parts: ReadonlyArray<string | Buffer>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

function writeError(socket: net.Socket, status: number): void {
  let name: string;
  try {
    name = getSystemErrorName(status);
  } catch {
    name = `E${-status}`;
  }
  socket.destroy(Object.assign(new Error(`write ${name}`), { code: name, errno: status, syscall: 'write' }));
}

class RawIo implements SocketIo {
  readonly raw = true;
  private readonly socket: net.Socket;
  private readonly handle: StreamHandle;
  private readonly sink: IoSink;
  private readonly state: Int32Array;
  private readonly b: StreamWrapBinding;
  private readonly nodeOnread: (arrayBuffer: ArrayBuffer) => unknown;
  /** A request object for the next write: reused until a write goes asynchronous and keeps it. */
  private req: WriteReq;
  private corked: Array<string | Buffer> | undefined;
  /** A write is under way (asynchronous): the next ones wait here, in order. */
  private inFlight = false;
  private queued: Array<string | Buffer> | undefined;
  private queuedBytes = 0;
  private flushed: Array<() => void> | undefined;
  private paused = false;
  private needDrain = false;
  private attached = true;

  constructor(socket: net.Socket, handle: StreamHandle, sink: IoSink, b: StreamWrapBinding) {
    this.socket = socket;
    this.handle = handle;
    this.sink = sink;
    this.b = b;
    this.state = b.streamBaseState;
    this.nodeOnread = handle.onread;
    this.req = this.newReq();
    handle.onread = this.onRead;
    if (!handle.reading) {
      handle.reading = true;
      const err = handle.readStart();
      if (err !== 0) writeError(socket, err);
    }
  }

  private newReq(): WriteReq {
    const req = new this.b.WriteWrap();
    req.oncomplete = this.onWriteComplete;
    req.buffer = null;
    return req;
  }

  private readonly onRead = (arrayBuffer: ArrayBuffer): unknown => {
    const n = this.state[this.b.kReadBytesOrError];
    if (n > 0) {
      if (!this.attached || this.socket.destroyed) return undefined;
      this.sink.onIoData(Buffer.from(arrayBuffer, this.state[this.b.kArrayBufferOffset], n));
      return undefined;
    }
    // End of stream or an error: Node's handler, which reads the same state, makes the events.
    return this.nodeOnread.call(this.handle, arrayBuffer);
  };

  private readonly onWriteComplete = (status: number): void => {
    this.inFlight = false;
    if (this.socket.destroyed) {
      this.queued = undefined;
      this.queuedBytes = 0;
      return;
    }
    if (status < 0) return writeError(this.socket, status);
    const parts = this.queued;
    if (parts !== undefined) {
      this.queued = undefined;
      this.queuedBytes = 0;
      this.writeNow(parts.length === 1 ? parts[0] : joined(parts));
      if (this.inFlight) return;
    }
    const fns = this.flushed;
    if (fns !== undefined) {
      this.flushed = undefined;
      for (const fn of fns) fn();
    }
    if (this.needDrain && !this.inFlight && this.handle.writeQueueSize === 0) {
      this.needDrain = false;
      if (this.attached) this.sink.onIoDrain();
    }
  };

  write(data: string | Buffer): boolean {
    if (this.corked !== undefined) {
      this.corked.push(data);
      return true;
    }
    // A destroyed socket's handle is closed: the write is dropped, as the stream drops it.
    if (this.socket.destroyed) return false;
    if (this.inFlight) {
      (this.queued ??= []).push(data);
      this.queuedBytes += data.length;
    } else {
      this.writeNow(data);
      if (!this.inFlight) return !this.socket.destroyed;
    }
    if (this.handle.writeQueueSize + this.queuedBytes < HIGH_WATER_MARK) return true;
    this.needDrain = true;
    return false;
  }

  private writeNow(data: string | Buffer): void {
    const req = this.req;
    const err = typeof data === 'string' ? this.handle.writeLatin1String(req, data) : this.handle.writeBuffer(req, data);
    if (err !== 0) return writeError(this.socket, err);
    if (this.state[this.b.kLastWriteWasAsync] === 0) return;
    // Under way: the handle holds the request (and the bytes) until it is done.
    this.inFlight = true;
    if (typeof data !== 'string') req.buffer = data;
    this.req = this.newReq();
  }

  end(data?: string): void {
    this.uncork();
    if (data !== undefined && data !== '') this.write(data);
    this.whenFlushed(() => {
      if (!this.socket.destroyed) this.socket.end();
    });
  }

  whenFlushed(fn: () => void): void {
    if (!this.inFlight || this.socket.destroyed) return fn();
    (this.flushed ??= []).push(fn);
  }

  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const parts = this.corked;
    this.corked = undefined;
    if (parts === undefined || parts.length === 0) return;
    this.write(parts.length === 1 ? parts[0] : joined(parts));
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (this.handle.reading && !this.socket.destroyed) {
      this.handle.reading = false;
      this.handle.readStop();
    }
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.handle.reading && !this.socket.destroyed) {
      this.handle.reading = true;
      const err = this.handle.readStart();
      if (err !== 0) writeError(this.socket, err);
    }
  }

  isPaused(): boolean {
    return this.paused;
  }

  pendingBytes(): number {
    return (this.socket.destroyed ? 0 : this.handle.writeQueueSize + this.queuedBytes) + this.socket.writableLength;
  }

  detach(): void {
    if (!this.attached) return;
    this.uncork();
    this.attached = false;
    if (this.socket.destroyed) return;
    this.handle.onread = this.nodeOnread;
    // The stream believes a read it asked for is still under way (nothing was pushed since), so
    // it would never start the handle again: restart it here; the stream's own flow control
    // (push() returning false) stops it when its buffer is full.
    if (!this.handle.reading) {
      this.handle.reading = true;
      const err = this.handle.readStart();
      if (err !== 0) writeError(this.socket, err);
    }
  }
}

class StreamIo implements SocketIo {
  readonly raw = false;
  private readonly socket: net.Socket;
  private readonly sink: IoSink;
  private attached = true;

  constructor(socket: net.Socket, sink: IoSink) {
    this.socket = socket;
    this.sink = sink;
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.sink.onIoData(chunk);
  };

  private readonly onDrain = (): void => {
    this.sink.onIoDrain();
  };

  write(data: string | Buffer): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  isPaused(): boolean {
    return this.socket.isPaused();
  }

  pendingBytes(): number {
    return this.socket.writableLength;
  }

  end(data?: string): void {
    if (data === undefined) this.socket.end();
    else this.socket.end(data, 'latin1');
  }

  whenFlushed(fn: () => void): void {
    // The stream orders whatever is written after this behind what it holds.
    fn();
  }

  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.socket.off('data', this.onData);
    this.socket.off('drain', this.onDrain);
  }
}

/** Reads and writes `socket` for `sink`: on its handle when that is possible, else through its stream. */
export function socketIo(socket: net.Socket, sink: IoSink): SocketIo {
  const h = tcpHandle(socket);
  if (h !== undefined && typeof binding !== 'string') return new RawIo(socket, h, sink, binding);
  return new StreamIo(socket, sink);
}
