// The manifest-directory source: every *.yaml, *.yml and *.json under a directory, recursively,
// watched for changes. It plays the API server's part for the fields a controller relies on:
// default namespace, creationTimestamp, uid, and a generation that moves when the spec changes.

import { createHash, randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Source, SourceHealth } from './source.ts';
import { isClusterScoped, isRecord, objectKey, validateEnvelope, type KubeObject, type Problem, type SourcedObject, type SourceSnapshot } from './objects.ts';

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

interface FileState {
  mtimeMs: number;
  size: number;
  ino: number;
  /** Objects of the last version of the file that parsed. */
  objects: KubeObject[];
  problems: Problem[];
}

interface Identity {
  uid: string;
  creationTimestamp: string;
  generation: number;
  specHash: string;
  resourceVersion: number;
}

async function listManifestFiles(dir: string, out: string[] = [], dirs: string[] = [], depth = 0): Promise<string[]> {
  if (depth > 32) return out;
  dirs.push(dir);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue; // editors' swap files and hidden dirs (e.g. ..data of ConfigMap mounts)
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      // ConfigMap volumes are symlinks into a `..data` directory that is swapped on update.
      try {
        const st = await stat(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        continue; // dangling link
      }
    }
    if (isDir) await listManifestFiles(p, out, dirs, depth + 1);
    else if (isFile && MANIFEST_EXTENSIONS.some((ext) => e.name.endsWith(ext))) out.push(p);
  }
  return out;
}

/** Parse one file's text into objects; List objects are flattened. Never throws. */
export function parseManifests(text: string, origin: string): { objects: KubeObject[]; problems: Problem[]; syntaxError: boolean } {
  const objects: KubeObject[] = [];
  const problems: Problem[] = [];
  let docs: unknown[];
  try {
    if (origin.endsWith('.json')) {
      docs = [JSON.parse(text)];
    } else {
      const parsed = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: false });
      const list = Array.isArray(parsed) ? parsed : [parsed];
      const errors = list.flatMap((d) => d.errors);
      if (errors.length > 0) {
        return { objects, problems: [{ severity: 'error', origin, message: `YAML syntax error: ${errors[0].message.split('\n')[0]}` }], syntaxError: true };
      }
      docs = list.map((d) => d.toJS({ maxAliasCount: 100 }));
    }
  } catch (err) {
    return { objects, problems: [{ severity: 'error', origin, message: `cannot parse: ${(err as Error).message.split('\n')[0]}` }], syntaxError: true };
  }
  const visit = (doc: unknown, depth: number): void => {
    if (doc === null || doc === undefined) return; // empty document between '---'
    if (isRecord(doc) && typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items) && depth < 4) {
      for (const item of doc.items) visit(item, depth + 1);
      return;
    }
    const reason = validateEnvelope(doc);
    if (reason !== undefined) {
      problems.push({ severity: 'error', origin, message: `skipped a document: ${reason}` });
      return;
    }
    objects.push(doc as KubeObject);
  };
  for (const doc of docs) visit(doc, 0);
  return { objects, problems, syntaxError: false };
}

function specHash(o: KubeObject): string {
  // Everything but metadata and status counts as spec, as it does for generation on the API server.
  const { metadata: _m, status: _s, ...rest } = o;
  return createHash('sha1').update(JSON.stringify(rest)).digest('base64');
}

/** How long a file that was just emptied is given to get its new contents (see scan()): long enough for a slow writer on a loaded machine, short enough that emptying a file takes effect promptly. */
const SETTLE_MS = 1000;

export interface ManifestSourceOptions {
  readonly dir: string;
  /** Coalesces bursts of file events (an editor's save is several). */
  readonly debounceMs?: number;
  /** A full rescan at this interval catches events a watcher can miss (NFS, some mounts). */
  readonly rescanMs?: number;
}

export class ManifestSource implements Source {
  private readonly dir: string;
  private readonly debounceMs: number;
  private readonly rescanMs: number;
  private readonly files = new Map<string, FileState>();
  private readonly identities = new Map<string, Identity>();
  private resourceVersion = 0;
  /** One watcher per directory: Node's recursive watch on Linux misses rename-into events. */
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  /** Files that were read empty after having objects: since when (see SETTLE_MS). */
  private readonly emptySince = new Map<string, number>();
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private listener: ((s: SourceSnapshot) => void) | undefined;
  private lastPublished = '';
  private dirMissing = false;

  constructor(options: ManifestSourceOptions) {
    this.dir = options.dir;
    this.debounceMs = options.debounceMs ?? 20;
    this.rescanMs = options.rescanMs ?? 2000;
  }

  /** Loads the directory once, calls `onChange` with it, then again after every change. */
  async start(onChange: (s: SourceSnapshot) => void): Promise<void> {
    this.listener = onChange;
    await this.scan(true);
    this.rescanTimer = setInterval(() => this.schedule(), this.rescanMs);
    this.rescanTimer.unref();
  }

  health(): SourceHealth {
    return { synced: this.lastPublished !== '' };
  }

  stop(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.timer);
    clearTimeout(this.settleTimer);
    clearInterval(this.rescanTimer);
    this.listener = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runScan();
    }, this.debounceMs);
  }

  private async runScan(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      return;
    }
    this.scanning = this.scan(false).catch(() => undefined);
    await this.scanning;
    this.scanning = undefined;
    if (this.rescanRequested) {
      this.rescanRequested = false;
      this.schedule();
    }
  }

  private async scan(initial: boolean): Promise<void> {
    let changed = initial;
    const dirs: string[] = [];
    const paths = await listManifestFiles(this.dir, [], dirs);
    this.watchDirectories(dirs);
    const missing = !(await stat(this.dir).then((st) => st.isDirectory(), () => false));
    if (missing !== this.dirMissing) {
      this.dirMissing = missing;
      changed = true;
    }
    const seen = new Set(paths);
    for (const path of [...this.files.keys()]) {
      if (!seen.has(path)) {
        this.files.delete(path);
        changed = true;
      }
    }
    for (const path of paths) {
      let st;
      try {
        st = await stat(path);
      } catch {
        continue; // removed between readdir and stat
      }
      const prev = this.files.get(path);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size && prev.ino === st.ino) {
        // The file is what is served again (an in-place rewrite that put back the same bytes,
        // within the mtime's resolution): an earlier blank read of it is over. Left set, it would
        // make the next brief truncation look SETTLE_MS old and drop the file's objects.
        this.emptySince.delete(path);
        continue;
      }
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        continue;
      }
      const blank = text.trim() === '';
      if (!blank) this.emptySince.delete(path);
      else if (prev !== undefined && prev.objects.length > 0 && !this.emptySince.has(path)) this.emptySince.set(path, Date.now());
      // On Portico's own clock, not the file's mtime (clock skew, whole-second mtimes, cp -p).
      if (blank && prev !== undefined && prev.objects.length > 0 && Date.now() - (this.emptySince.get(path) ?? 0) < SETTLE_MS) {
        // Most likely an in-place rewrite caught between its truncate and its write: keep serving
        // the last contents, and look again once the file has settled. An emptied file that stays
        // empty is taken as meant after SETTLE_MS.
        this.settleTimer ??= setTimeout(() => {
          this.settleTimer = undefined;
          this.schedule();
        }, SETTLE_MS);
        continue;
      }
      this.emptySince.delete(path);
      const origin = relative(process.cwd(), path) || path;
      const parsed = parseManifests(text, origin);
      // A file that no longer parses keeps serving what it last said.
      const objects = parsed.syntaxError && prev ? prev.objects : parsed.objects;
      const problems = parsed.syntaxError && prev ? parsed.problems.map((p) => ({ ...p, message: `${p.message}; keeping its last good contents` })) : parsed.problems;
      this.files.set(path, { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, objects, problems });
      changed = true;
    }
    if (changed) this.publish();
  }

  private watchDirectories(dirs: string[]): void {
    if (this.listener === undefined) return;
    const keep = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (keep.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.schedule();
        });
        this.watchers.set(dir, w);
      } catch {
        // Not watchable (gone, or out of inotify watches): the periodic rescan still finds changes.
      }
    }
  }

  private publish(): void {
    const objects: SourcedObject[] = [];
    const problems: Problem[] = [];
    // Keep watching: the directory may be created (or mounted) later.
    if (this.dirMissing) problems.push({ severity: 'error', origin: this.dir, message: `manifest directory ${this.dir} does not exist or is not a directory` });
    const byKey = new Map<string, SourcedObject>();
    for (const [path, state] of [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const origin = relative(process.cwd(), path) || path;
      problems.push(...state.problems);
      for (const raw of state.objects) {
        const object = this.stamp(raw);
        const key = objectKey(object);
        const dup = byKey.get(key);
        if (dup) {
          problems.push({ severity: 'warning', kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name, origin, message: `also defined in ${dup.origin}; using that one` });
          continue;
        }
        const sourced = { object, origin };
        byKey.set(key, sourced);
        objects.push(sourced);
      }
    }
    for (const key of [...this.identities.keys()]) if (!byKey.has(key)) this.identities.delete(key);
    const fingerprint = JSON.stringify([objects, problems]);
    if (fingerprint === this.lastPublished) return;
    this.lastPublished = fingerprint;
    this.listener?.({ objects, problems });
  }

  /** Fill what the API server would: namespace, uid, creationTimestamp, generation, resourceVersion. */
  private stamp(raw: KubeObject): KubeObject {
    const metadata = { ...raw.metadata };
    if (!isClusterScoped(raw.kind) && !metadata.namespace) metadata.namespace = 'default';
    const object: KubeObject = { ...raw, metadata };
    const key = objectKey(object);
    const hash = specHash(object);
    let id = this.identities.get(key);
    if (!id) {
      id = {
        uid: metadata.uid ?? randomUUID(),
        creationTimestamp: metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        generation: typeof metadata.generation === 'number' ? metadata.generation : 1,
        specHash: hash,
        resourceVersion: ++this.resourceVersion,
      };
      this.identities.set(key, id);
    } else if (id.specHash !== hash) {
      id.specHash = hash;
      id.generation = typeof metadata.generation === 'number' && metadata.generation > id.generation ? metadata.generation : id.generation + 1;
      id.resourceVersion = ++this.resourceVersion;
    }
    metadata.uid = id.uid;
    metadata.creationTimestamp = metadata.creationTimestamp ?? id.creationTimestamp;
    metadata.generation = id.generation;
    metadata.resourceVersion = String(id.resourceVersion);
    return object;
  }
}
