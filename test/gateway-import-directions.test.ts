// Import directions (issue 11, design): router/ is pure and imports nothing outside itself (no
// Node APIs, no packages); controller/ reaches the data plane only through router/ and tls/; the
// serving code (everything a worker loads, from src/worker-main.ts) never imports controller/.
// Read from the sources' import statements, static and dynamic.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]);
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const p = join(ROOT, dir, name);
    if (statSync(p).isDirectory()) return name === 'testing' ? [] : sources(relative(ROOT, p));
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Project-relative path of a relative import, or undefined for packages and node: builtins. */
const target = (from: string, spec: string): string | undefined => (spec.startsWith('.') ? relative(ROOT, resolve(dirname(from), spec)) : undefined);

describe('import directions', () => {
  it('reads import statements (static, type-only, re-exports, dynamic)', () => {
    expect(specifiers(join(ROOT, 'router/index.ts'))).toEqual(expect.arrayContaining(['./types.ts', './compile.ts', './filters.ts']));
    expect(specifiers(join(ROOT, 'src/worker-main.ts'))).toEqual(expect.arrayContaining(['node:v8', './worker.ts']));
  });

  it('router/ imports only router/ (no Node APIs, no packages)', () => {
    const bad: string[] = [];
    for (const f of sources('router')) for (const s of specifiers(f)) {
      const t = target(f, s);
      if (t === undefined || !t.startsWith('router/')) bad.push(`${relative(ROOT, f)} -> ${s}`);
    }
    expect(bad).toEqual([]);
  });

  it('controller/ reaches the serving side only through router/ and tls/', () => {
    const bad: string[] = [];
    for (const f of sources('controller')) for (const s of specifiers(f)) {
      const t = target(f, s);
      if (t !== undefined && !t.startsWith('controller/') && !t.startsWith('router/') && !t.startsWith('tls/')) bad.push(`${relative(ROOT, f)} -> ${s}`);
    }
    expect(bad).toEqual([]);
  });

  it('what a worker loads (from src/worker-main.ts) never imports controller/', () => {
    const seen = new Set<string>();
    const bad: string[] = [];
    const visit = (file: string): void => {
      const rel = relative(ROOT, file);
      if (seen.has(rel)) return;
      seen.add(rel);
      for (const s of specifiers(file)) {
        const t = target(file, s);
        if (t === undefined) continue;
        if (t.startsWith('controller/')) bad.push(`${rel} -> ${s}`);
        else visit(join(ROOT, t));
      }
    };
    visit(join(ROOT, 'src/worker-main.ts'));
    expect(seen.size).toBeGreaterThan(10);
    expect(bad).toEqual([]);
  });
});
