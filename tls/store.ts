// The certificate store. The primary builds one immutable, JSON-serialisable snapshot (shipped
// to workers with the routing table); each worker hydrates it into a CertificateStore whose
// SNICallback picks a certificate per handshake:
//
//   exact name  >  wildcard (`*.example.com` covers exactly one label)  >  default certificate
//
// matching case-insensitively. With strictSni, a name that matches no certificate (and a client
// without SNI) gets no certificate: the handshake is refused.
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

export interface CertificateSnapshot {
  certificates: StoreCertificate[];
  defaultCertificateId?: string;
  settings: TlsSettings;
}

export interface SnapshotInput {
  certificates: readonly StoreCertificate[];
  defaultCertificateId?: string;
  settings?: Partial<TlsSettings>;
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
  return { snapshot: deepFreeze(snapshot), problems };
}

export type MatchKind = 'exact' | 'wildcard' | 'default';

export interface Selection {
  id: string;
  match: MatchKind;
}

/** Name lookup over a snapshot: pure, usable in the primary and in workers. */
export class CertificateIndex {
  private readonly exact = new Map<string, string>();
  /** Keyed by what follows `*.`. */
  private readonly wildcard = new Map<string, string>();
  readonly defaultId: string | undefined;
  readonly strictSni: boolean;

  constructor(snapshot: CertificateSnapshot, usable: (id: string) => boolean = () => true) {
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

export class CertificateStore {
  private snapshot: CertificateSnapshot;
  private index: CertificateIndex;
  /** id -> context for the current snapshot. */
  private contexts = new Map<string, tls.SecureContext>();
  /** content key -> context, so unchanged PEMs keep their context across snapshots. */
  private byContent = new Map<string, tls.SecureContext>();
  private readonly applied = new WeakMap<tls.Server, string>();
  private defaultKey = '';

  constructor(snapshot?: CertificateSnapshot) {
    this.snapshot = { certificates: [], settings: { ...DEFAULT_TLS_SETTINGS, alpn: [...DEFAULT_TLS_SETTINGS.alpn] } };
    this.index = new CertificateIndex(this.snapshot);
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
    const previousDefault = this.defaultKey;
    this.snapshot = snapshot;
    this.contexts = contexts;
    this.byContent = byContent;
    this.index = new CertificateIndex(snapshot, (id) => contexts.has(id));
    this.defaultKey = this.defaultOptionsKey();
    report.defaultChanged = this.defaultKey !== previousDefault;
    return report;
  }

  /** Which certificate a handshake for `servername` gets; undefined means refuse. */
  lookup(servername: string | null | undefined): Selection | undefined {
    return this.index.lookup(servername);
  }

  /** The context for `servername`; undefined means refuse (strict SNI, or no default). */
  select(servername: string | null | undefined): tls.SecureContext | undefined {
    const sel = this.index.lookup(servername);
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

  /** For tls.createServer({ SNICallback }); reads the current snapshot on every handshake. */
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
   * Options for tls.createServer: SNI and ALPN callbacks bound to this store, version and cipher
   * settings, and the default certificate for clients that send no SNI (none with strictSni, so
   * those handshakes fail). Settings are read when called: call applyTo() after updates.
   * http2.createSecureServer sets ALPNProtocols itself, which Node refuses alongside
   * ALPNCallback: drop ALPNCallback there.
   */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.defaultContextOptions(),
      SNICallback: this.sniCallback,
      ALPNCallback: this.alpnCallback,
    };
  }

  /**
   * Brings a server's default (no-SNI) context up to date after update(): only when the default
   * certificate or settings changed, since setSecureContext builds a new context (the first call
   * for a server always does). Returns whether it rebuilt.
   */
  applyTo(server: tls.Server): boolean {
    const key = this.defaultKey;
    if (this.applied.get(server) === key) return false;
    // setSecureContext replaces the context that holds the session ticket keys with one that has
    // fresh random keys, which would silently end cross-worker resumption: carry them over.
    const ticketKeys = server.getTicketKeys();
    server.setSecureContext(this.defaultContextOptions());
    server.setTicketKeys(ticketKeys);
    this.applied.set(server, key);
    return true;
  }

  private defaultCertificate(): StoreCertificate | undefined {
    const id = this.index.defaultId;
    if (this.snapshot.settings.strictSni || id === undefined) return undefined;
    return this.certificate(id);
  }

  private defaultContextOptions(): tls.SecureContextOptions {
    const o = contextOptions(this.snapshot.settings);
    const d = this.defaultCertificate();
    if (d !== undefined) {
      o.cert = d.certPem;
      o.key = d.keyPem;
    }
    return o;
  }

  private defaultOptionsKey(): string {
    const d = this.defaultCertificate();
    const s = this.snapshot.settings;
    return createHash('sha256')
      .update(JSON.stringify([d?.certPem, d?.keyPem, s.minVersion, s.maxVersion, s.ciphers, s.sessionTimeoutSeconds]))
      .digest('base64');
  }
}
