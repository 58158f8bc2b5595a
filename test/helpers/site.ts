// The setup several end-to-end files share: one echo backend `app` (on 127.0.0.2) behind an
// Ingress `site` for site.test, served by two workers from two files (base.yaml, site.yaml).

import { afterAll, beforeAll } from 'vitest';
import { startEchoBackend, type EchoBackend } from '../../examples/quickstart/echo-backend.ts';
import { endpointSlice, ingress, ingressClass, service, toYaml } from './manifests.ts';
import { startPortico, type Portico } from './portico.ts';

export interface Site {
  backend: EchoBackend;
  portico: Portico;
}

/** Starts the site before the file's tests and stops it after them; fields are set once started. */
export function useSite(): Site {
  const site = {} as Site;
  beforeAll(async () => {
    site.backend = await startEchoBackend('app', '127.0.0.2', 0);
    site.portico = await startPortico({
      workers: 2,
      files: {
        'base.yaml': toYaml(ingressClass(), service('app'), endpointSlice('app', [`127.0.0.2:${site.backend.port}`])),
        'site.yaml': toYaml(ingress('site', 'site.test', [{ path: '/', service: 'app' }])),
      },
    });
  }, 60_000);
  afterAll(async () => {
    await site.portico?.stop();
    await site.backend?.close();
  });
  return site;
}
