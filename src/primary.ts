// The primary process: source -> translate -> compile -> publish to workers. It owns the worker
// cluster (respawning workers that die), the admin server and the controller's status.

import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import client from 'prom-client';
import { ManifestSource } from '../controller/manifests.ts';
import { KubeRuntime } from '../controller/kube/runtime.ts';
import type { Source } from '../controller/source.ts';
import type { Problem, SourceSnapshot } from '../controller/objects.ts';
import type { StatusItem } from '../controller/status.ts';
import { newTranslatorState, translate } from '../controller/translate.ts';
import type { ListenerBindError } from '../controller/gateway/index.ts';
import { changedEndpointSets, compileTable, splitEndpoints, type EndpointSetsIR } from '../router/index.ts';
import type { RoutingIR } from '../router/types.ts';
import { FAKE_CERTIFICATE_CN, generateSelfSigned } from '../tls/selfsigned.ts';
import { TicketKeyRotator } from '../tls/session-tickets.ts';
import { buildCertificateSnapshot, type CertificateSnapshot, type StoreCertificate } from '../tls/store.ts';
import { parseCertificateAndKey } from '../tls/certificate.ts';
import { startAdminServer } from './admin.ts';
import { networkInterfaces } from 'node:os';
import { WorkerMetrics } from './cluster-metrics.ts';
import { checkPortFree, ListenerGate } from './listeners.ts';
import { LISTEN_FAILED_EXIT_CODE, isMessage, type AckMessage, type EndpointsMessage, type ListenerStateMessage, type ListenersHeldMessage, type PeerWarningMessage, type TableMessage, type TicketKeysMessage } from './ipc.ts';
import { PeerLogLimiter } from './realip/proxy-listener.ts';
import { createLogger, type Logger } from './log.ts';
import type { ServeOptions } from './options.ts';

interface Published {
  readonly version: number;
  /** The table's IR with the latest endpoint sets. */
  readonly ir: RoutingIR;
  readonly certificates: CertificateSnapshot;
  /** What decides whether a change needs a new table: the IR without endpoints, the certificates. */
  readonly routesJson: string;
  readonly certificatesJson: string;
  readonly endpoints: EndpointSetsIR;
  /** Endpoint updates published for this table so far. */
  readonly endpointsVersion: number;
}

const SELF_SIGNED_ID = 'portico/self-signed';

/** ingress-nginx's behaviour: without --default-ssl-certificate, a generated self-signed one. */
function selfSignedDefault(log: Logger, requested: string | undefined): StoreCertificate {
  const generated = generateSelfSigned({ commonName: FAKE_CERTIFICATE_CN, dnsNames: ['ingress.local'] });
  const parsed = parseCertificateAndKey(generated.certPem, generated.keyPem, { label: 'self-signed default certificate' });
  if (!parsed.ok) throw new Error(parsed.reason);
  const why = requested === undefined ? '(set --default-ssl-certificate to use your own)' : `(--default-ssl-certificate ${requested} cannot be used; see the problem reported for it)`;
  log.info({ subject: parsed.info.subject, serial: parsed.info.serialNumber, notAfter: parsed.info.notAfter }, `generated a self-signed default TLS certificate ${why}`);
  // Its names do not count as hosts of their own: it only answers as the default.
  return { id: SELF_SIGNED_ID, certPem: parsed.certPem, keyPem: parsed.keyPem, names: [], serialNumber: parsed.info.serialNumber, notAfter: parsed.info.notAfter };
}

/** What the admin server reads from the primary. */
export interface PrimaryState {
  ready(): boolean;
  /** Shutting down: /readyz says so (while traffic is still served during --shutdown-delay). */
  shuttingDown(): boolean;
  /** Where objects come from and whether it is current (a stale source keeps the last table serving). */
  source(): { kind: 'manifests' | 'kubernetes'; synced: boolean; stale: boolean; staleSince?: string; detail?: string };
  statuses(): readonly StatusItem[];
  problems(): readonly Problem[];
  table(): Published | undefined;
  /** The served certificates, without their keys. */
  certificates(): { id: string; names: string[]; serialNumber?: string; notAfter?: string; default: boolean }[];
  registry: client.Registry;
}

/** This machine's interface addresses (Gateway spec.addresses may name them), read at each translation. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

export async function runPrimary(options: ServeOptions, warnings: readonly string[] = []): Promise<void> {
  const log = createLogger(options.logLevel, { component: 'primary', pid: process.pid });
  for (const w of warnings) log.warn(w);
  const registry = new client.Registry();
  const workerMetrics = new WorkerMetrics();
  const problemsGauge = new client.Gauge({ name: 'portico_config_problems', help: 'Problems found in the current configuration, by severity', labelNames: ['severity'], registers: [registry] });
  const translationsTotal = new client.Counter({ name: 'portico_translations_total', help: 'Configuration changes translated, by result (published: a new table; endpoints: an endpoint update only; unchanged; error)', labelNames: ['result'], registers: [registry] });
  const primaryVersion = new client.Gauge({ name: 'portico_published_table_version', help: 'Latest routing table version the primary published', registers: [registry] });
  const workerRestarts = new client.Counter({ name: 'portico_worker_restarts_total', help: 'Workers respawned after exiting', registers: [registry] });
  const unavailableGauge = new client.Gauge({ name: 'portico_gateway_listeners_unavailable', help: 'Gateway listener sockets that cannot be bound (port taken, address not on this host); their listeners are PortUnavailable in /status and retried', registers: [registry] });
  const invalidSecrets = new client.Gauge({ name: 'portico_tls_invalid_secrets', help: 'TLS Secrets referenced by served objects that cannot be used (their hosts get the default certificate)', registers: [registry] });
  // Made only when needed: never when --default-ssl-certificate names a usable Secret.
  let selfSigned: StoreCertificate | undefined;
  const tickets = new TicketKeyRotator({
    broadcast: (state) => {
      const msg: TicketKeysMessage = { type: 'portico:ticket-keys', state };
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(msg);
    },
  });
  tickets.start();

  let published: Published | undefined;
  let statuses: StatusItem[] = [];
  let problems: Problem[] = [];
  let version = 0;
  let stopping = false;
  /** SIGTERM received: not ready any more, whether or not the listeners still accept. */
  let shuttingDown = false;
  const acked = new Map<number, number>(); // worker id -> served version
  // Workers' per-peer warnings (PROXY mismatches): once a minute per peer and kind, whichever
  // worker saw it. Their own logger: `component` is a base field, and repeating it in a log
  // call would write the key twice.
  const peerWarnings = new PeerLogLimiter(60_000);
  const peerLog = createLogger(options.logLevel, { component: 'listener', pid: process.pid });
  const state = newTranslatorState();
  const kube = options.kubernetes
    ? new KubeRuntime({ ...options.kubernetes, publishStatusAddresses: options.publishStatusAddresses, gatewayControllerName: options.gatewayControllerName }, createLogger(options.logLevel, { component: 'kubernetes', pid: process.pid }), registry)
    : undefined;
  const source: Source = kube ? kube.source : new ManifestSource({ dir: options.manifests });
  const reported = new Set<string>();

  // Structured-clone IPC: large routing tables cross faster than as JSON text.
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.ts', import.meta.url)), execArgv: process.execArgv, silent: false, serialization: 'advanced' });

  // New Gateway listener sockets are checked free before the workers bind them (SO_REUSEPORT
  // would let them join another process's socket): held until then, reported while they are not.
  const gateLog = createLogger(options.logLevel, { component: 'listener', pid: process.pid });
  const gate = new ListenerGate({
    bindAddress: options.bindAddress,
    onHeld: (keys) => {
      const msg: ListenersHeldMessage = { type: 'portico:listeners-held', keys };
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(msg);
    },
    // Deferred: a failure can be noted while a table is being published.
    onFailure: (key, err) =>
      queueMicrotask(() => {
        const failures = bindFailures.get(PRIMARY_PROBE) ?? new Map<string, ListenerBindError>();
        const before = failures.get(key)?.message;
        if (err !== undefined) failures.set(key, err);
        else failures.delete(key);
        bindFailures.set(PRIMARY_PROBE, failures);
        if (err !== undefined && before !== err.message) gateLog.error({ listener: key, err: err.message }, 'cannot bind a Gateway listener: its socket is taken; its routes are not served until it is free (retrying)');
        if (err === undefined && before !== undefined) gateLog.info({ listener: key }, 'Gateway listener socket is free again; the workers bind it');
        onBindStateChange();
      }),
  });

  const sendTable = (w: Worker): void => {
    if (published === undefined || !w.isConnected()) return;
    const msg: TableMessage = { type: 'portico:table', version: published.version, ir: published.ir, certificates: published.certificates, endpointsVersion: published.endpointsVersion, held: gate.heldKeys() };
    w.send(msg);
  };

  const logProblems = (list: Problem[]): void => {
    // Log each distinct problem once while it lasts, not on every change.
    const now = new Set<string>();
    for (const p of list) {
      const key = JSON.stringify(p);
      now.add(key);
      if (reported.has(key)) continue;
      const obj = p.kind ? `${p.kind} ${p.namespace ? p.namespace + '/' : ''}${p.name}` : undefined;
      log[p.severity === 'error' ? 'error' : 'warn']({ object: obj, file: p.origin }, p.message);
    }
    reported.clear();
    for (const k of now) reported.add(k);
  };

  // Gateway listener sockets workers cannot bind, per worker (ListenerStateMessage): an input of
  // translation, as the snapshot is, so status says PortUnavailable and flips back by itself.
  const bindFailures = new Map<number, Map<string, ListenerBindError>>();
  /** bindFailures' entry for the primary's own probes (worker ids start at 1). */
  const PRIMARY_PROBE = 0;
  let lastSnapshot: SourceSnapshot | undefined;
  const unavailableListeners = (): Record<string, ListenerBindError> => {
    const out: Record<string, ListenerBindError> = {};
    for (const failures of bindFailures.values()) for (const [key, err] of failures) out[key] ??= err;
    return out;
  };
  let unavailableJson = '{}';
  /** Translates the last snapshot again when the set of unbindable listeners changed. */
  const onBindStateChange = (): void => {
    const now = unavailableListeners();
    unavailableGauge.set(Object.keys(now).length);
    const json = JSON.stringify(now);
    if (json === unavailableJson) return;
    unavailableJson = json;
    if (lastSnapshot !== undefined) onSnapshot(lastSnapshot);
  };

  const onSnapshot = (snapshot: SourceSnapshot): void => {
    lastSnapshot = snapshot;
    let t;
    try {
      const publishAddresses = kube ? kube.addresses(snapshot) : options.publishStatusAddresses;
      t = translate(snapshot, { ingressClass: options.ingressClass, publishAddresses, defaultCertificateSecret: options.defaultSslCertificate, gatewayControllerName: options.gatewayControllerName, ingressControllerName: options.ingressControllerName, httpPort: options.httpPort, httpsPort: options.httpsPort, bindAddress: options.bindAddress, localAddresses: localAddresses(), unavailableListeners: unavailableListeners(), sslRedirectDefault: options.sslRedirect }, state);
    } catch (err) {
      // A translator bug must not take down serving: keep the last table.
      translationsTotal.labels('error').inc();
      log.error({ err: (err as Error).stack }, 'translation failed; keeping the last good table');
      return;
    }
    const defaultCertificate = t.tls.defaultCertificate ?? (selfSigned ??= selfSignedDefault(log, options.defaultSslCertificate));
    const built = buildCertificateSnapshot({
      certificates: [...t.tls.certificates.filter((c) => c.id !== defaultCertificate.id), defaultCertificate],
      defaultCertificateId: defaultCertificate.id,
      settings: { minVersion: options.tlsMinVersion, strictSni: options.strictSni, ...(options.tlsCiphers ? { ciphers: options.tlsCiphers } : {}) },
      ...(t.tls.sockets !== undefined ? { sockets: t.tls.sockets } : {}),
    });
    problems = [...t.problems, ...built.problems.map((message): Problem => ({ severity: 'error', message }))];
    statuses = t.statuses;
    kube?.statuses(statuses);
    invalidSecrets.set(t.tls.invalidSecrets.size);
    problemsGauge.reset();
    for (const sev of ['error', 'warning'] as const) problemsGauge.labels(sev).set(problems.filter((p) => p.severity === sev).length);
    logProblems(problems);
    const { routesJson, endpoints } = splitEndpoints(t.ir);
    const certificatesJson = JSON.stringify(built.snapshot);
    if (published !== undefined && routesJson === published.routesJson && certificatesJson === published.certificatesJson) {
      const changed = changedEndpointSets(published.endpoints, endpoints);
      if (Object.keys(changed).length === 0) {
        translationsTotal.labels('unchanged').inc();
        return;
      }
      // Only endpoints moved (a rollout, a pod going unready): the workers swap those backends'
      // endpoint sets in the table they serve, with no route recompiled and no table resent.
      const endpointsVersion = published.endpointsVersion + 1;
      published = { ...published, ir: t.ir, endpoints, endpointsVersion };
      translationsTotal.labels('endpoints').inc();
      log.info({ version: published.version, endpointsVersion, backends: Object.keys(changed) }, 'publishing endpoint update');
      const msg: EndpointsMessage = { type: 'portico:endpoints', version: published.version, endpointsVersion, sets: changed };
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(msg);
      return;
    }
    try {
      compileTable(t.ir, version + 1);
    } catch (err) {
      translationsTotal.labels('error').inc();
      log.error({ err: (err as Error).message }, 'routing table does not compile; keeping the last good table');
      return;
    }
    version++;
    published = { version, ir: t.ir, certificates: built.snapshot, routesJson, certificatesJson, endpoints, endpointsVersion: 0 };
    gate.update(t.ir.listeners ?? []);
    primaryVersion.set(version);
    translationsTotal.labels('published').inc();
    log.info({ version, virtualHosts: t.ir.virtualHosts.length, backends: Object.keys(t.ir.backends).length }, 'publishing routing table');
    for (const w of Object.values(cluster.workers ?? {})) if (w) sendTable(w);
  };

  const fork = (): void => {
    const w = cluster.fork({ PORTICO_OPTIONS: JSON.stringify(options) });
    w.on('message', (msg: unknown) => {
      if (isMessage(msg, 'portico:hello')) {
        // Ticket key first: the worker must have it before it accepts TLS connections.
        w.send({ type: 'portico:ticket-keys', state: tickets.state } satisfies TicketKeysMessage);
        sendTable(w);
      }
      else if (isMessage<AckMessage>(msg, 'portico:ack')) {
        if (msg.error) log.error({ worker: w.id, err: msg.error }, 'worker rejected a routing table');
        acked.set(w.id, Math.max(acked.get(w.id) ?? 0, msg.version));
      } else if (isMessage<ListenerStateMessage>(msg, 'portico:listener-state')) {
        const failures = bindFailures.get(w.id) ?? new Map<string, ListenerBindError>();
        if (msg.error !== undefined) failures.set(String(msg.key), { code: String(msg.error.code), message: String(msg.error.message) });
        else failures.delete(String(msg.key));
        bindFailures.set(w.id, failures);
        onBindStateChange();
      } else if (isMessage<PeerWarningMessage>(msg, 'portico:peer-warning')) {
        const { component: _c, pid: _p, ...fields } = (msg.fields ?? {}) as Record<string, unknown>;
        if (peerWarnings.allow(String(msg.key ?? msg.peer))) peerLog.warn(fields, String(msg.msg));
      }
    });
  };

  let recentDeaths: number[] = [];
  cluster.on('exit', (w, code, signal) => {
    acked.delete(w.id);
    // Its replacement reports its own bind results.
    if (bindFailures.delete(w.id)) onBindStateChange();
    if (stopping) return;
    if (code === LISTEN_FAILED_EXIT_CODE) {
      // A port taken or an address not on this host: respawning cannot help, and a process that
      // never gets ready must not look alive. Stop, so that the orchestrator sees the failure.
      stopping = true;
      log.fatal({ worker: w.id, http: options.httpPort, https: options.httpsPort, address: options.bindAddress }, 'a worker cannot listen on the traffic ports; stopping');
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
      process.exit(1);
    }
    log.error({ worker: w.id, pid: w.process.pid, code, signal }, 'worker exited; respawning');
    workerRestarts.inc();
    // Back off when workers die in a loop (e.g. the port is taken) instead of spinning.
    const now = Date.now();
    recentDeaths = recentDeaths.filter((t) => now - t < 10_000);
    recentDeaths.push(now);
    setTimeout(fork, recentDeaths.length > options.workers * 3 ? 2000 : 0);
  });

  const primaryState: PrimaryState = {
    ready: () => {
      if (shuttingDown || published === undefined) return false;
      const workers = Object.values(cluster.workers ?? {});
      return workers.length >= options.workers && workers.every((w) => w !== undefined && (acked.get(w.id) ?? 0) >= 1);
    },
    shuttingDown: () => shuttingDown,
    source: () => {
      const h = source.health();
      return {
        kind: kube ? 'kubernetes' : 'manifests',
        synced: h.synced,
        stale: h.staleSince !== undefined,
        ...(h.staleSince !== undefined ? { staleSince: new Date(h.staleSince).toISOString() } : {}),
        ...(h.detail !== undefined ? { detail: h.detail } : {}),
      };
    },
    statuses: () => statuses,
    problems: () => problems,
    table: () => published,
    certificates: () =>
      (published?.certificates.certificates ?? []).map((c) => ({ id: c.id, names: c.names, serialNumber: c.serialNumber, notAfter: c.notAfter, default: c.id === published?.certificates.defaultCertificateId })),
    registry,
  };
  const admin = await startAdminServer(options, primaryState, workerMetrics, log);

  await source.start(onSnapshot);
  kube?.start();
  for (const port of [options.httpPort, options.httpsPort]) {
    try {
      await checkPortFree(port, options.bindAddress);
    } catch (err) {
      log.fatal({ port, address: options.bindAddress, err: (err as Error).message }, 'cannot listen: a traffic port is already in use; stopping');
      process.exit(1);
    }
  }
  for (let i = 0; i < options.workers; i++) fork();

  const drainWorkers = (): void => {
    log.info({ graceMs: options.shutdownGraceMs }, 'shutting down: no longer accepting; finishing in-flight requests');
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'portico:shutdown', graceMs: options.shutdownGraceMs });
    const exitWhenDone = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        admin.close();
        process.exit(0);
      }
    }, 50);
    setTimeout(() => {
      clearInterval(exitWhenDone);
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
      process.exit(0);
    }, options.shutdownGraceMs + 2000).unref();
  };
  /**
   * SIGTERM (Kubernetes stopping the pod): /readyz fails at once, traffic is still served for
   * --shutdown-delay so load balancers and endpoint controllers take this instance out, then the
   * listeners stop accepting and in-flight requests finish. SIGINT (a person at a terminal) skips
   * the delay. A second signal during the delay drains at once.
   */
  let delayTimer: NodeJS.Timeout | undefined;
  const stop = (signal: string): void => {
    if (stopping) {
      if (delayTimer !== undefined) {
        clearTimeout(delayTimer);
        delayTimer = undefined;
        drainWorkers();
      }
      return;
    }
    stopping = true;
    shuttingDown = true;
    // The source and leadership go first: another replica takes status writing over at once.
    void (kube ? kube.stop() : source.stop());
    tickets.stop();
    gate.stop();
    const delay = signal === 'SIGTERM' ? options.shutdownDelayMs : 0;
    if (delay === 0) return drainWorkers();
    log.info({ signal, delayMs: delay }, 'shutting down: /readyz fails; still serving until load balancers stop sending');
    delayTimer = setTimeout(() => {
      delayTimer = undefined;
      drainWorkers();
    }, delay);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export type { Logger };
