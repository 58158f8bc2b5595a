import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TICKET_KEY_BYTES,
  TicketKeyRotator,
  applyTicketKeys,
  generateTicketKey,
  initialTicketKeys,
  rotateTicketKeys,
  ticketKeyBuffer,
  ticketKeysDue,
  type TicketKeyState,
} from '../tls/session-tickets.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { CertificateStore, buildCertificateSnapshot } from '../tls/store.ts';

describe('ticket key state', () => {
  it('makes 48 random bytes, JSON-safe, and rotates to a fresh key', () => {
    expect(generateTicketKey()).toHaveLength(TICKET_KEY_BYTES);
    const s1 = initialTicketKeys(new Date('2030-01-01T00:00:00Z'));
    expect(JSON.parse(JSON.stringify(s1))).toEqual(s1);
    expect(ticketKeyBuffer(s1)).toHaveLength(48);
    const s2 = rotateTicketKeys(s1, new Date('2030-01-01T12:00:00Z'));
    expect(s2.generation).toBe(2);
    expect(s2.key).not.toBe(s1.key);
    expect(ticketKeysDue(s1, 12 * 3600_000, new Date('2030-01-01T11:59:59Z'))).toBe(false);
    expect(ticketKeysDue(s1, 12 * 3600_000, new Date('2030-01-01T12:00:00Z'))).toBe(true);
  });

  it('refuses malformed states', () => {
    expect(ticketKeyBuffer({ generation: 1, key: Buffer.alloc(32).toString('base64'), createdAt: '' })).toBeUndefined();
    expect(ticketKeyBuffer({ generation: 1, key: 'not base64!', createdAt: '' })).toBeUndefined();
    expect(ticketKeyBuffer(null as unknown as TicketKeyState)).toBeUndefined();
  });

  it('the rotator broadcasts each new state on its timer and on demand', async () => {
    const seen: TicketKeyState[] = [];
    const rotator = new TicketKeyRotator({ rotateEveryMs: 30, broadcast: (s) => seen.push(s) });
    const first = rotator.state;
    rotator.start();
    rotator.start(); // idempotent
    const deadline = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    rotator.stop();
    const n = seen.length;
    expect(n).toBeGreaterThanOrEqual(2);
    expect(seen.map((s) => s.generation)).toEqual(Array.from({ length: n }, (_, i) => first.generation + 1 + i));
    expect(rotator.rotate().generation).toBe(first.generation + n + 1);
    await new Promise((r) => setTimeout(r, 60));
    expect(seen).toHaveLength(n + 1); // stopped: no more timer rotations
  });
});

describe('session resumption across workers', () => {
  // Two servers stand in for two worker processes: same snapshot, same ticket key state.
  const cert = generateSelfSigned({ dnsNames: ['a.test'] });
  const fallback = generateSelfSigned({ dnsNames: ['ingress.local'] });
  const { snapshot } = buildCertificateSnapshot({
    certificates: [
      { id: 'a', ...cert, names: ['a.test'] },
      { id: 'fake', ...fallback, names: ['ingress.local'] },
    ],
    defaultCertificateId: 'fake',
  });
  const servers: tls.Server[] = [];
  const ports: number[] = [];
  let keys = initialTicketKeys();

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      const store = new CertificateStore(snapshot);
      const server = tls.createServer(store.serverOptions(), (s) => s.end('hi'));
      // Servers 0 and 1 share the key; server 2 keeps its own random one.
      if (i < 2) expect(applyTicketKeys(server, keys)).toBe(true);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
      ports.push((server.address() as AddressInfo).port);
    }
  });
  afterAll(() => {
    for (const s of servers) s.close();
  });

  async function connect(port: number, opts: tls.ConnectionOptions): Promise<{ reused: boolean; session: Buffer | undefined }> {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    let session: Buffer | undefined;
    socket.on('session', (s: Buffer) => (session = s)); // TLS 1.3 tickets arrive after the handshake
    socket.resume();
    await once(socket, 'end');
    const reused = socket.isSessionReused();
    socket.destroy();
    return { reused, session: session ?? socket.getSession() };
  }

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    for (const servername of ['a.test', undefined]) {
      it(`${version}, ${servername ?? 'no SNI'}: a ticket from one worker resumes on another with the same key, not on one without`, async () => {
        const first = await connect(ports[0], { servername, maxVersion: version });
        expect(first.reused).toBe(false);
        expect(first.session).toBeDefined();
        expect((await connect(ports[1], { servername, maxVersion: version, session: first.session })).reused).toBe(true);
        expect((await connect(ports[2], { servername, maxVersion: version, session: first.session })).reused).toBe(false);
      });
    }
  }

  it('after a rotation applied to every worker, old tickets fall back to a full handshake that still succeeds', async () => {
    const before = await connect(ports[0], { servername: 'a.test' });
    const next = rotateTicketKeys(keys);
    expect(applyTicketKeys(servers[0], next)).toBe(true);
    expect(applyTicketKeys(servers[1], next)).toBe(true);
    expect(applyTicketKeys(servers[1], next)).toBe(false); // same key again: nothing to do
    expect(applyTicketKeys(servers[1], keys)).toBe(false); // an older generation is ignored
    keys = next;
    expect((await connect(ports[1], { servername: 'a.test', session: before.session })).reused).toBe(false);
    const after = await connect(ports[0], { servername: 'a.test' });
    expect((await connect(ports[1], { servername: 'a.test', session: after.session })).reused).toBe(true);
  });

  it('ticket keys survive applyTo (setSecureContext alone would replace them)', async () => {
    const store = new CertificateStore(snapshot);
    store.applyTo(servers[1]);
    const s = await connect(ports[0], { servername: 'a.test' });
    expect((await connect(ports[1], { servername: 'a.test', session: s.session })).reused).toBe(true);
  });
});
