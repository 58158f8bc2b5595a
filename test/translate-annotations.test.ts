// Ingress annotations: the ones Portico reads (portico.dev/ names and their ingress-nginx
// aliases), the ones it does not (reported, never silently ignored), and access restrictions it
// cannot apply (the Ingress's routes deny every client: fail closed).
import { describe, expect, it } from 'vitest';
import { newTranslatorState, translate } from '../controller/translate.ts';
import { compileTable } from '../router/compile.ts';
import { reviewAnnotations } from '../controller/ingress.ts';
import { allowlistDenial } from '../src/realip/allowlist.ts';
import { CLASS, ingress, ready, rule, run, service, slice, snapshot } from './translate-fixtures.ts';

const base = [CLASS, service('a'), slice('a', [ready('10.9.0.1')])];
const spec = { ingressClassName: 'portico', rules: [rule('x.com', [['/app', 'Prefix', 'a']])] };
const open = (r: ReturnType<typeof run>, client: string): boolean => allowlistDenial(r.table.match('x.com', '/app')!.ir, { clientIp: client }) === undefined;
const problemsOf = (r: ReturnType<typeof run>) => r.problems.filter((p) => p.kind === 'Ingress' && p.name === 'i');

describe('Ingress annotations', () => {
  it('ingress-nginx names of supported settings are read as aliases', () => {
    const r = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8', 'nginx.ingress.kubernetes.io/proxy-read-timeout': '7' } })]);
    const route = r.table.match('x.com', '/app')!;
    expect(route.ir.allowSourceRanges).toEqual(['10.0.0.0/8']);
    expect(route.ir.timeoutMs).toBe(7000);
    expect(open(r, '10.1.1.1')).toBe(true);
    expect(open(r, '192.0.2.1')).toBe(false);
    expect(problemsOf(r)).toEqual([]);
  });

  it('the portico.dev/ name wins over a different ingress-nginx value, and the conflict is reported', () => {
    const r = run([...base, ingress('i', spec, { annotations: { 'portico.dev/whitelist-source-range': '192.0.2.0/24', 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' } })]);
    expect(open(r, '192.0.2.1')).toBe(true);
    expect(open(r, '10.1.1.1')).toBe(false);
    expect(problemsOf(r).map((p) => p.message)).toEqual([expect.stringMatching(/portico\.dev\/whitelist-source-range .* is used; nginx\.ingress\.kubernetes\.io\/whitelist-source-range .* is not/)]);
  });

  it('an access restriction Portico cannot apply denies every client, with an error naming it', () => {
    for (const name of ['nginx.ingress.kubernetes.io/auth-url', 'nginx.ingress.kubernetes.io/auth-type', 'nginx.ingress.kubernetes.io/denylist-source-range', 'nginx.ingress.kubernetes.io/auth-tls-verify-client', 'nginx.ingress.kubernetes.io/satisfy', 'portico.dev/auth-url']) {
      const r = run([...base, ingress('i', spec, { annotations: { [name]: 'x' } })]);
      for (const c of ['10.0.0.1', '127.0.0.1', '::1']) expect(open(r, c), `${name} ${c}`).toBe(false);
      const p = problemsOf(r).filter((x) => x.severity === 'error');
      expect(p.map((x) => x.message)).toEqual([expect.stringContaining(`access restrictions Portico does not apply: ${name}`)]);
    }
  });

  it("allowlist-source-range (ingress-nginx's current name) is the same allowlist, under either prefix (QA-11)", () => {
    for (const name of ['nginx.ingress.kubernetes.io/allowlist-source-range', 'portico.dev/allowlist-source-range']) {
      const r = run([...base, ingress('i', spec, { annotations: { [name]: '10.0.0.0/8' } })]);
      expect(open(r, '10.1.1.1'), name).toBe(true);
      expect(open(r, '127.0.0.1'), name).toBe(false);
      expect(problemsOf(r), name).toEqual([]);
    }
    // Both names with the same ranges: fine. With different ones: nobody is let in on a guess.
    const same = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': '10.0.0.0/8', 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' } })]);
    expect(open(same, '10.1.1.1')).toBe(true);
    const differ = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': '10.0.0.0/8', 'nginx.ingress.kubernetes.io/whitelist-source-range': '192.0.2.0/24' } })]);
    for (const c of ['10.1.1.1', '192.0.2.1']) expect(open(differ, c)).toBe(false);
    expect(problemsOf(differ).filter((p) => p.severity === 'error').map((p) => p.message).join()).toMatch(/give different ranges/);
    // A typo of the new name fails closed too.
    const typo = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-rang': '10.0.0.0/8' } })]);
    expect(open(typo, '10.1.1.1')).toBe(false);
  });

  it('ModSecurity annotations (a protection Portico does not apply) deny every client', () => {
    for (const name of ['nginx.ingress.kubernetes.io/enable-modsecurity', 'nginx.ingress.kubernetes.io/enable-owasp-core-rules', 'nginx.ingress.kubernetes.io/modsecurity-snippet']) {
      const r = run([...base, ingress('i', spec, { annotations: { [name]: 'true' } })]);
      expect(open(r, '10.1.1.1'), name).toBe(false);
    }
  });

  it('force-ssl-redirect redirects plain HTTP for hosts without TLS in the Ingress', () => {
    const r = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/force-ssl-redirect': 'true' } })]);
    expect(r.table.match('x.com', '/app')!.ir.httpsRedirect).toBe(true);
    const off = run([...base, ingress('i', spec)]);
    expect(off.table.match('x.com', '/app')!.ir.httpsRedirect).toBeUndefined();
  });

  it('a typo of the allowlist annotation fails closed too, and says what was meant', () => {
    const r = run([...base, ingress('i', spec, { annotations: { 'portico.dev/whitelist-sorce-range': '10.0.0.0/8' } })]);
    expect(open(r, '10.1.1.1')).toBe(false);
    expect(problemsOf(r)[0].message).toMatch(/portico\.dev\/whitelist-sorce-range \(did you mean portico\.dev\/whitelist-source-range\?\)/);
  });

  it('other unsupported annotations are reported as ignored; the route serves', () => {
    const r = run([...base, ingress('i', spec, { annotations: { 'nginx.ingress.kubernetes.io/rewrite-target': '/', 'portico.dev/rewrite-target': '/', 'nginx.ingress.kubernetes.io/ssl-redirect': 'false', 'example.com/unrelated': 'x' } })]);
    expect(open(r, '192.0.2.1')).toBe(true);
    const p = problemsOf(r);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ severity: 'warning' });
    expect(p[0].message).toMatch(/not support, ignored|does not support, ignored/);
    expect(p[0].message).toContain('nginx.ingress.kubernetes.io/rewrite-target');
    expect(p[0].message).toContain('portico.dev/rewrite-target');
    expect(p[0].message).not.toContain('ssl-redirect');
    expect(p[0].message).not.toContain('example.com');
  });

  it('adding an unsupported restriction to a served Ingress closes it, even where the edit is otherwise invalid', () => {
    const state = newTranslatorState();
    expect(open(run([...base, ingress('i', spec)], state), '192.0.2.1')).toBe(true);
    const broken = { ...spec, rules: [rule('x.com', [['/app', 'Sometimes', 'a']])] };
    const r = run([...base, ingress('i', broken, { annotations: { 'nginx.ingress.kubernetes.io/auth-url': 'http://auth/' }, generation: 2 })], state);
    expect(open(r, '192.0.2.1')).toBe(false);
  });

  it('reviewAnnotations reads only the two prefixes', () => {
    expect(reviewAnnotations({ 'kubernetes.io/ingress.class': 'portico', 'portico.dev/ssl-redirect': 'true', 'nginx.ingress.kubernetes.io/cors-allow-origin': '*' })).toEqual({ ignored: ['nginx.ingress.kubernetes.io/cors-allow-origin'], denying: [] });
  });
});

describe('a path defined twice in one Ingress', () => {
  it('is reported as such, not as a conflict with itself', () => {
    const twice = { ingressClassName: 'portico', rules: [rule('x.com', [['/app', 'Prefix', 'a'], ['/app', 'Prefix', 'a']])] };
    const r = run([...base, ingress('i', twice)]);
    expect(r.problems.map((p) => p.message)).toEqual(['Prefix path /app on host x.com is defined more than once in this Ingress; the first is served, not spec.rules[0].http.paths[1]']);
  });
});

describe('ssl-redirect across Ingresses', () => {
  it('a path another Ingress adds to a host that has TLS redirects too, as ingress-nginx does; ssl-redirect false keeps it plain', () => {
    const tls = ingress('tls', { ingressClassName: 'portico', tls: [{ hosts: ['secure.test'], secretName: 's' }], rules: [rule('secure.test', [['/other', 'Prefix', 'a']])] });
    const plainPaths = ingress('b', { ingressClassName: 'portico', rules: [rule('secure.test', [['/api', 'Prefix', 'a']])] });
    const optOut = ingress('c', { ingressClassName: 'portico', rules: [rule('secure.test', [['/open', 'Prefix', 'a']])] }, { annotations: { 'portico.dev/ssl-redirect': 'false' } });
    const r = run([...base, tls, plainPaths, optOut]);
    expect(r.table.match('secure.test', '/other')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('secure.test', '/api')?.ir.httpsRedirect).toBe(true);
    expect(r.table.match('secure.test', '/open')?.ir.httpsRedirect).toBeUndefined();
  });
});

describe('--ingress-controller-name: serving an existing class in place (an ingress-nginx migration)', () => {
  const nginxClass = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } };
  const objects = [nginxClass, service('a'), slice('a', [ready('10.9.0.1')]), ingress('i', { ingressClassName: 'nginx', rules: [rule('x.com', [['/app', 'Prefix', 'a']])] })];
  const translateWith = (ingressControllerName?: string) => {
    const t = translate(snapshot(objects), { ingressClass: 'nginx', publishAddresses: ['192.0.2.10'], ...(ingressControllerName ? { ingressControllerName } : {}) }, newTranslatorState());
    return { ...t, table: compileTable(t.ir, 1) };
  };

  it("a class whose spec.controller is not Portico's is not served, and says so", () => {
    const r = translateWith();
    expect(r.table.match('x.com', '/app')).toBeUndefined();
    expect(r.problems.map((p) => p.message).join()).toMatch(/has spec.controller k8s.io\/ingress-nginx, not portico.dev\/ingress-controller/);
  });

  it('with the controller name set to it, the class and its Ingresses are served', () => {
    const r = translateWith('k8s.io/ingress-nginx');
    expect(r.table.match('x.com', '/app')).toBeDefined();
    expect(r.problems.filter((p) => p.kind === 'IngressClass')).toEqual([]);
  });
});
