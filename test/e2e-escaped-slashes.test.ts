// Percent-encoded slashes and dot segments cannot move a request off the route its decoded path
// selects (issue 8 item 3): `/x/..%2fadmin` reaches a decoding backend as `/admin`, so it must be
// routed (and allowlisted) as `/admin`. The backend still receives the bytes the client sent.
// With --escaped-slashes reject, such paths are refused with 400 instead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { rawExchange } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { parseServeOptions, UsageError } from '../src/options.ts';
import { startPortico, type Portico } from './helpers/portico.ts';

let site: EchoBackend;
let admin: EchoBackend;
let decode: Portico;
let reject: Portico;

// `/admin` is only for 10.0.0.0/8 (the test client, 127.0.0.1, is denied); `/` is open; `/api/v1`
// goes to the admin backend without an allowlist, so routing by the decoded path can be seen.
const files = () => ({
  'class.yaml': toYaml(ingressClass()),
  'services.yaml': toYaml(service('site'), endpointSlice('site', [`127.0.0.2:${site.port}`]), service('admin'), endpointSlice('admin', [`127.0.0.3:${admin.port}`])),
  'ingress.yaml': toYaml(
    ingress('site', 'demo.test', [{ path: '/', service: 'site' }, { path: '/api/v1', service: 'admin' }]),
    ingress('admin', 'demo.test', [{ path: '/admin', service: 'admin' }], { annotations: { 'portico.dev/whitelist-source-range': '10.0.0.0/8' } }),
  ),
});

beforeAll(async () => {
  site = await startEchoBackend('site', '127.0.0.2', 0);
  admin = await startEchoBackend('admin', '127.0.0.3', 0);
  [decode, reject] = await Promise.all([startPortico({ files: files(), workers: 1 }), startPortico({ files: files(), workers: 1, args: ['--escaped-slashes', 'reject'] })]);
}, 60_000);

afterAll(async () => {
  await Promise.all([decode?.stop(), reject?.stop()]);
  await Promise.all([site?.close(), admin?.close()]);
});

async function get(p: Portico, target: string): Promise<{ status: number; body: string }> {
  const { text } = await rawExchange(p.httpPort, `GET ${target} HTTP/1.1\r\nHost: demo.test\r\nConnection: close\r\n\r\n`);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

const ADMIN_SPELLINGS = ['/admin', '/x/..%2fadmin', '/x/..%2Fadmin/y', '/%2fadmin', '/%2Fadmin/', '/admin%2F', '/admin%2fpanel', '/x/..%5cadmin', '/%5Cadmin', '/x/%2e%2e%2fadmin', '/x%2F%2E%2E%2Fadmin', '//admin', '/./admin'];

describe('--escaped-slashes decode (the default)', () => {
  it('routes every spelling of /admin to the /admin route, so its allowlist answers 403', async () => {
    for (const target of ADMIN_SPELLINGS) {
      const r = await get(decode, target);
      expect(r.status, `${target}: ${r.body}`).toBe(403);
    }
  });

  it('routes %2F as a separator and forwards the bytes the client sent', async () => {
    const r = await get(decode, '/api%2Fv1/users?q=%2F');
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { backend: string; url: string };
    expect(seen.backend).toBe('admin');
    expect(seen.url).toBe('/api%2Fv1/users?q=%2F');
  });

  it('still routes ordinary escapes within a segment, and the open site stays open', async () => {
    for (const [target, backend] of [['/', 'site'], ['/adminx', 'site'], ['/docs%20x', 'site'], ['/admin%252F', 'site'], ['/api/v1%3Fx', 'site']] as const) {
      const r = await get(decode, target);
      expect(r.status, target).toBe(200);
      expect((JSON.parse(r.body) as { backend: string }).backend, target).toBe(backend);
    }
  });

  it('refuses a path that climbs above the root through escaped slashes, and an escaped NUL', async () => {
    for (const target of ['/..%2fadmin', '/x/..%2f..%2fetc/passwd', '/%2e%2e%5cadmin', '/a%00b']) {
      const r = await get(decode, target);
      expect(r.status, target).toBe(400);
    }
  });
});

describe('--escaped-slashes reject', () => {
  it('answers 400 to any path holding %2F or %5C, in either case', async () => {
    for (const target of ['/x/..%2fadmin', '/%2Fadmin', '/admin%2F', '/api%2fv1', '/a%5Cb', '/a%5cb']) {
      const r = await get(reject, target);
      expect(r.status, target).toBe(400);
    }
  });

  it('serves paths without escaped slashes as usual, and %2F in the query is not the path', async () => {
    expect((await get(reject, '/docs?next=%2Fadmin')).status).toBe(200);
    expect((await get(reject, '/admin')).status).toBe(403);
    expect((await get(reject, '/%61dmin')).status).toBe(403);
  });
});

describe('--escaped-slashes flag', () => {
  it('defaults to decode, takes reject, and refuses anything else at start', () => {
    expect(parseServeOptions(['--manifests', '/tmp']).escapedSlashes).toBe('decode');
    expect(parseServeOptions(['--manifests', '/tmp', '--escaped-slashes', 'reject']).escapedSlashes).toBe('reject');
    expect(() => parseServeOptions(['--manifests', '/tmp', '--escaped-slashes', 'keep'])).toThrow(UsageError);
  });
});
