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

/**
 * RE2's `\x{HHHH}` (Envoy-based implementations and the Gateway API's examples use RE2) as the
 * `\uHHHH` this subset reads; code points above U+FFFF stay as written and are refused.
 */
export function fromRe2(pattern: string): string {
  if (!pattern.includes('\\x{')) return pattern;
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const m = /^x\{([0-9a-fA-F]{1,4})\}/.exec(pattern.slice(i + 1));
    if (m !== null) {
      out += `\\u${m[1].padStart(4, '0')}`;
      i += m[0].length;
    } else {
      out += c + (pattern[i + 1] ?? '');
      i++;
    }
  }
  return out;
}

/** Checks a pattern against the subset above; returns why it is refused, or undefined. */
export function unsafeRegexReason(rawPattern: string): string | undefined {
  const pattern = fromRe2(rawPattern);
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
        if (pattern[i + 2] !== ':') return /^\(\?[a-zA-Z-]+[):]/.test(pattern.slice(i)) ? 'inline flags such as (?i) are not supported (match both cases with a class: [Aa])' : 'lookaround and named groups are not supported';
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
  /**
   * Matched by directMatcher's loop, not by a RegExp: one pass over the input, no backtracking
   * (a sequence of characters and classes whose repetitions cannot give anything back).
   */
  readonly direct: boolean;
  /**
   * Run by the backtracking engine, which for this pattern (a sequence with one repetition)
   * takes at most value length x pattern length steps.
   */
  readonly bounded: boolean;
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
export function compileSafeRegex(rawPattern: string): SafeRegex {
  const reason = unsafeRegexReason(rawPattern);
  if (reason !== undefined) throw new RegexError(`regular expression ${JSON.stringify(rawPattern)} refused: ${reason}`);
  const pattern = fromRe2(rawPattern);
  const body = pattern.replace(/^\^/, '').replace(/(?<!\\)\$$/, '');
  const atoms = sequenceAtoms(body);
  const direct = atoms === undefined ? undefined : directProgram(atoms);
  if (direct !== undefined) return Object.freeze({ source: pattern, linear: false, direct: true, bounded: false, test: direct });
  // A sequence with a single repetition (`[^/]+\.json`, `.*\.png`): backtracking can only try
  // each count of that one atom against the rest, at most (value length x pattern length) steps,
  // so the JIT-compiled backtracking engine is as safe as the linear one and ~15x faster.
  if (atoms !== undefined && atoms.filter((a) => a.min !== a.max).length <= 1) {
    const re = new RegExp(`^(?:${body})$`);
    return Object.freeze({ source: pattern, linear: false, direct: false, bounded: true, test: (value: string) => value.length <= MAX_INPUT && re.test(value) });
  }
  const { re, linear } = linearRegExp(`^(?:${body})$`);
  return Object.freeze({ source: pattern, linear, direct: false, bounded: false, test: (value: string) => value.length <= MAX_INPUT && re.test(value) });
}

// ---- direct matching --------------------------------------------------------------------------
// Most patterns route authors write are a plain sequence: `t-[0-9]+`, `/items/\d{1,6}`,
// `[a-z]+\.json`. V8's linear engine runs even those in an interpreter (~0.4 us for a short
// value, where the backtracking engine takes ~25 ns), so they are matched here instead, by a loop
// that reads each character once: every repeated atom takes as many characters as it can, which
// is exact when nothing that may follow it can start with a character it takes (then no other
// split of the input can match). Anything else (groups, alternation, overlapping neighbours, a
// construct this parser does not model) is left to RegExp. Without the `u` or `i` flags a RegExp
// compares UTF-16 code units, as this does.

/** A set of UTF-16 code units: sorted, disjoint, inclusive ranges. */
type CodeSet = readonly (readonly [number, number])[];

interface Atom {
  /** For code units below 128: 1 when in the set. */
  readonly ascii: Uint8Array;
  /** The set's ranges at or above 128. */
  readonly high: CodeSet;
  readonly set: CodeSet;
  readonly min: number;
  readonly max: number;
}

const DIGIT: CodeSet = [[48, 57]];
const WORD: CodeSet = [[48, 57], [65, 90], [95, 95], [97, 122]];
// ECMAScript WhiteSpace and LineTerminator (what \s matches).
const SPACE: CodeSet = [[9, 13], [32, 32], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const LINE_TERMINATORS: CodeSet = [[10, 10], [13, 13], [0x2028, 0x2029]];

function normalizeSet(ranges: (readonly [number, number])[]): CodeSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(set: CodeSet): CodeSet {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of set) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

function intersects(a: CodeSet, b: CodeSet): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i][1] < b[j][0]) i++;
    else if (b[j][1] < a[i][0]) j++;
    else return true;
  }
  return false;
}

/** \d \D \w \W \s \S as a set, or undefined for another letter. */
function classEscape(c: string): CodeSet | undefined {
  switch (c) {
    case 'd': return DIGIT;
    case 'D': return complement(DIGIT);
    case 'w': return WORD;
    case 'W': return complement(WORD);
    case 's': return SPACE;
    case 'S': return complement(SPACE);
    default: return undefined;
  }
}

const CONTROL_ESCAPES: Readonly<Record<string, number>> = { t: 9, n: 10, r: 13 };

/**
 * One escape at `body[i]` (the backslash) outside a class: its set and the index after it, or
 * undefined when it is not modelled here.
 */
function escapeAt(body: string, i: number): { set: CodeSet; next: number } | undefined {
  const n = body[i + 1];
  if (n === undefined) return undefined;
  const cls = classEscape(n);
  if (cls !== undefined) return { set: cls, next: i + 2 };
  if (n in CONTROL_ESCAPES) return { set: [[CONTROL_ESCAPES[n], CONTROL_ESCAPES[n]]], next: i + 2 };
  if (n === 'x' || n === 'u') {
    const len = n === 'x' ? 2 : 4;
    const hex = body.slice(i + 2, i + 2 + len);
    if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
    const code = parseInt(hex, 16);
    // \uD83D\uDE00 and the like: a surrogate pair is two code units; leave it to RegExp.
    if (code >= 0xd800 && code <= 0xdfff) return undefined;
    return { set: [[code, code]], next: i + 2 + len };
  }
  // \0 is NUL unless a digit follows (then it is a legacy octal escape).
  if (n === '0') return /[0-9]/.test(body[i + 2] ?? '') ? undefined : { set: [[0, 0]], next: i + 2 };
  // An escaped punctuation character stands for itself.
  if (/[^A-Za-z0-9]/.test(n) && n.charCodeAt(0) < 128) return { set: [[n.charCodeAt(0), n.charCodeAt(0)]], next: i + 2 };
  return undefined;
}

/** A class `[...]` starting at `body[i]`: its set and the index after `]`, or undefined. */
function classAt(body: string, i: number): { set: CodeSet; next: number } | undefined {
  let j = i + 1;
  const negated = body[j] === '^';
  if (negated) j++;
  // `[]` and `[^]` mean "nothing" and "anything" to RegExp; rare enough to leave to it.
  if (body[j] === ']') return undefined;
  const ranges: (readonly [number, number])[] = [];
  // One class member at j: a single code unit, or a class escape's set (never a range end).
  const member = (k: number): { code: number | undefined; set: CodeSet; next: number } | undefined => {
    const c = body[k];
    if (c === undefined) return undefined;
    if (c !== '\\') {
      const code = body.charCodeAt(k);
      if (code >= 0xd800 && code <= 0xdfff) return undefined;
      return { code, set: [[code, code]], next: k + 1 };
    }
    const n = body[k + 1];
    if (n === undefined) return undefined;
    const cls = classEscape(n);
    if (cls !== undefined) return { code: undefined, set: cls, next: k + 2 };
    if (n in CONTROL_ESCAPES) return { code: CONTROL_ESCAPES[n], set: [[CONTROL_ESCAPES[n], CONTROL_ESCAPES[n]]], next: k + 2 };
    // In a class \b is a backspace and \- a hyphen; only punctuation is modelled.
    if (/[^A-Za-z0-9]/.test(n) && n.charCodeAt(0) < 128) return { code: n.charCodeAt(0), set: [[n.charCodeAt(0), n.charCodeAt(0)]], next: k + 2 };
    return undefined;
  };
  while (j < body.length && body[j] !== ']') {
    const lo = member(j);
    if (lo === undefined) return undefined;
    if (body[lo.next] === '-' && body[lo.next + 1] !== ']' && lo.next + 1 < body.length) {
      const hi = member(lo.next + 1);
      // A range with a class escape at one end (`[\d-z]`) is literal in RegExp's legacy mode: leave it.
      if (hi === undefined || lo.code === undefined || hi.code === undefined || hi.code < lo.code) return undefined;
      ranges.push([lo.code, hi.code]);
      j = hi.next;
    } else {
      ranges.push(...lo.set);
      j = lo.next;
    }
  }
  if (j >= body.length) return undefined;
  const set = normalizeSet(ranges);
  return { set: negated ? complement(set) : set, next: j + 1 };
}

/** A quantifier at `body[i]`: its bounds and the index after it (and after a lazy `?`). */
function quantifierAt(body: string, i: number): { min: number; max: number; next: number } {
  const c = body[i];
  let q: { min: number; max: number; next: number } | undefined;
  if (c === '*') q = { min: 0, max: Infinity, next: i + 1 };
  else if (c === '+') q = { min: 1, max: Infinity, next: i + 1 };
  else if (c === '?') q = { min: 0, max: 1, next: i + 1 };
  else if (c === '{') {
    const m = /^\{(\d{1,3})(,(\d{0,3}))?\}/.exec(body.slice(i));
    if (m !== null) {
      const lo = Number(m[1]);
      q = { min: lo, max: m[2] === undefined ? lo : m[3] === '' ? Infinity : Number(m[3]), next: i + m[0].length };
    }
  }
  if (q === undefined) return { min: 1, max: 1, next: i };
  // Lazy or greedy gives the same answer to "does the whole value match".
  if (body[q.next] === '?') q.next++;
  return q;
}

function atom(set: CodeSet, min: number, max: number): Atom {
  const ascii = new Uint8Array(128);
  const high: [number, number][] = [];
  for (const [lo, hi] of set) {
    for (let c = lo; c <= Math.min(hi, 127); c++) ascii[c] = 1;
    if (hi >= 128) high.push([Math.max(lo, 128), hi]);
  }
  return { ascii, high, set, min, max };
}

/**
 * A one-pass matcher for an (unanchored-syntax, whole-value) pattern body of the accepted
 * subset, or undefined when the body is not a sequence this can match exactly. Values longer
 * than MAX_INPUT never match, as with compileSafeRegex's RegExp.
 */
export function directMatcher(body: string): ((value: string) => boolean) | undefined {
  const atoms = sequenceAtoms(body);
  return atoms === undefined ? undefined : directProgram(atoms);
}

/** The body as a sequence of atoms (no groups, no alternation), or undefined. */
function sequenceAtoms(body: string): Atom[] | undefined {
  const atoms: Atom[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    let set: CodeSet;
    if (c === '\\') {
      const e = escapeAt(body, i);
      if (e === undefined) return undefined;
      set = e.set;
      i = e.next;
    } else if (c === '[') {
      const k = classAt(body, i);
      if (k === undefined) return undefined;
      set = k.set;
      i = k.next;
    } else if (c === '.') {
      set = complement(LINE_TERMINATORS);
      i++;
    } else if (c === '(' || c === ')' || c === '|' || c === '^' || c === '$' || c === '*' || c === '+' || c === '?' || c === '{' || c === '}' || c === ']') {
      // Groups and alternation are RegExp's; a stray `{` `}` `]` is a literal to it, kept there too.
      return undefined;
    } else {
      const code = body.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdfff) return undefined;
      set = [[code, code]];
      i++;
    }
    const q = quantifierAt(body, i);
    i = q.next;
    if (q.max < q.min) return undefined;
    atoms.push(atom(set, q.min, q.max));
  }
  return atoms;
}

function directProgram(atoms: readonly Atom[]): ((value: string) => boolean) | undefined {
  // Taking as much as possible is exact only when what may come next (the following atoms up
  // to the first that must match at least once) cannot start with a character this atom takes.
  for (let a = 0; a < atoms.length; a++) {
    if (atoms[a].min === atoms[a].max) continue;
    for (let b = a + 1; b < atoms.length; b++) {
      if (intersects(atoms[a].set, atoms[b].set)) return undefined;
      if (atoms[b].min > 0) break;
    }
  }
  // The program: runs of single characters become one literal; each other atom keeps a 128-bit
  // ASCII bitmap (four int32s) and its bounds. Small, so a cold lookup touches few cache lines.
  const literals: string[] = [];
  const bits: number[] = [];
  const mins: number[] = [];
  const maxs: number[] = [];
  const highs: CodeSet[] = [];
  let run = '';
  const flush = (): void => {
    if (run === '') return;
    literals.push(run);
    bits.push(0, 0, 0, 0);
    mins.push(0);
    maxs.push(0);
    highs.push([]);
    run = '';
  };
  for (const a of atoms) {
    if (a.min === 1 && a.max === 1 && a.set.length === 1 && a.set[0][0] === a.set[0][1]) {
      run += String.fromCharCode(a.set[0][0]);
      continue;
    }
    flush();
    literals.push('');
    for (let w = 0; w < 4; w++) {
      let word = 0;
      for (let b = 0; b < 32; b++) if (a.ascii[w * 32 + b] === 1) word |= 1 << b;
      bits.push(word);
    }
    mins.push(a.min);
    maxs.push(Math.min(a.max, MAX_INPUT + 1));
    highs.push(a.high);
  }
  flush();
  const n = literals.length;
  const bitmap = Int32Array.from(bits);
  const lo = Int32Array.from(mins);
  const hi = Int32Array.from(maxs);
  return (value: string): boolean => {
    const len = value.length;
    if (len > MAX_INPUT) return false;
    let pos = 0;
    for (let k = 0; k < n; k++) {
      const lit = literals[k];
      if (lit !== '') {
        if (pos + lit.length > len) return false;
        for (let j = 0; j < lit.length; j++) if (value.charCodeAt(pos + j) !== lit.charCodeAt(j)) return false;
        pos += lit.length;
        continue;
      }
      const base = k * 4;
      const stop = Math.min(len, pos + hi[k]);
      const start = pos;
      while (pos < stop) {
        const c = value.charCodeAt(pos);
        if (c < 128 ? ((bitmap[base + (c >> 5)] >>> (c & 31)) & 1) === 0 : !inRanges(highs[k], c)) break;
        pos++;
      }
      if (pos - start < lo[k]) return false;
    }
    return pos === len;
  };
}

function inRanges(set: CodeSet, c: number): boolean {
  for (let i = 0; i < set.length; i++) if (c >= set[i][0] && c <= set[i][1]) return true;
  return false;
}
