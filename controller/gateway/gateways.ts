// GatewayClass and Gateway -> the listeners Portico serves, with their conditions. Listeners on
// --http-port and --https-port share Portico's main sockets; any other port (or a Gateway's own
// spec.addresses IP) is a socket of its own that every worker binds (RoutingIR.listeners).

import { isIP } from 'node:net';
import { asArray, asRecord, asString, compareAge, type KubeObject } from '../objects.ts';
import type { TlsSecrets } from '../tls.ts';
import { cond, type ConditionInput } from './conditions.ts';
import { validGatewayHostname } from './hostnames.ts';
import { GATEWAY_GROUP, labelSelector, type NamespaceLabels, type ReferenceGrants } from './refs.ts';

export const DEFAULT_GATEWAY_CONTROLLER = 'portico.dev/gateway-controller';

export interface RouteKind {
  readonly group: string;
  readonly kind: string;
}

/** Route kinds Portico serves per listener protocol. */
const SERVED_KINDS: Record<string, readonly string[]> = { HTTP: ['HTTPRoute', 'GRPCRoute'], HTTPS: ['HTTPRoute', 'GRPCRoute'], TLS: ['TLSRoute'] };

export interface ListenerModel {
  readonly gateway: KubeObject;
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  readonly hostname: string | undefined;
  accepted: boolean;
  /** Routes attached to it are put in the table. */
  programmed: boolean;
  readonly supportedKinds: RouteKind[];
  allowsNamespace: (ns: string) => boolean;
  attachedRoutes: number;
  /** Valid certificate Secrets (`ns/name`) of an HTTPS listener. */
  readonly certificates: string[];
  accept?: ConditionInput;
  conflict?: ConditionInput;
  refs: ConditionInput[];
  /** The Gateway's spec.addresses IP this listener has a socket of its own on (not --bind-address). */
  address?: string;
  /**
   * The workers cannot bind this listener's socket (ListenerBindError): it stays in the table,
   * so the workers keep trying and serve it once they can, but it is not Accepted nor Programmed.
   */
  bindError?: ListenerBindError;
}

/**
 * Why the workers cannot bind a listener's socket (a port taken by another process, an address
 * not on this host, a privileged port): an input of translation, as the workers reported it.
 */
export interface ListenerBindError {
  /** The errno code, e.g. EADDRINUSE, EADDRNOTAVAIL, EACCES. */
  readonly code: string;
  readonly message: string;
}

/** The key of a listener's socket, as RoutingIR.listeners has it: `address:port`, `:port` for --bind-address. */
export const socketKeyOf = (address: string | undefined, port: number): string => `${address ?? ''}:${port}`;

/** The socket of its own a listener is served on (its key), or undefined on --http-port/--https-port. */
export function ownSocketOf(l: Pick<ListenerModel, 'address' | 'port'>, httpPort: number, httpsPort: number): string | undefined {
  return l.address !== undefined || (l.port !== httpPort && l.port !== httpsPort) ? socketKeyOf(l.address, l.port) : undefined;
}

export interface GatewayModel {
  readonly object: KubeObject;
  readonly key: string;
  readonly listeners: ListenerModel[];
  readonly gatewayConditions: () => ConditionInput[];
  readonly addresses: { type: string; value: string }[];
}

export interface GatewayContext {
  readonly controllerName: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly addresses: readonly string[];
  /** --bind-address: a wildcard one already receives every local address. */
  readonly bindAddress?: string;
  /** Addresses of this machine's interfaces, which a Gateway's spec.addresses may name. */
  readonly localAddresses?: readonly string[];
  readonly namespaces: NamespaceLabels;
  readonly grants: ReferenceGrants;
  readonly secrets: TlsSecrets;
  /** Sockets of listeners the workers cannot bind, by socket key (socketKeyOf). */
  readonly unavailable?: Readonly<Record<string, ListenerBindError>>;
}

const isGatewayApi = (o: KubeObject, kind: string): boolean => o.kind === kind && o.apiVersion.startsWith(`${GATEWAY_GROUP}/`);

/**
 * GatewayClass status.supportedFeatures: only features whose scenarios Portico's own suites run
 * and pass (test/e2e-gateway*.test.ts), on both HTTP/1.1 engines; sorted, as the spec asks.
 */
export const SUPPORTED_FEATURES: readonly string[] = [
  'GRPCRoute', 'Gateway', 'GatewayHTTPListenerIsolation', 'GatewayHTTPSListenerDetectMisdirectedRequests', 'GatewayPort8080', 'HTTPRoute', 'HTTPRoute303RedirectStatusCode', 'HTTPRoute307RedirectStatusCode', 'HTTPRoute308RedirectStatusCode',
  'HTTPRouteBackendProtocolH2C', 'HTTPRouteBackendProtocolWebSocket', 'HTTPRouteBackendRequestHeaderModification', 'HTTPRouteBackendTimeout', 'HTTPRouteCORS', 'HTTPRouteHostRewrite',
  'HTTPRouteMethodMatching', 'HTTPRouteNamedRouteRule', 'HTTPRouteParentRefPort', 'HTTPRoutePathRedirect',
  'HTTPRoutePathRewrite', 'HTTPRoutePortRedirect', 'HTTPRouteQueryParamMatching', 'HTTPRouteRequestMirror', 'HTTPRouteRequestMultipleMirrors',
  'HTTPRouteRequestPercentageMirror', 'HTTPRouteRequestTimeout', 'HTTPRouteResponseHeaderModification',
  'HTTPRouteSchemeRedirect', 'ReferenceGrant', 'TLSRoute',
];

/** GatewayClasses naming Portico's controller, with their conditions; the others are not ours to report on. */
export function ownClasses(objects: readonly KubeObject[], controllerName: string): { object: KubeObject; accepted: boolean; conditions: ConditionInput[] }[] {
  return objects
    .filter((o) => isGatewayApi(o, 'GatewayClass') && asString(asRecord(o.spec).controllerName) === controllerName)
    .map((object) => {
      const params = asRecord(object.spec).parametersRef;
      const accepted = params === undefined || params === null;
      return {
        object,
        accepted,
        conditions: [
          accepted ? cond('Accepted', true, 'Accepted') : cond('Accepted', false, 'InvalidParameters', 'Portico takes no GatewayClass parameters; remove spec.parametersRef'),
          cond('SupportedVersion', true, 'SupportedVersion'),
        ],
      };
    });
}

/** HTTPS (terminated) and TLS (passthrough) listeners share a port: the SNI tells them apart. */
const isTlsProtocol = (p: string) => p === 'HTTPS' || p === 'TLS';

function parsePort(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined;
}

/** Evaluates every Gateway of an accepted Portico class; older Gateways claim shared ports first. */
export function evaluateGateways(objects: readonly KubeObject[], classes: ReadonlySet<string>, ctx: GatewayContext): GatewayModel[] {
  const gateways = objects.filter((o) => isGatewayApi(o, 'Gateway') && classes.has(asString(asRecord(o.spec).gatewayClassName) ?? '')).sort(compareAge);
  const portOwner: PortOwners = new Map();
  return gateways.map((gw) => evaluateGateway(gw, ctx, portOwner));
}

/** An address of this machine (any 127.x.x.x once a loopback interface exists, as Linux binds them). */
function isLocalAddress(ctx: GatewayContext, ip: string): boolean {
  const local = ctx.localAddresses ?? [];
  if (local.includes(ip)) return true;
  return isIP(ip) === 4 && ip.startsWith('127.') && local.some((a) => a.startsWith('127.'));
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/**
 * The spec.addresses IP the Gateway's listeners get sockets of their own on: a local address that
 * is not one already served. With a wildcard --bind-address every local address is served by
 * the listeners Portico has anyway, so none is needed.
 */
function ownAddressOf(spec: Record<string, unknown>, ctx: GatewayContext): string | undefined {
  if (WILDCARD.has(ctx.bindAddress ?? '')) return undefined;
  for (const raw of asArray(spec.addresses)) {
    const a = asRecord(raw);
    const value = asString(a.value);
    if ((asString(a.type) ?? 'IPAddress') !== 'IPAddress' || value === undefined || isIP(value) === 0) continue;
    if (value === ctx.bindAddress || ctx.addresses.includes(value)) continue;
    if (isLocalAddress(ctx, value)) return value;
  }
  return undefined;
}

/** The Gateway that holds each socket (`address|port`), and the protocols its listeners serve there. */
type PortOwners = Map<string, { key: string; protocols: Set<string> }>;

function evaluateGateway(gw: KubeObject, ctx: GatewayContext, portOwner: PortOwners): GatewayModel {
  const ns = gw.metadata.namespace ?? 'default';
  const key = `${ns}/${gw.metadata.name}`;
  const spec = asRecord(gw.spec);
  // Listeners on an address of their own share no socket with other Gateways': ports are owned per address.
  const ownAddress = ownAddressOf(spec, ctx);
  // A Gateway asking for an address Portico cannot serve is not programmed: it serves nothing and
  // holds no port another Gateway could use.
  const usable = (value: string) => ctx.addresses.includes(value) || (isIP(value) !== 0 && isLocalAddress(ctx, value));
  const unusableAddress = asArray(spec.addresses).some((raw) => {
    const a = asRecord(raw);
    const type = asString(a.type) ?? 'IPAddress';
    const value = asString(a.value);
    return (type === 'IPAddress' || type === 'Hostname') && value !== undefined && value !== '' && !usable(value);
  });
  // A Gateway that cannot be accepted (parameters Portico does not take, an address type it does
  // not serve) serves nothing and holds no port either.
  const infraRef = asRecord(spec.infrastructure).parametersRef;
  const rejected = (infraRef !== undefined && infraRef !== null) || asArray(spec.addresses).some((raw) => !['IPAddress', 'Hostname'].includes(asString(asRecord(raw).type) ?? 'IPAddress'));
  const socketKey = (port: number) => `${ownAddress ?? ''}|${port}`;
  const listeners: ListenerModel[] = asArray(spec.listeners).map((raw) => parseListener(gw, ns, asRecord(raw), ctx, ownAddress !== undefined));

  // Distinctness within the Gateway (HTTP/HTTPS: port, protocol, hostname). Indistinct listeners
  // are all refused: the spec forbids picking a winner.
  const byPort = new Map<number, ListenerModel[]>();
  for (const l of listeners) if (l.port > 0) byPort.set(l.port, [...(byPort.get(l.port) ?? []), l]);
  for (const group of byPort.values()) {
    const protocols = new Set(group.map((l) => l.protocol));
    for (const l of group) {
      // HTTPS (terminated) and TLS Passthrough listeners share a port: the SNI tells them apart.
      const compatible = protocols.size === 2 && protocols.has('HTTPS') && protocols.has('TLS');
      if (protocols.size > 1 && !compatible) l.conflict = cond('Conflicted', true, 'ProtocolConflict', `port ${l.port} has listeners of protocols ${[...protocols].sort().join(', ')}`);
      else if (group.some((o) => o !== l && (o.hostname ?? '') === (l.hostname ?? ''))) l.conflict = cond('Conflicted', true, 'HostnameConflict', `another listener on port ${l.port} has the same hostname ${l.hostname ?? '(none)'}`);
    }
  }
  for (const l of listeners) {
    if (l.conflict !== undefined && l.accept === undefined) l.accept = cond('Accepted', false, l.conflict.reason, l.conflict.message);
  }
  // One address (manifest mode, or every Gateway published at one Service address): a socket
  // belongs to the oldest Gateway that uses it. Two Gateways are not merged silently (issue 11):
  // a younger Gateway's listener there is Conflicted, and the older keeps serving.
  const claimedHere: ListenerModel[] = [];
  for (const l of listeners) {
    if (l.accept !== undefined || unusableAddress || rejected) continue;
    const owner = portOwner.get(socketKey(l.port));
    if (owner !== undefined && owner.key !== key) {
      const sameFamily = owner.protocols.has(l.protocol) || (isTlsProtocol(l.protocol) && [...owner.protocols].some(isTlsProtocol));
      const message = `port ${l.port} is already served by the older Gateway ${owner.key}`;
      l.conflict = cond('Conflicted', true, sameFamily ? 'HostnameConflict' : 'ProtocolConflict', message);
      l.accept = cond('Accepted', false, 'PortUnavailable', message);
      continue;
    }
    claimedHere.push(l);
  }
  for (const l of claimedHere) {
    const entry = portOwner.get(socketKey(l.port)) ?? { key, protocols: new Set<string>() };
    entry.protocols.add(l.protocol);
    portOwner.set(socketKey(l.port), entry);
  }
  if (ownAddress !== undefined) for (const l of listeners) if (l.protocol === 'HTTP' || l.protocol === 'HTTPS' || l.protocol === 'TLS') l.address = ownAddress;
  for (const l of listeners) {
    l.accepted = l.accept === undefined;
    l.programmed = l.accepted && !unusableAddress && !rejected && !l.refs.some((r) => r.reason === 'InvalidCertificateRef' || r.reason === 'RefNotPermitted');
    // Only sockets of their own can fail to bind: the main ports failing stops Portico.
    const own = ownSocketOf(l, ctx.httpPort, ctx.httpsPort);
    const failed = l.programmed && own !== undefined ? ctx.unavailable?.[own] : undefined;
    if (failed !== undefined) l.bindError = { code: failed.code, message: `port ${l.port} on ${l.address ?? (ctx.bindAddress || '0.0.0.0')} cannot be bound: ${failed.message}` };
  }

  // Addresses: Portico's published addresses; spec.addresses may only name one of them.
  const published = ctx.addresses.map((a) => ({ type: isIP(a) ? 'IPAddress' : 'Hostname', value: a }));
  let addressProblem: ConditionInput | undefined;
  let addressUnusable: ConditionInput | undefined;
  // spec.addresses: each must be one Portico serves on; one without a value asks for any (it
  // gets the published ones). Status then lists the requested ones, else the published ones.
  const requested: { type: string; value: string }[] = [];
  let wantsAny = false;
  for (const raw of asArray(spec.addresses)) {
    const a = asRecord(raw);
    const type = asString(a.type) ?? 'IPAddress';
    const value = asString(a.value);
    if (type !== 'IPAddress' && type !== 'Hostname') addressProblem ??= cond('Accepted', false, 'UnsupportedAddress', `address type ${type} is not supported`);
    else if (value === undefined || value === '') wantsAny = true;
    else if (!usable(value)) addressUnusable ??= cond('Programmed', false, 'AddressNotUsable', `Portico serves on ${ctx.addresses.join(', ') || '(no published address)'} and the addresses of this machine, not ${value}`);
    else if (!requested.some((r) => r.value === value)) requested.push({ type, value });
  }
  const addresses = requested.length > 0 && !wantsAny ? requested : published;
  const infra = infraRef;
  const gatewayConditions = (): ConditionInput[] => {
    // A listener whose socket cannot be bound is not accepted, but its Gateway still is (it is
    // served once the socket can be bound): Programmed=False says what is missing.
    const valid = listeners.filter((l) => l.accepted);
    const unbound = valid.filter((l) => l.bindError !== undefined).length;
    const invalid = listeners.length - valid.length + unbound;
    let accepted: ConditionInput;
    if (infra !== undefined && infra !== null) accepted = cond('Accepted', false, 'InvalidParameters', 'Portico takes no infrastructure parameters; remove spec.infrastructure.parametersRef');
    else if (addressProblem !== undefined) accepted = addressProblem;
    else if (listeners.length > 0 && valid.length === 0) accepted = cond('Accepted', false, 'ListenersNotValid', 'no listener is valid');
    else if (invalid > 0) accepted = cond('Accepted', true, 'ListenersNotValid', `${invalid} of ${listeners.length} listeners are not valid${unbound > 0 ? ` (${unbound} cannot be bound)` : ''}`);
    else accepted = cond('Accepted', true, 'Accepted');
    let programmed: ConditionInput;
    if (accepted.status === 'False') programmed = cond('Programmed', false, 'Invalid', 'the Gateway is not accepted');
    else if (addressUnusable !== undefined) programmed = addressUnusable;
    else if (!listeners.some((l) => l.programmed && l.bindError === undefined)) {
      const failed = listeners.filter((l) => l.programmed && l.bindError !== undefined);
      // The Gateway's own address cannot be bound (gone from this host): the spec's AddressNotUsable.
      const addressGone = failed.find((l) => l.address !== undefined && l.bindError?.code === 'EADDRNOTAVAIL');
      if (addressGone !== undefined) programmed = cond('Programmed', false, 'AddressNotUsable', addressGone.bindError!.message);
      else if (failed.length > 0) programmed = cond('Programmed', false, 'Invalid', `no listener is programmed: ${failed.map((l) => `${l.name}: ${l.bindError!.message}`).join('; ')}`);
      else programmed = cond('Programmed', false, 'Invalid', 'no listener is programmed');
    } else programmed = cond('Programmed', true, 'Programmed');
    return [accepted, programmed];
  };
  return { object: gw, key, listeners, gatewayConditions, addresses };
}

/** `ownAddress`: the Gateway's listeners get sockets of their own on its address, Portico's two ports included. */
function parseListener(gw: KubeObject, ns: string, l: Record<string, unknown>, ctx: GatewayContext, ownAddress: boolean): ListenerModel {
  const name = asString(l.name) ?? '';
  const port = parsePort(l.port) ?? 0;
  const protocol = asString(l.protocol) ?? '';
  const rawHost = asString(l.hostname);
  const hostname = rawHost === undefined || rawHost === '' ? undefined : rawHost.toLowerCase();
  const model: ListenerModel = {
    gateway: gw,
    name,
    port,
    protocol,
    hostname,
    accepted: false,
    programmed: false,
    supportedKinds: [],
    allowsNamespace: () => false,
    attachedRoutes: 0,
    certificates: [],
    refs: [],
  };
  const served = SERVED_KINDS[protocol];
  if (served === undefined) {
    model.accept = cond('Accepted', false, 'UnsupportedProtocol', `protocol ${protocol || '(none)'} is not served by Portico (HTTP, HTTPS and TLS Passthrough are)`);
    return model;
  }
  // allowedRoutes.kinds: only kinds Portico serves on this protocol are supported.
  const allowed = asRecord(l.allowedRoutes);
  const kinds = allowed.kinds === undefined ? served.map((kind) => ({ group: GATEWAY_GROUP, kind })) : asArray(allowed.kinds).map((k) => ({ group: asString(asRecord(k).group) ?? GATEWAY_GROUP, kind: asString(asRecord(k).kind) ?? '' }));
  const invalidKinds = kinds.filter((k) => k.group !== GATEWAY_GROUP || !served.includes(k.kind));
  for (const k of kinds) if (!invalidKinds.includes(k) && !model.supportedKinds.some((s) => s.kind === k.kind)) model.supportedKinds.push(k);
  if (invalidKinds.length > 0) model.refs.push(cond('ResolvedRefs', false, 'InvalidRouteKinds', `route kinds not supported on ${protocol}: ${invalidKinds.map((k) => `${k.group}/${k.kind}`).join(', ')}`));

  const from = asString(asRecord(allowed.namespaces).from) ?? 'Same';
  if (from === 'Same') model.allowsNamespace = (routeNs) => routeNs === ns;
  else if (from === 'All') model.allowsNamespace = () => true;
  else if (from === 'Selector') {
    const test = labelSelector(asRecord(allowed.namespaces).selector);
    model.allowsNamespace = test === undefined ? () => false : (routeNs) => test(ctx.namespaces.of(routeNs));
  }

  if (port === 0) model.accept = cond('Accepted', false, 'UnsupportedValue', 'port must be 1-65535');
  else if (hostname !== undefined && !validGatewayHostname(hostname)) model.accept = cond('Accepted', false, 'UnsupportedValue', `hostname ${JSON.stringify(rawHost)} is not a valid hostname`);
  else {
    // Portico's own ports keep their protocol; any other port is a listener of its own (bound by
    // every worker while it is in the table): HTTP, HTTPS, TLS Passthrough, or HTTPS and TLS
    // Passthrough told apart by SNI. On a Gateway's own address every port is its own.
    if (ownAddress) {
      // Any protocol on any port.
    } else if (port === ctx.httpPort && protocol !== 'HTTP') model.accept = cond('Accepted', false, 'PortUnavailable', `port ${port} is Portico's --http-port, served as HTTP`);
    else if (port === ctx.httpsPort && protocol !== 'HTTPS' && protocol !== 'TLS') model.accept = cond('Accepted', false, 'PortUnavailable', `port ${port} is Portico's --https-port, served as HTTPS or TLS`);
  }
  if (protocol === 'HTTPS') checkCertificates(model, ns, asRecord(l.tls), ctx);
  if (protocol === 'TLS') {
    const mode = asString(asRecord(l.tls).mode) ?? 'Terminate';
    // TLSRoute's Terminate mode (TLSRouteModeTerminate, extended) is not implemented.
    if (mode !== 'Passthrough') model.accept ??= cond('Accepted', false, 'UnsupportedValue', `tls.mode ${mode} is not supported on a TLS listener: Portico serves TLS listeners in Passthrough mode only`);
  }
  return model;
}

function checkCertificates(model: ListenerModel, ns: string, tls: Record<string, unknown>, ctx: GatewayContext): void {
  const mode = asString(tls.mode) ?? 'Terminate';
  if (mode !== 'Terminate') {
    model.accept ??= cond('Accepted', false, 'UnsupportedValue', `tls.mode ${mode} is not valid on an HTTPS listener (Passthrough needs protocol TLS)`);
    return;
  }
  const refs = asArray(tls.certificateRefs).map(asRecord);
  if (refs.length === 0) {
    model.refs.unshift(cond('ResolvedRefs', false, 'InvalidCertificateRef', 'an HTTPS listener needs tls.certificateRefs'));
    return;
  }
  const problems: ConditionInput[] = [];
  for (const r of refs) {
    const group = asString(r.group) ?? '';
    const kind = asString(r.kind) ?? 'Secret';
    const name = asString(r.name) ?? '';
    const refNs = asString(r.namespace) ?? ns;
    const id = `${refNs}/${name}`;
    if (group !== '' || kind !== 'Secret') {
      problems.push(cond('ResolvedRefs', false, 'InvalidCertificateRef', `certificateRef ${group}/${kind} ${id} is not a core Secret`));
      continue;
    }
    if (!ctx.grants.permits({ group: GATEWAY_GROUP, kind: 'Gateway', namespace: ns }, { group: '', kind: 'Secret', namespace: refNs, name })) {
      problems.push(cond('ResolvedRefs', false, 'RefNotPermitted', `Secret ${id} is in another namespace and no ReferenceGrant there allows it`));
      continue;
    }
    const parsed = ctx.secrets.get(id);
    if (!parsed.ok) {
      problems.push(cond('ResolvedRefs', false, 'InvalidCertificateRef', parsed.reason));
      continue;
    }
    model.certificates.push(id);
  }
  if (problems.length > 0) model.refs.unshift(cond('ResolvedRefs', false, problems[0].reason, problems.map((p) => p.message).join('; ')));
}

/** The listener's four conditions, in the order the spec lists them. */
export function listenerConditions(l: ListenerModel): ConditionInput[] {
  if (l.bindError !== undefined) {
    // The spec's PortUnavailable ("the port is already in use") is an Accepted reason; Programmed
    // says Invalid with the same cause. Routes stay attached: attachment does not depend on it.
    const message = `${l.bindError.message}; the workers keep trying and serve it once it can be`;
    return [cond('Accepted', false, 'PortUnavailable', message), cond('Programmed', false, 'Invalid', message), ...listenerConditionsOf(l).slice(2)];
  }
  return listenerConditionsOf(l);
}

function listenerConditionsOf(l: ListenerModel): ConditionInput[] {
  const accepted = l.accept ?? cond('Accepted', true, 'Accepted');
  const programmed = l.programmed ? cond('Programmed', true, 'Programmed') : cond('Programmed', false, 'Invalid', l.accept?.message ?? l.refs[0]?.message ?? 'not programmed');
  const resolved = l.refs[0] !== undefined ? cond('ResolvedRefs', false, l.refs[0].reason, l.refs.map((r) => r.message).join('; ')) : cond('ResolvedRefs', true, 'ResolvedRefs');
  const conflicted = l.conflict ?? cond('Conflicted', false, 'NoConflicts');
  return [accepted, programmed, resolved, conflicted];
}
