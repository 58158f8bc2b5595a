// HTTP routing and handlers: auth, discovery, list/watch/get/create/update/patch/delete and the
// /status subresource, with faults applied before each request is handled.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, conflict, genericNotFound, notFound, unauthorized } from './errors.ts';
import type { FaultPlan } from './faults.ts';
import { openapiGroupVersion, openapiIndex } from './openapi.ts';
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from './patch.ts';
import { groupVersion, type Registry, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.ts';
import type { Store } from './store.ts';
import { serveWatch, type WatchSettings } from './watch.ts';

export interface RequestRecord { method: string; path: string; query: string; contentType?: string; body?: string; status: number }

export interface HttpContext {
  store: Store;
  registry: Registry;
  faults: FaultPlan;
  token: string;
  serverAddress: () => string;
  watch: WatchSettings;
  /** Open watch streams and the API group each watches. */
  openWatches: Map<ServerResponse, string>;
  requests: RequestRecord[];
}

const BODY_MAX = 8 << 20;
const VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-portico-fake', gitCommit: '', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23', compiler: 'gc', platform: 'linux/amd64' };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > BODY_MAX) reject(new ApiError(413, 'RequestEntityTooLarge', 'request entity too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

interface Target { t: ResourceType; namespace?: string; name?: string; status: boolean }

/** Resource path under /api/v1 or /apis/<group>/<version>, or undefined when it names no known resource. */
function resolve(reg: Registry, group: string, version: string, segs: string[]): Target | undefined {
  if (segs[0] === 'namespaces' && segs.length >= 3) {
    const t = reg.byPlural(group, version, segs[2]);
    if (t?.namespaced && segs.length <= 5 && (segs.length < 5 || segs[4] === 'status')) return { t, namespace: segs[1], name: segs[3], status: segs.length === 5 };
  }
  const t = reg.byPlural(group, version, segs[0]);
  if (!t || segs.length > 3 || (segs.length === 3 && segs[2] !== 'status')) return undefined;
  if (t.namespaced && segs.length > 1) return undefined;
  return { t, name: segs[1], status: segs.length === 3 };
}

const decode = (s: string): string => decodeURIComponent(s);

export async function handle(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const method = (req.method ?? 'GET').toUpperCase();
  const record: RequestRecord = { method, path: url.pathname, query: url.search.slice(1), contentType: req.headers['content-type'], status: 0 };
  ctx.requests.push(record);
  const onHead = (status: number): void => { record.status = status; };
  const send = (status: number, body: object): void => {
    onHead(status);
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
    res.end(text);
  };
  try {
    if (req.headers.authorization !== `Bearer ${ctx.token}`) throw unauthorized();
    const body = ['POST', 'PUT', 'PATCH'].includes(method) ? await readBody(req) : '';
    if (body) record.body = body;
    const fault = ctx.faults.decide(method, url.pathname);
    if (fault.delayMs > 0) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.failStatus) throw new ApiError(fault.failStatus, fault.failStatus === 500 ? 'InternalError' : 'ServiceUnavailable', `Internal error occurred: injected fault`);
    if (fault.conflict) throw new ApiError(409, 'Conflict', 'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected fault)');
    await route(ctx, req, res, url, method, body, send, onHead);
  } catch (e) {
    if (res.headersSent) { res.destroy(); return; }
    if (e instanceof ApiError) send(e.code, e.status());
    else if (e instanceof SelectorError || e instanceof PatchError) send(400, badRequest(e.message).status());
    else send(500, new ApiError(500, 'InternalError', `Internal error occurred: ${(e as Error).message}`).status());
  }
}

type Send = (status: number, body: object) => void;

async function route(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, url: URL, method: string, body: string, send: Send, onHead: (s: number) => void): Promise<void> {
  const segs = url.pathname.split('/').filter((s) => s !== '').map(decode);
  const p = url.pathname.replace(/\/+$/, '');
  if (method === 'GET') {
    if (p === '/version') return send(200, VERSION);
    if (p === '/openapi/v3') return send(200, openapiIndex(ctx.registry));
    if (segs[0] === 'openapi' && segs[1] === 'v3') {
      const doc = segs[2] === 'api' ? openapiGroupVersion(ctx.registry, '', segs[3]) : segs[2] === 'apis' ? openapiGroupVersion(ctx.registry, segs[3], segs[4]) : undefined;
      if (doc && segs.length === (segs[2] === 'api' ? 4 : 5)) return send(200, doc);
    }
    if (p === '/api') return send(200, ctx.registry.apiVersions(ctx.serverAddress()));
    if (p === '/apis') return send(200, ctx.registry.apiGroupList());
    if (segs[0] === 'apis' && segs.length === 2) { const g = ctx.registry.apiGroup(segs[1]); if (g) return send(200, { kind: 'APIGroup', apiVersion: 'v1', ...g }); }
    if (segs[0] === 'api' && segs.length === 2) { const l = ctx.registry.apiResourceList('', segs[1]); if (l) return send(200, l); }
    if (segs[0] === 'apis' && segs.length === 3) { const l = ctx.registry.apiResourceList(segs[1], segs[2]); if (l) return send(200, l); }
  }
  let target: Target | undefined;
  if (segs[0] === 'api' && segs[1] === 'v1' && segs.length > 2) target = resolve(ctx.registry, '', 'v1', segs.slice(2));
  if (segs[0] === 'apis' && segs.length > 3) target = resolve(ctx.registry, segs[1], segs[2], segs.slice(3));
  if (!target) throw genericNotFound();
  const { t, namespace, name } = target;
  const q = url.searchParams;
  if (q.get('dryRun')) throw badRequest('dryRun is not supported by this fake API server');
  const parse = (): any => {
    try { return JSON.parse(body); } catch { throw badRequest(`the request body is not JSON: ${body.slice(0, 80)}`); }
  };

  if (name === undefined) {
    if (target.status) throw genericNotFound();
    if (method === 'GET') {
      const labels = parseLabelSelector(q.get('labelSelector'));
      const fields = parseFieldSelector(q.get('fieldSelector'), t.kind);
      if (q.get('watch') === 'true' || q.get('watch') === '1') {
        const ts = q.get('timeoutSeconds');
        const initial = q.get('sendInitialEvents') === 'true';
        if (initial && (q.get('resourceVersionMatch') !== 'NotOlderThan' || q.get('allowWatchBookmarks') !== 'true')) {
          throw new ApiError(422, 'Invalid', 'sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true');
        }
        return serveWatch(ctx.store, { t, namespace, labels, fields, resourceVersion: q.get('resourceVersion'), allowBookmarks: q.get('allowWatchBookmarks') === 'true', timeoutSeconds: ts ? Number(ts) : undefined, sendInitialEvents: initial }, ctx.watch, req, res, onHead, ctx.openWatches);
      }
      return send(200, list(ctx.store, t, namespace, q, (o) => labels(o) && fields(o)));
    }
    if (method === 'POST') {
      const obj = parse();
      checkKind(t, obj);
      checkStrict(t, obj, q);
      if (t.namespaced) {
        if (obj.metadata?.namespace && obj.metadata.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
        if (!ctx.store.get(ctx.registry.byPlural('', 'v1', 'namespaces')!, undefined, namespace!)) throw notFound(ctx.registry.byPlural('', 'v1', 'namespaces')!, namespace!);
        obj.metadata = { ...obj.metadata, namespace };
      }
      return send(201, ctx.store.create(t, obj));
    }
    if (method === 'DELETE') {
      const labels = parseLabelSelector(q.get('labelSelector'));
      const fields = parseFieldSelector(q.get('fieldSelector'), t.kind);
      const gone = ctx.store.list(t, namespace).filter((o) => labels(o) && fields(o)).map((o) => ctx.store.delete(t, o.metadata.namespace, o.metadata.name));
      return send(200, listBody(t, gone, ctx.store.currentRv()));
    }
    throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }

  const sub = target.status ? { subresource: 'status' as const } : {};
  const current = (): any => {
    const o = ctx.store.get(t, namespace, name);
    if (!o) throw notFound(t, name);
    return o;
  };
  if (method === 'GET') return send(200, current());
  if (method === 'PUT') {
    const obj = parse();
    checkKind(t, obj);
    checkStrict(t, obj, q);
    if (obj.metadata?.name !== name) throw badRequest('the name of the object does not match the name on the URL');
    if (t.namespaced && obj.metadata?.namespace && obj.metadata.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    obj.metadata.namespace = namespace;
    return send(200, ctx.store.update(t, obj, sub));
  }
  if (method === 'PATCH') {
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim();
    const patch = parse();
    const cur = current();
    let next: any;
    if (ct === 'application/merge-patch+json') next = mergePatch(cur, patch);
    else if (ct === 'application/json-patch+json') next = jsonPatch(cur, patch);
    else if (ct === 'application/strategic-merge-patch+json' && !t.crd) next = strategicMergePatch(cur, patch);
    else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${t.crd ? '' : ', application/strategic-merge-patch+json'}`);
    // A resourceVersion the patch sets acts as a precondition; otherwise the patch applies to the current version.
    const rv = next?.metadata?.resourceVersion;
    if (rv !== cur.metadata.resourceVersion) throw conflict(t, name);
    if (next?.metadata?.name !== name) throw badRequest('metadata.name cannot be changed by a patch');
    checkStrict(t, next, q);
    next.metadata.namespace = cur.metadata.namespace;
    return send(200, ctx.store.update(t, next, sub));
  }
  if (method === 'DELETE' && !target.status) {
    let pre: any = {};
    if (body) try { pre = JSON.parse(body).preconditions ?? {}; } catch { /* DeleteOptions are optional */ }
    return send(200, ctx.store.delete(t, namespace, name, pre));
  }
  throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

// Top-level fields of each kind; fieldValidation=Strict refuses others (nested fields are not checked).
const TOP_FIELDS: Record<string, string[]> = { Secret: ['data', 'stringData', 'type', 'immutable'], ConfigMap: ['data', 'binaryData', 'immutable'], EndpointSlice: ['addressType', 'endpoints', 'ports'] };

function checkStrict(t: ResourceType, obj: any, q: URLSearchParams): void {
  if (q.get('fieldValidation') !== 'Strict' || typeof obj !== 'object' || obj === null) return;
  const known = new Set(['apiVersion', 'kind', 'metadata', ...(TOP_FIELDS[t.kind] ?? ['spec', 'status'])]);
  const unknown = Object.keys(obj).filter((k) => !known.has(k));
  if (unknown.length > 0) throw badRequest(`strict decoding error: ${unknown.map((k) => `unknown field "${k}"`).join(', ')}`);
}

function checkKind(t: ResourceType, obj: any): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw badRequest('the request body must be a JSON object');
  if (obj.kind !== undefined && obj.kind !== t.kind) throw badRequest(`the API version in the data (${obj.apiVersion}) / kind (${obj.kind}) does not match the expected ${groupVersion(t)}, Kind=${t.kind}`);
  if (obj.apiVersion !== undefined && obj.apiVersion !== groupVersion(t)) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${groupVersion(t)})`);
}

function listBody(t: ResourceType, items: any[], rv: number, extra: object = {}): object {
  // Built-in lists omit kind/apiVersion on items (kubernetes/kubernetes#3030); CRD lists keep them.
  const shown = t.crd ? items : items.map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
  return { kind: `${t.kind}List`, apiVersion: groupVersion(t), metadata: { resourceVersion: String(rv), ...extra }, items: shown };
}

function list(store: Store, t: ResourceType, ns: string | undefined, q: URLSearchParams, match: (o: any) => boolean): object {
  const rvParam = q.get('resourceVersion');
  if (rvParam && q.get('resourceVersionMatch') === 'Exact' && Number(rvParam) !== store.currentRv()) {
    // Only the newest state is kept: an older exact snapshot is as gone as a compacted one.
    throw new ApiError(410, 'Expired', `too old resource version: ${rvParam} (${store.currentRv()})`);
  }
  let items = store.list(t, ns).filter(match);
  const extra: Record<string, unknown> = {};
  let rv = store.currentRv();
  const cont = q.get('continue');
  if (cont) {
    let token: { rv: number; after: string };
    try { token = JSON.parse(Buffer.from(cont, 'base64url').toString()); } catch { throw badRequest('invalid continue token'); }
    if (token.rv < store.oldestRv()) throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
    items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > token.after);
    rv = token.rv;
  }
  const limit = Number(q.get('limit') ?? 0);
  if (limit > 0 && items.length > limit) {
    const last = items[limit - 1];
    extra.continue = Buffer.from(JSON.stringify({ rv, after: `${last.metadata.namespace ?? ''}/${last.metadata.name}` })).toString('base64url');
    extra.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
  }
  return listBody(t, items, rv, extra);
}
