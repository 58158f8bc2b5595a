// The routing table's public surface: IR types in, a frozen table out, lookups on it.
export type * from './types.ts';
export { compileTable, CompileError, RoutingTable, pickBackend, pickBackendRef, pickEndpoint, pickOtherEndpoint, pickPassthroughBackend } from './compile.ts';
export type { CompiledBackend, CompiledBackendRef, CompiledEndpoint, CompiledMirror, CompiledPassthrough, CompiledRoute, RequestAttributes, VirtualHost, WeightedChoice } from './compile.ts';
export { editHeaderList, editHeaderRecord, redirectLocation, rewriteTarget } from './filters.ts';
export type { CompiledFilters, CompiledHeaderEdit, CompiledRedirect, CompiledRewrite, RedirectRequest } from './filters.ts';
export { hostKey, normalizeHostname } from './host.ts';
export { normalizePath, pathEnd } from './path.ts';
export { queryParam } from './query.ts';
export { changedEndpointSets, splitEndpoints, withEndpointSets } from './endpoints.ts';
export type { EndpointSetIR, EndpointSetsIR } from './endpoints.ts';
