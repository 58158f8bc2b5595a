// Service + EndpointSlice -> backend endpoints, the way kube-proxy reads them: slices are joined to
// their Service by the kubernetes.io/service-name label (so selector-less and headless Services
// work), a Service port maps to the slice port of the same name, and ready endpoints are used,
// falling back to serving-and-terminating ones when none is ready.

import type { BackendIR, EndpointIR } from '../router/types.ts';
import { asArray, asRecord, asString, type KubeObject } from './objects.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface ServicePortRef {
  readonly number?: number;
  readonly name?: string;
}

export interface ResolvedBackend {
  readonly key: string;
  readonly backend: BackendIR;
  /** Set when the reference cannot be served (missing Service, unknown port). */
  readonly problem?: string;
}

interface ServicePort {
  name: string;
  port: number;
  targetPort: number | string | undefined;
  appProtocol: string | undefined;
}

/** Services and EndpointSlices indexed for backend resolution. Built once per translation. */
export class BackendIndex {
  private readonly services = new Map<string, KubeObject>();
  private readonly slices = new Map<string, KubeObject[]>();

  constructor(objects: readonly KubeObject[]) {
    for (const o of objects) {
      const ns = o.metadata.namespace ?? 'default';
      if (o.kind === 'Service' && o.apiVersion === 'v1') this.services.set(`${ns}/${o.metadata.name}`, o);
      else if (o.kind === 'EndpointSlice' && o.apiVersion.startsWith('discovery.k8s.io/')) {
        const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
        if (!svc) continue;
        const key = `${ns}/${svc}`;
        const list = this.slices.get(key) ?? [];
        list.push(o);
        this.slices.set(key, list);
      }
    }
  }

  /** Why a backend reference cannot work as written (no such Service, or no such port), if so. */
  referenceProblem(namespace: string, serviceName: string, ref: ServicePortRef): string | undefined {
    const svc = this.services.get(`${namespace}/${serviceName}`);
    if (!svc) return `Service ${namespace}/${serviceName} not found`;
    const spec = asRecord(svc.spec);
    if (asString(spec.type) === 'ExternalName') return undefined; // any port may be named there
    const found = asArray(spec.ports).some((p) => {
      const r = asRecord(p);
      return ref.number !== undefined ? r.port === ref.number : asString(r.name) === ref.name;
    });
    return found ? undefined : `Service ${namespace}/${serviceName} has no port ${ref.number !== undefined ? ref.number : JSON.stringify(ref.name ?? '')}`;
  }

  resolve(namespace: string, serviceName: string, ref: ServicePortRef): ResolvedBackend {
    const portLabel = ref.number !== undefined ? String(ref.number) : (ref.name ?? '');
    const key = `${namespace}/${serviceName}:${portLabel}`;
    const unavailable = (reason: string): ResolvedBackend => ({
      key,
      backend: { name: key, protocol: 'http', endpoints: [], unavailableReason: reason },
      problem: reason,
    });
    const svc = this.services.get(`${namespace}/${serviceName}`);
    if (!svc) return unavailable(`Service ${namespace}/${serviceName} not found`);
    const spec = asRecord(svc.spec);
    const ports: ServicePort[] = asArray(spec.ports).map((p) => {
      const r = asRecord(p);
      const tp = r.targetPort;
      return {
        name: asString(r.name) ?? '',
        port: typeof r.port === 'number' ? r.port : NaN,
        targetPort: typeof tp === 'number' || typeof tp === 'string' ? tp : undefined,
        appProtocol: asString(r.appProtocol),
      };
    });
    const svcPort = ref.number !== undefined ? ports.find((p) => p.port === ref.number) : ports.find((p) => p.name === ref.name);

    if (asString(spec.type) === 'ExternalName') {
      const host = asString(spec.externalName);
      const port = svcPort?.port ?? ref.number;
      if (!host || port === undefined || Number.isNaN(port)) return unavailable(`ExternalName Service ${namespace}/${serviceName} has no usable name or port ${portLabel}`);
      return { key, backend: { name: key, protocol: protocolOf(svcPort?.appProtocol), endpoints: [{ address: host, port }] } };
    }
    if (!svcPort) return unavailable(`Service ${namespace}/${serviceName} has no port ${portLabel}`);

    const endpoints = this.endpointsFor(namespace, serviceName, svcPort);
    const backend: BackendIR = {
      name: key,
      protocol: protocolOf(endpoints.appProtocol ?? svcPort.appProtocol),
      endpoints: endpoints.list,
      ...(endpoints.list.length === 0 ? { unavailableReason: `Service ${namespace}/${serviceName} has no ready endpoints` } : {}),
    };
    return { key, backend };
  }

  private endpointsFor(namespace: string, serviceName: string, svcPort: ServicePort): { list: EndpointIR[]; appProtocol?: string } {
    const ready: EndpointIR[] = [];
    const terminating: EndpointIR[] = [];
    const seen = new Set<string>();
    const terminatingSeen = new Set<string>();
    let appProtocol: string | undefined;
    for (const slice of this.slices.get(`${namespace}/${serviceName}`) ?? []) {
      const addressType = asString(slice.addressType);
      if (addressType !== 'IPv4' && addressType !== 'IPv6') continue;
      const slicePorts = asArray(slice.ports).map(asRecord);
      let port: number | undefined;
      const named = slicePorts.find((p) => (asString(p.name) ?? '') === svcPort.name);
      if (named && typeof named.port === 'number') {
        port = named.port;
        appProtocol ??= asString(named.appProtocol);
      } else if (typeof svcPort.targetPort === 'number' && (slicePorts.length === 0 || !named)) {
        // As ingress-nginx: a numeric targetPort still works when the slice lists no matching port.
        port = svcPort.targetPort;
      } else if (svcPort.targetPort === undefined && slicePorts.length === 0 && Number.isFinite(svcPort.port)) {
        port = svcPort.port;
      }
      if (port === undefined) continue;
      for (const ep of asArray(slice.endpoints)) {
        const e = asRecord(ep);
        const address = asString(asArray(e.addresses)[0]);
        if (!address) continue;
        const c = asRecord(e.conditions);
        // discovery/v1: an unset ready or serving means true, an unset terminating false. A value
        // that is not a boolean (a hand-written manifest's "false") is not taken for true.
        const isReady = c.ready === undefined || c.ready === null || c.ready === true;
        const isServing = c.serving === undefined || c.serving === null || c.serving === true;
        const isTerminating = c.terminating === true;
        const id = `${address}|${port}`;
        if (isReady) {
          if (!seen.has(id)) ready.push({ address, port });
          seen.add(id);
        } else if (isServing && isTerminating) {
          if (!terminatingSeen.has(id)) terminating.push({ address, port });
          terminatingSeen.add(id);
        }
        // Any other not-ready endpoint gets no requests at all.
      }
    }
    // Serving-and-terminating endpoints only when the backend has no ready endpoint at all, as
    // kube-proxy does: a draining Deployment keeps answering instead of dropping to 503.
    const list = ready.length > 0 ? ready : terminating;
    list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    return { list, appProtocol };
  }
}

function protocolOf(appProtocol: string | undefined): BackendIR['protocol'] {
  if (appProtocol === 'kubernetes.io/h2c' || appProtocol === 'h2c') return 'h2c';
  if (appProtocol === 'https' || appProtocol === 'HTTPS') return 'https';
  return 'http';
}
