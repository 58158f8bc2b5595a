// Query parameters for route conditions, read in place from the request target. Parsing the
// whole query per request (a URLSearchParams) allocates a list of every pair; a condition asks
// for one or two names, so the target is scanned for them instead: nothing is allocated but the
// value returned. Answers are those of `new URLSearchParams(query).get(name)` (the first pair of
// that name, `+` and percent-escapes decoded, a pair without `=` has the value ''), the
// application/x-www-form-urlencoded parser of the WHATWG URL standard; pairs that need decoding
// are rare and are decoded by that parser itself.

function decoded(s: string, start: number, end: number): string {
  // The range holds no '&'; the parser splits a pair at its first '=', so `x=` keeps the rest whole.
  return new URLSearchParams(`x=${s.slice(start, end)}`).get('x') ?? '';
}

/**
 * The value of query parameter `name` in a request target (`/path?a=1&b=2`), or undefined when
 * the target has no such parameter. Everything after the first '?' is the query.
 */
export function queryParam(target: string, name: string): string | undefined {
  let i = target.indexOf('?');
  if (i === -1) return undefined;
  i++;
  const len = target.length;
  // As the URLSearchParams constructor, one more leading '?' is not part of the first name.
  if (i < len && target.charCodeAt(i) === 63) i++;
  while (i < len) {
    // One pair, [start, i): its first '=' and whether its name or value needs decoding ('%',
    // '+', or a UTF-16 surrogate, which the parser's UTF-8 round trip may replace).
    const start = i;
    let eq = -1;
    let keyCoded = false;
    let valueCoded = false;
    for (; i < len; i++) {
      const c = target.charCodeAt(i);
      if (c === 38 /* & */) break;
      if (c === 61 /* = */ && eq === -1) eq = i;
      else if (c === 37 /* % */ || c === 43 /* + */ || (c >= 0xd800 && c <= 0xdfff)) {
        if (eq === -1) keyCoded = true;
        else valueCoded = true;
      }
    }
    const keyEnd = eq === -1 ? i : eq;
    if (keyEnd > start || eq !== -1) {
      const found = keyCoded ? decoded(target, start, keyEnd) === name : keyEnd - start === name.length && target.startsWith(name, start);
      if (found) {
        if (eq === -1) return '';
        return valueCoded ? decoded(target, eq + 1, i) : target.slice(eq + 1, i);
      }
    }
    i++;
  }
  return undefined;
}
