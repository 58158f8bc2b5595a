// `portico serve` options: the command-line contract, parsed and validated in one place.

import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parseCidrList } from '../router/cidr.ts';
import { usableCpus } from './cpus.ts';
import { ESCAPED_SLASHES, type EscapedSlashes } from './request-checks.ts';
import { REAL_IP_FLAGS, REAL_IP_KEYS, REAL_IP_LIST_KEYS, loadConfigFile, parseRealIpSettings, realIpSettingsToRecord, unknownConfigKeys } from './realip/config.ts';

export interface ServeOptions {
  /** The manifest directory; '' with --kubernetes. */
  readonly manifests: string;
  /** `--kubernetes`: read the API server instead of a directory. */
  readonly kubernetes?: KubernetesOptions;
  readonly bindAddress: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  readonly adminAddress: string;
  /** `--admin-allow-cidr`: clients besides loopback served /status and /debug/* (canonical CIDRs). */
  readonly adminAllowCidrs: readonly string[];
  readonly workers: number;
  readonly ingressClass: string;
  /** `--gateway-controller-name`: GatewayClasses whose spec.controllerName is this are Portico's. */
  readonly gatewayControllerName: string;
  /** `--ingress-controller-name`: the IngressClass spec.controller Portico serves. */
  readonly ingressControllerName: string;
  readonly logLevel: string;
  readonly publishStatusAddresses: readonly string[];
  /** Upstream response-header timeout, ms (504 when exceeded). */
  readonly upstreamTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /**
   * Whether an Ingress's TLS hosts redirect plain HTTP to HTTPS when it does not say
   * (portico.dev/ssl-redirect); the config file's `ssl-redirect`, default true as ingress-nginx.
   */
  readonly sslRedirect: boolean;
  /** The flags given on the command line (by name), which win over the config file. */
  readonly explicitFlags: readonly string[];
  readonly maxHeaderSize: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly shutdownGraceMs: number;
  /** On SIGTERM, /readyz fails this long before the listeners stop accepting (load balancers notice). */
  readonly shutdownDelayMs: number;
  /** `--escaped-slashes`: route a path with %2F/%5C as the decoded slash, or refuse it (400). */
  readonly escapedSlashes: EscapedSlashes;
  /** `--default-ssl-certificate ns/name`; a self-signed certificate is generated when absent. */
  readonly defaultSslCertificate?: string;
  readonly strictSni: boolean;
  readonly tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly tlsCiphers?: string;
  /** `--config FILE`: YAML settings named as ingress-nginx ConfigMap keys. */
  readonly configFile?: string;
  /**
   * Real-client-IP settings (PROXY protocol, trusted CIDRs, forwarded headers) in their
   * ConfigMap-key form, JSON-safe for the workers; flags over the config file.
   */
  readonly realIp: Record<string, string>;
  /** `--http1-engine` (or PORTICO_HTTP1_ENGINE): plain HTTP/1.1 on node:http, or on the fast path (src/http1). */
  readonly http1Engine: Http1Engine;
}

export type Http1Engine = 'node' | 'fast';
export const HTTP1_ENGINES: readonly Http1Engine[] = ['node', 'fast'];

export interface KubernetesOptions {
  readonly kubeconfig?: string;
  readonly watchNamespace?: string;
  /** `--publish-service ns/name`: its LoadBalancer addresses go to status. */
  readonly publishService?: string;
  readonly electionId: string;
  /** The Lease's namespace: POD_NAMESPACE, else --election-namespace. */
  readonly electionNamespace: string;
}

interface FlagSpec {
  readonly name: string;
  readonly value: string;
  readonly help: string;
  readonly boolean?: true;
  /** A comma-separated list: repeated flags add to it. */
  readonly list?: true;
}

export const SERVE_FLAGS: readonly FlagSpec[] = [
  { name: 'manifests', value: 'DIR', help: 'directory of Kubernetes YAML/JSON manifests to serve (watched; required)' },
  { name: 'kubernetes', value: '', help: 'read Ingress, Gateway API and related objects from the Kubernetes API instead of --manifests', boolean: true },
  { name: 'kubeconfig', value: 'FILE', help: 'with --kubernetes: kubeconfig (default: $KUBECONFIG, ~/.kube/config, then in-cluster)' },
  { name: 'watch-namespace', value: 'NS', help: 'with --kubernetes: watch namespaced objects in this namespace only (default: all)' },
  { name: 'publish-service', value: 'NS/NAME', help: 'with --kubernetes: Service whose LoadBalancer addresses are written to status' },
  { name: 'election-id', value: 'portico-leader', help: 'with --kubernetes: Lease name for leader election (only the leader writes status)' },
  { name: 'election-namespace', value: 'default', help: 'with --kubernetes: Lease namespace when POD_NAMESPACE is not set' },
  { name: 'http-port', value: '80', help: 'plain HTTP listener port' },
  { name: 'https-port', value: '443', help: 'HTTPS listener port' },
  { name: 'bind-address', value: '0.0.0.0', help: 'address the traffic listeners bind to' },
  { name: 'admin-port', value: '10254', help: 'admin server port: /healthz /readyz /metrics /status /debug/routes' },
  { name: 'admin-address', value: '0.0.0.0', help: 'address the admin server binds to' },
  { name: 'admin-allow-cidr', value: 'CIDRS', help: 'clients besides loopback that may read /status and /debug/* (comma-separated or repeated; default: loopback only)', list: true },
  { name: 'workers', value: 'CPUs', help: 'number of worker processes (default: the CPUs the container may use: its cgroup CPU limit rounded up, else the CPU count)' },
  { name: 'ingress-class', value: 'portico', help: 'IngressClass to serve' },
  { name: 'ingress-controller-name', value: 'portico.dev/ingress-controller', help: 'IngressClass spec.controller Portico serves (k8s.io/ingress-nginx takes over an ingress-nginx class in place)' },
  { name: 'gateway-controller-name', value: 'portico.dev/gateway-controller', help: 'Gateway API controllerName whose GatewayClasses Portico serves' },
  { name: 'log-level', value: 'info', help: 'trace|debug|info|warn|error|fatal|silent (access logs are info)' },
  { name: 'publish-status-address', value: '', help: 'IPs/hostnames written to status (loadBalancer.ingress), comma-separated or repeated', list: true },
  { name: 'upstream-timeout', value: '60', help: 'seconds to wait for upstream response headers (504 after)' },
  { name: 'upstream-connect-timeout', value: '5', help: 'seconds to wait for an upstream connection (502 after)' },
  { name: 'max-header-size', value: '16384', help: 'largest request head in bytes (431 above)' },
  { name: 'headers-timeout', value: '20', help: 'seconds a client has to send the request head (408 after)' },
  { name: 'request-timeout', value: '300', help: 'seconds a client has to send a whole request (408 after; 0 = none)' },
  { name: 'keepalive-timeout', value: '60', help: 'seconds an idle keep-alive connection stays open' },
  { name: 'max-connections', value: '10000', help: 'open client connections per listener in each worker; more are closed at once' },
  { name: 'shutdown-delay', value: '5', help: 'seconds to keep serving after SIGTERM with /readyz failing, before the listeners stop accepting (not on SIGINT)' },
  { name: 'shutdown-grace', value: '10', help: 'seconds to finish in-flight requests on SIGTERM, after the delay' },
  { name: 'escaped-slashes', value: 'decode', help: 'paths with %2F or %5C: decode (route by the decoded path, forward the original bytes) or reject (400)' },
  { name: 'default-ssl-certificate', value: 'NS/NAME', help: 'TLS Secret served when no certificate matches (default: generated self-signed)' },
  { name: 'strict-sni', value: '', help: 'refuse TLS handshakes whose SNI matches no certificate', boolean: true },
  { name: 'tls-min-version', value: 'TLSv1.2', help: 'lowest TLS version accepted: TLSv1.2 or TLSv1.3' },
  { name: 'tls-ciphers', value: 'LIST', help: 'OpenSSL cipher list for TLS 1.2 (default: Node\'s)' },
  { name: 'http1-engine', value: 'fast', help: 'HTTP/1.1 data path: fast (raw sockets, src/http1) or node (node:http + undici); env PORTICO_HTTP1_ENGINE' },
  { name: 'config', value: 'FILE', help: 'YAML settings (keys as in ingress-nginx\'s ConfigMap; a ConfigMap manifest works too)' },
  ...REAL_IP_FLAGS.map((f) => (REAL_IP_LIST_KEYS.has(f.name) ? { ...f, list: true as const } : f)),
];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export class UsageError extends Error {}

function num(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name}: ${JSON.stringify(raw)} is not a number between ${min} and ${max}`);
  }
  return n;
}

/** Column where flag descriptions start in `serve --help`. */
const HELP_COLUMN = 34;

/** One flag's help: its description at HELP_COLUMN, or on the next line when the flag is too long. */
function usageLine(flag: string, help: string): string {
  const left = `  ${flag}`;
  return left.length + 2 <= HELP_COLUMN ? left.padEnd(HELP_COLUMN) + help : `${left}\n${' '.repeat(HELP_COLUMN)}${help}`;
}

export function serveUsage(): string {
  const lines = SERVE_FLAGS.map((f) => usageLine(`--${f.name}${f.value ? ' ' + f.value : ''}`, f.help));
  lines.push(usageLine('--help', 'show this help'));
  return `Usage: portico serve (--manifests DIR | --kubernetes) [flags]\n\nFlags:\n${lines.join('\n')}\n`;
}

// Switch-like settings may be given bare (`--use-proxy-protocol`), meaning true.
const BARE_TRUE = new Set(['--use-proxy-protocol', '--use-forwarded-headers', '--compute-full-forwarded-for']);

function expandBareSwitches(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    out.push(argv[i]);
    if (BARE_TRUE.has(argv[i]) && (i + 1 >= argv.length || argv[i + 1].startsWith('--'))) out.push('true');
  }
  return out;
}

export function parseServeOptions(argvIn: readonly string[]): ServeOptions {
  const argv = expandBareSwitches(argvIn);
  let values: Record<string, unknown>;
  try {
    const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
    for (const f of SERVE_FLAGS) options[f.name] = { type: f.boolean ? 'boolean' : 'string', ...(f.list ? { multiple: true } : {}) };
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // Repeated list flags accumulate: `--proxy-real-ip-cidr A --proxy-real-ip-cidr B` is `A,B`.
  for (const f of SERVE_FLAGS) {
    const v = values[f.name];
    if (f.list && Array.isArray(v)) values[f.name] = v.join(',');
  }
  const manifests = values.manifests;
  const kubernetes = values.kubernetes === true;
  if (kubernetes && manifests !== undefined) throw new UsageError('--manifests and --kubernetes are two sources: give one');
  if (!kubernetes && (typeof manifests !== 'string' || manifests === '')) throw new UsageError('--manifests DIR is required (or --kubernetes)');
  for (const f of ['kubeconfig', 'watch-namespace', 'publish-service', 'election-id', 'election-namespace']) {
    if (!kubernetes && values[f] !== undefined) throw new UsageError(`--${f} needs --kubernetes`);
  }
  const objectName = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
  const publishService = values['publish-service'] as string | undefined;
  if (publishService !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(publishService)) {
    throw new UsageError(`--publish-service: ${JSON.stringify(publishService)} must be namespace/name`);
  }
  if (publishService !== undefined && values['publish-status-address'] !== undefined) throw new UsageError('--publish-service and --publish-status-address both set the status address: give one');
  const electionId = (values['election-id'] as string | undefined) ?? 'portico-leader';
  const electionNamespace = process.env.POD_NAMESPACE || ((values['election-namespace'] as string | undefined) ?? 'default');
  for (const [flag, v] of [['election-id', electionId], ['election-namespace', electionNamespace], ['watch-namespace', values['watch-namespace']]] as const) {
    if (v !== undefined && (typeof v !== 'string' || !objectName.test(v))) throw new UsageError(`--${flag}: ${JSON.stringify(v)} is not a valid object name`);
  }
  const logLevel = (values['log-level'] as string | undefined) ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level: must be one of ${LOG_LEVELS.join(', ')}`);
  const defaultSsl = values['default-ssl-certificate'] as string | undefined;
  if (defaultSsl !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(defaultSsl)) {
    throw new UsageError(`--default-ssl-certificate: ${JSON.stringify(defaultSsl)} must be namespace/name`);
  }
  const escapedSlashes = ((values['escaped-slashes'] as string | undefined) ?? 'decode') as EscapedSlashes;
  if (!ESCAPED_SLASHES.includes(escapedSlashes)) throw new UsageError(`--escaped-slashes: must be one of ${ESCAPED_SLASHES.join(', ')}`);
  const http1Engine = ((values['http1-engine'] as string | undefined) ?? (process.env.PORTICO_HTTP1_ENGINE || 'fast')) as Http1Engine;
  if (!HTTP1_ENGINES.includes(http1Engine)) throw new UsageError(`--http1-engine (or PORTICO_HTTP1_ENGINE): must be one of ${HTTP1_ENGINES.join(', ')}`);
  const tlsMin = (values['tls-min-version'] as string | undefined) ?? 'TLSv1.2';
  if (tlsMin !== 'TLSv1.2' && tlsMin !== 'TLSv1.3') throw new UsageError('--tls-min-version: must be TLSv1.2 or TLSv1.3');
  const ports = (['http-port', 'https-port', 'admin-port'] as const).map((f) => [f, num(values, f, f === 'http-port' ? 80 : f === 'https-port' ? 443 : 10254, 0, 65535)] as const);
  for (const [flag, port] of ports) {
    if (!Number.isInteger(port)) throw new UsageError(`--${flag}: ${port} is not a whole number`);
    const clash = ports.find(([other, p]) => other !== flag && p === port && port !== 0);
    if (clash !== undefined) throw new UsageError(`--${flag} and --${clash[0]} are both ${port}: each listener needs its own port`);
  }
  for (const flag of ['bind-address', 'admin-address'] as const) {
    const a = values[flag];
    if (typeof a === 'string' && isIP(a) === 0) throw new UsageError(`--${flag}: ${JSON.stringify(a)} is not an IP address`);
  }
  const workersRaw = num(values, 'workers', usableCpus(), 1, 256);
  if (!Number.isInteger(workersRaw)) throw new UsageError(`--workers: ${workersRaw} is not a whole number`);
  const ingressClass = (values['ingress-class'] as string | undefined) ?? 'portico';
  if (!/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(ingressClass)) throw new UsageError(`--ingress-class: ${JSON.stringify(ingressClass)} is not a valid object name`);
  const gatewayControllerName = (values['gateway-controller-name'] as string | undefined) ?? 'portico.dev/gateway-controller';
  const ingressControllerName = (values['ingress-controller-name'] as string | undefined) ?? 'portico.dev/ingress-controller';
  // IngressClass.spec.controller: a domain-prefixed path, as the API server validates it.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$/.test(ingressControllerName) || ingressControllerName.length > 250) throw new UsageError(`--ingress-controller-name: ${JSON.stringify(ingressControllerName)} is not a controller name (domain/path)`);
  // The GatewayClass controllerName pattern: a domain, '/', a path.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$/.test(gatewayControllerName) || gatewayControllerName.length > 253) throw new UsageError(`--gateway-controller-name: ${JSON.stringify(gatewayControllerName)} is not a controller name (domain/path)`);
  const adminAllow = parseCidrList((values['admin-allow-cidr'] as string | undefined) ?? '');
  if (adminAllow.errors.length > 0) throw new UsageError(`--admin-allow-cidr: ${adminAllow.errors.join('; ')}`);
  const realIpFlags: Record<string, string> = {};
  for (const key of REAL_IP_KEYS) if (typeof values[key] === 'string') realIpFlags[key] = values[key] as string;
  return {
    manifests: kubernetes ? '' : (manifests as string),
    ...(kubernetes
      ? {
          kubernetes: {
            ...(values.kubeconfig ? { kubeconfig: values.kubeconfig as string } : {}),
            ...(values['watch-namespace'] ? { watchNamespace: values['watch-namespace'] as string } : {}),
            ...(publishService ? { publishService } : {}),
            electionId,
            electionNamespace,
          },
        }
      : {}),
    ...(values.config ? { configFile: values.config as string } : {}),
    realIp: realIpFlags,
    ...(defaultSsl ? { defaultSslCertificate: defaultSsl } : {}),
    strictSni: values['strict-sni'] === true,
    tlsMinVersion: tlsMin,
    ...(values['tls-ciphers'] ? { tlsCiphers: values['tls-ciphers'] as string } : {}),
    bindAddress: (values['bind-address'] as string | undefined) ?? '0.0.0.0',
    httpPort: num(values, 'http-port', 80, 0, 65535),
    httpsPort: num(values, 'https-port', 443, 0, 65535),
    adminPort: num(values, 'admin-port', 10254, 0, 65535),
    adminAddress: (values['admin-address'] as string | undefined) ?? '0.0.0.0',
    adminAllowCidrs: adminAllow.cidrs,
    workers: workersRaw,
    ingressClass,
    gatewayControllerName,
    ingressControllerName,
    logLevel,
    publishStatusAddresses: ((values['publish-status-address'] as string | undefined) ?? '').split(',').map((a) => a.trim()).filter(Boolean),
    upstreamTimeoutMs: num(values, 'upstream-timeout', 60, 0.001, 86400) * 1000,
    upstreamConnectTimeoutMs: num(values, 'upstream-connect-timeout', 5, 0.001, 3600) * 1000,
    sslRedirect: true,
    explicitFlags: Object.keys(values).filter((k) => values[k] !== undefined),
    maxHeaderSize: Math.floor(num(values, 'max-header-size', 16384, 1024, 1 << 20)),
    headersTimeoutMs: num(values, 'headers-timeout', 20, 0.001, 3600) * 1000,
    requestTimeoutMs: num(values, 'request-timeout', 300, 0, 86400) * 1000,
    keepAliveTimeoutMs: num(values, 'keepalive-timeout', 60, 0.001, 3600) * 1000,
    maxConnections: Math.floor(num(values, 'max-connections', 10000, 1, 1e7)),
    shutdownGraceMs: num(values, 'shutdown-grace', 10, 0, 3600) * 1000,
    shutdownDelayMs: num(values, 'shutdown-delay', 5, 0, 3600) * 1000,
    escapedSlashes,
    http1Engine,
  };
}

/** ingress-nginx ConfigMap keys that deny clients, which Portico does not apply: start-up fails on them. */
const DENYING_CONFIG_KEYS = ['block-cidrs', 'block-user-agents', 'block-referers', 'denylist-source-range', 'global-auth-url', 'global-auth-signin', 'enable-modsecurity', 'enable-owasp-modsecurity-crs'];
/** ingress-nginx ConfigMap keys read here besides the real-IP ones (or reported on their own). */
const HANDLED_CONFIG_KEYS = ['ssl-protocols', 'ssl-ciphers', 'proxy-body-size', 'ssl-redirect', 'proxy-read-timeout', 'proxy-connect-timeout'];

/**
 * ingress-nginx ConfigMap keys with a Portico setting of the same meaning: ssl-redirect (the
 * default of every Ingress's ssl-redirect annotation), proxy-read-timeout and
 * proxy-connect-timeout (seconds: --upstream-timeout and --upstream-connect-timeout, a flag wins).
 */
function ingressNginxProxyKeys(values: Record<string, unknown>, options: ServeOptions, file: string): { options: ServeOptions; warnings: string[] } {
  const warnings: string[] = [];
  let out = options;
  const redirect = values['ssl-redirect'];
  if (redirect !== undefined) {
    const v = String(redirect);
    if (v !== 'true' && v !== 'false') throw new UsageError(`config file ${file}: ssl-redirect: ${JSON.stringify(redirect)} must be "true" or "false"`);
    out = { ...out, sslRedirect: v === 'true' };
  }
  const seconds = (key: string, flag: string, field: 'upstreamTimeoutMs' | 'upstreamConnectTimeoutMs', max: number): void => {
    const raw = values[key];
    if (raw === undefined) return;
    const v = String(raw).trim();
    // ingress-nginx takes whole seconds; a unit suffix or a fraction there is a mistake worth stopping on.
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`config file ${file}: ${key}: ${JSON.stringify(raw)} is not a whole number of seconds between 1 and ${max}`);
    if (out.explicitFlags.includes(flag)) {
      if (out[field] !== Number(v) * 1000) warnings.push(`config file ${file}: ${key} is overridden by --${flag}`);
      return;
    }
    out = { ...out, [field]: Number(v) * 1000 };
  };
  seconds('proxy-read-timeout', 'upstream-timeout', 'upstreamTimeoutMs', 86400);
  seconds('proxy-connect-timeout', 'upstream-connect-timeout', 'upstreamConnectTimeoutMs', 3600);
  return { options: out, warnings };
}

/**
 * ssl-protocols and ssl-ciphers of an ingress-nginx ConfigMap, applied as --tls-min-version and
 * --tls-ciphers: the stricter minimum of the two wins, a --tls-ciphers flag wins over the file.
 * Only TLS 1.2 and 1.3 are served; a file that asks for nothing else cannot be honoured.
 */
function ingressNginxTlsKeys(values: Record<string, unknown>, options: ServeOptions, file: string): { options: ServeOptions; warnings: string[] } {
  const warnings: string[] = [];
  let out = options;
  const protocols = values['ssl-protocols'];
  if (protocols !== undefined) {
    const listed = String(protocols).split(/\s+/).filter(Boolean);
    const served = listed.filter((p) => p === 'TLSv1.2' || p === 'TLSv1.3');
    if (served.length === 0) throw new UsageError(`config file ${file}: ssl-protocols ${JSON.stringify(protocols)}: Portico serves TLSv1.2 and TLSv1.3 only`);
    const min = served.includes('TLSv1.2') ? 'TLSv1.2' : 'TLSv1.3';
    if (min === 'TLSv1.3' && out.tlsMinVersion !== 'TLSv1.3') out = { ...out, tlsMinVersion: 'TLSv1.3' };
    const older = listed.filter((p) => p !== 'TLSv1.2' && p !== 'TLSv1.3');
    if (older.length > 0) warnings.push(`config file ${file}: ssl-protocols: ${older.join(', ')} not served (TLSv1.2 and TLSv1.3 only)`);
  }
  const ciphers = values['ssl-ciphers'];
  if (ciphers !== undefined) {
    if (out.tlsCiphers === undefined) out = { ...out, tlsCiphers: String(ciphers) };
    else if (out.tlsCiphers !== String(ciphers)) warnings.push(`config file ${file}: ssl-ciphers is overridden by --tls-ciphers`);
  }
  return { options: out, warnings };
}

/**
 * Completes the options with the config file: reads it, merges flags over it, validates the
 * real-IP settings. Returns warnings for the log; throws UsageError on invalid settings.
 */
export async function applyConfigFile(options: ServeOptions): Promise<{ options: ServeOptions; warnings: string[] }> {
  let fileValues: Record<string, unknown> = {};
  const warnings: string[] = [];
  if (options.configFile !== undefined) {
    const loaded = await loadConfigFile(options.configFile);
    if (loaded.errors.length > 0) throw new UsageError(loaded.errors.join('; '));
    fileValues = loaded.values;
    const file = options.configFile;
    // Not an error: an ingress-nginx ConfigMap has many keys Portico has no use for. But a
    // typo (use-proxy-protocl) must not pass silently.
    const tls = ingressNginxTlsKeys(fileValues, options, file);
    options = tls.options;
    warnings.push(...tls.warnings);
    const proxy = ingressNginxProxyKeys(fileValues, options, file);
    options = proxy.options;
    warnings.push(...proxy.warnings);
    const denying = Object.keys(fileValues).filter((k) => DENYING_CONFIG_KEYS.includes(k));
    // A restriction Portico cannot apply must not leave the proxy open: refuse to start.
    if (denying.length > 0) throw new UsageError(`config file ${options.configFile}: ${denying.join(', ')} restrict${denying.length === 1 ? 's' : ''} access and Portico cannot apply ${denying.length === 1 ? 'it' : 'them'}; remove ${denying.length === 1 ? 'it' : 'them'} (or use whitelist-source-range, which Portico applies)`);
    const unknown = unknownConfigKeys(fileValues).filter((k) => !HANDLED_CONFIG_KEYS.includes(k.split(' ')[0]));
    if (unknown.length > 0) warnings.push(`config file ${options.configFile}: ignoring keys Portico does not know: ${unknown.join(', ')}`);
    if (fileValues['proxy-body-size'] !== undefined) warnings.push(`config file ${options.configFile}: proxy-body-size is not applied: Portico has no request body size limit, bodies of any size are proxied`);
  }
  const settings = parseRealIpSettings({ ...fileValues, ...options.realIp });
  if (settings.errors.length > 0) throw new UsageError(settings.errors.join('; '));
  return { options: { ...options, realIp: realIpSettingsToRecord(settings.config) }, warnings: [...warnings, ...settings.warnings] };
}
