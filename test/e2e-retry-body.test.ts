// A request whose connection attempt failed was never sent, so it may try another endpoint, with
// its body (nginx's proxy_next_upstream error): a dead endpoint still in the EndpointSlice must not
// fail every write that picks it. Once sent, a request with a body is never retried.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { freePort, startPortico, type Portico } from './helpers/portico.ts';

let live: http.Server;
let port = 0;
const bodies: string[] = [];
const engines: Partial<Record<'node' | 'fast', Portico>> = {};

beforeAll(async () => {
  live = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.end(`got ${body.length}`);
    });
  });
  await new Promise<void>((r) => live.listen(0, '127.0.0.1', r));
  port = (live.address() as AddressInfo).port;
  // The dead endpoint: the same port on an address where nothing listens.
  const dead = await freePort('127.0.0.66');
  const files = { 'all.yaml': toYaml(ingressClass(), service('multi'), endpointSlice('multi', [`127.0.0.1:${port}`], 'default', 'multi-1'), endpointSlice('multi', [`127.0.0.66:${dead}`], 'default', 'multi-2'), ingress('m', 'ep.test', [{ path: '/', service: 'multi' }])) };
  engines.node = await startPortico({ workers: 1, files, args: ['--http1-engine', 'node'] });
  engines.fast = await startPortico({ workers: 1, files, args: ['--http1-engine', 'fast'] });
}, 60_000);

afterAll(async () => {
  await engines.node?.stop();
  await engines.fast?.stop();
  live?.close();
});

describe.each(['node', 'fast'] as const)('the %s engine', (engine) => {
  it('POSTs that pick the dead endpoint go to the live one, body and all', async () => {
    const before = bodies.length;
    for (let i = 0; i < 8; i++) {
      const body = `x=${i}&${'y'.repeat(1000 * i)}`;
      const r = await request(engines[engine]!.httpPort, '/multi', { host: 'ep.test', method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(r.status, `request ${i}`).toBe(200);
      expect(r.body).toBe(`got ${body.length}`);
    }
    expect(bodies.length - before).toBe(8);
  });
});
