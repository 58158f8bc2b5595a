// Test support only (not used at runtime): builds ClientHello messages byte by byte so tests can
// place every length field, and captures real ones from node:tls.

import net from 'node:net';
import tls from 'node:tls';
import { ClientHelloParser } from '../clienthello.ts';

export interface HelloSpec {
  /** Host name bytes for server_name; a Buffer allows invalid names. Omit for no SNI. */
  serverName?: string | Buffer;
  alpn?: string[];
  /** Extra extensions [type, data] appended after SNI and ALPN. */
  extensions?: [number, Buffer][];
  sessionIdLength?: number;
  cipherSuites?: number;
  legacyVersion?: number;
  /** Leave out the extensions block entirely (legal before TLS 1.3). */
  noExtensions?: boolean;
}

const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const vec16 = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const vec8 = (b: Buffer): Buffer => Buffer.concat([u8(b.length), b]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(data)]);
}

export function sniExtension(name: string | Buffer): Buffer {
  const host = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  return extension(0, vec16(Buffer.concat([u8(0), vec16(host)])));
}

export function alpnExtension(protocols: string[]): Buffer {
  return extension(16, vec16(Buffer.concat(protocols.map((p) => vec8(Buffer.from(p, 'latin1'))))));
}

/** The ClientHello body (what follows the 4-byte handshake header). */
export function clientHelloBody(spec: HelloSpec = {}): Buffer {
  const parts = [u16(spec.legacyVersion ?? 0x0303), Buffer.alloc(32, 7), vec8(Buffer.alloc(spec.sessionIdLength ?? 32, 1))];
  const suites = Buffer.alloc((spec.cipherSuites ?? 3) * 2);
  for (let i = 0; i < suites.length; i += 2) suites.writeUInt16BE(0x1301 + i / 2, i);
  parts.push(vec16(suites), vec8(Buffer.from([0])));
  if (!spec.noExtensions) {
    const exts: Buffer[] = [];
    if (spec.serverName !== undefined) exts.push(sniExtension(spec.serverName));
    if (spec.alpn !== undefined) exts.push(alpnExtension(spec.alpn));
    for (const [t, d] of spec.extensions ?? []) exts.push(extension(t, d));
    parts.push(vec16(Buffer.concat(exts)));
  }
  return Buffer.concat(parts);
}

/** Handshake message: msg_type 1, 3-byte length, body. */
export function handshakeMessage(body: Buffer, type = 1): Buffer {
  return Buffer.concat([u8(type), u24(body.length), body]);
}

/** Wraps handshake bytes in records of at most `fragment` bytes (or the given sizes, cycled). */
export function toRecords(handshake: Buffer, fragment: number | number[] = 16384, recordVersion = 0x0301): Buffer {
  const sizes = Array.isArray(fragment) ? fragment : [fragment];
  const out: Buffer[] = [];
  let i = 0;
  for (let at = 0; at < handshake.length; i++) {
    const n = Math.min(sizes[i % sizes.length], handshake.length - at);
    out.push(u8(22), u16(recordVersion), u16(n), handshake.subarray(at, at + n));
    at += n;
  }
  return Buffer.concat(out);
}

export function buildClientHello(spec: HelloSpec = {}, fragment: number | number[] = 16384): Buffer {
  return toRecords(handshakeMessage(clientHelloBody(spec)), fragment);
}

/**
 * The bytes a real node:tls client sends first (its ClientHello records), captured by a local
 * server on 127.0.0.1 that hangs up once it has them.
 */
export async function captureClientHello(options: tls.ConnectionOptions = {}): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const captured = new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (sock) => {
        const parser = new ClientHelloParser();
        sock.on('data', (chunk: Buffer) => {
          const r = parser.push(chunk);
          if (r === 'need-more') return;
          sock.destroy();
          if (r.ok) resolve(Buffer.from(parser.buffered()));
          else reject(new Error(`captured bytes do not parse: ${r.error} ${r.detail}`));
        });
        sock.on('error', () => {});
      });
    });
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    client.on('error', () => {});
    try {
      return await captured;
    } finally {
      client.destroy();
    }
  } finally {
    server.close();
  }
}
