// Ingress spec.tls -> certificate store entries. Certificates come from Secrets of type
// kubernetes.io/tls in the Ingress's namespace; the names they serve come from the certificate
// (SAN), not from tls.hosts. A Secret that is missing or broken leaves its hosts on the default
// certificate, with a problem naming the Secret and the reason.

import { hostnameCovered, parseTlsSecret } from '../tls/certificate.ts';
import { storeCertificate, type SocketCertificates, type StoreCertificate } from '../tls/store.ts';
import { parseIngress, tlsHostsOf } from './ingress.ts';
import { compareAge, type KubeObject, type Problem } from './objects.ts';

export interface TlsTranslation {
  /** Valid certificates, oldest referencing Ingress first (the first listed wins a shared name). */
  readonly certificates: StoreCertificate[];
  /** The `--default-ssl-certificate` Secret, when given and valid. */
  readonly defaultCertificate?: StoreCertificate;
  /** Secrets referenced but unusable: `ns/name` -> reason. */
  readonly invalidSecrets: ReadonlyMap<string, string>;
  readonly problems: Problem[];
  /**
   * With Gateway HTTPS or TLS listeners: how each TLS socket picks certificates (tls/store.ts
   * SocketCertificates; `https` is --https-port). Absent: every socket by certificate names.
   */
  readonly sockets?: Record<string, SocketCertificates>;
}

/** The TLS Secrets of one snapshot, each parsed once, by `ns/name`. */
export class TlsSecrets {
  private readonly secrets = new Map<string, KubeObject>();
  private readonly parsed = new Map<string, ReturnType<typeof parseTlsSecret>>();

  /** `now` is the clock certificate validity is judged by (expiry warnings); translation passes it explicitly. */
  private readonly now: Date | undefined;

  constructor(objects: readonly KubeObject[], now?: Date) {
    this.now = now;
    for (const o of objects) if (o.kind === 'Secret' && o.apiVersion === 'v1') this.secrets.set(`${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, o);
  }

  get(id: string): ReturnType<typeof parseTlsSecret> {
    let parsed = this.parsed.get(id);
    if (parsed === undefined) {
      const secret = this.secrets.get(id);
      parsed = secret === undefined ? { ok: false, reason: `Secret ${id} not found` } : parseTlsSecret(secret, this.now ? { now: this.now } : {});
      this.parsed.set(id, parsed);
    }
    return parsed;
  }

  /** The names a valid Secret's certificate serves (SAN, else CN); empty when it is unusable. */
  names(id: string): readonly string[] {
    const parsed = this.get(id);
    return parsed.ok ? parsed.info.names : [];
  }
}

/**
 * `ingresses` are the served ones (as returned by translateIngresses), with where they came from;
 * `defaultSecret` is `--default-ssl-certificate` as `ns/name`.
 */
export function translateTls(secrets: TlsSecrets, ingresses: readonly { object: KubeObject; origin: string }[], defaultSecret: string | undefined): TlsTranslation {
  const problems: Problem[] = [];
  const certificates: StoreCertificate[] = [];
  const invalidSecrets = new Map<string, string>();
  const loaded = new Set<string>();

  const load = (id: string): ReturnType<typeof parseTlsSecret> => {
    const parsed = secrets.get(id);
    if (!loaded.has(id)) {
      loaded.add(id);
      if (!parsed.ok) invalidSecrets.set(id, parsed.reason);
      else certificates.push(storeCertificate(id, parsed));
    }
    return parsed;
  };

  let defaultCertificate: StoreCertificate | undefined;
  if (defaultSecret !== undefined) {
    const parsed = load(defaultSecret);
    if (parsed.ok) defaultCertificate = certificates.find((c) => c.id === defaultSecret);
    else problems.push({ severity: 'error', kind: 'Secret', name: defaultSecret, message: `--default-ssl-certificate: ${parsed.reason}; using a self-signed certificate` });
  }

  for (const { object, origin } of [...ingresses].sort((a, b) => compareAge(a.object, b.object))) {
    const ns = object.metadata.namespace ?? 'default';
    const parsedIngress = parseIngress(object);
    const report = (message: string): void => {
      problems.push({ severity: 'error', kind: 'Ingress', namespace: ns, name: object.metadata.name, origin, message });
    };
    for (const entry of parsedIngress.tls) {
      const hosts = entry.hosts.length > 0 ? entry.hosts : [...tlsHostsOf({ tls: [entry], paths: parsedIngress.paths })].filter((h) => h !== '*');
      if (entry.secretName === undefined) {
        // No Secret: ingress-nginx serves these hosts with the default certificate.
        continue;
      }
      const id = `${ns}/${entry.secretName}`;
      const parsed = load(id);
      if (!parsed.ok) {
        report(`TLS for ${hosts.join(', ') || '(no hosts)'}: ${parsed.reason}; serving the default certificate instead`);
        continue;
      }
      for (const w of parsed.warnings) report(w);
      for (const host of hosts) {
        if (!hostnameCovered(parsed.info.names, host)) {
          report(`spec.tls host ${host} is not covered by Secret ${id}, whose certificate names ${parsed.info.names.join(', ') || '(none)'}`);
        }
      }
    }
  }
  return { certificates, ...(defaultCertificate ? { defaultCertificate } : {}), invalidSecrets, problems };
}
