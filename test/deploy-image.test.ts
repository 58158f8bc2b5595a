// The Dockerfile, checked without a Docker engine (none on these machines): the base image is
// the Node the repository pins, the default command parses with the CLI and matches EXPOSE, the
// user is numeric and non-root, every COPY source exists, and the code the
// image runs imports only what it copies and production dependencies (`npm ci --omit=dev`).

import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseServeOptions } from '../src/options.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; dependencies: Record<string, string>; devDependencies: Record<string, string> };

/** Instructions of the final stage (and ARGs before the first FROM), continuation lines joined. */
function dockerfile(): { args: Map<string, string>; stages: { from: string; lines: [string, string][] }[] } {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: { from: string; lines: [string, string][] }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = value.split('=');
      args.set(k, v);
    } else if (op === 'FROM') stages.push({ from: value, lines: [] });
    else stages.at(-1)?.lines.push([op, value]);
  }
  return { args, stages };
}

const final = () => dockerfile().stages.at(-1)!;
const instr = (op: string) => final().lines.filter(([o]) => o === op).map(([, v]) => v);

describe('Dockerfile', () => {
  it('builds on the Node the repository pins, 24 or later', () => {
    const { args, stages } = dockerfile();
    expect(args.get('NODE_VERSION')).toBe(pkg.devDependencies.node);
    expect(Number(pkg.devDependencies.node.split('.')[0])).toBeGreaterThanOrEqual(Number(/\d+/.exec(pkg.engines.node)![0]));
    for (const s of stages) expect(s.from).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim\b/);
    // Production dependencies only: the pinned node package is a devDependency.
    expect(stages[0].lines.find(([o]) => o === 'RUN')?.[1]).toMatch(/npm ci --omit=dev/);
  });

  it('runs portico serve --kubernetes by default, on the ports it EXPOSEs', () => {
    expect(JSON.parse(instr('ENTRYPOINT')[0])).toEqual(['node', 'bin/portico.js']);
    const cmd = JSON.parse(instr('CMD')[0]) as string[];
    expect(cmd[0]).toBe('serve');
    const opts = parseServeOptions(cmd.slice(1));
    expect(opts.kubernetes).toBeDefined();
    const exposed = instr('EXPOSE').join(' ').split(/\s+/).map(Number).sort();
    expect(exposed).toEqual([opts.httpPort, opts.httpsPort, opts.adminPort].sort());
    // Docker's own health check asks the admin port's /healthz.
    const health = JSON.parse(instr('HEALTHCHECK')[0].replace(/^.*?CMD\s+/, '')) as string[];
    expect(health.slice(0, 2)).toEqual(['node', '-e']);
    expect(() => new Function(health[2])).not.toThrow();
    expect(health[2]).toContain(`127.0.0.1:${opts.adminPort}/healthz`);
    // The Deployment replaces CMD with its own args (their ports are checked in deploy.test.ts),
    // so it must name the command itself.
    const deployment = parseAllDocuments(readFileSync(join(ROOT, 'deploy/base/deployment.yaml'), 'utf8')).map((d) => d.toJS()).find((o) => o.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    expect(container.command).toBeUndefined();
    expect(container.args.slice(0, 2)).toEqual(['serve', '--kubernetes']);
    // A numeric, non-root user (runAsNonRoot cannot verify a name), the Deployment's own.
    const [user, group] = instr('USER')[0].split(':').map(Number);
    expect(user).toBeGreaterThan(0);
    expect(user).toBe(deployment.spec.template.spec.securityContext.runAsUser);
    expect(group).toBe(deployment.spec.template.spec.securityContext.runAsGroup);
  });

  it('copies sources that exist and are not in .dockerignore', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = instr('COPY').filter((v) => !v.startsWith('--from')).flatMap((v) => v.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) {
      expect(existsSync(join(ROOT, s)), s).toBe(true);
      expect(ignored, s).not.toContain(s);
    }
  });

  it('the code it runs imports only copied files, Node built-ins and production dependencies', () => {
    const copied = instr('COPY').filter((v) => !v.startsWith('--from')).flatMap((v) => v.split(/\s+/).slice(0, -1));
    const inImage = (file: string): boolean => copied.some((c) => { const r = relative(join(ROOT, c), file); return r === '' || !r.startsWith('..'); });
    const builtins = new Set(builtinModules);
    const seen = new Set<string>();
    const queue = ['bin/portico.js', 'src/worker-main.ts'].map((f) => join(ROOT, f));
    const bare = new Set<string>();
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      expect(inImage(file), `${relative(ROOT, file)} is imported but not copied into the image`).toBe(true);
      const text = readFileSync(file, 'utf8');
      // Static imports and re-exports (the clause between holds no quote, paren or semicolon),
      // side-effect imports and dynamic imports of a literal.
      const specs = [
        ...text.matchAll(/^\s*(?:import|export)\b[^;'"()]*?\bfrom\s*'([^']+)'/gm),
        ...text.matchAll(/^\s*import\s*'([^']+)'/gm),
        ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1]);
      for (const spec of specs) {
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          expect(existsSync(target), `${relative(ROOT, file)} imports ${spec}`).toBe(true);
          queue.push(target);
        } else if (!spec.startsWith('node:') && !builtins.has(spec)) {
          bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(20);
    for (const name of bare) expect(pkg.dependencies[name], `${name} must be a dependency, not only a devDependency`).toBeDefined();
  });
});
