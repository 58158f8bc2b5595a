// Source snapshot -> routing IR + statuses + problems. Pure apart from `TranslatorState`, the
// memory of each object's last good version, which the caller keeps between runs.

import type { RoutingIR } from '../router/types.ts';
import { BackendIndex } from './backends.ts';
import { isServedIngress, selectIngressClass, translateIngresses } from './ingress.ts';
import type { KubeObject, Problem, SourceSnapshot } from './objects.ts';
import { ingressStatus, type StatusItem } from './status.ts';
import { TableBuilder } from './table-builder.ts';
import { TlsSecrets, translateTls, type TlsTranslation } from './tls.ts';

export interface TranslateOptions {
  /** `--ingress-class`: the IngressClass whose Ingresses Portico serves. */
  readonly ingressClass: string;
  /** Addresses published in status (`--publish-status-address`): IPs or hostnames. */
  readonly publishAddresses: readonly string[];
  /** `--default-ssl-certificate` as `namespace/name`. */
  readonly defaultCertificateSecret?: string;
  /** The clock for certificate expiry warnings; the real time when unset (tests fix it). */
  readonly now?: Date;
}

export interface TranslatorState {
  readonly lastGoodIngress: Map<string, KubeObject>;
}

export function newTranslatorState(): TranslatorState {
  return { lastGoodIngress: new Map() };
}

export interface Translation {
  readonly ir: RoutingIR;
  readonly statuses: StatusItem[];
  readonly problems: Problem[];
  readonly tls: TlsTranslation;
}

export function translate(snapshot: SourceSnapshot, options: TranslateOptions, state: TranslatorState): Translation {
  const objects = snapshot.objects.map((s) => s.object);
  const problems: Problem[] = [...snapshot.problems];
  const index = new BackendIndex(objects);
  const builder = new TableBuilder();

  const classSel = selectIngressClass(objects, options.ingressClass);
  const hasIngress = objects.some((o) => o.kind === 'Ingress');
  if (hasIngress) problems.push(...classSel.problems);
  const ingresses = snapshot.objects.filter((s) => isServedIngress(s.object, classSel));
  const secrets = new TlsSecrets(objects, options.now);
  const ing = translateIngresses(ingresses, index, builder, state.lastGoodIngress, (id) => secrets.names(id));
  problems.push(...ing.problems);
  const tls = translateTls(secrets, ing.servedVersions, options.defaultCertificateSecret);
  problems.push(...tls.problems);

  const statuses: StatusItem[] = ing.served.map((o) => ingressStatus(o, options.publishAddresses));
  statuses.sort((a, b) => (a.metadata.namespace + '/' + a.metadata.name < b.metadata.namespace + '/' + b.metadata.name ? -1 : 1));
  return { ir: builder.build(), statuses, problems, tls };
}
