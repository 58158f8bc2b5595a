// The certificate store. The primary builds one immutable, JSON-serialisable snapshot (shipped
// to workers with the routing table); each worker hydrates it into a CertificateStore whose
// SNICallback picks a certificate per handshake:
//
//   exact name  >  wildcard (`*.example.com` covers exactly one label)  >  default certificate
//
// matching case-insensitively. With strictSni, a name that matches no certificate (and a client
// without SNI) gets no certificate: the handshake is refused.
//
// A socket with Gateway HTTPS listeners behind it (snapshot.sockets) picks by listener first:
// the SNI's listener (as routing matches hostnames) serves its own certificate whether or not
// that certificate names the SNI, as GatewayTLSConfig.certificateRefs says (SocketIndex).
//
// Worker side, typical wiring:
//
//   const store = new CertificateStore(snapshot);
//   const server = tls.createServer({ ...store.serverOptions(), allowHalfOpen: true });
//   // on every new snapshot from the primary:
//   store.update(next);          // rebuilds only contexts whose PEM changed
//   store.applyTo(server);       // refreshes the no-SNI default context when it changed
//
// Open connections keep the context they were handshaken with; new handshakes see the update.

import { createHash } from 'node:crypto';
import tls from 'node:tls';
import type { ParsedCertificate } from './certificate.ts';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsSettings {
  minVersion: TlsVersion;
  maxVersion?: TlsVersion;
  /** OpenSSL cipher list (TLS 1.2 suites); undefined keeps Node's default. */
  ciphers?: string;
  /** ALPN protocols in server preference order. */
  alpn: string[];
  /** Refuse handshakes whose server name has no certificate of its own (no default fallback). */
  strictSni: boolean;
  /** Lifetime of sessions and tickets, in seconds; undefined keeps Node's default (300). */
  sessionTimeoutSeconds?: number;
}

export const DEFAULT_TLS_SETTINGS: Readonly<TlsSettings> = Object.freeze({
  minVersion: 'TLSv1.2',
  alpn: Object.freeze(['h2', 'http/1.1']) as string[],
  strictSni: false,
});

export interface StoreCertificate {
  /** Where it came from, e.g. "ns/secret" or "portico/fake". */
  id: string;
  certPem: string;
  keyPem: string;
  /** Lowercased names it covers (SAN DNS entries, or CN without SAN); `*.` wildcards allowed. */
  names: string[];
  serialNumber?: string;
  notAfter?: string;
}

/** A Gateway HTTPS listener on a socket: the certificates its handshakes are given. */
export interface ListenerCertificates {
  /** '' (no hostname: every name), a name, or `*.suffix` (any number of labels, as Gateway API has it). */
  hostname: string;
  /** Its certificateRefs' ids, in order: the first that names the SNI, else the first, is served. */
  certificates: string[];
}

/**
 * How one listening socket picks certificates (key: `https` for --https-port, else a Gateway
 * listener socket's key, RoutingIR.listeners). A socket without an entry picks among all the
 * certificates by the names they carry (as Ingress TLS always has).
 */
export interface SocketCertificates {
  /**
   * Certificates chosen by the names they carry (Ingress spec.tls Secrets; the default
   * certificate's names count too, last), in the order that wins a shared name. Of an exact name and a wildcard, as of a
   * Gateway listener's hostname and one of these, the more specific wins; on a tie, these.
   */
  byName?: string[];
  /** The Gateway HTTPS listeners behind the socket. */
  listeners?: ListenerCertificates[];
  /**
   * The socket also passes TLS through by SNI, and nothing but its listeners (and byName) serves
   * on it: a server name none of them claims is refused rather than terminated (see claims()).
   */
  refuseUnclaimed?: boolean;
}

export interface CertificateSnapshot {
  certificates: StoreCertificate[];
  defaultCertificateId?: string;
  settings: TlsSettings;
  sockets?: Record<string, SocketCertificates>;
}

export interface SnapshotInput {
  certificates: readonly StoreCertificate[];
  defaultCertificateId?: string;
  settings?: Partial<TlsSettings>;
  sockets?: Readonly<Record<string, SocketCertificates>>;
}

/** Store entry from a validated certificate (see certificate.ts). */
export function storeCertificate(id: string, parsed: ParsedCertificate): StoreCertificate {
  return {
    id,
    certPem: parsed.certPem,
    keyPem: parsed.keyPem,
    names: parsed.info.names,
    serialNumber: parsed.info.serialNumber,
    notAfter: parsed.info.notAfter,
  };
}

function normaliseName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const VERSIONS: readonly string[] = ['TLSv1.2', 'TLSv1.3'];

/**
 * Primary side: validates and freezes a snapshot. Duplicate ids keep the first; a name claimed
 * by several certificates goes to the first listed (so list them in the order that should win).
 */
export function buildCertificateSnapshot(input: SnapshotInput): { snapshot: CertificateSnapshot; problems: string[] } {
  const problems: string[] = [];
  const s = { ...DEFAULT_TLS_SETTINGS, ...input.settings };
  const settings: TlsSettings = {
    minVersion: VERSIONS.includes(s.minVersion) ? s.minVersion : 'TLSv1.2',
    alpn: [...(s.alpn ?? DEFAULT_TLS_SETTINGS.alpn)],
    strictSni: s.strictSni === true,
  };
  if (!VERSIONS.includes(s.minVersion)) problems.push(`TLS minVersion ${JSON.stringify(s.minVersion)} is not supported; using TLSv1.2`);
  if (s.maxVersion !== undefined) {
    if (!VERSIONS.includes(s.maxVersion)) problems.push(`TLS maxVersion ${JSON.stringify(s.maxVersion)} is not supported; ignored`);
    else if (VERSIONS.indexOf(s.maxVersion) < VERSIONS.indexOf(settings.minVersion)) problems.push('TLS maxVersion is below minVersion; ignored');
    else settings.maxVersion = s.maxVersion;
  }
  if (s.ciphers !== undefined && s.ciphers !== '') {
    try {
      tls.createSecureContext({ ciphers: s.ciphers });
      settings.ciphers = s.ciphers;
    } catch (err) {
      problems.push(`TLS cipher list ${JSON.stringify(s.ciphers)} is invalid (${(err as Error).message}); using the default`);
    }
  }
  const badAlpn = settings.alpn.filter((p) => typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255);
  if (badAlpn.length > 0 || settings.alpn.length === 0) {
    problems.push(`ALPN list ${JSON.stringify(s.alpn)} is invalid; using h2, http/1.1`);
    settings.alpn = [...DEFAULT_TLS_SETTINGS.alpn];
  }
  if (s.sessionTimeoutSeconds !== undefined) {
    if (Number.isInteger(s.sessionTimeoutSeconds) && s.sessionTimeoutSeconds > 0) settings.sessionTimeoutSeconds = s.sessionTimeoutSeconds;
    else problems.push(`TLS session timeout ${s.sessionTimeoutSeconds} is invalid; using the default`);
  }

  const seen = new Set<string>();
  const certificates: StoreCertificate[] = [];
  for (const c of input.certificates) {
    if (seen.has(c.id)) {
      problems.push(`certificate ${c.id} listed twice; the first is used`);
      continue;
    }
    seen.add(c.id);
    const entry: StoreCertificate = { id: c.id, certPem: c.certPem, keyPem: c.keyPem, names: [...new Set(c.names.map(normaliseName))].filter((n) => n !== '') };
    if (c.serialNumber !== undefined) entry.serialNumber = c.serialNumber;
    if (c.notAfter !== undefined) entry.notAfter = c.notAfter;
    certificates.push(entry);
  }
  let defaultCertificateId = input.defaultCertificateId;
  if (defaultCertificateId !== undefined && !seen.has(defaultCertificateId)) {
    problems.push(`default certificate ${defaultCertificateId} is not in the store`);
    defaultCertificateId = undefined;
  }
  const snapshot: CertificateSnapshot = defaultCertificateId !== undefined ? { certificates, defaultCertificateId, settings } : { certificates, settings };
  if (input.sockets !== undefined) {
    const known = (socket: string) => (id: string): boolean => {
      if (seen.has(id)) return true;
      problems.push(`socket ${socket}: certificate ${id} is not in the store`);
      return false;
    };
    const sockets: Record<string, SocketCertificates> = {};
    for (const [key, sc] of Object.entries(input.sockets)) {
      const entry: SocketCertificates = {};
      if (sc.byName !== undefined) entry.byName = sc.byName.filter(known(key));
      if (sc.listeners !== undefined) entry.listeners = sc.listeners.map((l) => ({ hostname: normaliseName(l.hostname), certificates: l.certificates.filter(known(key)) }));
      if (sc.refuseUnclaimed === true) entry.refuseUnclaimed = true;
      sockets[key] = entry;
    }
    snapshot.sockets = sockets;
  }
  return { snapshot: deepFreeze(snapshot), problems };
}

/** `listener`: the Gateway listener matching the name (its certificate need not name it). */
export type MatchKind = 'exact' | 'wildcard' | 'listener' | 'default';

export interface Selection {
  id: string;
  match: MatchKind;
}

type IndexInput = Pick<CertificateSnapshot, 'certificates' | 'defaultCertificateId'> & { settings: Pick<TlsSettings, 'strictSni'> };

/** Name lookup over a snapshot's certificates, by the names they carry: pure, usable in the primary and in workers. */
export class CertificateIndex {
  private readonly exact = new Map<string, string>();
  /** Keyed by what follows `*.`. */
  private readonly wildcard = new Map<string, string>();
  readonly defaultId: string | undefined;
  readonly strictSni: boolean;

  constructor(snapshot: IndexInput, usable: (id: string) => boolean = () => true) {
    for (const c of snapshot.certificates) {
      if (!usable(c.id)) continue;
      for (const raw of c.names) {
        const name = normaliseName(raw);
        if (name.startsWith('*.')) {
          const parent = name.slice(2);
          if (parent !== '' && !parent.includes('*') && !this.wildcard.has(parent)) this.wildcard.set(parent, c.id);
        } else if (name !== '' && !name.includes('*') && !this.exact.has(name)) {
          this.exact.set(name, c.id);
        }
      }
    }
    const d = snapshot.defaultCertificateId;
    this.defaultId = d !== undefined && usable(d) ? d : undefined;
    this.strictSni = snapshot.settings.strictSni;
  }

  /** The certificate of `host` itself (exact or wildcard), ignoring the default. */
  own(host: string | null | undefined): Selection | undefined {
    if (typeof host !== 'string' || host === '') return undefined;
    const h = normaliseName(host);
    const exact = this.exact.get(h);
    if (exact !== undefined) return { id: exact, match: 'exact' };
    const dot = h.indexOf('.');
    if (dot > 0) {
      const wild = this.wildcard.get(h.slice(dot + 1));
      if (wild !== undefined) return { id: wild, match: 'wildcard' };
    }
    return undefined;
  }

  /** What a handshake for `servername` gets; undefined means refuse (strict SNI, or no default). */
  lookup(servername: string | null | undefined): Selection | undefined {
    const own = this.own(servername);
    if (own !== undefined) return own;
    if (this.strictSni || this.defaultId === undefined) return undefined;
    return { id: this.defaultId, match: 'default' };
  }
}

/** A listener's certificates: the one naming the SNI, else the first. */
class ListenerChoice {
  private readonly first: string;
  private readonly names: CertificateIndex | undefined;

  constructor(ids: readonly string[], byId: ReadonlyMap<string, StoreCertificate>) {
    this.first = ids[0];
    // One certificate needs no name index.
    this.names = ids.length > 1 ? new CertificateIndex({ certificates: ids.map((id) => byId.get(id)!), settings: { strictSni: true } }) : undefined;
  }

  pick(host: string): Selection {
    return { id: (host === '' ? undefined : this.names?.own(host)?.id) ?? this.first, match: 'listener' };
  }
}

/**
 * One socket's certificate selection, precomputed per snapshot so that a handshake costs a few
 * map lookups (at most one per label of the name), never a scan over certificates or listeners:
 *
 *   byName exact  >  listener exact  >  byName wildcard (one label)  >  listener `*.suffix`
 *   (longest suffix first)  >  listener without hostname  >  default certificate
 *
 * A byName single-label wildcard that matches is as specific as any listener wildcard that
 * matches (its suffix is the name's parent), so byName winning there is its tie-break.
 * With strictSni the default is never served: a name nothing claims (or no SNI, unless a
 * listener without hostname claims it) is refused.
 */
export class SocketIndex {
  private readonly names: CertificateIndex;
  private readonly exact = new Map<string, ListenerChoice>();
  private readonly wildcard = new Map<string, ListenerChoice>();
  private readonly catchAll: ListenerChoice | undefined;
  readonly refuseUnclaimed: boolean;

  /** `socket` undefined: every certificate by its names, no listeners (a socket without an entry). */
  constructor(snapshot: CertificateSnapshot, socket: SocketCertificates | undefined, usable: (id: string) => boolean = () => true) {
    const byId = new Map(snapshot.certificates.map((c) => [c.id, c]));
    // byName takes the default certificate's names too, last (as a socket without an entry does).
    const byNameIds = socket?.byName === undefined ? [] : [...socket.byName, ...(snapshot.defaultCertificateId !== undefined && !socket.byName.includes(snapshot.defaultCertificateId) ? [snapshot.defaultCertificateId] : [])];
    const byName = socket === undefined ? snapshot.certificates : byNameIds.flatMap((id) => byId.get(id) ?? []);
    this.names = new CertificateIndex({ certificates: byName, defaultCertificateId: snapshot.defaultCertificateId, settings: snapshot.settings }, usable);
    let catchAll: ListenerChoice | undefined;
    for (const l of socket?.listeners ?? []) {
      const ids = l.certificates.filter((id) => byId.has(id) && usable(id));
      // A listener none of whose certificates TLS accepted: its names fall through to what is left.
      if (ids.length === 0) continue;
      const h = normaliseName(l.hostname);
      if (h === '') catchAll ??= new ListenerChoice(ids, byId);
      else if (h.startsWith('*.')) { if (!this.wildcard.has(h.slice(2))) this.wildcard.set(h.slice(2), new ListenerChoice(ids, byId)); }
      else if (!this.exact.has(h)) this.exact.set(h, new ListenerChoice(ids, byId));
    }
    this.catchAll = catchAll;
    this.refuseUnclaimed = socket?.refuseUnclaimed === true;
  }

  get defaultId(): string | undefined {
    return this.names.defaultId;
  }

  /** The certificate `host` is claimed with on this socket (byName or a listener), ignoring the default. */
  own(host: string | null | undefined): Selection | undefined {
    const h = typeof host === 'string' ? normaliseName(host) : '';
    if (h === '') return this.catchAll?.pick('');
    const byName = this.names.own(h);
    if (byName?.match === 'exact') return byName;
    const exact = this.exact.get(h);
    if (exact !== undefined) return exact.pick(h);
    if (byName !== undefined) return byName;
    if (this.wildcard.size > 0) {
      for (let dot = h.indexOf('.'); dot > 0 && dot < h.length - 1; dot = h.indexOf('.', dot + 1)) {
        const wild = this.wildcard.get(h.slice(dot + 1));
        if (wild !== undefined) return wild.pick(h);
      }
    }
    return this.catchAll?.pick(h);
  }

  /** What a handshake for `servername` gets; undefined means refuse (strict SNI, or no default). */
  lookup(servername: string | null | undefined): Selection | undefined {
    const own = this.own(servername);
    if (own !== undefined) return own;
    if (this.names.strictSni || this.names.defaultId === undefined) return undefined;
    return { id: this.names.defaultId, match: 'default' };
  }

  /**
   * Whether TLS for `servername` (undefined or '': no usable SNI) is terminated on this socket:
   * always, unless refuseUnclaimed, then only for a name (or no SNI) something here claims.
   */
  claims(servername: string | undefined): boolean {
    return !this.refuseUnclaimed || this.own(servername) !== undefined;
  }
}

export interface UpdateReport {
  created: number;
  reused: number;
  dropped: number;
  /** Certificates Node refused (they are left out, as if absent). */
  failed: { id: string; reason: string }[];
  defaultChanged: boolean;
}

type ContextSettings = Pick<TlsSettings, 'minVersion' | 'maxVersion' | 'ciphers' | 'sessionTimeoutSeconds'>;

/**
 * Sessions and tickets carry the session id context they were made under and only resume under
 * the same one. Node derives its default from process.argv; a constant makes every worker (and
 * every context) agree, which cross-worker resumption needs.
 */
export const SESSION_ID_CONTEXT = 'portico';

function contextOptions(settings: ContextSettings): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = { minVersion: settings.minVersion, sessionIdContext: SESSION_ID_CONTEXT };
  if (settings.maxVersion !== undefined) o.maxVersion = settings.maxVersion;
  if (settings.ciphers !== undefined) o.ciphers = settings.ciphers;
  if (settings.sessionTimeoutSeconds !== undefined) o.sessionTimeout = settings.sessionTimeoutSeconds;
  return o;
}

function contentKey(c: StoreCertificate, settings: ContextSettings): string {
  return createHash('sha256')
    .update(JSON.stringify([c.certPem, c.keyPem, settings.minVersion, settings.maxVersion, settings.ciphers, settings.sessionTimeoutSeconds]))
    .digest('base64');
}

/** Worker side: hydrated snapshot with one cached SecureContext per certificate. */
let refusing: tls.SecureContext | undefined;
/** A context with no certificate: a handshake given it fails with a handshake_failure alert. */
function refusingContext(): tls.SecureContext {
  return (refusing ??= tls.createSecureContext({}));
}

/** One socket's view of the store: its selection follows every update(). */
export interface SocketCertificateView {
  /** Which certificate a handshake for `servername` gets on this socket; undefined means refuse. */
  lookup(servername: string | null | undefined): Selection | undefined;
  /** Whether TLS for `servername` is terminated here (SocketIndex.claims). */
  claims(servername: string | undefined): boolean;
  readonly sniCallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
}

export class CertificateStore {
  private snapshot: CertificateSnapshot;
  /** Selection for sockets the snapshot has no entry for: every certificate by its names. */
  private index: SocketIndex;
  private sockets = new Map<string, SocketIndex>();
  private readonly views = new Map<string, SocketCertificateView>();
  /** id -> context for the current snapshot. */
  private contexts = new Map<string, tls.SecureContext>();
  /** content key -> context, so unchanged PEMs keep their context across snapshots. */
  private byContent = new Map<string, tls.SecureContext>();
  private readonly applied = new WeakMap<tls.Server, string>();

  constructor(snapshot?: CertificateSnapshot) {
    this.snapshot = { certificates: [], settings: { ...DEFAULT_TLS_SETTINGS, alpn: [...DEFAULT_TLS_SETTINGS.alpn] } };
    this.index = new SocketIndex(this.snapshot, undefined);
    if (snapshot !== undefined) this.update(snapshot);
  }

  get settings(): TlsSettings {
    return this.snapshot.settings;
  }

  /** Swaps in a snapshot. Contexts whose certificate, key and settings are unchanged are reused. */
  update(snapshot: CertificateSnapshot): UpdateReport {
    const report: UpdateReport = { created: 0, reused: 0, dropped: 0, failed: [], defaultChanged: false };
    const settings = snapshot.settings;
    const contexts = new Map<string, tls.SecureContext>();
    const byContent = new Map<string, tls.SecureContext>();
    for (const c of snapshot.certificates) {
      const key = contentKey(c, settings);
      let ctx = byContent.get(key) ?? this.byContent.get(key);
      if (ctx !== undefined) {
        if (!byContent.has(key)) report.reused++;
      } else {
        try {
          ctx = tls.createSecureContext({ ...contextOptions(settings), cert: c.certPem, key: c.keyPem });
          report.created++;
        } catch (err) {
          report.failed.push({ id: c.id, reason: (err as Error).message });
          continue;
        }
      }
      byContent.set(key, ctx);
      contexts.set(c.id, ctx);
    }
    for (const key of this.byContent.keys()) if (!byContent.has(key)) report.dropped++;
    const previousDefault = this.defaultOptionsKey(this.index);
    this.snapshot = snapshot;
    this.contexts = contexts;
    this.byContent = byContent;
    const usable = (id: string) => contexts.has(id);
    this.index = new SocketIndex(snapshot, undefined, usable);
    this.sockets = new Map(Object.entries(snapshot.sockets ?? {}).map(([key, sc]) => [key, new SocketIndex(snapshot, sc, usable)]));
    report.defaultChanged = this.defaultOptionsKey(this.index) !== previousDefault;
    return report;
  }

  private indexOf(socket: string | undefined): SocketIndex {
    return (socket === undefined ? undefined : this.sockets.get(socket)) ?? this.index;
  }

  /** Which certificate a handshake for `servername` gets (on a socket without an entry); undefined means refuse. */
  lookup(servername: string | null | undefined): Selection | undefined {
    return this.index.lookup(servername);
  }

  /** The context for `servername` (on a socket without an entry); undefined means refuse. */
  select(servername: string | null | undefined): tls.SecureContext | undefined {
    return this.contextOf(this.index.lookup(servername));
  }

  private contextOf(sel: Selection | undefined): tls.SecureContext | undefined {
    return sel === undefined ? undefined : this.contexts.get(sel.id);
  }

  /** Whether `host` has a certificate of its own (exact or wildcard, not the default): for 421. */
  hasOwnCertificate(host: string): boolean {
    return this.index.own(host) !== undefined;
  }

  /** The current entry for an id (for logs and /debug). */
  certificate(id: string): StoreCertificate | undefined {
    return this.snapshot.certificates.find((c) => c.id === id);
  }

  /** The selection of one socket (`https`, or a Gateway listener socket's key), following updates. */
  socket(key: string): SocketCertificateView {
    let view = this.views.get(key);
    if (view === undefined) {
      view = {
        lookup: (servername) => this.indexOf(key).lookup(servername),
        claims: (servername) => this.indexOf(key).claims(servername),
        sniCallback: (servername, cb) => cb(null, this.contextOf(this.indexOf(key).lookup(servername)) ?? refusingContext()),
      };
      this.views.set(key, view);
    }
    return view;
  }

  /** For tls.createServer({ SNICallback }) on a socket without an entry; reads the current snapshot on every handshake. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    const ctx = this.select(servername);
    // Refusing with a context that has no certificate makes OpenSSL end the handshake with a
    // handshake_failure alert, which a client can report; an error here would only close the
    // connection without one.
    cb(null, ctx ?? refusingContext());
  };

  /**
   * For tls.createServer({ ALPNCallback }): the first protocol of ours, in our order, that the
   * client offers. A client that offers only `http/1.0` (curl --http1.0) gets it whenever we
   * speak HTTP/1.1, which also serves 1.0 (nginx lists it too). Otherwise undefined (no overlap)
   * makes Node send no_application_protocol (RFC 7301).
   */
  readonly alpnCallback = (info: { servername: string; protocols: string[] }): string | undefined => {
    const ours = this.snapshot.settings.alpn;
    const chosen = ours.find((p) => info.protocols.includes(p));
    if (chosen !== undefined) return chosen;
    return ours.includes('http/1.1') && info.protocols.includes('http/1.0') ? 'http/1.0' : undefined;
  };

  /**
   * Options for tls.createServer: SNI and ALPN callbacks bound to this store (to `socket`'s
   * selection when given), version and cipher settings, and the certificate for clients that
   * send no SNI (none with strictSni, unless a listener without hostname claims them, so those
   * handshakes fail). Settings are read when called: call applyTo() after updates.
   * http2.createSecureServer sets ALPNProtocols itself, which Node refuses alongside
   * ALPNCallback: drop ALPNCallback there.
   */
  serverOptions(socket?: string): tls.TlsOptions {
    return {
      ...this.defaultContextOptions(this.indexOf(socket)),
      SNICallback: socket === undefined ? this.sniCallback : this.socket(socket).sniCallback,
      ALPNCallback: this.alpnCallback,
    };
  }

  /**
   * Brings a server's default (no-SNI) context up to date after update(): only when its no-SNI
   * certificate or the settings changed, since setSecureContext builds a new context (the first
   * call for a server always does). `socket` as for serverOptions. Returns whether it rebuilt.
   */
  applyTo(server: tls.Server, socket?: string): boolean {
    const index = this.indexOf(socket);
    const key = this.defaultOptionsKey(index);
    if (this.applied.get(server) === key) return false;
    // setSecureContext replaces the context that holds the session ticket keys with one that has
    // fresh random keys, which would silently end cross-worker resumption: carry them over.
    const ticketKeys = server.getTicketKeys();
    server.setSecureContext(this.defaultContextOptions(index));
    server.setTicketKeys(ticketKeys);
    this.applied.set(server, key);
    return true;
  }

  /** What a client without SNI gets on a socket: its listener without hostname's, else the default (none with strictSni). */
  private defaultCertificate(index: SocketIndex): StoreCertificate | undefined {
    const id = index.lookup(undefined)?.id;
    return id === undefined ? undefined : this.certificate(id);
  }

  private defaultContextOptions(index: SocketIndex): tls.SecureContextOptions {
    const o = contextOptions(this.snapshot.settings);
    const d = this.defaultCertificate(index);
    if (d !== undefined) {
      o.cert = d.certPem;
      o.key = d.keyPem;
    }
    return o;
  }

  private defaultOptionsKey(index: SocketIndex): string {
    const d = this.defaultCertificate(index);
    const s = this.snapshot.settings;
    return createHash('sha256')
      .update(JSON.stringify([d?.certPem, d?.keyPem, s.minVersion, s.maxVersion, s.ciphers, s.sessionTimeoutSeconds]))
      .digest('base64');
  }
}
