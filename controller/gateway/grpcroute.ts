// GRPCRoute specifics. A GRPCRoute is translated by httproute.ts's attachment, backend and status
// code (the two kinds share listeners, parentRefs and backendRefs); what differs lives here:
// how a gRPC method match becomes an HTTP/2 request match.

import { unsafeRegexReason } from '../../router/regex.ts';
import { asRecord, asString } from '../objects.ts';
import { valueMatches, type MatchSpec } from './httproute.ts';

// GRPCMethodMatch validation (apis/v1/grpcroute_types.go): a service is dot-separated
// identifiers, a method one identifier.
const GRPC_SERVICE = /^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

/**
 * A GRPCRoute match as an HTTP/2 request match. gRPC calls are `POST /service/method`
 * (gRPC over HTTP/2: only POST is a call), so every match carries method POST. Service and
 * method -> Exact `/service/method`; service only -> PathPrefix `/service`; method only ->
 * `/[^/]+/method`; RegularExpression values -> one whole-path pattern. No method at all: every
 * call (PathPrefix `/`). A `method` that names neither service nor method is invalid (the CRD's
 * CEL rule refuses it), so the rule is dropped rather than widened to every call.
 */
export function parseGrpcMatch(raw: Record<string, unknown>, errors: string[]): MatchSpec | undefined {
  const before = errors.length;
  const hasMethod = raw.method !== undefined && raw.method !== null;
  const m = asRecord(raw.method);
  const type = asString(m.type) ?? 'Exact';
  const service = asString(m.service) || undefined;
  const method = asString(m.method) || undefined;
  let pathType: MatchSpec['pathType'] = 'Prefix';
  let path = '/';
  if (hasMethod && service === undefined && method === undefined) errors.push('a gRPC method match must name a service, a method or both');
  else if (type === 'Exact') {
    if (service !== undefined && !GRPC_SERVICE.test(service)) errors.push(`gRPC service ${JSON.stringify(service)} is not a valid service name`);
    if (method !== undefined && !GRPC_METHOD.test(method)) errors.push(`gRPC method ${JSON.stringify(method)} is not a valid method name`);
    if (service !== undefined && method !== undefined) [pathType, path] = ['Exact', `/${service}/${method}`];
    else if (service !== undefined) path = `/${service}`;
    else if (method !== undefined) [pathType, path] = ['RegularExpression', `/[^/]+/${method}`];
  } else if (type === 'RegularExpression') {
    pathType = 'RegularExpression';
    path = `/(?:${service ?? '[^/]+'})/(?:${method ?? '[^/]+'})`;
    const reason = unsafeRegexReason(path);
    if (reason !== undefined) errors.push(`gRPC method regular expression ${JSON.stringify(path)} refused: ${reason}`);
  } else errors.push(`gRPC method match type ${type} is not supported`);
  const headers = valueMatches(raw.headers, 'header', true, errors);
  if (errors.length > before) return undefined;
  return { pathType, path, method: 'POST', ...(headers ? { headers } : {}) };
}
