// deploy/: the kustomization and every overlay render with `kubectl kustomize`, every object
// passes the Kubernetes schemas, the RBAC grants exactly what the controller calls, and the
// controller's args parse with the CLI's own parser and agree with the ports and probes.

import { describe, expect, it } from 'vitest';
import { KUBE_ACCESS } from '../controller/kube/resources.ts';
import { INGRESS_CONTROLLER_NAME } from '../controller/ingress.ts';
import { DEFAULT_GATEWAY_CONTROLLER } from '../controller/gateway/index.ts';
import { applyConfigFile, parseServeOptions, type ServeOptions } from '../src/options.ts';
import { boundRules, find, HAVE_KUBECTL, render, TARGETS, workloads, type Obj } from './deploy-render.ts';
import { validateManifest, type Manifest } from './deploy-validate.ts';

/** The container's args through the CLI's own parser, with the env the pod gives it. */
function parseArgs(w: { o: Manifest; c: Obj }): ServeOptions {
  const args = w.c.args as string[];
  expect(args[0]).toBe('serve');
  if (args.includes('--kubernetes')) {
    // Leader election reads its identity and the Lease's namespace from the downward API.
    const env = (w.c.env ?? []) as Obj[];
    expect(env.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(env.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
  }
  const saved = process.env.POD_NAMESPACE;
  process.env.POD_NAMESPACE = w.o.metadata.namespace;
  try {
    return parseServeOptions(args.slice(1));
  } finally {
    if (saved === undefined) delete process.env.POD_NAMESPACE;
    else process.env.POD_NAMESPACE = saved;
  }
}

/** `group|resource[/sub]|verb` for every verb a rule list grants; wildcards fail the test. */
function granted(rules: Obj[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs ?? []) {
      expect([g, res, v], 'no wildcards in RBAC rules').not.toContain('*');
      out.add(`${g}|${res}|${v}`);
    }
    expect(r.nonResourceURLs, 'no non-resource URLs').toBeUndefined();
  }
  return out;
}

/**
 * What the controller calls, as `group|resource[/sub]|verb` by scope ('' = cluster-wide, else a
 * namespace), derived from KUBE_ACCESS and the options: Leases in the pod's namespace; namespaced
 * kinds cluster-wide, or in --watch-namespace only, plus the --publish-service Service watched by
 * name in its own namespace when that is another one.
 */
function needed(opts: ServeOptions, podNamespace: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (scope: string, key: string): void => void out.set(scope, (out.get(scope) ?? new Set()).add(key));
  const k = opts.kubernetes!;
  for (const a of KUBE_ACCESS) {
    const res = `${a.group}|${a.resource}${a.subresource ? '/' + a.subresource : ''}`;
    const scope = a.kind === 'Lease' ? k.electionNamespace : !a.namespaced ? '' : (k.watchNamespace ?? '');
    for (const v of a.verbs) add(scope, `${res}|${v}`);
    const publishNs = k.publishService?.split('/')[0];
    if (a.kind === 'Service' && a.subresource === undefined && k.watchNamespace !== undefined && publishNs !== k.watchNamespace) {
      for (const v of a.verbs) add(publishNs!, `${res}|${v}`);
    }
  }
  expect(k.electionNamespace).toBe(podNamespace);
  return out;
}

describe.skipIf(!HAVE_KUBECTL)('deploy/ kustomizations', () => {
  it('finds the kustomization at the root of deploy/', () => {
    expect(TARGETS).toContain('.');
  });

  it.each(TARGETS)('%s renders and every object passes its schema', async (target) => {
    const objects = render(target);
    expect(objects.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const o of objects) for (const p of await validateManifest(o)) problems.push(`${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}: ${p}`);
    expect(problems).toEqual([]);
    // No image left as the bare placeholder: the kustomization's images: sets it.
    for (const w of workloads(objects)) expect(w.c.image, target).toMatch(/:[\w.-]+$|@sha256:/);
  });

  it.each(TARGETS)('%s: the container args parse with the CLI parser and agree with ports and probes', async (target) => {
    const objects = render(target);
    const ws = workloads(objects);
    expect(ws.length, 'one Portico workload').toBe(1);
    for (const w of ws) {
      const opts = parseArgs(w);
      // The second stage of the CLI's validation (real-IP settings); throws as the CLI would.
      await applyConfigFile(opts);
      const ports = new Map(((w.c.ports ?? []) as Obj[]).map((p) => [p.name as string, p.containerPort as number]));
      expect(ports.get('http')).toBe(opts.httpPort);
      expect(ports.get('https')).toBe(opts.httpsPort);
      expect(ports.get('admin')).toBe(opts.adminPort);
      const probePort = (p: Obj): number => (typeof p.httpGet.port === 'string' ? ports.get(p.httpGet.port)! : p.httpGet.port);
      expect(w.c.readinessProbe.httpGet.path).toBe('/readyz');
      expect(probePort(w.c.readinessProbe)).toBe(opts.adminPort);
      expect(w.c.livenessProbe.httpGet.path).toBe('/healthz');
      expect(probePort(w.c.livenessProbe)).toBe(opts.adminPort);
      // A Service in front maps its ports to container ports that exist.
      for (const svc of find(objects, 'Service').filter((s) => (s as Obj).spec.selector?.['app.kubernetes.io/name'] === 'portico')) {
        for (const p of (svc as Obj).spec.ports as Obj[]) {
          const target = typeof p.targetPort === 'string' ? ports.get(p.targetPort) : p.targetPort;
          expect(target, `Service ${svc.metadata.name} port ${p.port}`).toBeDefined();
          expect([opts.httpPort, opts.httpsPort]).toContain(target);
          // Portico listens on the port the Service offers: Gateway listeners name that port,
          // and the translator serves a listener only on the port Portico really listens on.
          expect(target, `Service ${svc.metadata.name} port ${p.port} reaches Portico on the same port`).toBe(p.port);
        }
      }
      // Drain: --shutdown-delay, then --shutdown-grace, fit in the termination grace period (and
      // nothing else delays SIGTERM: the CLI has the delay, so no preStop sleep on top of it).
      expect(w.c.lifecycle?.preStop).toBeUndefined();
      expect(opts.shutdownDelayMs).toBeGreaterThan(0);
      expect((w.pod.terminationGracePeriodSeconds as number) * 1000).toBeGreaterThan(opts.shutdownDelayMs + opts.shutdownGraceMs);
      if (opts.kubernetes === undefined) continue; // manifest-directory example
      expect(opts.kubernetes.electionNamespace).toBe(w.o.metadata.namespace);
      // The published Service exists in the rendering.
      if (opts.kubernetes.publishService !== undefined) {
        const [ns, name] = opts.kubernetes.publishService.split('/');
        expect(find(objects, 'Service', name).some((s) => s.metadata.namespace === ns), `--publish-service ${opts.kubernetes.publishService}`).toBe(true);
      }
    }
  });

  it.each(TARGETS.filter((t) => !t.startsWith('examples/')))('%s: RBAC grants exactly the verbs and resources the controller uses', (target) => {
    const objects = render(target);
    const [w] = workloads(objects);
    const opts = parseArgs(w);
    const ns = w.o.metadata.namespace!;
    const rules = boundRules(objects, (w.pod.serviceAccountName as string) ?? 'default', ns);
    const want = needed(opts, ns);
    const sorted = (m: Map<string, Set<string>>): Record<string, string[]> => Object.fromEntries([...m].filter(([, v]) => v.size > 0).map(([scope, v]): [string, string[]] => [scope, [...v].sort()]));
    expect(sorted(new Map([...rules].map(([scope, r]) => [scope, granted(r)])))).toEqual(sorted(want));
    // resourceNames only on the election Lease (create cannot be limited by name).
    for (const [, list] of rules) {
      for (const r of list) {
        if (!(r.resources as string[]).includes('leases')) expect(r.resourceNames, 'resourceNames').toBeUndefined();
        else if (!(r.verbs as string[]).includes('create')) expect(r.resourceNames).toEqual([opts.kubernetes!.electionId]);
      }
    }
  });

  // The Pod Security Standard each namespace declares (pod-security.kubernetes.io/enforce) is one
  // its pods meet, so admission does not refuse them: the restricted and baseline rules that
  // concern what these manifests set.
  it.each(TARGETS)('%s: every pod meets its namespace\'s Pod Security Standard', (target) => {
    const objects = render(target);
    const SAFE_SYSCTLS = ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range'];
    for (const o of objects.filter((x) => ['Deployment', 'DaemonSet', 'StatefulSet', 'Job'].includes(x.kind))) {
      const level = find(objects, 'Namespace', o.metadata.namespace)[0]?.metadata.labels?.['pod-security.kubernetes.io/enforce'] ?? 'privileged';
      if (level === 'privileged') continue;
      const pod = (o as Obj).spec.template.spec as Obj;
      const what = `${o.kind} ${o.metadata.namespace}/${o.metadata.name} (${level})`;
      expect(pod.hostNetwork || pod.hostPID || pod.hostIPC, what).toBeFalsy();
      for (const sc of (pod.securityContext?.sysctls ?? []) as Obj[]) expect(SAFE_SYSCTLS, what).toContain(sc.name);
      for (const c of pod.containers as Obj[]) {
        const sc = (c.securityContext ?? {}) as Obj;
        expect(sc.privileged, what).toBeFalsy();
        for (const p of (c.ports ?? []) as Obj[]) expect(p.hostPort, what).toBeUndefined();
        if (level !== 'restricted') continue;
        expect(sc.allowPrivilegeEscalation, what).toBe(false);
        expect(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, what).toBe(true);
        expect(sc.runAsUser ?? pod.securityContext?.runAsUser, what).not.toBe(0);
        expect(sc.capabilities?.drop, what).toContain('ALL');
        for (const cap of (sc.capabilities?.add ?? []) as string[]) expect(cap, what).toBe('NET_BIND_SERVICE');
        expect(['RuntimeDefault', 'Localhost'], what).toContain(sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type);
      }
    }
  });

  it('deploy/: the install the issue asks for', () => {
    const objects = render('.');
    expect(find(objects, 'Namespace', 'portico')).toHaveLength(1);
    for (const o of objects) if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'IngressClass', 'GatewayClass'].includes(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('portico');

    const [ic] = find(objects, 'IngressClass', 'portico') as Obj[];
    expect(ic.spec.controller).toBe(INGRESS_CONTROLLER_NAME);
    expect(ic.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class']).toBeUndefined();
    const [gc] = find(objects, 'GatewayClass', 'portico') as Obj[];
    expect(gc.spec.controllerName).toBe(DEFAULT_GATEWAY_CONTROLLER);

    const [w] = workloads(objects);
    expect(w.o.kind).toBe('Deployment');
    expect((w.o as Obj).spec.replicas).toBe(2);
    const opts = parseArgs(w);
    expect(opts.kubernetes).toBeDefined();
    expect(opts.ingressClass).toBe(ic.metadata.name);
    expect(opts.gatewayControllerName).toBe(gc.spec.controllerName);
    expect(opts.adminPort).toBe(10254);
    expect(w.c.resources.requests.cpu).toBeDefined();
    expect(w.c.resources.requests.memory).toBeDefined();
    expect(w.c.resources.limits.cpu).toBeDefined();
    expect(w.c.resources.limits.memory).toBeDefined();
    expect(w.pod.affinity.podAntiAffinity).toBeDefined();
    expect(w.pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(w.c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });

    const [pdb] = find(objects, 'PodDisruptionBudget') as Obj[];
    expect(pdb.spec.selector.matchLabels).toEqual((w.o as Obj).spec.selector.matchLabels);

    const [svc] = find(objects, 'Service', 'portico') as Obj[];
    expect(svc.spec.type).toBe('LoadBalancer');
    expect(svc.spec.externalTrafficPolicy).toBe('Local');
    expect((svc.spec.ports as Obj[]).map((p) => p.port).sort()).toEqual([443, 80]);
    expect(svc.spec.selector).toEqual((w.o as Obj).spec.template.metadata.labels);
  });
});

describe.skipIf(!HAVE_KUBECTL)('deploy/overlays', () => {
  const service = (objects: Manifest[]): Obj => find(objects, 'Service', 'portico')[0] as Obj;

  it('nodeport: a NodePort Service, and no --publish-service (it has no load balancer address)', () => {
    const objects = render('overlays/nodeport');
    expect(service(objects).spec.type).toBe('NodePort');
    expect(parseArgs(workloads(objects)[0]).kubernetes!.publishService).toBeUndefined();
  });

  it('daemonset-hostnetwork: a DaemonSet on the host network binding 80/443 with only NET_BIND_SERVICE', () => {
    const objects = render('overlays/daemonset-hostnetwork');
    expect(find(objects, 'Deployment')).toEqual([]);
    expect(find(objects, 'PodDisruptionBudget')).toEqual([]);
    const [w] = workloads(objects);
    expect(w.o.kind).toBe('DaemonSet');
    expect(w.pod.hostNetwork).toBe(true);
    expect(w.pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    const opts = parseArgs(w);
    expect([opts.httpPort, opts.httpsPort]).toEqual([80, 443]);
    expect(w.c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    expect(w.c.securityContext.allowPrivilegeEscalation).toBe(false);
    // hostNetwork is outside the baseline Pod Security Standard.
    expect(find(objects, 'Namespace', 'portico')[0].metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('privileged');
  });

  it('aws-nlb-proxy-protocol: the NLB sends PROXY v2 and Portico requires it from a trusted range', async () => {
    const objects = render('overlays/aws-nlb-proxy-protocol');
    const a = service(objects).metadata.annotations as Record<string, string>;
    expect(a['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol']).toBe('*');
    expect(a['service.beta.kubernetes.io/aws-load-balancer-nlb-target-type']).toBe('ip');
    const opts = (await applyConfigFile(parseArgs(workloads(objects)[0]))).options;
    expect(opts.realIp['use-proxy-protocol']).toBe('true');
    expect(opts.realIp['proxy-protocol-trusted-cidrs']).toMatch(/\//);
    // Health checks to the admin port, which expects no PROXY header.
    expect(Number(a['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port'])).toBe(opts.adminPort);
    expect(a['service.beta.kubernetes.io/aws-load-balancer-healthcheck-path']).toBe('/readyz');
  });

  it('gcp and azure: their load balancer annotations, externalTrafficPolicy Local', () => {
    const gcp = service(render('overlays/gcp'));
    expect(gcp.metadata.annotations['cloud.google.com/l4-rbs']).toBe('enabled');
    const azure = service(render('overlays/azure'));
    expect(azure.metadata.annotations['service.beta.kubernetes.io/azure-load-balancer-health-probe-request-path']).toBe('/healthz');
    for (const s of [gcp, azure]) expect(s.spec.externalTrafficPolicy).toBe('Local');
  });

  it('metallb: a pool and an L2Advertisement of it, and the Service asks for that pool', () => {
    const objects = render('overlays/metallb');
    const [pool] = find(objects, 'IPAddressPool') as Obj[];
    const [l2] = find(objects, 'L2Advertisement') as Obj[];
    expect(l2.metadata.namespace).toBe(pool.metadata.namespace);
    expect(l2.spec.ipAddressPools).toEqual([pool.metadata.name]);
    expect(service(objects).metadata.annotations['metallb.io/address-pool']).toBe(pool.metadata.name);
    expect(service(objects).spec.type).toBe('LoadBalancer');
  });

  it('externaldns: ingress and gateway-httproute sources for Portico\'s class, a txt owner id, and RBAC to read them', () => {
    const objects = render('overlays/externaldns');
    const portico = parseArgs(workloads(objects)[0]);
    // ExternalDNS publishes what Portico writes to status, which needs an address source.
    expect(portico.kubernetes!.publishService).toBeDefined();
    const [d] = find(objects, 'Deployment', 'external-dns') as Obj[];
    const c = (d.spec.template.spec.containers as Obj[])[0];
    const args = c.args as string[];
    expect(args).toContain('--source=ingress');
    expect(args).toContain('--source=gateway-httproute');
    expect(args).toContain(`--ingress-class=${portico.ingressClass}`);
    expect(args.find((a) => a.startsWith('--txt-owner-id='))).toMatch(/^--txt-owner-id=[a-z0-9][-a-z0-9]*$/);
    const binding = find(objects, 'ClusterRoleBinding').find((b) => ((b as Obj).subjects as Obj[]).some((s) => s.name === d.spec.template.spec.serviceAccountName && s.namespace === d.metadata.namespace)) as Obj;
    const rules = find(objects, 'ClusterRole', binding.roleRef.name).flatMap((r) => (r as Obj).rules as Obj[]);
    const g = granted(rules);
    for (const need of ['networking.k8s.io|ingresses', 'gateway.networking.k8s.io|gateways', 'gateway.networking.k8s.io|httproutes', '|namespaces']) {
      for (const v of ['list', 'watch']) expect(g.has(`${need}|${v}`), `${need} ${v}`).toBe(true);
    }
    expect([...g].every((k) => /\|(get|list|watch)$/.test(k)), 'ExternalDNS only reads').toBe(true);
  });
});

describe('deploy/ validation catches mistakes', () => {
  it('refuses a wrong type, an unknown field and an unknown kind', async () => {
    const d = (extra: Obj): Manifest => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x', namespace: 'n' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'c', ...extra }] } } } });
    expect(await validateManifest(d({}))).toEqual([]);
    expect((await validateManifest(d({ ports: [{ containerPort: 'http' }] }))).join()).toMatch(/containerPort must be integer/);
    expect(await validateManifest(d({ readinesProbe: {} }))).toEqual(['.spec.template.spec.containers[0].readinesProbe: unknown field']);
    expect((await validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).join()).toMatch(/no schema known/);
    expect((await validateManifest({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'g' }, spec: { controllerName: 'portico' } })).join()).toMatch(/controllerName/);
  });
});
