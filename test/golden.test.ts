// Golden translation tests (issue 11, design step 1): every test/testdata/<area>/<case>.in.yaml is
// translated and compared with <case>.out.yaml (IR, statuses, problems, TLS certificates), so a
// reviewer can read behaviour without running it and every change to it shows in a diff.
// `UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts` rewrites the outputs and removes orphans.
//
// Inputs are manifests as a user writes them. Missing fields are filled as the manifest source
// does, but deterministically: namespace `default`, generation 1, and a fixed creationTimestamp
// (the clock is fixed too), so the output is a pure function of the file. A document of kind
// GoldenOptions (apiVersion golden.portico.dev/v1) sets the translate options of its case.

import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseManifests } from '../controller/manifests.ts';
import { isClusterScoped, type KubeObject } from '../controller/objects.ts';
import { newTranslatorState, translate, type TranslateOptions } from '../controller/translate.ts';

const ROOT = join(import.meta.dirname, 'testdata');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const NOW = new Date('2026-06-01T00:00:00Z');
const CREATED = '2026-01-01T00:00:00Z';

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function stamp(o: KubeObject): KubeObject {
  const metadata = { ...o.metadata };
  if (!isClusterScoped(o.kind) && !metadata.namespace) metadata.namespace = 'default';
  metadata.creationTimestamp ??= CREATED;
  if (typeof metadata.generation !== 'number') metadata.generation = 1;
  return { ...o, metadata };
}

/** The translation of one input file, as the text its .out.yaml must hold. */
export function renderGolden(text: string, origin: string): string {
  const parsed = parseManifests(text, origin);
  let options: TranslateOptions = { ingressClass: 'portico', publishAddresses: ['192.0.2.10'], now: NOW };
  const objects: KubeObject[] = [];
  for (const o of parsed.objects) {
    if (o.apiVersion === 'golden.portico.dev/v1' && o.kind === 'GoldenOptions') options = { ...options, ...(o.spec as Partial<TranslateOptions>), now: NOW };
    else objects.push(stamp(o));
  }
  const t = translate({ objects: objects.map((object) => ({ object, origin })), problems: parsed.problems }, options, newTranslatorState());
  const cert = (c: { id: string; names: string[]; notAfter?: string }) => ({ id: c.id, names: c.names, ...(c.notAfter ? { notAfter: c.notAfter } : {}) });
  const out = {
    ir: t.ir,
    statuses: t.statuses,
    problems: t.problems,
    tls: {
      certificates: t.tls.certificates.map(cert),
      ...(t.tls.defaultCertificate ? { defaultCertificate: cert(t.tls.defaultCertificate) } : {}),
      invalidSecrets: Object.fromEntries([...t.tls.invalidSecrets].sort(([a], [b]) => (a < b ? -1 : 1))),
      ...(t.tls.sockets ? { sockets: t.tls.sockets } : {}),
    },
  };
  // JSON first: drops undefined fields so the YAML holds exactly what the IR carries.
  return YAML.stringify(JSON.parse(JSON.stringify(out)), { lineWidth: 0 });
}

const files = walk(ROOT);
const inputs = files.filter((f) => f.endsWith('.in.yaml')).sort();

describe('golden translations (test/testdata)', () => {
  it('has cases, each opening with a comment on its intent', () => {
    expect(inputs.length).toBeGreaterThan(0);
    for (const f of inputs) expect(readFileSync(f, 'utf8').startsWith('#'), relative(ROOT, f)).toBe(true);
  });

  for (const input of inputs) {
    const name = relative(ROOT, input).replace(/\.in\.yaml$/, '');
    const output = input.replace(/\.in\.yaml$/, '.out.yaml');
    it(name, () => {
      const rendered = renderGolden(readFileSync(input, 'utf8'), `${name}.in.yaml`);
      if (UPDATE) writeFileSync(output, rendered);
      expect(existsSync(output), `${name}.out.yaml missing: run UPDATE_GOLDEN=1 npx vitest run test/golden.test.ts`).toBe(true);
      expect(rendered).toBe(readFileSync(output, 'utf8'));
    });
  }

  it('every output has its input', () => {
    const orphans = files.filter((f) => f.endsWith('.out.yaml') && !existsSync(f.replace(/\.out\.yaml$/, '.in.yaml')));
    if (UPDATE) for (const f of orphans) unlinkSync(f);
    else expect(orphans.map((f) => relative(ROOT, f))).toEqual([]);
  });
});
