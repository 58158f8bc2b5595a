// The routing table's public surface: IR types in, a frozen table out, lookups on it.
export type * from './types.ts';
export { compileTable, CompileError, RoutingTable, pickBackend, pickEndpoint } from './compile.ts';
export type { CompiledBackend, CompiledEndpoint, CompiledRoute, RequestAttributes, VirtualHost } from './compile.ts';
export { hostKey, normalizeHostname } from './host.ts';
export { normalizePath, pathEnd } from './path.ts';
