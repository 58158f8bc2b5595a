import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificateAndKey } from '../tls/certificate.ts';
import { generateSelfSigned, type SelfSigned } from '../tls/selfsigned.ts';
import {
  CertificateStore,
  buildCertificateSnapshot,
  storeCertificate,
  type CertificateSnapshot,
  type SnapshotInput,
  type StoreCertificate,
} from '../tls/store.ts';

const make = (id: string, names: string[]): StoreCertificate & SelfSigned => {
  const pem = generateSelfSigned({ commonName: id, dnsNames: names });
  const parsed = parseCertificateAndKey(pem.certPem, pem.keyPem);
  if (!parsed.ok) throw new Error(parsed.reason);
  return { ...storeCertificate(id, parsed), ...pem };
};

let exact: StoreCertificate;
let wild: StoreCertificate;
let fallback: StoreCertificate;
let other: StoreCertificate;

beforeAll(() => {
  exact = make('ns/exact', ['a.example.com']);
  wild = make('ns/wild', ['*.example.com']);
  fallback = make('portico/fake', ['ingress.local']);
  other = make('ns/other', ['Other.Test', 'www.other.test']);
});

function snap(input: Partial<SnapshotInput> = {}): CertificateSnapshot {
  const { snapshot, problems } = buildCertificateSnapshot({
    certificates: [exact, wild, fallback, other],
    defaultCertificateId: 'portico/fake',
    ...input,
  });
  expect(problems).toEqual([]);
  return snapshot;
}

describe('buildCertificateSnapshot', () => {
  it('is plain JSON that survives IPC, frozen, with names normalised', () => {
    const s = snap();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(Object.isFrozen(s) && Object.isFrozen(s.certificates[0]) && Object.isFrozen(s.settings.alpn)).toBe(true);
    expect(s.certificates.find((c) => c.id === 'ns/other')?.names).toEqual(['other.test', 'www.other.test']);
    expect(s.settings).toEqual({ minVersion: 'TLSv1.2', alpn: ['h2', 'http/1.1'], strictSni: false });
  });

  it('reports duplicates, a missing default and bad settings, and falls back to sane values', () => {
    const { snapshot, problems } = buildCertificateSnapshot({
      certificates: [exact, exact],
      defaultCertificateId: 'nope',
      settings: { minVersion: 'TLSv1.0' as never, ciphers: 'NOT-A-CIPHER', alpn: [''] },
    });
    expect(snapshot.certificates).toHaveLength(1);
    expect(snapshot.defaultCertificateId).toBeUndefined();
    expect(snapshot.settings).toEqual({ minVersion: 'TLSv1.2', alpn: ['h2', 'http/1.1'], strictSni: false });
    expect(problems).toEqual([
      'TLS minVersion "TLSv1.0" is not supported; using TLSv1.2',
      expect.stringMatching(/^TLS cipher list "NOT-A-CIPHER" is invalid/),
      'ALPN list [""] is invalid; using h2, http/1.1',
      'certificate ns/exact listed twice; the first is used',
      'default certificate nope is not in the store',
    ]);
  });
});

describe('CertificateStore selection', () => {
  it('exact beats wildcard beats default, case-insensitively', () => {
    const store = new CertificateStore(snap());
    expect(store.lookup('a.example.com')).toEqual({ id: 'ns/exact', match: 'exact' });
    expect(store.lookup('A.EXAMPLE.Com')).toEqual({ id: 'ns/exact', match: 'exact' });
    expect(store.lookup('b.example.com')).toEqual({ id: 'ns/wild', match: 'wildcard' });
    expect(store.lookup('B.Example.COM')).toEqual({ id: 'ns/wild', match: 'wildcard' });
    expect(store.lookup('OTHER.test')).toEqual({ id: 'ns/other', match: 'exact' });
    expect(store.lookup('nothing.test')).toEqual({ id: 'portico/fake', match: 'default' });
    expect(store.lookup(undefined)).toEqual({ id: 'portico/fake', match: 'default' });
  });

  it('a wildcard covers exactly one label', () => {
    const store = new CertificateStore(snap());
    expect(store.lookup('a.b.example.com')?.match).toBe('default');
    expect(store.lookup('example.com')?.match).toBe('default');
    expect(store.hasOwnCertificate('x.example.com')).toBe(true);
    expect(store.hasOwnCertificate('x.y.example.com')).toBe(false);
  });

  it('hasOwnCertificate ignores the default certificate', () => {
    const store = new CertificateStore(snap());
    expect(store.hasOwnCertificate('a.example.com')).toBe(true);
    expect(store.hasOwnCertificate('WWW.other.test')).toBe(true);
    expect(store.hasOwnCertificate('nothing.test')).toBe(false);
    expect(store.hasOwnCertificate('ingress.local')).toBe(true); // the default's own name is still its own
  });

  it('strict SNI refuses names without a certificate of their own, and clients without SNI', () => {
    const store = new CertificateStore(snap({ settings: { strictSni: true } }));
    expect(store.select('b.example.com')).toBeDefined();
    expect(store.select('nothing.test')).toBeUndefined();
    expect(store.select(undefined)).toBeUndefined();
    const answers: unknown[] = [];
    // Refused with a certificate-less context, so that the client gets a handshake_failure alert.
    store.sniCallback('nothing.test', (err, ctx) => answers.push([err, ctx !== undefined && ctx !== store.select('b.example.com')]));
    store.sniCallback('a.example.com', (err, ctx) => answers.push([err, ctx === store.select('a.example.com')]));
    expect(answers).toEqual([[null, true], [null, true]]);
  });

  it('without a default and without strict SNI, an unknown name gets nothing', () => {
    const store = new CertificateStore(snap({ defaultCertificateId: undefined }));
    expect(store.lookup('nothing.test')).toBeUndefined();
  });

  it('the first certificate listed wins a name claimed twice', () => {
    const second = make('ns/second', ['a.example.com']);
    const store = new CertificateStore(snap({ certificates: [exact, second], defaultCertificateId: undefined }));
    expect(store.lookup('a.example.com')?.id).toBe('ns/exact');
    const reversed = new CertificateStore(snap({ certificates: [second, exact], defaultCertificateId: undefined }));
    expect(reversed.lookup('a.example.com')?.id).toBe('ns/second');
  });

  it('reuses contexts whose PEM is unchanged and rebuilds only what changed', () => {
    const store = new CertificateStore();
    const r1 = store.update(snap());
    expect(r1).toMatchObject({ created: 4, reused: 0, dropped: 0, failed: [] });
    const exactCtx = store.select('a.example.com');
    const wildCtx = store.select('b.example.com');
    const wild2 = make('ns/wild', ['*.example.com']);
    const r2 = store.update(snap({ certificates: [exact, wild2, fallback, other] }));
    expect(r2).toMatchObject({ created: 1, reused: 3, dropped: 1, defaultChanged: false });
    expect(store.select('a.example.com')).toBe(exactCtx);
    expect(store.select('b.example.com')).not.toBe(wildCtx);
    // Identical snapshot: nothing rebuilt. A settings change rebuilds every context.
    expect(store.update(snap({ certificates: [exact, wild2, fallback, other] }))).toMatchObject({ created: 0, reused: 4, dropped: 0 });
    expect(store.update(snap({ certificates: [exact, wild2, fallback, other], settings: { minVersion: 'TLSv1.3' } }))).toMatchObject({ created: 4, reused: 0, dropped: 4, defaultChanged: true });
  });

  it('leaves out a certificate Node refuses, so its names fall back to the default', () => {
    const broken: StoreCertificate = { id: 'ns/broken', certPem: 'junk', keyPem: 'junk', names: ['broken.test'] };
    const store = new CertificateStore();
    const r = store.update(snap({ certificates: [broken, fallback] }));
    expect(r.failed).toEqual([{ id: 'ns/broken', reason: expect.any(String) }]);
    expect(store.lookup('broken.test')).toEqual({ id: 'portico/fake', match: 'default' });
    expect(store.hasOwnCertificate('broken.test')).toBe(false);
  });
});

// --- real handshakes -------------------------------------------------------------------------

interface Handshake {
  serial?: string;
  cn?: string;
  alpn?: string | false | null;
  error?: string;
  socket?: tls.TLSSocket;
}

function handshake(port: number, opts: tls.ConnectionOptions, keepOpen = false): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const cn = peer.subject?.CN;
      resolve({ serial: peer.serialNumber, cn: Array.isArray(cn) ? cn[0] : cn, alpn: socket.alpnProtocol, socket: keepOpen ? socket : undefined });
      if (!keepOpen) socket.destroy();
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

const serialOf = (c: StoreCertificate): string => new X509Certificate(c.certPem).serialNumber;

describe('CertificateStore with a real tls.Server', () => {
  let store: CertificateStore;
  let server: tls.Server;
  let port: number;
  const clientErrors: string[] = [];

  beforeAll(async () => {
    store = new CertificateStore(snap());
    server = tls.createServer(store.serverOptions(), (s) => {
      s.on('error', () => {});
      s.pipe(s); // echo
    });
    server.on('tlsClientError', (err) => clientErrors.push(err.message));
    expect(store.applyTo(server)).toBe(true); // the first call for a server always installs the default
    expect(store.applyTo(server)).toBe(false);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server?.close());

  it('serves the certificate each server name selects', async () => {
    expect(await handshake(port, { servername: 'a.example.com' })).toMatchObject({ serial: serialOf(exact), cn: 'ns/exact' });
    expect(await handshake(port, { servername: 'B.example.com' })).toMatchObject({ serial: serialOf(wild), cn: 'ns/wild' });
    expect(await handshake(port, { servername: 'x.y.example.com' })).toMatchObject({ serial: serialOf(fallback) });
    expect(await handshake(port, { servername: 'www.other.test' })).toMatchObject({ serial: serialOf(other) });
  });

  it('serves the default certificate to a client without SNI', async () => {
    expect(await handshake(port, {})).toMatchObject({ serial: serialOf(fallback) });
  });

  it('negotiates ALPN in server order and refuses a client with no protocol in common', async () => {
    expect(await handshake(port, { servername: 'a.example.com', ALPNProtocols: ['http/1.1', 'h2'] })).toMatchObject({ alpn: 'h2' });
    expect(await handshake(port, { servername: 'a.example.com', ALPNProtocols: ['http/1.1'] })).toMatchObject({ alpn: 'http/1.1' });
    // curl --http1.0 offers only http/1.0: served by the HTTP/1.x server, as nginx does.
    expect(await handshake(port, { servername: 'a.example.com', ALPNProtocols: ['http/1.0'] })).toMatchObject({ alpn: 'http/1.0' });
    expect((await handshake(port, { servername: 'a.example.com', ALPNProtocols: ['spdy/3'] })).error).toMatch(/no application protocol|alert/i);
    expect(await handshake(port, { servername: 'a.example.com' })).toMatchObject({ alpn: false });
  });

  it('rotation: a new certificate for a host reaches new handshakes; an open connection stays up', async () => {
    const before = await handshake(port, { servername: 'a.example.com' }, true);
    expect(before.serial).toBe(serialOf(exact));
    const open = before.socket as tls.TLSSocket;

    const rotated = make('ns/exact', ['a.example.com']);
    const report = store.update(snap({ certificates: [rotated, wild, fallback, other] }));
    expect(report).toMatchObject({ created: 1, reused: 3 });
    expect(store.applyTo(server)).toBe(false); // default unchanged: no new default context

    expect(await handshake(port, { servername: 'a.example.com' })).toMatchObject({ serial: serialOf(rotated) });
    // The connection made before the rotation still works and still has the old certificate.
    open.write('still here');
    const [echo] = (await once(open, 'data')) as [Buffer];
    expect(echo.toString()).toBe('still here');
    expect(open.getPeerCertificate().serialNumber).toBe(serialOf(exact));
    open.destroy();
    store.update(snap());
  });

  it('applyTo swaps the no-SNI default when the default certificate changes', async () => {
    const newDefault = make('portico/fake2', ['ingress.local']);
    store.update(snap({ certificates: [exact, wild, newDefault, other], defaultCertificateId: 'portico/fake2' }));
    expect(store.applyTo(server)).toBe(true);
    expect(store.applyTo(server)).toBe(false);
    expect(await handshake(port, {})).toMatchObject({ serial: serialOf(newDefault) });
    expect(await handshake(port, { servername: 'nothing.test' })).toMatchObject({ serial: serialOf(newDefault) });
    store.update(snap());
    store.applyTo(server);
  });

  it('strict SNI refuses the handshake for an unknown name and for no SNI', async () => {
    store.update(snap({ settings: { strictSni: true } }));
    store.applyTo(server);
    // With a TLS alert (handshake_failure), not a bare close.
    expect((await handshake(port, { servername: 'nothing.test' })).error).toMatch(/handshake failure/i);
    expect((await handshake(port, {})).error).toBeDefined();
    expect(await handshake(port, { servername: 'a.example.com' })).toMatchObject({ serial: serialOf(exact) });
    expect(clientErrors.some((m) => m.includes('no suitable signature algorithm'))).toBe(true);
    store.update(snap());
    store.applyTo(server);
  });

  it('minVersion TLSv1.3 refuses a TLS 1.2-only client', async () => {
    store.update(snap({ settings: { minVersion: 'TLSv1.3' } }));
    store.applyTo(server);
    expect((await handshake(port, { servername: 'a.example.com', maxVersion: 'TLSv1.2' })).error).toBeDefined();
    expect(await handshake(port, { servername: 'a.example.com' })).toMatchObject({ serial: serialOf(exact) });
    store.update(snap());
    store.applyTo(server);
    expect(await handshake(port, { servername: 'a.example.com', maxVersion: 'TLSv1.2' })).toMatchObject({ serial: serialOf(exact) });
  });
});

describe('per-socket selection: Gateway HTTPS listeners (QA-9)', () => {
  let cnOnly: StoreCertificate;
  let gwWild: StoreCertificate;
  let gwA: StoreCertificate;
  let gwB: StoreCertificate;
  beforeAll(() => {
    cnOnly = { ...make('ns/cnonly', []), names: ['cnonly.test'] };
    gwWild = make('ns/gw-wild', ['*.wild.test']);
    gwA = make('ns/gw-a', ['a.multi.test']);
    gwB = make('ns/gw-b', ['b.multi.test']);
  });
  const socketSnap = (sockets: SnapshotInput['sockets'], settings: SnapshotInput['settings'] = {}): CertificateSnapshot =>
    snap({ certificates: [exact, wild, cnOnly, gwWild, gwA, gwB, fallback, other], sockets, settings });

  it('a listener without hostname serves its certificate for every name and for no SNI', () => {
    const store = new CertificateStore(socketSnap({ own: { listeners: [{ hostname: '', certificates: ['ns/cnonly'] }] } }));
    const s = store.socket('own');
    for (const name of ['other.test', 'a.example.com', 'cnonly.test', undefined]) expect(s.lookup(name)).toEqual({ id: 'ns/cnonly', match: 'listener' });
    // Sockets without an entry keep choosing by the certificates' names.
    expect(store.socket('elsewhere').lookup('a.example.com')).toEqual({ id: 'ns/exact', match: 'exact' });
    expect(store.lookup('nothing.test')).toEqual({ id: 'portico/fake', match: 'default' });
  });

  it('a wildcard listener matches any number of labels, the longest suffix and exact names first; others get the default', () => {
    const store = new CertificateStore(socketSnap({
      own: { listeners: [
        { hostname: '*.wild.test', certificates: ['ns/gw-wild'] },
        { hostname: '*.deep.wild.test', certificates: ['ns/cnonly'] },
        { hostname: 'x.deep.wild.test', certificates: ['ns/gw-a'] },
      ] },
    }));
    const s = store.socket('own');
    expect(s.lookup('a.b.wild.test')).toEqual({ id: 'ns/gw-wild', match: 'listener' });
    expect(s.lookup('A.WILD.TEST.')).toEqual({ id: 'ns/gw-wild', match: 'listener' });
    expect(s.lookup('y.deep.wild.test')).toEqual({ id: 'ns/cnonly', match: 'listener' });
    expect(s.lookup('x.deep.wild.test')).toEqual({ id: 'ns/gw-a', match: 'listener' });
    expect(s.lookup('wild.test')).toEqual({ id: 'portico/fake', match: 'default' });
    // No byName here: another socket's (an Ingress's) certificate is not served for its name.
    expect(s.lookup('a.example.com')).toEqual({ id: 'portico/fake', match: 'default' });
    expect(s.lookup(undefined)).toEqual({ id: 'portico/fake', match: 'default' });
  });

  it('of several certificateRefs, the one naming the SNI, else the first', () => {
    const store = new CertificateStore(socketSnap({ own: { listeners: [{ hostname: '*.multi.test', certificates: ['ns/gw-a', 'ns/gw-b'] }] } }));
    const s = store.socket('own');
    expect(s.lookup('b.multi.test')?.id).toBe('ns/gw-b');
    expect(s.lookup('a.multi.test')?.id).toBe('ns/gw-a');
    expect(s.lookup('c.multi.test')?.id).toBe('ns/gw-a');
  });

  it('beside byName certificates (Ingress TLS): the more specific claim wins, byName on a tie', () => {
    const store = new CertificateStore(socketSnap({
      https: { byName: ['ns/exact', 'ns/wild', 'portico/fake'], listeners: [
        { hostname: 'b.example.com', certificates: ['ns/cnonly'] },
        { hostname: 'a.example.com', certificates: ['ns/gw-a'] },
        { hostname: '*.example.com', certificates: ['ns/gw-wild'] },
        { hostname: '', certificates: ['ns/gw-b'] },
      ] },
    }));
    const s = store.socket('https');
    expect(s.lookup('a.example.com')).toEqual({ id: 'ns/exact', match: 'exact' }); // exact tie: byName
    expect(s.lookup('b.example.com')).toEqual({ id: 'ns/cnonly', match: 'listener' }); // listener exact > byName wildcard
    expect(s.lookup('c.example.com')).toEqual({ id: 'ns/wild', match: 'wildcard' }); // wildcard tie: byName
    expect(s.lookup('x.c.example.com')).toEqual({ id: 'ns/gw-wild', match: 'listener' }); // only the listener's wildcard spans two labels
    expect(s.lookup('ingress.local')).toEqual({ id: 'portico/fake', match: 'exact' });
    expect(s.lookup('other.test')).toEqual({ id: 'ns/gw-b', match: 'listener' });
    expect(s.lookup(undefined)).toEqual({ id: 'ns/gw-b', match: 'listener' });
  });

  it('claims: with refuseUnclaimed, only names (or no SNI) a listener or byName claims are terminated', () => {
    const store = new CertificateStore(socketSnap({
      tls: { listeners: [{ hostname: '*.wild.test', certificates: ['ns/gw-wild'] }], refuseUnclaimed: true },
      open: { listeners: [{ hostname: '*.wild.test', certificates: ['ns/gw-wild'] }] },
      all: { listeners: [{ hostname: '', certificates: ['ns/cnonly'] }], refuseUnclaimed: true },
    }));
    expect(store.socket('tls').claims('a.wild.test')).toBe(true);
    expect(store.socket('tls').claims('non.matching.com')).toBe(false);
    expect(store.socket('tls').claims(undefined)).toBe(false);
    expect(store.socket('open').claims('non.matching.com')).toBe(true);
    expect(store.socket('all').claims(undefined)).toBe(true);
  });

  it('strict SNI: a listener-claimed name is served, an unclaimed one refused', () => {
    const store = new CertificateStore(socketSnap({ own: { listeners: [{ hostname: '*.wild.test', certificates: ['ns/cnonly'] }] } }, { strictSni: true }));
    expect(store.socket('own').lookup('a.wild.test')?.id).toBe('ns/cnonly');
    expect(store.socket('own').lookup('other.test')).toBeUndefined();
    expect(store.socket('own').lookup(undefined)).toBeUndefined();
  });

  it('the snapshot drops unknown certificate ids, with a problem', () => {
    const { snapshot, problems } = buildCertificateSnapshot({ certificates: [exact], sockets: { own: { byName: ['nope'], listeners: [{ hostname: 'A.Test', certificates: ['ns/exact', 'gone'] }] } } });
    expect(snapshot.sockets).toEqual({ own: { byName: [], listeners: [{ hostname: 'a.test', certificates: ['ns/exact'] }] } });
    expect(problems).toEqual(['socket own: certificate nope is not in the store', 'socket own: certificate gone is not in the store']);
  });

  it('a real server on a socket: listener certificate by SNI, the catch-all listener for no SNI', async () => {
    const store = new CertificateStore(socketSnap({ own: { listeners: [{ hostname: '*.wild.test', certificates: ['ns/gw-wild'] }, { hostname: '', certificates: ['ns/cnonly'] }] } }));
    const server = tls.createServer(store.serverOptions('own'), (s) => s.destroy());
    store.applyTo(server, 'own');
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const p = (server.address() as AddressInfo).port;
    try {
      expect(await handshake(p, { servername: 'a.b.wild.test' })).toMatchObject({ serial: serialOf(gwWild) });
      expect(await handshake(p, { servername: 'other.test' })).toMatchObject({ serial: serialOf(cnOnly) });
      expect(await handshake(p, {})).toMatchObject({ serial: serialOf(cnOnly) });
      // A new snapshot without the catch-all: the no-SNI certificate follows (applyTo).
      store.update(socketSnap({ own: { listeners: [{ hostname: '*.wild.test', certificates: ['ns/gw-wild'] }] } }));
      expect(store.applyTo(server, 'own')).toBe(true);
      expect(await handshake(p, {})).toMatchObject({ serial: serialOf(fallback) });
      expect(await handshake(p, { servername: 'other.test' })).toMatchObject({ serial: serialOf(fallback) });
    } finally {
      server.close();
    }
  });
});
