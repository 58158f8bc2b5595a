// Regular expressions written by route authors (Gateway API RegularExpression path, header and
// query matches). JavaScript's engine backtracks, so a pattern like `(a+)+$` could stall a worker
// on a crafted request. Instead of trusting patterns, only a subset is accepted, one whose
// backtracking is bounded by a small polynomial, and inputs are bounded too:
// - at most MAX_PATTERN characters;
// - literals, `.`, escapes (\d \D \w \W \s \S \t \n \r, \xHH, \uHHHH, an escaped punctuation
//   character), classes `[...]`, groups `(...)` / `(?:...)`, alternation `|`, quantifiers
//   `* + ?` and `{n}` `{n,}` `{n,m}` (n, m <= 100), optionally lazy (`*?`), `^` first and `$` last;
// - no backreferences, lookaround or named groups (they are not in the RE2 subset either);
// - no repetition (anything but `?`) of a group that itself holds a quantifier or an alternation
//   (star height 1: that is what makes `(a+)+` exponential);
// - at most MAX_VARIABLE quantifiers that match a variable number of times, so the worst case
//   is O(n^MAX_VARIABLE) in the input length n;
// - an input longer than MAX_INPUT characters never matches.
// The whole value must match (the pattern is anchored at both ends).

export const MAX_PATTERN = 256;
export const MAX_VARIABLE = 3;
export const MAX_INPUT = 1024;

export class RegexError extends Error {}

/** Checks a pattern against the subset above; returns why it is refused, or undefined. */
export function unsafeRegexReason(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN) return `longer than ${MAX_PATTERN} characters`;
  // Per open group: whether it holds a quantifier or an alternation.
  const groups: { complex: boolean }[] = [];
  let variable = 0;
  let lastAtom: 'none' | 'simple' | 'complexGroup' | 'quantified' = 'none';
  let i = 0;
  const mark = (): void => {
    for (const g of groups) g.complex = true;
  };
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) return 'ends with a backslash';
      if (/[1-9k]/.test(n)) return 'backreferences are not supported';
      if (/[bB]/.test(n)) return 'word boundaries are not supported';
      if (n === 'x') {
        if (!/^[0-9a-fA-F]{2}$/.test(pattern.slice(i + 2, i + 4))) return 'bad \\x escape';
        i += 4;
      } else if (n === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(pattern.slice(i + 2, i + 6))) return 'bad \\u escape';
        i += 6;
      } else if (/[dDwWsStnr0]/.test(n) || /[^A-Za-z0-9]/.test(n)) {
        i += 2;
      } else return `unsupported escape \\${n}`;
      lastAtom = 'simple';
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') {
        if (pattern[j] === '\\') {
          const n = pattern[j + 1];
          if (n === undefined) return 'ends inside a class';
          if (/[A-Za-z0-9]/.test(n) && !/[dDwWsStnr]/.test(n)) return `unsupported escape \\${n} in a class`;
          j += 2;
        } else if (pattern[j] === '[' && pattern[j + 1] === ':') return 'POSIX classes are not supported';
        else j++;
      }
      if (j >= pattern.length) return 'unterminated character class';
      i = j + 1;
      lastAtom = 'simple';
      continue;
    }
    if (c === '(') {
      if (pattern[i + 1] === '?') {
        if (pattern[i + 2] !== ':') return 'lookaround and named groups are not supported';
        i += 3;
      } else i += 1;
      groups.push({ complex: false });
      lastAtom = 'none';
      continue;
    }
    if (c === ')') {
      const g = groups.pop();
      if (g === undefined) return 'unbalanced )';
      i += 1;
      lastAtom = g.complex ? 'complexGroup' : 'simple';
      continue;
    }
    if (c === '|') {
      mark();
      i += 1;
      lastAtom = 'none';
      continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      let varies = c !== '?';
      let len = 1;
      if (c === '{') {
        const m = /^\{(\d{1,3})(,(\d{0,3}))?\}/.exec(pattern.slice(i));
        if (m === null) return 'bad {n,m} quantifier';
        const lo = Number(m[1]);
        const hi = m[2] === undefined ? lo : m[3] === '' ? Infinity : Number(m[3]);
        if (lo > 100 || (hi !== Infinity && hi > 100) || hi < lo) return 'repetition counts must be 0-100 and ordered';
        varies = hi !== lo && !(lo === 0 && hi === 1);
        len = m[0].length;
      }
      if (lastAtom === 'none') return `quantifier ${c} has nothing to repeat`;
      if (lastAtom === 'quantified') return 'a quantifier cannot follow a quantifier';
      if (lastAtom === 'complexGroup' && varies) return 'a group holding a quantifier or an alternation cannot be repeated';
      if (varies && ++variable > MAX_VARIABLE) return `more than ${MAX_VARIABLE} variable repetitions`;
      if (varies || c === '?') mark();
      i += len;
      if (pattern[i] === '?') i += 1; // lazy
      lastAtom = 'quantified';
      continue;
    }
    if (c === '^') {
      if (i !== 0) return '^ only at the start';
      i += 1;
      continue;
    }
    if (c === '$') {
      if (i !== pattern.length - 1) return '$ only at the end';
      i += 1;
      continue;
    }
    i += 1;
    lastAtom = 'simple';
  }
  if (groups.length > 0) return 'unbalanced (';
  try {
    new RegExp(pattern);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export interface SafeRegex {
  readonly source: string;
  /** Runs on V8's linear-time engine (RegExp flag `l`), not the backtracking one. */
  readonly linear: boolean;
  /** True when the whole of `value` matches. */
  test(value: string): boolean;
}

// The subset bounds backtracking by a polynomial, but n^3 over a 1 KiB path is still ~100 ms of
// CPU per request (`a*a*a*b`). V8's experimental engine is linear in the input for patterns
// without backreferences or lookaround (all of this subset); it is available when the process
// enables --enable-experimental-regexp-engine (workers do: src/worker-main.ts). It refuses
// patterns it cannot run in linear time (large counted repetitions, which it would expand);
// those, and processes without the flag, fall back to the bounded backtracking engine.
function linearRegExp(source: string): { re: RegExp; linear: boolean } {
  try {
    return { re: new RegExp(source, 'l'), linear: true };
  } catch {
    return { re: new RegExp(source), linear: false };
  }
}

/** Compiles a pattern of the accepted subset; throws RegexError with the reason otherwise. */
export function compileSafeRegex(pattern: string): SafeRegex {
  const reason = unsafeRegexReason(pattern);
  if (reason !== undefined) throw new RegexError(`regular expression ${JSON.stringify(pattern)} refused: ${reason}`);
  const body = pattern.replace(/^\^/, '').replace(/(?<!\\)\$$/, '');
  const { re, linear } = linearRegExp(`^(?:${body})$`);
  return Object.freeze({ source: pattern, linear, test: (value: string) => value.length <= MAX_INPUT && re.test(value) });
}
