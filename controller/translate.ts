// Source snapshot -> routing IR + statuses + problems. Pure apart from `TranslatorState`, the
// memory of each object's last good version, which the caller keeps between runs.

import type { RouteIR, RoutingIR } from '../router/types.ts';
import { BackendIndex } from './backends.ts';
import { isServedIngress, selectIngressClass, translateIngresses } from './ingress.ts';
import { asArray, asRecord, asString, compareAge, type KubeObject, type Problem, type SourceSnapshot } from './objects.ts';
import { ingressStatus, type StatusItem } from './status.ts';
import { TableBuilder } from './table-builder.ts';
import { TlsSecrets, translateTls, type TlsTranslation } from './tls.ts';
import { storeCertificate, type SocketCertificates } from '../tls/store.ts';
import type { ConditionClock } from './gateway/conditions.ts';
import { DEFAULT_GATEWAY_CONTROLLER, mergeVirtualHosts, translateGatewayApi, type GatewayTranslation, type GatewayVirtualHost, type ListenerBindError } from './gateway/index.ts';

export interface TranslateOptions {
  /** `--ingress-class`: the IngressClass whose Ingresses Portico serves. */
  readonly ingressClass: string;
  /** Addresses published in status (`--publish-status-address`): IPs or hostnames. */
  readonly publishAddresses: readonly string[];
  /** `--default-ssl-certificate` as `namespace/name`. */
  readonly defaultCertificateSecret?: string;
  /** The clock for certificate expiry warnings; the real time when unset (tests fix it). */
  readonly now?: Date;
  /** `--gateway-controller-name`: GatewayClasses with this spec.controllerName are Portico's. */
  readonly gatewayControllerName?: string;
  /** `--ingress-controller-name`: the IngressClass spec.controller that is Portico's (default portico.dev/ingress-controller). */
  readonly ingressControllerName?: string;
  /** The ports Portico serves HTTP and HTTPS on (--http-port, --https-port): Gateway listeners must use them. */
  readonly httpPort?: number;
  readonly httpsPort?: number;
  /**
   * `--bind-address`: with no published addresses, a specific bind address is what Gateway
   * status.addresses reports (the address the listeners are bound to).
   */
  readonly bindAddress?: string;
  /** This machine's interface addresses: a Gateway's spec.addresses may name them (the primary reads them). */
  readonly localAddresses?: readonly string[];
  /**
   * Gateway listener sockets (RoutingIR.listeners keys) the workers report they cannot bind:
   * those listeners are reported PortUnavailable. They stay in the table, so workers keep trying.
   */
  readonly unavailableListeners?: Readonly<Record<string, ListenerBindError>>;
  /** Whether an Ingress without an ssl-redirect annotation redirects its TLS hosts (default true). */
  readonly sslRedirectDefault?: boolean;
}

export interface TranslatorState {
  readonly lastGoodIngress: Map<string, KubeObject>;
  /** Gateway API conditions' last transition times (they move only when a status flips). */
  readonly conditionClock?: ConditionClock;
}

export function newTranslatorState(): TranslatorState {
  return { lastGoodIngress: new Map(), conditionClock: new Map() };
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

  const classSel = selectIngressClass(objects, options.ingressClass, options.ingressControllerName);
  const hasIngress = objects.some((o) => o.kind === 'Ingress');
  if (hasIngress) problems.push(...classSel.problems);
  const ingresses = snapshot.objects.filter((s) => isServedIngress(s.object, classSel));
  const secrets = new TlsSecrets(objects, options.now);
  const ing = translateIngresses(ingresses, index, builder, state.lastGoodIngress, (id) => secrets.names(id), { sslRedirect: options.sslRedirectDefault ?? true });
  problems.push(...ing.problems);
  const tls = translateTls(secrets, ing.servedVersions, options.defaultCertificateSecret);
  problems.push(...tls.problems);

  const gw = translateGatewayApi(
    objects,
    { controllerName: options.gatewayControllerName ?? DEFAULT_GATEWAY_CONTROLLER, httpPort: options.httpPort ?? 80, httpsPort: options.httpsPort ?? 443, addresses: gatewayAddresses(options), ...(options.bindAddress !== undefined ? { bindAddress: options.bindAddress } : {}), ...(options.localAddresses !== undefined ? { localAddresses: options.localAddresses } : {}), ...(options.unavailableListeners !== undefined ? { unavailableListeners: options.unavailableListeners } : {}), now: options.now ?? new Date() },
    index,
    builder,
    secrets,
    state.conditionClock ?? new Map(),
  );
  problems.push(...gw.problems);
  // HTTPS listeners' certificates join the store after the Ingresses' (the first listed wins a shared name).
  const certificates = [...tls.certificates];
  for (const id of gw.certificates) {
    const parsed = secrets.get(id);
    if (parsed.ok && !certificates.some((c) => c.id === id)) certificates.push(storeCertificate(id, parsed));
  }

  const statuses: StatusItem[] = [...ing.served.map((o) => ingressStatus(o, options.publishAddresses)), ...gw.statuses];
  const order = (i: StatusItem): string => `${i.kind === 'Ingress' ? '' : i.kind}|${i.metadata.namespace ?? ''}/${i.metadata.name}`;
  statuses.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  problems.push(...unservedGatewayKinds(objects));
  const shared = oldestClaimsPaths(builder.build(), gw.virtualHosts, objects);
  problems.push(...shared.problems);
  const sockets = tlsSockets(gw.tlsSockets, tls.certificates, ing.served.length > 0);
  return { ir: mergeVirtualHosts(shared.ir, shared.gateway, gw.listeners, gw.ownPortListeners), statuses, problems, tls: { ...tls, certificates, ...(sockets !== undefined ? { sockets } : {}) } };
}

/**
 * Certificate selection per TLS socket, once Gateway HTTPS or TLS listeners exist (without them
 * every socket keeps choosing by certificate names, as Ingress TLS always has). On --https-port
 * the Ingresses' certificates (and the default one) are chosen by their names beside the Gateway
 * listeners: the more specific claim wins, the Ingress's on a tie (its certificates were listed
 * first before listeners chose). Beside TLS Passthrough, a server name nothing on the socket
 * claims is refused, not terminated, unless it is --https-port and some Ingress is served there
 * (ingress-nginx terminates every name on 443, answering unknown hosts from its default server).
 */
function tlsSockets(gw: GatewayTranslation['tlsSockets'], ingressCertificates: readonly { id: string }[], servesIngress: boolean): Record<string, SocketCertificates> | undefined {
  const keys = Object.keys(gw);
  if (keys.length === 0) return undefined;
  const sockets: Record<string, SocketCertificates> = {};
  if (!keys.includes('https')) keys.push('https');
  for (const key of keys.sort()) {
    const s = gw[key] ?? { listeners: [], passthrough: false };
    const main = key === 'https';
    sockets[key] = {
      ...(main ? { byName: ingressCertificates.map((c) => c.id) } : {}),
      listeners: s.listeners,
      ...(s.passthrough && !(main && servesIngress) ? { refuseUnclaimed: true } : {}),
    };
  }
  return sockets;
}

/** The Gateway API kinds Portico reads; any other gateway.networking.k8s.io kind is reported. */
const SERVED_GATEWAY_KINDS = new Set(['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'TLSRoute', 'ReferenceGrant']);

/**
 * Gateway API objects of kinds Portico does not implement (BackendTLSPolicy, TCPRoute, UDPRoute,
 * ListenerSet...) are reported, never ignored without a trace: a BackendTLSPolicy asked for
 * encrypted, verified upstream traffic, and its Services are reached in plain text.
 */
function unservedGatewayKinds(objects: readonly KubeObject[]): Problem[] {
  const out: Problem[] = [];
  for (const o of objects) {
    if (!o.apiVersion.startsWith('gateway.networking.k8s.io/') && !o.apiVersion.startsWith('gateway.networking.x-k8s.io/')) continue;
    if (SERVED_GATEWAY_KINDS.has(o.kind)) continue;
    let message = `${o.kind} is not supported by Portico; it has no effect`;
    if (o.kind === 'BackendTLSPolicy') {
      const targets = asArray(asRecord(o.spec).targetRefs).map((t) => asString(asRecord(t).name)).filter((n): n is string => n !== undefined);
      message = `BackendTLSPolicy is not supported by Portico: ${targets.length > 0 ? `Service ${targets.map((n) => `${o.metadata.namespace ?? 'default'}/${n}`).join(', ')} ${targets.length > 1 ? 'are' : 'is'}` : 'its targets are'} reached without TLS`;
    }
    out.push({ severity: o.kind === 'BackendTLSPolicy' ? 'error' : 'warning', kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name, message });
  }
  return out;
}

/**
 * An Ingress and a Gateway API route that both claim the same path (same host, path and match
 * type, the Gateway route without method, header or query conditions) cannot both serve it: the
 * older object keeps it, as among Ingresses, and the younger loses that path, with a problem
 * naming the holder. Otherwise whichever kind the table lists first would take it silently, and
 * anyone allowed to create an Ingress could take over the paths of a Gateway that restricts its
 * routes' namespaces (or the reverse).
 */
function oldestClaimsPaths(ir: RoutingIR, gateway: readonly GatewayVirtualHost[], objects: readonly KubeObject[]): { ir: RoutingIR; gateway: GatewayVirtualHost[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const byKey = new Map(objects.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));
  const objectOf = (r: RouteIR) => byKey.get(`${r.source.kind}/${r.source.namespace}/${r.source.name}`);
  const unconditioned = (r: RouteIR) => r.method === undefined && (r.headers?.length ?? 0) === 0 && (r.queryParams?.length ?? 0) === 0;
  const lost = new Set<RouteIR>();
  const ingressHosts = new Map(ir.virtualHosts.map((v) => [v.hostname, v]));
  for (const g of gateway) {
    if (g.multiLabelWildcard) continue; // an Ingress wildcard covers one label: another host pattern
    const vh = ingressHosts.get(g.hostname);
    if (vh === undefined) continue;
    for (const gr of g.routes) {
      if (!unconditioned(gr) || gr.pathType === 'RegularExpression') continue;
      for (const ir1 of vh.routes) {
        // An Ingress path's routes with conditions are a canary's (controller/ingress.ts): they
        // stand or fall with the path's unconditioned route.
        if (lost.has(ir1) || !unconditioned(ir1) || ir1.pathType !== gr.pathType || ir1.path !== gr.path) continue;
        const a = objectOf(ir1);
        const b = objectOf(gr);
        if (a === undefined || b === undefined) continue;
        const [winner, loser, loserRoute] = compareAge(a, b) <= 0 ? [a, b, gr] : [b, a, ir1];
        lost.add(loserRoute);
        if (loserRoute === ir1) for (const r of vh.routes) if (r.pathType === ir1.pathType && r.path === ir1.path) lost.add(r);
        problems.push({ severity: 'warning', kind: loser.kind, namespace: loser.metadata.namespace, name: loser.metadata.name, message: `${gr.pathType === 'Exact' ? 'Exact' : 'Prefix'} path ${gr.path} on host ${g.hostname} is served by the older ${winner.kind} ${winner.metadata.namespace ?? ''}/${winner.metadata.name}; not by this ${loser.kind}` });
        break;
      }
    }
  }
  if (lost.size === 0) return { ir, gateway: [...gateway], problems };
  return {
    ir: { ...ir, virtualHosts: ir.virtualHosts.map((v) => (v.routes.some((r) => lost.has(r)) ? { ...v, routes: v.routes.filter((r) => !lost.has(r)) } : v)) },
    gateway: gateway.map((g) => (g.routes.some((r) => lost.has(r)) ? { ...g, routes: g.routes.filter((r) => !lost.has(r)) } : g)),
    problems,
  };
}

/** Gateway status.addresses: the published addresses, else a specific --bind-address. */
function gatewayAddresses(options: TranslateOptions): readonly string[] {
  if (options.publishAddresses.length > 0) return options.publishAddresses;
  const bind = options.bindAddress;
  return bind === undefined || bind === '0.0.0.0' || bind === '::' ? [] : [bind];
}
