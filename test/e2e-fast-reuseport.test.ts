// Workers listen with SO_REUSEPORT (each binds its own socket; the primary is off the data path):
// the mode is logged at start, a killed worker is replaced and rebinds, and the others keep
// serving meanwhile.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../examples/quickstart/echo-backend.ts';
import { request } from './helpers/http.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './helpers/manifests.ts';
import { sleep, startPortico, waitFor, type Portico } from './helpers/portico.ts';

let backend: EchoBackend;
let portico: Portico;

beforeAll(async () => {
  backend = await startEchoBackend('app', '127.0.0.2', 0);
  portico = await startPortico({
    workers: 2,
    files: { 'all.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${backend.port}`]), ingress('app', 'app.test', [{ path: '/', service: 'app' }])) },
  });
}, 60_000);

afterAll(async () => {
  await portico?.stop();
  await backend?.close();
});

// Two listeners (http, https) per worker.
const reusePortListeners = async () => (await portico.metric('portico_listen_mode', { mode: 'reuseport' })) ?? 0;

describe.runIf(process.platform === 'linux')('reusePort listeners', () => {
  it('each worker binds with SO_REUSEPORT and says so (portico_listen_mode)', async () => {
    expect(await reusePortListeners()).toBe(4);
    expect((await portico.metric('portico_listen_mode', { mode: 'round-robin' })) ?? 0).toBe(0);
  });

  it('a killed worker is replaced and rebinds; the port keeps answering meanwhile', async () => {
    const pids = await portico.workerPids();
    expect(pids).toHaveLength(2);
    process.kill(pids[0], 'SIGKILL');
    // Connections already queued on the dead worker's socket die with it; once it is gone the
    // kernel sends new ones to the sockets left.
    await waitFor('the worker to exit', () => {
      try {
        process.kill(pids[0], 0);
        return false;
      } catch {
        return true;
      }
    });
    // New connections land on the surviving worker's socket (the dead one's is gone with it).
    for (let i = 0; i < 20; i++) {
      expect((await request(portico.httpPort, '/', { host: 'app.test' })).status).toBe(200);
      await sleep(10);
    }
    await waitFor('the replacement worker', async () => (await portico.workerPids()).length === 2 && (await reusePortListeners()) === 4, 20_000);
    expect((await portico.workerPids()).includes(pids[0])).toBe(false);
    for (let i = 0; i < 10; i++) expect((await request(portico.httpPort, '/', { host: 'app.test' })).status).toBe(200);
  });
});
