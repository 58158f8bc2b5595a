// Watch streams: newline-delimited JSON events, replay from a resourceVersion, BOOKMARKs,
// timeoutSeconds, 410 Gone as an in-stream ERROR event or as the HTTP status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, expired } from './errors.ts';
import type { ResourceType } from './resources.ts';
import { groupVersion } from './resources.ts';
import type { Matcher } from './selectors.ts';
import type { StoredEvent, Store } from './store.ts';

export interface WatchRequest {
  t: ResourceType;
  namespace?: string;
  labels: Matcher;
  fields: Matcher;
  resourceVersion: string | null;
  allowBookmarks: boolean;
  timeoutSeconds?: number;
  /** Streaming list: synthetic ADDEDs, then a BOOKMARK annotated k8s.io/initial-events-end. */
  sendInitialEvents?: boolean;
}

export interface WatchSettings {
  bookmarkIntervalMs: number;
  /** How a too-old resourceVersion is answered at watch start. */
  goneAs: 'event' | 'http';
}

/** Opens a watch. Throws ApiError (answered as HTTP) only before the 200 head is written. */
export function serveWatch(store: Store, w: WatchRequest, settings: WatchSettings, req: IncomingMessage, res: ServerResponse, onHead: (status: number) => void, open: Map<ServerResponse, string>): void {
  const inScope = (o: any): boolean => !!o && (!w.namespace || !w.t.namespaced || o.metadata?.namespace === w.namespace) && w.labels(o) && w.fields(o);
  let replay: any[] = [];
  let gone: ApiError | undefined;
  const rvParam = w.resourceVersion;
  if (w.sendInitialEvents) {
    replay = store.list(w.t, w.namespace).filter(inScope).map((o) => ({ type: 'ADDED', object: o }));
    if (w.allowBookmarks) replay.push({ type: 'BOOKMARK', object: { kind: w.t.kind, apiVersion: groupVersion(w.t), metadata: { resourceVersion: String(store.currentRv()), annotations: { 'k8s.io/initial-events-end': 'true' } } } });
  } else if (rvParam === null || rvParam === '' || rvParam === '0') {
    // "Get State and Start at Most Recent/Any": synthetic ADDED for what exists now.
    replay = store.list(w.t, w.namespace).filter(inScope).map((o) => ({ type: 'ADDED', object: o }));
  } else {
    const n = Number(rvParam);
    if (!Number.isSafeInteger(n) || n < 0) throw new ApiError(400, 'BadRequest', `invalid resource version: ${rvParam}`);
    try {
      replay = store.since(w.t, n).map((e) => toWire(store, w.t, e, inScope)).filter((e) => e !== undefined);
    } catch (e) {
      if (!(e instanceof ApiError) || settings.goneAs === 'http') throw e;
      gone = e;
    }
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  onHead(200);
  res.flushHeaders();
  const send = (ev: object): void => { if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify(ev) + '\n'); };
  if (gone) {
    send({ type: 'ERROR', object: gone.status() });
    res.end();
    return;
  }
  open.set(res, w.t.group);
  let lastRv = store.currentRv();
  for (const ev of replay) send(ev);
  const unsubscribe = store.subscribe((e) => {
    lastRv = e.rv;
    const wire = toWire(store, w.t, e, inScope);
    if (wire) send(wire);
  });
  const bookmark = w.allowBookmarks
    ? setInterval(() => send({ type: 'BOOKMARK', object: { kind: w.t.kind, apiVersion: groupVersion(w.t), metadata: { resourceVersion: String(Math.max(lastRv, store.currentRv())) } } }), settings.bookmarkIntervalMs)
    : undefined;
  // Without timeoutSeconds kube-apiserver picks 30-60 minutes; one hour bounds it here.
  const timeout = setTimeout(() => res.end(), Math.min(w.timeoutSeconds && w.timeoutSeconds > 0 ? w.timeoutSeconds * 1000 : 3_600_000, 3_600_000));
  const cleanup = (): void => {
    unsubscribe();
    clearInterval(bookmark);
    clearTimeout(timeout);
    open.delete(res);
  };
  res.on('close', cleanup);
  req.on('close', cleanup);
}

/** Sends an in-stream 410 to every open watch and ends it (history expired under them). */
export function expireOpenWatches(open: Map<ServerResponse, string>, currentRv: number): void {
  for (const [res] of [...open]) {
    if (!res.writableEnded) res.end(JSON.stringify({ type: 'ERROR', object: expired(`too old resource version: ${currentRv - 1} (${currentRv})`).status() }) + '\n');
    open.delete(res);
  }
}

/** A store event as this watcher sees it: objects leaving its selector arrive as DELETED, entering as ADDED. */
function toWire(store: Store, t: ResourceType, e: StoredEvent, inScope: (o: any) => boolean): object | undefined {
  if (e.gk !== `${t.group}/${t.plural}`) return undefined;
  const now = inScope(e.obj);
  const before = e.type === 'MODIFIED' ? inScope(e.prev) : now;
  let type: string = e.type;
  if (e.type === 'MODIFIED' && now && !before) type = 'ADDED';
  else if (e.type === 'MODIFIED' && !now && before) type = 'DELETED';
  else if (!now) return undefined;
  return { type, object: store.viewEvent(t, e) };
}
