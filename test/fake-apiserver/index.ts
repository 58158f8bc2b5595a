// In-process fake Kubernetes API server for tests: the real wire protocol (list/watch with
// resourceVersions, BOOKMARK, 410, status subresource, patches, selectors, discovery, bearer auth)
// over HTTPS or HTTP on 127.0.0.1, with faults to inject. Usable by kubectl and client-node.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServingCerts } from './certs.ts';
import { ApiError } from './errors.ts';
import { FaultPlan } from './faults.ts';
import { handle, type HttpContext, type RequestRecord } from './http.ts';
import { GATEWAY_API, GATEWAY_GROUP, Registry, TLSROUTE_V1ALPHA2, type ResourceType } from './resources.ts';
import { Store } from './store.ts';
import { expireOpenWatches } from './watch.ts';

export interface FakeApiServerOptions {
  /** Default true. Plain HTTP kubeconfigs carry insecure-skip-tls-verify (client-node requires it for http://). */
  https?: boolean;
  token?: string;
  /** Default true: serve gateway.networking.k8s.io as its v1.6 standard CRDs do. */
  gatewayApiCrds?: boolean;
  /** Also serve TLSRoute v1alpha2 (Gateway API <= v1.4, or v1.5 experimental). Default false. */
  tlsRouteV1alpha2?: boolean;
  /** Interval of BOOKMARK events on watches that allow them. Default 1000 ms. */
  bookmarkIntervalMs?: number;
}

export interface FakeApiServer {
  readonly url: string;
  readonly token: string;
  readonly caPem: string;
  readonly kubeconfigPath: string;
  create(obj: object): any;
  update(obj: object): any;
  /** Replaces only the status of an object (as PUT .../status does). */
  updateStatus(obj: object): any;
  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): void;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): any | undefined;
  list(apiVersion: string, kind: string, namespace?: string): any[];
  installCrds(group: string): void;
  removeCrds(group: string): void;
  readonly requests: ReadonlyArray<RequestRecord>;
  readonly faults: {
    /** Ends every open watch stream abruptly (connection destroyed mid-stream). */
    cutWatches(): void;
    /** Ends every open watch stream cleanly, as when its timeout expires. */
    endWatches(): void;
    failNext(count: number, opts?: { status?: number; pathPrefix?: string; method?: string }): void;
    delay(ms: number, opts?: { pathPrefix?: string }): void;
    /**
     * Every resourceVersion before now becomes too old: open watches get an in-stream ERROR 410 and
     * end; a later watch from an old version gets HTTP 410 (`watchStart: 'http'`, default) or
     * 200 + ERROR 410 event (`'event'`, as the watch cache answers); Exact lists and continue tokens 410.
     */
    expireHistory(opts?: { watchStart?: 'http' | 'event' }): void;
    conflictNext(count: number, opts?: { pathPrefix?: string }): void;
    /** Removes pending failures, conflicts and delays. */
    clear(): void;
  };
  restart(): Promise<void>;
  close(): Promise<void>;
}


export async function startFakeApiServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const https = opts.https ?? true;
  const GROUPS: Record<string, ResourceType[]> = { [GATEWAY_GROUP]: [...GATEWAY_API, ...(opts.tlsRouteV1alpha2 ? [TLSROUTE_V1ALPHA2] : [])] };
  const token = opts.token ?? 'fake-token-' + Math.random().toString(36).slice(2);
  const dir = mkdtempSync(join(tmpdir(), 'fake-apiserver-'));
  const certs = https ? makeServingCerts(dir) : undefined;
  const store = new Store();
  const registry = new Registry();
  if (opts.gatewayApiCrds ?? true) registry.install(GATEWAY_GROUP, GROUPS[GATEWAY_GROUP]);
  const faults = new FaultPlan();
  const requests: RequestRecord[] = [];
  let port = 0;
  const ctx: HttpContext = {
    store, registry, faults, token, requests, openWatches: new Map(),
    serverAddress: () => `127.0.0.1:${port}`,
    watch: { bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 1000, goneAs: 'http' },
  };
  const ns = registry.byKind('v1', 'Namespace')!;
  for (const name of ['default', 'kube-system', 'kube-public']) store.create(ns, { metadata: { name } });

  const sockets = new Set<Socket>();
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => { void handle(ctx, req, res); };
  let server: Server;
  const listen = async (): Promise<void> => {
    server = certs ? createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, onRequest) : createHttpServer(onRequest);
    server.on(certs ? 'secureConnection' : 'connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    if (certs) server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    port = (server.address() as { port: number }).port;
  };
  const shut = async (): Promise<void> => {
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  await listen();
  const url = `${https ? 'https' : 'http'}://127.0.0.1:${port}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  const cluster = certs ? { server: url, 'certificate-authority-data': Buffer.from(certs.caPem).toString('base64') } : { server: url, 'insecure-skip-tls-verify': true };
  writeFileSync(kubeconfigPath, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
    clusters: [{ name: 'fake', cluster }], users: [{ name: 'fake', user: { token } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: 'default' } }],
  }, null, 2));

  const typeOf = (apiVersion: string, kind: string): ResourceType => {
    const t = registry.byKind(apiVersion, kind);
    if (!t) throw new ApiError(404, 'NotFound', `no resource ${kind} in ${apiVersion} is served`);
    return t;
  };
  const typeOfObj = (o: any): ResourceType => typeOf(o?.apiVersion, o?.kind);

  return {
    url, token, kubeconfigPath, caPem: certs?.caPem ?? '', requests,
    create: (o) => store.create(typeOfObj(o), o),
    update: (o) => store.update(typeOfObj(o), o),
    updateStatus: (o) => store.update(typeOfObj(o), o, { subresource: 'status' }),
    delete: (av, kind, namespace, name) => { store.delete(typeOf(av, kind), namespace, name); },
    get: (av, kind, namespace, name) => store.get(typeOf(av, kind), namespace, name),
    list: (av, kind, namespace) => store.list(typeOf(av, kind), namespace),
    installCrds: (group) => {
      const types = GROUPS[group];
      if (!types) throw new Error(`no CRDs known for group ${group}`);
      registry.install(group, types);
    },
    removeCrds: (group) => {
      store.dropGroup(group);
      registry.remove(group);
      // Watches on the removed resources end, as when a CRD is deleted.
      for (const [res, g] of [...ctx.openWatches]) if (g === group) { ctx.openWatches.delete(res); res.end(); }
    },
    faults: {
      cutWatches: () => { for (const [res] of [...ctx.openWatches]) { ctx.openWatches.delete(res); res.socket?.destroy(); res.destroy(); } },
      endWatches: () => { for (const [res] of [...ctx.openWatches]) { ctx.openWatches.delete(res); res.end(); } },
      failNext: (count, o) => faults.failNext(count, o),
      delay: (ms, o) => faults.delay(ms, o),
      conflictNext: (count, o) => faults.conflictNext(count, o),
      clear: () => faults.clear(),
      expireHistory: (o) => {
        store.expire();
        ctx.watch.goneAs = o?.watchStart ?? 'http';
        expireOpenWatches(ctx.openWatches, store.currentRv());
      },
    },
    restart: async () => { await shut(); await listen(); },
    close: async () => { await shut(); rmSync(dir, { recursive: true, force: true }); },
  };
}
