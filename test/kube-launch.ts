// Launches `portico serve --kubernetes` against a fake API server, for the e2e-kube tests.
import { launchPortico, type LaunchedPortico } from './helpers/portico.ts';

export interface KubePortico extends LaunchedPortico {
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startKubePortico(kubeconfig: string, args: string[] = [], env: Record<string, string> = {}): Promise<KubePortico> {
  // Short source timings (coalesce, restart backoff, rediscovery) so faults ride through quickly.
  const l = await launchPortico(['--kubernetes', '--kubeconfig', kubeconfig], { workers: 1, args, env: { PORTICO_KUBE_TEST_TIMINGS: '20,200,300,100', ...env } });
  return { ...l, stop: l.kill };
}
