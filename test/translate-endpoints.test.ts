import { describe, expect, it } from 'vitest';
import { newTranslatorState } from '../controller/translate.ts';
import { CLASS, ingress, rule, run, service, slice } from './translate-fixtures.ts';

const ing = ingress('i', { ingressClassName: 'portico', rules: [rule('x.com', [['/', 'Prefix', 'web']])] });
const ep = (ip: string, conditions?: Record<string, unknown>) => ({ addresses: [ip], ...(conditions ? { conditions } : {}) });
const endpointsOf = (slices: ReturnType<typeof slice>[]) => {
  const r = run([CLASS, service('web'), ...slices, ing]);
  const b = r.table.match('x.com', '/')?.backends[0].backend;
  return { list: b?.endpoints.map((e) => e.address), reason: b?.unavailableReason };
};

describe('EndpointSlice conditions (terminating endpoints)', () => {
  it('ready (true or unset) endpoints get requests; not-ready ones none, even serving-and-terminating ones while any is ready', () => {
    const { list } = endpointsOf([
      slice('web', [
        ep('10.0.0.1', { ready: true }),
        ep('10.0.0.2'), // no conditions: ready
        ep('10.0.0.3', { serving: true }), // ready unset: ready
        ep('10.0.0.4', { ready: false, serving: true, terminating: true }),
        ep('10.0.0.5', { ready: false, serving: true, terminating: false }),
        ep('10.0.0.6', { ready: false, serving: false, terminating: true }),
        ep('10.0.0.7', { ready: false }),
        ep('10.0.0.8', { ready: 'false' }), // not a boolean: not taken for ready
        ep('10.0.0.9', { ready: null }),
      ]),
    ]);
    expect(list).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9']);
  });

  it('with no ready endpoint at all, serving-and-terminating ones (serving unset counts) are used; never the others', () => {
    const { list } = endpointsOf([
      slice('web', [ep('10.0.0.4', { ready: false, serving: true, terminating: true }), ep('10.0.0.5', { ready: false, serving: true }), ep('10.0.0.6', { ready: false, serving: false, terminating: true })], undefined, 'web-1'),
      slice('web', [ep('10.0.0.7', { ready: false, terminating: true }), ep('10.0.0.4', { ready: false, serving: true, terminating: true })], undefined, 'web-2'),
    ]);
    expect(list).toEqual(['10.0.0.4', '10.0.0.7']);
  });

  it('the fallback is per backend: a ready endpoint in any slice of the Service disables it', () => {
    const { list } = endpointsOf([
      slice('web', [ep('10.0.0.4', { ready: false, serving: true, terminating: true })], undefined, 'web-1'),
      slice('web', [ep('10.0.0.1', { ready: true })], undefined, 'web-2'),
    ]);
    expect(list).toEqual(['10.0.0.1']);
  });

  it('an address ready in one slice and terminating in another is used once', () => {
    const { list } = endpointsOf([slice('web', [ep('10.0.0.1', { ready: false, serving: true, terminating: true })], undefined, 'web-1'), slice('web', [ep('10.0.0.1', { ready: true })], undefined, 'web-2')]);
    expect(list).toEqual(['10.0.0.1']);
  });

  it('no ready and no serving-and-terminating endpoint: 503 with the reason', () => {
    const { list, reason } = endpointsOf([slice('web', [ep('10.0.0.5', { ready: false, serving: true }), ep('10.0.0.6', { ready: false, serving: false, terminating: true })])]);
    expect(list).toEqual([]);
    expect(reason).toMatch(/no ready endpoints/);
  });

  it('an endpoint that stops being ready leaves the next table at once (a kept TranslatorState changes nothing)', () => {
    const state = newTranslatorState();
    const before = run([CLASS, service('web'), slice('web', [ep('10.0.0.1'), ep('10.0.0.2')]), ing], state);
    expect(before.table.match('x.com', '/')?.backends[0].backend.endpoints.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    const after = run([CLASS, service('web'), slice('web', [ep('10.0.0.1', { ready: false, serving: true, terminating: true }), ep('10.0.0.2')]), ing], state);
    expect(after.table.match('x.com', '/')?.backends[0].backend.endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
  });
});
