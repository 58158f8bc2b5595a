// Request-path normalisation before routing. The common path ("/a/b", no '%', no dot segments,
// no empty segments) is returned as it is, so routing it allocates nothing. Anything else is
// decoded and resolved the way nginx does before it picks a location, so `/public/../admin`
// cannot reach a route that `/admin` would not reach.

/** End of the path part of a request target: the index of '?' or '#', or the length. */
export function pathEnd(target: string): number {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return target.length;
}

/** True when the first `end` characters of `target` need normalising before routing. */
export function needsNormalizing(target: string, end: number): boolean {
  if (end === 0 || target.charCodeAt(0) !== 47 /* / */) return true;
  let prev = 47;
  for (let i = 1; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* backslash */) return true;
    if (c === 47 && prev === 47) return true;
    if (c === 46 /* . */ && prev === 47) {
      const next = i + 1 < end ? target.charCodeAt(i + 1) : 47;
      if (next === 47 || (next === 46 && (i + 2 >= end || target.charCodeAt(i + 2) === 47))) return true;
    }
    prev = c;
  }
  return false;
}

// Decodes unreserved percent-escapes (RFC 3986 2.3) and the escaped slashes %2F and %5C, which
// become '/': a backend that decodes the path before reading it (most frameworks do, as nginx
// does before it picks a location) sees `/x/..%2fadmin` as `/admin`, so the route is chosen by
// that path too. A backslash counts as a separator because WHATWG URL parsers treat it as one.
// Other reserved escapes stay encoded: they do not change how the path splits into segments.
function decodeForMatching(path: string): string {
  return path.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => {
    const code = parseInt(hex, 16);
    if (code === 0x2f || code === 0x5c) return '/';
    const unreserved =
      (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) ||
      code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e;
    return unreserved ? String.fromCharCode(code) : whole.toUpperCase();
  });
}

/** True when a path (no query) holds an escaped slash: %2F or %5C, either case. */
export function hasEscapedSlash(path: string): boolean {
  for (let i = path.indexOf('%'); i >= 0 && i + 2 < path.length; i = path.indexOf('%', i + 1)) {
    const a = path.charCodeAt(i + 1);
    const b = path.charCodeAt(i + 2) | 0x20;
    if ((a === 50 /* 2 */ && b === 102 /* f */) || (a === 53 /* 5 */ && b === 99 /* c */)) return true;
  }
  return false;
}

/**
 * Normalise the path part of a request target: decode unreserved percent-escapes and escaped
 * slashes, read a backslash as a slash, merge repeated slashes, resolve '.' and '..' (never above
 * the root). A trailing slash is kept, because Exact paths distinguish `/foo` from `/foo/`.
 */
export function normalizePath(target: string, end: number = pathEnd(target)): string {
  let path = target.slice(0, end);
  if (path.charCodeAt(0) !== 47) path = '/' + path;
  if (path.includes('%')) path = decodeForMatching(path);
  if (path.includes('\\')) path = path.replaceAll('\\', '/');
  const input = path.split('/');
  const out: string[] = [];
  const last = input.length - 1;
  for (let i = 1; i <= last; i++) {
    const seg = input[i];
    if (seg === '..') {
      out.pop();
      if (i === last) out.push('');
    } else if (seg === '.' || (seg === '' && i !== last)) {
      if (i === last) out.push('');
    } else {
      out.push(seg);
    }
  }
  // Collapse a trailing '' produced more than once (e.g. "/a/./" then "").
  while (out.length > 1 && out[out.length - 1] === '' && out[out.length - 2] === '') out.pop();
  return '/' + out.join('/');
}
