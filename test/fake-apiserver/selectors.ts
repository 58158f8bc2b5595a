// Label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors as the API server
// parses them. A malformed selector throws SelectorError, answered with 400 BadRequest.

export class SelectorError extends Error {}

type Req = { key: string; op: 'eq' | 'ne' | 'in' | 'notin' | 'exists' | '!exists'; values: string[] };
export type Matcher = (obj: any) => boolean;

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function parseLabelTerm(t: string): Req {
  let m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(t);
  if (m) return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()) };
  m = /^!\s*(\S+)$/.exec(t);
  if (m) return { key: m[1], op: '!exists', values: [] };
  m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(t);
  if (m) return { key: m[1], op: m[2] === '!=' ? 'ne' : 'eq', values: [m[3]] };
  if (/^[^=!\s()]+$/.test(t)) return { key: t, op: 'exists', values: [] };
  throw new SelectorError(`unable to parse requirement: ${t}`);
}

export function parseLabelSelector(s: string | null): Matcher {
  if (!s) return () => true;
  const reqs = terms(s).map(parseLabelTerm);
  for (const r of reqs) {
    if (!LABEL_KEY.test(r.key)) throw new SelectorError(`invalid label key "${r.key}"`);
    for (const v of r.values) if (!LABEL_VALUE.test(v) || v.length > 63) throw new SelectorError(`invalid label value: "${v}"`);
  }
  return (obj) => {
    const labels: Record<string, string> = obj?.metadata?.labels ?? {};
    return reqs.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      const v = labels[r.key];
      switch (r.op) {
        case 'eq': return has && v === r.values[0];
        case 'ne': return !has || v !== r.values[0];
        case 'in': return has && r.values.includes(v);
        case 'notin': return !has || !r.values.includes(v);
        case 'exists': return has;
        case '!exists': return !has;
      }
    });
  };
}

/** Fields each kind supports in field selectors (metadata.name and metadata.namespace for all). */
const KIND_FIELDS: Record<string, Record<string, (o: any) => string>> = {
  Secret: { type: (o) => o.type ?? '' },
  Namespace: { 'status.phase': (o) => o.status?.phase ?? '' },
};

export function parseFieldSelector(s: string | null, kind: string): Matcher {
  if (!s) return () => true;
  const fields: Record<string, (o: any) => string> = {
    'metadata.name': (o) => o.metadata?.name ?? '',
    'metadata.namespace': (o) => o.metadata?.namespace ?? '',
    ...KIND_FIELDS[kind],
  };
  const reqs = terms(s).map((t) => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw new SelectorError(`invalid selector: '${s}'; can't understand '${t}'`);
    const get = fields[m[1]];
    if (!get) throw new SelectorError(`field label not supported: ${m[1]}`);
    return { get, ne: m[2] === '!=', value: m[3] };
  });
  return (obj) => reqs.every((r) => (r.get(obj) === r.value) !== r.ne);
}
