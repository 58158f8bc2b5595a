import { beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, waitFor, type Portico } from './helpers/portico.ts';
import { useSite } from './helpers/site.ts';

const site = useSite();
let portico: Portico;
const get = (host: string, path = '/') => request(portico.httpPort, path, { host });
const problems = async () => (await portico.json('/status')).problems as { origin?: string; message: string; name?: string }[];

beforeAll(() => {
  portico = site.portico;
});

describe('bad input never stops serving', () => {
  it('a new file with a YAML syntax error is reported with its name; routes keep serving', async () => {
    portico.write('broken.yaml', 'apiVersion: v1\nkind: [oops\n');
    const p = await waitFor('problem', async () => (await problems()).find((x) => x.origin?.endsWith('broken.yaml')));
    expect(p.message).toMatch(/YAML syntax error/);
    expect((await get('site.test')).status).toBe(200);
    expect(portico.logs.some((l) => l.includes('broken.yaml') && l.includes('YAML syntax error'))).toBe(true);
    portico.remove('broken.yaml');
  });

  it('breaking the file that defines a route keeps the route served from its last good contents', async () => {
    const version = (await portico.json('/debug/routes')).version;
    portico.write('site.yaml', 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: site\n  spec: ][');
    await waitFor('problem', async () => (await problems()).find((x) => x.origin?.endsWith('site.yaml') && /last good/.test(x.message)));
    expect((await get('site.test')).status).toBe(200);
    expect((await portico.json('/debug/routes')).version).toBe(version);
    portico.write('site.yaml', toYaml(ingress('site', 'site.test', [{ path: '/', service: 'app' }])));
    await waitFor('problem cleared', async () => !(await problems()).some((x) => x.origin?.endsWith('site.yaml')));
  });

  it('an invalid edit (bad pathType) keeps the previous generation serving', async () => {
    portico.write('edit.yaml', toYaml(ingress('edit', 'edit.test', [{ path: '/old', service: 'app' }])));
    await waitFor('route', async () => (await get('edit.test', '/old')).status === 200);
    portico.write('edit.yaml', toYaml(ingress('edit', 'edit.test', [{ path: '/new', pathType: 'Sometimes', service: 'app' }])));
    const p = await waitFor('problem', async () => (await problems()).find((x) => x.name === 'edit'));
    expect(p.message).toMatch(/generation 2 is invalid.*pathType "Sometimes".*still serving generation 1/);
    expect((await get('edit.test', '/old')).status).toBe(200);
    expect((await get('edit.test', '/new')).status).toBe(404);
    const status = await portico.json('/status');
    expect(status.items.find((i: { metadata: { name: string } }) => i.metadata.name === 'edit').metadata.generation).toBe(2);
  });

  it('an edit to a Service that does not exist serves the current content: that path answers 503, the others are served', async () => {
    portico.write('svc.yaml', toYaml(ingress('svc', 'svc.test', [{ path: '/', service: 'app' }])));
    await waitFor('route', async () => (await get('svc.test')).status === 200);
    portico.write('svc.yaml', toYaml(ingress('svc', 'svc.test', [{ path: '/', service: 'typo' }, { path: '/ok', service: 'app' }])));
    await waitFor('problem', async () => (await problems()).find((x) => x.name === 'svc' && /typo not found/.test(x.message)));
    await waitFor('503', async () => (await get('svc.test')).status === 503);
    expect((await get('svc.test', '/ok')).status).toBe(200);
    portico.write('fresh.yaml', toYaml(ingress('fresh', 'fresh.test', [{ path: '/', service: 'typo' }])));
    await waitFor('503', async () => (await get('fresh.test')).status === 503);
  });

  it('documents without kind or name, and garbage files, are skipped and reported', async () => {
    portico.write('garbage.yaml', '---\nfoo: bar\n---\n"just a string"\n---\n' + toYaml(ingress('ok-after-garbage', 'garbage.test', [{ path: '/', service: 'app' }])));
    portico.write('binary.json', '\u0000\u0001{{{');
    await waitFor('route', async () => (await get('garbage.test')).status === 200);
    const list = await problems();
    expect(list.filter((x) => x.origin?.endsWith('garbage.yaml'))).toHaveLength(2);
    expect(list.some((x) => x.origin?.endsWith('binary.json'))).toBe(true);
  });

  it('deleting a file removes its routes', async () => {
    portico.remove('garbage.yaml');
    await waitFor('404', async () => (await get('garbage.test')).status === 404);
  });

  it('the process survived all of it with no worker restart', async () => {
    await sleep(100);
    expect(await portico.metric('portico_worker_restarts_total')).toBe(0);
    expect((await portico.admin('/readyz')).status).toBe(200);
  });
});

describe('manifest directory layout', () => {
  it('reads nested directories and ConfigMap-style symlinks, and follows a swapped ..data link', async () => {
    const { mkdirSync, writeFileSync, symlinkSync, renameSync } = await import('node:fs');
    const { join } = await import('node:path');
    mkdirSync(join(portico.dir, 'nested/deeper'), { recursive: true });
    writeFileSync(join(portico.dir, 'nested/deeper/n.yml'), toYaml(ingress('nested', 'nested.test', [{ path: '/', service: 'app' }])));
    await waitFor('nested route', async () => (await get('nested.test')).status === 200);
    // A ConfigMap mount: cm/x.yaml -> ..data/x.yaml, ..data -> ..v1; an update swaps ..data.
    const cm = join(portico.dir, 'cm');
    mkdirSync(join(cm, '..v1'), { recursive: true });
    writeFileSync(join(cm, '..v1/cm.yaml'), toYaml(ingress('cm', 'cm.test', [{ path: '/one', service: 'app' }])));
    symlinkSync('..v1', join(cm, '..data'));
    symlinkSync('..data/cm.yaml', join(cm, 'cm.yaml'));
    await waitFor('cm route', async () => (await get('cm.test', '/one')).status === 200);
    mkdirSync(join(cm, '..v2'));
    writeFileSync(join(cm, '..v2/cm.yaml'), toYaml(ingress('cm', 'cm.test', [{ path: '/two', service: 'app' }])));
    symlinkSync('..v2', join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    await waitFor('cm update', async () => (await get('cm.test', '/two')).status === 200, 5000);
    expect((await get('cm.test', '/one')).status).toBe(404);
  });
});

describe('a missing manifest directory', () => {
  it('is reported, and served from once it appears', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { spawn } = await import('node:child_process');
    const { freePort } = await import('./helpers/portico.ts');
    const parent = mkdtempSync(join(tmpdir(), 'portico-missing-'));
    const dir = join(parent, 'later');
    const [http, https, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = spawn(process.execPath, ['bin/portico.js', 'serve', '--manifests', dir, '--http-port', String(http), '--https-port', String(https), '--admin-port', String(admin), '--bind-address', '127.0.0.1', '--admin-address', '127.0.0.1', '--workers', '1'], { stdio: 'ignore' });
    try {
      const problem = await waitFor('problem', async () => {
        const r = await fetch(`http://127.0.0.1:${admin}/status`);
        const body = (await r.json()) as { problems: { message: string }[] };
        return body.problems.find((p) => /does not exist/.test(p.message));
      }, 15_000);
      expect(problem.message).toContain(dir);
      mkdirSync(dir);
      writeFileSync(join(dir, 'all.yaml'), toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${site.backend.port}`]), ingress('later', 'later.test', [{ path: '/', service: 'app' }])));
      await waitFor('served', async () => (await request(http, '/', { host: 'later.test' })).status === 200, 15_000);
    } finally {
      proc.kill('SIGTERM');
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
