// Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the parts of Kubernetes
// strategic merge patch that kubectl sends for the kinds served here.

export class PatchError extends Error {}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

export function mergePatch(target: any, patch: any): any {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, any> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: any, tokens: string[]): { parent: any; key: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(t)] : isObj(cur) ? cur[t] : undefined;
    if (cur === undefined) throw new PatchError(`path not found: /${tokens.join('/')}`);
  }
  return { parent: cur, key: tokens[tokens.length - 1] };
}

function getAt(doc: any, path: string): any {
  let cur = doc;
  for (const t of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(t)] : isObj(cur) ? cur[t] : undefined;
    if (cur === undefined) throw new PatchError(`path not found: ${path}`);
  }
  return cur;
}

function removeAt(doc: any, path: string): any {
  const { parent, key } = parentOf(doc, pointer(path));
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!(i >= 0 && i < parent.length)) throw new PatchError(`index out of range: ${path}`);
    return parent.splice(i, 1)[0];
  }
  if (!isObj(parent) || !Object.hasOwn(parent, key)) throw new PatchError(`path not found: ${path}`);
  const v = parent[key];
  delete parent[key];
  return v;
}

function addAt(doc: any, path: string, value: any, replace: boolean): any {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(i >= 0 && i <= parent.length - (replace ? 1 : 0))) throw new PatchError(`index out of range: ${path}`);
    parent.splice(i, replace ? 1 : 0, value);
  } else if (isObj(parent)) {
    if (replace && !Object.hasOwn(parent, key)) throw new PatchError(`path not found: ${path}`);
    parent[key] = value;
  } else throw new PatchError(`path not found: ${path}`);
  return doc;
}

export function jsonPatch(target: any, ops: any): any {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = clone(target);
  for (const op of ops) {
    if (!isObj(op) || typeof op.path !== 'string') throw new PatchError('invalid JSON patch operation');
    switch (op.op) {
      case 'add': doc = addAt(doc, op.path, clone(op.value), false); break;
      case 'replace': doc = addAt(doc, op.path, clone(op.value), true); break;
      case 'remove': removeAt(doc, op.path); break;
      case 'move': { const v = removeAt(doc, op.from); doc = addAt(doc, op.path, v, false); break; }
      case 'copy': doc = addAt(doc, op.path, clone(getAt(doc, op.from)), false); break;
      case 'test': if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) throw new PatchError(`test operation failed at ${op.path}`); break;
      default: throw new PatchError(`unknown JSON patch operation ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}

// Lists that strategic merge patch merges by a key instead of replacing (the patchMergeKey
// tags of the Go types served here), by field name.
const MERGE_KEYS: Record<string, string> = {
  containers: 'name', ports: 'port', env: 'name', volumes: 'name', conditions: 'type',
  loadBalancerIngress: 'ip', imagePullSecrets: 'name', volumeMounts: 'mountPath',
};

/** Strategic merge patch: merge patch, except keyed lists merge element-wise and `$patch`/`$retainKeys`/`$setElementOrder` directives. */
export function strategicMergePatch(target: any, patch: any, field = ''): any {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (!key || !Array.isArray(target) || !patch.every(isObj)) return clone(patch.filter((p) => !(isObj(p) && p.$patch)));
    const out = clone(target);
    for (const p of patch) {
      const i = out.findIndex((e: any) => isObj(e) && e[key] === p[key]);
      if (p.$patch === 'delete') { if (i >= 0) out.splice(i, 1); continue; }
      if (i >= 0) out[i] = strategicMergePatch(out[i], p);
      else out.push(strategicMergePatch({}, p));
    }
    return out;
  }
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') { const { $patch: _, ...rest } = patch; return clone(rest); }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, any> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue; // $setElementOrder/..., $retainKeys: ordering/pruning hints
    if (v === null) delete out[k];
    else {
      const r = strategicMergePatch(out[k], v, k);
      if (r === undefined) delete out[k];
      else out[k] = r;
    }
  }
  return out;
}
