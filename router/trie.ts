// A trie over path segments. Each node may end Exact and Prefix matches. Children are found by a
// hash of the segment's characters, computed in place over the request path, so a lookup neither
// slices strings nor scans siblings: its cost depends on the path's depth, not on the route count.

/** Something a trie node can end with: the candidates, best first. */
export type Candidates<T> = readonly T[];

export class PathNode<T> {
  readonly segment: string;
  exact: Candidates<T> | undefined = undefined;
  prefix: Candidates<T> | undefined = undefined;
  /** Next node in the same hash bucket of the parent. */
  collision: PathNode<T> | undefined = undefined;
  children: Map<number, PathNode<T>> | undefined = undefined;

  constructor(segment: string) {
    this.segment = segment;
  }
}

// FNV-1a, masked to 30 bits so the key stays a small integer (no boxing in Map.get).
export function segmentHash(s: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

export function findChild<T>(node: PathNode<T>, path: string, start: number, end: number): PathNode<T> | undefined {
  const children = node.children;
  if (children === undefined) return undefined;
  let child = children.get(segmentHash(path, start, end));
  const len = end - start;
  while (child !== undefined) {
    if (child.segment.length === len && path.startsWith(child.segment, start)) return child;
    child = child.collision;
  }
  return undefined;
}

export function getOrAddChild<T>(node: PathNode<T>, segment: string): PathNode<T> {
  const existing = findChild(node, segment, 0, segment.length);
  if (existing !== undefined) return existing;
  const child = new PathNode<T>(segment);
  node.children ??= new Map();
  const h = segmentHash(segment, 0, segment.length);
  child.collision = node.children.get(h);
  node.children.set(h, child);
  return child;
}

/**
 * Segments of a normalised path. `/` has none; a trailing slash is an empty last segment, so
 * Exact `/foo/` and Exact `/foo` are different nodes.
 */
export function splitSegments(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

export function freezeTrie<T>(node: PathNode<T>): void {
  if (node.children !== undefined) for (const child of node.children.values()) {
    for (let c: PathNode<T> | undefined = child; c !== undefined; c = c.collision) freezeTrie(c);
  }
  Object.freeze(node);
}
