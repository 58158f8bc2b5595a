// Query parameters for route conditions, read in place from the request target. Parsing the
// whole query per request (a URLSearchParams) allocates a list of every pair; a condition asks
// for one or two names, so the target is scanned for them instead: nothing is allocated but the
// value returned. Answers are those of `new URLSearchParams(query).get(name)` (the first pair of
// that name, `+` and percent-escapes decoded, a pair without `=` has the value ''), the
// application/x-www-form-urlencoded parser of the WHATWG URL standard; pairs that need decoding
// are rare and are decoded by that parser itself.

/** Whether `s[start, end)` reads differently once decoded: '%', '+' or a UTF-16 surrogate. */
function needsDecoding(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ || c === 43 /* + */ || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

function decoded(s: string, start: number, end: number): string {
  // The range holds no '&'; the parser splits a pair at its first '=', so `x=` keeps the rest whole.
  return new URLSearchParams(`x=${s.slice(start, end)}`).get('x') ?? '';
}

/**
 * The value of query parameter `name` in a request target (`/path?a=1&b=2`), or undefined when
 * the target has no such parameter. Everything after the first '?' is the query.
 */
export function queryParam(target: string, name: string): string | undefined {
  const q = target.indexOf('?');
  if (q === -1) return undefined;
  let i = q + 1;
  // As the URLSearchParams constructor, one more leading '?' is not part of the first name.
  if (target.charCodeAt(i) === 63) i++;
  const len = target.length;
  while (i < len) {
    let amp = target.indexOf('&', i);
    if (amp === -1) amp = len;
    if (amp > i) {
      let eq = target.indexOf('=', i);
      if (eq === -1 || eq > amp) eq = amp;
      const found = needsDecoding(target, i, eq) ? decoded(target, i, eq) === name : eq - i === name.length && target.startsWith(name, i);
      if (found) {
        const start = eq < amp ? eq + 1 : amp;
        return needsDecoding(target, start, amp) ? decoded(target, start, amp) : target.slice(start, amp);
      }
    }
    i = amp + 1;
  }
  return undefined;
}
