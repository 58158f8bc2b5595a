// Gateway API translation (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant) over the same
// snapshot the Ingress translator reads. Returns its virtual hosts, the Secrets its HTTPS
// listeners use, and status as data; translate.ts merges them into one table.

import type { ListenerIR, ListenerRefIR, PassthroughRouteIR, RoutingIR, RouteIR, VirtualHostIR } from '../../router/types.ts';
import type { BackendIndex } from '../backends.ts';
import { compareAge, type KubeObject, type Problem } from '../objects.ts';
import type { StatusItem } from '../status.ts';
import type { TlsSecrets } from '../tls.ts';
import { ConditionStamper, observedConditions, type ConditionClock } from './conditions.ts';
import { evaluateGateways, listenerConditions, ownClasses, ownSocketOf, SUPPORTED_FEATURES, type GatewayModel, type ListenerBindError, type ListenerModel } from './gateways.ts';
import { KindClaims, serviceBeforeMethod } from './grpcroute.ts';
import { translateHTTPRoute } from './httproute.ts';
import { refuseUnroutedNames, translateTLSRoute, type PassthroughSink } from './tlsroute.ts';
import { GATEWAY_GROUP, NamespaceLabels, ReferenceGrants } from './refs.ts';

export { DEFAULT_GATEWAY_CONTROLLER, type ListenerBindError } from './gateways.ts';

export interface GatewayTranslateOptions {
  readonly controllerName: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  /** Published addresses (Gateway status.addresses). */
  readonly addresses: readonly string[];
  /** --bind-address, and this machine's addresses (spec.addresses may name them). */
  readonly bindAddress?: string;
  readonly localAddresses?: readonly string[];
  /** Listener sockets the workers cannot bind, by RoutingIR listener key (the primary collects them). */
  readonly unavailableListeners?: Readonly<Record<string, ListenerBindError>>;
  readonly now: Date;
}

export interface GatewayVirtualHost {
  readonly hostname: string;
  readonly multiLabelWildcard: boolean;
  readonly routes: RouteIR[];
}

export interface GatewayTranslation {
  readonly virtualHosts: GatewayVirtualHost[];
  /** Valid Secrets (`ns/name`) of programmed HTTPS listeners, oldest Gateway first. */
  readonly certificates: string[];
  /**
   * Per TLS socket (`https` for --https-port, else a ListenerIR key): its programmed HTTPS
   * listeners' hostnames and certificates (the handshake's certificate is the SNI's listener's),
   * and whether TLS Passthrough listeners share it.
   */
  readonly tlsSockets: Record<string, { listeners: { hostname: string; certificates: string[] }[]; passthrough: boolean }>;
  readonly statuses: StatusItem[];
  readonly problems: Problem[];
  /** Programmed HTTP/HTTPS listeners, for listener isolation (RoutingIR.gatewayListeners). */
  readonly listeners: ListenerRefIR[];
  /** Programmed HTTP/HTTPS listeners on ports other than Portico's two, with their routes. */
  readonly ownPortListeners: ListenerIR[];
}

export function translateGatewayApi(objects: readonly KubeObject[], options: GatewayTranslateOptions, index: BackendIndex, sink: PassthroughSink, secrets: TlsSecrets, clock: ConditionClock): GatewayTranslation {
  const stamper = new ConditionStamper(clock, options.now);
  const statuses: StatusItem[] = [];
  const problems: Problem[] = [];
  const classes = ownClasses(objects, options.controllerName);
  for (const c of classes) {
    statuses.push({ apiVersion: c.object.apiVersion, kind: 'GatewayClass', metadata: { name: c.object.metadata.name, generation: c.object.metadata.generation }, status: { conditions: stamper.stamp(`GatewayClass/${c.object.metadata.name}`, c.object.metadata.generation, c.conditions, observedConditions(c.object)), supportedFeatures: SUPPORTED_FEATURES.map((name) => ({ name })) } });
  }
  const grants = new ReferenceGrants(objects);
  const gateways = evaluateGateways(objects, new Set(classes.filter((c) => c.accepted).map((c) => c.object.metadata.name)), {
    controllerName: options.controllerName,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    addresses: options.addresses,
    ...(options.bindAddress !== undefined ? { bindAddress: options.bindAddress } : {}),
    ...(options.localAddresses !== undefined ? { localAddresses: options.localAddresses } : {}),
    ...(options.unavailableListeners !== undefined ? { unavailable: options.unavailableListeners } : {}),
    namespaces: new NamespaceLabels(objects),
    grants,
    secrets,
  });
  const byKey = new Map<string, GatewayModel>(gateways.map((g) => [g.key, g]));

  const hosts = new Map<string, GatewayVirtualHost>();
  // Routes of listeners with sockets of their own, by socket: `:port` for a port of its own on
  // --bind-address, `address:port` for a Gateway's spec.addresses IP.
  const portHosts = new Map<string, Map<string, GatewayVirtualHost>>();
  // HTTPRoutes and GRPCRoutes share listeners and the table: oldest first across both kinds.
  const routes = objects.filter((o) => (o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute') && o.apiVersion.startsWith(`${GATEWAY_GROUP}/`)).sort(compareAge);
  const claims = new KindClaims();
  for (const route of routes) {
    const result = translateHTTPRoute(route, byKey, index, grants, sink, claims);
    // Oldest route first, then rule and match order: the compiler keeps IR order among equals.
    for (const e of result.entries) {
      const hostname = e.hostname ?? '*';
      const multi = hostname.startsWith('*.');
      const key = `${multi ? '~' : ''}${hostname}`;
      const port = e.route.listener?.port;
      const address = e.route.listener?.address;
      let table = hosts;
      if (port !== undefined && (address !== undefined || (port !== options.httpPort && port !== options.httpsPort))) {
        const socket = `${address ?? ''}:${port}`;
        table = portHosts.get(socket) ?? new Map();
        portHosts.set(socket, table);
      }
      let vh = table.get(key);
      if (vh === undefined) table.set(key, (vh = { hostname, multiLabelWildcard: multi, routes: [] }));
      vh.routes.push(e.route);
    }
    if (result.parents.length === 0) continue;
    const ns = route.metadata.namespace ?? 'default';
    statuses.push({
      apiVersion: route.apiVersion,
      kind: route.kind,
      metadata: { namespace: ns, name: route.metadata.name, generation: route.metadata.generation },
      status: {
        parents: result.parents.map((p) => ({
          parentRef: p.parentRef,
          controllerName: options.controllerName,
          conditions: stamper.stamp(`${route.kind}/${ns}/${route.metadata.name}|${JSON.stringify(p.parentRef)}`, route.metadata.generation, p.conditions, observedParent(route, p.parentRef, options.controllerName)),
        })),
      },
    });
  }

  for (const vh of hosts.values()) vh.routes.push(...serviceBeforeMethod(vh.routes));
  for (const t of portHosts.values()) for (const vh of t.values()) vh.routes.push(...serviceBeforeMethod(vh.routes));

  // TLS Passthrough entries of listeners on sockets of their own, by socket; those of --https-port
  // go to the table's (`sink`), shared with Ingress ssl-passthrough. A hostname is owned per socket.
  const ownSocket = (l: ListenerModel): string | undefined => ownSocketOf(l, options.httpPort, options.httpsPort);
  const socketPassthrough = new Map<string, PassthroughRouteIR[]>();
  const entriesOf = (socket: string): PassthroughRouteIR[] => {
    let list = socketPassthrough.get(socket);
    if (list === undefined) socketPassthrough.set(socket, (list = []));
    return list;
  };
  const socketSink = (socket: string): PassthroughSink => ({
    addBackend: (key, backend) => sink.addBackend(key, backend),
    addPassthrough: (route) => void entriesOf(socket).push(route),
    passthroughOwner: (hostname, multi) => entriesOf(socket).find((p) => p.hostname === hostname && (p.multiLabelWildcard === true) === multi),
  });
  const tlsSink: PassthroughSink = {
    addBackend: (key, backend) => sink.addBackend(key, backend),
    addPassthrough: (route, listener) => {
      const socket = listener === undefined ? undefined : ownSocket(listener);
      if (socket === undefined) sink.addPassthrough(route);
      else socketSink(socket).addPassthrough(route);
    },
    passthroughOwner: (hostname, multi, listener) => {
      const socket = listener === undefined ? undefined : ownSocket(listener);
      return socket === undefined ? sink.passthroughOwner(hostname, multi) : socketSink(socket).passthroughOwner(hostname, multi);
    },
  };

  // TLSRoutes: SNI passthrough entries, oldest first (an older Ingress or route keeps a hostname).
  const tlsRoutes = objects.filter((o) => o.kind === 'TLSRoute' && o.apiVersion.startsWith(`${GATEWAY_GROUP}/`)).sort(compareAge);
  for (const route of tlsRoutes) {
    const result = translateTLSRoute(route, byKey, index, grants, tlsSink);
    if (result.parents.length === 0) continue;
    const ns = route.metadata.namespace ?? 'default';
    statuses.push({
      apiVersion: route.apiVersion,
      kind: 'TLSRoute',
      metadata: { namespace: ns, name: route.metadata.name, generation: route.metadata.generation },
      status: {
        parents: result.parents.map((p) => ({
          parentRef: p.parentRef,
          controllerName: options.controllerName,
          conditions: stamper.stamp(`TLSRoute/${ns}/${route.metadata.name}|${JSON.stringify(p.parentRef)}`, route.metadata.generation, p.conditions, observedParent(route, p.parentRef, options.controllerName)),
        })),
      },
    });
  }

  // Names under a TLS listener's hostname that no TLSRoute routes are refused: on --https-port
  // (beside Ingress hosts), and on each socket of its own with HTTPS and TLS listeners (only its
  // own HTTPS listeners are terminated there). A socket with TLS listeners only refuses every
  // name it does not pass through by itself (ListenerIR protocol TLS).
  const only = (keep: (l: ListenerModel) => boolean): GatewayModel[] => gateways.map((g) => ({ ...g, listeners: g.listeners.filter(keep) }));
  problems.push(...refuseUnroutedNames(only((l) => ownSocket(l) === undefined), objects, sink));
  const socketProtocols = new Map<string, Set<string>>();
  for (const g of gateways) for (const l of g.listeners) {
    const socket = ownSocket(l);
    if (socket !== undefined && l.programmed) socketProtocols.set(socket, (socketProtocols.get(socket) ?? new Set()).add(l.protocol));
  }
  for (const [socket, protocols] of socketProtocols) {
    if (protocols.has('TLS') && protocols.has('HTTPS')) problems.push(...refuseUnroutedNames(only((l) => ownSocket(l) === socket), [], socketSink(socket)));
  }

  const certificates: string[] = [];
  const tlsSockets: GatewayTranslation['tlsSockets'] = {};
  const listenerRefs: ListenerRefIR[] = [];
  const ownPorts = new Map<string, { address: string; port: number; protocol: 'HTTP' | 'HTTPS' | 'TLS'; refs?: ListenerRefIR[] }>();
  for (const g of gateways) {
    const gen = g.object.metadata.generation;
    const listeners = g.listeners.map((l) => ({
      name: l.name,
      supportedKinds: l.supportedKinds,
      attachedRoutes: l.attachedRoutes,
      conditions: stamper.stamp(`Gateway/${g.key}|listener ${l.name}`, gen, listenerConditions(l), observedConditions(g.object, (st) => (Array.isArray(st.listeners) ? st.listeners.find((x) => (x as { name?: unknown })?.name === l.name) : undefined))),
    }));
    for (const l of g.listeners) if (l.programmed) for (const id of l.certificates) if (!certificates.includes(id)) certificates.push(id);
    for (const l of g.listeners) {
      if (!l.programmed || (l.protocol !== 'HTTPS' && l.protocol !== 'TLS')) continue;
      const key = ownSocket(l) ?? 'https';
      const entry = (tlsSockets[key] ??= { listeners: [], passthrough: false });
      if (l.protocol === 'TLS') entry.passthrough = true;
      // Gateways come oldest first and a hostname is one listener's per socket (else Conflicted): the first keeps it.
      else if (l.certificates.length > 0 && !entry.listeners.some((x) => x.hostname === (l.hostname ?? ''))) entry.listeners.push({ hostname: l.hostname ?? '', certificates: [...l.certificates] });
    }
    statuses.push({
      apiVersion: g.object.apiVersion,
      kind: 'Gateway',
      metadata: { namespace: g.object.metadata.namespace, name: g.object.metadata.name, generation: gen },
      status: { addresses: g.addresses, conditions: stamper.stamp(`Gateway/${g.key}`, gen, g.gatewayConditions(), observedConditions(g.object)), listeners },
    });
    for (const l of g.listeners) {
      if (!l.programmed || (l.protocol !== 'HTTP' && l.protocol !== 'HTTPS' && l.protocol !== 'TLS')) continue;
      const protocol = l.protocol as 'HTTP' | 'HTTPS' | 'TLS';
      // A socket of its own (a port other than Portico's two, or the Gateway's own address): one
      // per address and port, which belongs to one Gateway (so one protocol, or HTTPS and TLS).
      const socket = ownSocket(l);
      if (socket !== undefined) {
        // A socket on the Gateway's own address has only this Gateway's listeners behind it.
        const entry = ownPorts.get(socket) ?? { address: l.address ?? '', port: l.port, protocol, ...(l.address !== undefined ? { refs: [] } : {}) };
        // HTTPS beside TLS Passthrough: what is not passed through is terminated.
        if (protocol === 'HTTPS') entry.protocol = 'HTTPS';
        ownPorts.set(socket, entry);
      }
      // TLS Passthrough listeners route by SNI only: no HTTP listener isolation applies to them.
      if (protocol === 'TLS') continue;
      if (l.address !== undefined) {
        if (!ownPorts.get(socket!)!.refs!.some((x) => x.hostname === (l.hostname ?? ''))) ownPorts.get(socket!)!.refs!.push({ port: l.port, hostname: l.hostname ?? '', address: l.address });
        continue;
      }
      if (!listenerRefs.some((x) => x.port === l.port && x.hostname === (l.hostname ?? ''))) listenerRefs.push({ port: l.port, hostname: l.hostname ?? '' });
    }
  }
  stamper.sweep();
  const virtualHosts = [...hosts.values()].sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  listenerRefs.sort((a, b) => a.port - b.port || (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  const byHostname = (a: PassthroughRouteIR, b: PassthroughRouteIR): number => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : (a.multiLabelWildcard ? 1 : 0) - (b.multiLabelWildcard ? 1 : 0));
  const byName = (a: GatewayVirtualHost, b: GatewayVirtualHost): number => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : (a.multiLabelWildcard ? 1 : 0) - (b.multiLabelWildcard ? 1 : 0));
  const ownPortListeners: ListenerIR[] = [...ownPorts].sort(([, a], [, b]) => a.port - b.port || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)).map(([key, l]) => ({
    // '' binds --bind-address; an address is a Gateway's spec.addresses IP of this machine.
    key,
    address: l.address,
    port: l.port,
    protocol: l.protocol,
    virtualHosts: [...(portHosts.get(key)?.values() ?? [])].sort(byName).map((g) => ({ hostname: g.hostname, ...(g.multiLabelWildcard ? { multiLabelWildcard: true } : {}), routes: g.routes })),
    ...(l.refs !== undefined ? { gatewayListeners: l.refs.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0)) } : {}),
    ...(socketPassthrough.get(key)?.length ? { passthrough: [...socketPassthrough.get(key)!].sort(byHostname) } : {}),
  }));
  return { virtualHosts, certificates, tlsSockets, statuses, problems, listeners: listenerRefs, ownPortListeners };
}

/** Adds Gateway virtual hosts to the Ingress ones: same host and wildcard kind share one, Ingress routes first. */
export function mergeVirtualHosts(ir: RoutingIR, extra: readonly GatewayVirtualHost[], listeners: readonly ListenerRefIR[] = [], ownPortListeners: readonly ListenerIR[] = []): RoutingIR {
  if (listeners.length > 0) ir = { ...ir, gatewayListeners: listeners };
  if (ownPortListeners.length > 0) ir = { ...ir, listeners: ownPortListeners };
  if (extra.length === 0) return ir;
  const out: VirtualHostIR[] = [...ir.virtualHosts];
  for (const g of extra) {
    const multi = g.multiLabelWildcard;
    const i = out.findIndex((v) => v.hostname === g.hostname && (v.multiLabelWildcard === true) === multi);
    if (i >= 0) out[i] = { ...out[i], routes: [...out[i].routes, ...g.routes] };
    else out.push({ hostname: g.hostname, ...(multi ? { multiLabelWildcard: true } : {}), routes: g.routes });
  }
  out.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : (a.multiLabelWildcard ? 1 : 0) - (b.multiLabelWildcard ? 1 : 0)));
  return { ...ir, virtualHosts: out };
}

/** The conditions a route's status holds for one of Portico's parents (as Portico wrote them). */
function observedParent(route: KubeObject, parentRef: Record<string, unknown>, controllerName: string): unknown {
  const ns = route.metadata.namespace ?? 'default';
  const key = (r: Record<string, unknown>) => `${r.namespace ?? ns}/${r.name}/${r.sectionName ?? ''}/${r.port ?? ''}`;
  const want = key(parentRef);
  return observedConditions(route, (st) => (Array.isArray(st.parents) ? st.parents.find((p) => {
    const e = p as { controllerName?: unknown; parentRef?: unknown };
    return e !== null && typeof e === 'object' && e.controllerName === controllerName && e.parentRef !== null && typeof e.parentRef === 'object' && key(e.parentRef as Record<string, unknown>) === want;
  }) : undefined));
}
