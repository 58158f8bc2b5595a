// `npm run conformance-report`: runs Portico's own Gateway API scenario suites
// (test/e2e-gateway*.test.ts, each modelled on official conformance tests, through a real
// `portico serve`) and writes a ConformanceReport-style YAML from that run. A conformance test
// counts as passed only if every scenario mapped to it ran and passed; a feature is listed as
// supported only if at least one of its tests ran and all of them passed. This is not the
// official suite's run (that needs a cluster); the report says so in each profile's summary.
//
// Usage: npm run conformance-report [-- OUT.yaml]   (default: test-results/conformance-report.yaml)

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Our scenarios (file > test title) -> the conformance tests they are modelled on. */
export const SCENARIOS: Record<string, readonly string[]> = {
  'e2e-gateway.test.ts > Exact paths are exact and case-sensitive; Exact beats prefixes, longer prefixes win': ['HTTPRouteExactPathMatching', 'HTTPRoutePathMatchOrder'],
  'e2e-gateway.test.ts > matches of a rule are ORed; prefixes are segment-wise': ['HTTPRouteMatching'],
  'e2e-gateway.test.ts > header matches: names case-insensitive, more matches win, then rule order; regular expressions are whole-value': ['HTTPRouteHeaderMatching'],
  'e2e-gateway.test.ts > query parameter matches: case-sensitive, more matches win, a longer path beats them; the query reaches the backend unchanged': ['HTTPRouteQueryParamMatching'],
  'e2e-gateway.test.ts > method matches: path beats method, method beats headers': ['HTTPRouteMethodMatching'],
  'e2e-gateway.test.ts > across routes on one listener: rules merge; ties go to the oldest route, then namespace/name; the exact hostname first': ['HTTPRouteMatchingAcrossRoutes'],
  'e2e-gateway.test.ts > hostname intersection between listeners and routes; the port in Host is ignored': ['HTTPRouteHostnameIntersection'],
  'e2e-gateway.test.ts > a route without hostnames answers any Host, an IP literal too; no route is 404': ['HTTPRouteSimpleSameNamespace'],
  'e2e-gateway.test.ts > a route in another namespace attaches where the listener allows it and reaches its own Service': ['HTTPRouteCrossNamespace'],
  'e2e-gateway.test.ts > weighted backendRefs: 500 requests split 70/30 within 5 points, weight 0 gets none': ['HTTPRouteWeight'],
  'e2e-gateway.test.ts > answer 500, for their share of the weight; status says why': ['HTTPRouteInvalidNonExistentBackendRef', 'HTTPRouteInvalidBackendRefUnknownKind', 'HTTPRouteInvalidCrossNamespaceBackendRef', 'HTTPRouteNoBackendRefs'],
  'e2e-gateway.test.ts > a ReferenceGrant changes traffic, not only status: granted 200 from the other namespace, revoked 500': ['HTTPRouteReferenceGrant', 'HTTPRouteInvalidReferenceGrant'],
  'e2e-gateway.test.ts > Gateway, listeners and routes carry the spec conditions; attachedRoutes counts accepted routes only': ['GatewayWithAttachedRoutes', 'HTTPRouteHostnameIntersection'],
  'e2e-gateway-filters.test.ts > set overwrites, add appends as old,new, remove drops; names case-insensitive': ['HTTPRouteRequestHeaderModifier'],
  'e2e-gateway-filters.test.ts > edits what the backend answered': ['HTTPRouteResponseHeaderModifier'],
  'e2e-gateway-filters.test.ts > apply only to the requests their backend gets': ['HTTPRouteRequestHeaderModifierBackendWeights'],
  'e2e-gateway-filters.test.ts > status, hostname, path modifiers; the listener port unless a scheme or port is set; the query kept': ['HTTPRouteRedirectHostAndStatus', 'HTTPRouteRedirectPath', 'HTTPRouteRedirectPort', 'HTTPRouteRedirectScheme', 'HTTPRoute303Redirect', 'HTTPRoute307Redirect', 'HTTPRoute308Redirect'],
  'e2e-gateway-filters.test.ts > rewrites the Host and the path the backend sees, keeping the query': ['HTTPRouteRewriteHost', 'HTTPRouteRewritePath'],
  'e2e-gateway-filters.test.ts > request and backendRequest give 504 when exceeded; 0s disables': ['HTTPRouteTimeoutRequest', 'HTTPRouteTimeoutBackendRequest'],
  'e2e-gateway-protocols.test.ts > h2c: HTTP/2 with prior knowledge in, h2c to the backend (HTTPRouteBackendProtocolH2C)': ['HTTPRouteBackendProtocolH2C'],
  'e2e-gateway-protocols.test.ts > a named rule is served like any other (HTTPRouteNamedRouteRule)': ['HTTPRouteNamedRule'],
  'e2e-gateway-protocols.test.ts > WebSocket: text and binary frames echoed through the upgrade, the route filter applied (HTTPRouteBackendProtocolWebSocket)': ['HTTPRouteBackendProtocolWebSocket'],
  'e2e-gateway-grpc.test.ts > service/method matches route to h2c backends; an unmatched method is UNIMPLEMENTED': ['GRPCExactMethodMatching'],
  'e2e-gateway-grpc.test.ts > header matches: more matches win, then rule order; a header filter reaches the backend': ['GRPCRouteHeaderMatching'],
  'e2e-gateway-grpc.test.ts > weights 70/30/0 over 300 calls, within 6 points': ['GRPCRouteWeight'],
  'e2e-gateway-grpc.test.ts > listener hostnames: the exact listener before the wildcard, routes by sectionName; names no listener takes are UNIMPLEMENTED': ['GRPCRouteListenerHostnameMatching'],
  'e2e-gateway-tls.test.ts > terminate with the listener certificate and route by Host (HTTPRouteHTTPSListener)': ['HTTPRouteHTTPSListener'],
  'e2e-gateway-tls.test.ts > routes by SNI, still encrypted, the exact name before the wildcard; several labels under a wildcard': ['TLSRouteSimpleSameNamespace', 'TLSRouteHostnameIntersection'],
  'e2e-gateway-tls.test.ts > an unresolvable backend refuses its hostname; other names are not passed through': ['TLSRouteInvalidBackendRefNonexistent'],
  'e2e-gateway-tls.test.ts > status: accepted routes, BackendNotFound, an HTTPRoute not allowed on the TLS listener': ['TLSRouteInvalidBackendRefNonexistent', 'HTTPRouteDisallowedKind'],
  'e2e-gateway-tls.test.ts > a name a TLS listener accepts but no TLSRoute routes is refused, not terminated here': ['TLSRouteHostnameIntersection'],
  'e2e-gateway-tls-status.test.ts > TLSRouteInvalidBackendRefUnknownKind: a backendRef of an unknown kind is InvalidKind and its hostname is refused': ['TLSRouteInvalidBackendRefUnknownKind'],
  'e2e-gateway-tls-status.test.ts > TLSRouteInvalidNoMatchingListenerHostname: hostnames no TLS listener takes are NoMatchingListenerHostname, and no listener counts the route': ['TLSRouteInvalidNoMatchingListenerHostname'],
  'e2e-gateway-tls-status.test.ts > TLSRouteInvalidNoMatchingListener: on HTTP-only and HTTPS-only Gateways NotAllowedByListeners; a sectionName the Gateway lacks NoMatchingParent': ['TLSRouteInvalidNoMatchingListener'],
  'e2e-gateway-tls-status.test.ts > TLSRouteListenerPassthroughSupportedKinds: of TCPRoute and TLSRoute only TLSRoute is supported; ResolvedRefs InvalidRouteKinds': ['TLSRouteListenerPassthroughSupportedKinds'],
  'e2e-gateway-tls-status.test.ts > TLSRouteListenerTerminateNotSupported: a TLS listener in Terminate mode is not accepted (UnsupportedValue)': ['TLSRouteListenerTerminateNotSupported'],
  'e2e-gateway-tls-status.test.ts > TLSRouteInvalidReferenceGrant: grants wrong in one field each permit nothing (RefNotPermitted, refused); the right one passes through': ['TLSRouteInvalidReferenceGrant'],
  'e2e-gateway-tls-status.test.ts > an HTTPRoute naming a TLS listener is NotAllowedByListeners (HTTPRouteDisallowedKind)': ['HTTPRouteDisallowedKind'],
  'e2e-gateway-status.test.ts > GatewayInvalidRouteKind: unsupported kinds are left out of supportedKinds, ResolvedRefs InvalidRouteKinds': ['GatewayInvalidRouteKind'],
  'e2e-gateway-status.test.ts > GatewayListenerUnsupportedProtocol: the listener is UnsupportedProtocol; the Gateway ListenersNotValid (False alone, True beside a valid one)': ['GatewayListenerUnsupportedProtocol'],
  'e2e-gateway-status.test.ts > GatewayInvalidTLSConfiguration: missing, wrong-group, wrong-kind and malformed certificateRefs are InvalidCertificateRef': ['GatewayInvalidTLSConfiguration'],
  'e2e-gateway-status.test.ts > GatewaySecret*ReferenceGrant: a certificateRef into another namespace needs a grant there, by name or for all': ['GatewaySecretMissingReferenceGrant', 'GatewaySecretInvalidReferenceGrant', 'GatewaySecretReferenceGrantSpecific', 'GatewaySecretReferenceGrantAllInNamespace'],
  'e2e-gateway-status.test.ts > GatewayInvalidParametersRef: infrastructure.parametersRef is not taken: Accepted False InvalidParameters': ['GatewayInvalidParametersRef'],
  'e2e-gateway-status.test.ts > GatewayObservedGenerationBump and GatewayModifyListeners: conditions follow the generation; an added listener gets its routes': ['GatewayObservedGenerationBump', 'GatewayModifyListeners'],
  'e2e-gateway-status.test.ts > HTTPRouteInvalidCrossNamespaceParentRef: a listener allowing Same refuses another namespace (NotAllowedByListeners, attachedRoutes 0)': ['HTTPRouteInvalidCrossNamespaceParentRef'],
  'e2e-gateway-status.test.ts > HTTPRouteInvalidParentRefNotMatchingSectionName: NoMatchingParent': ['HTTPRouteInvalidParentRefNotMatchingSectionName'],
  'e2e-gateway-status.test.ts > HTTPRoutePartiallyInvalidViaInvalidReferenceGrant: the ungranted rule answers 500, the granted one 200': ['HTTPRoutePartiallyInvalidViaInvalidReferenceGrant'],
  'e2e-gateway-status.test.ts > HTTPRouteObservedGenerationBump: changing a backendRef moves every parent condition to the new generation': ['HTTPRouteObservedGenerationBump'],
  'e2e-gateway-status.test.ts > HTTPRouteListenerHostnameMatching: the most specific listener hostname; routes by sectionName': ['HTTPRouteListenerHostnameMatching'],
  'e2e-gateway-status.test.ts > GatewayHTTPListenerIsolation: a request is served only by the routes of its most specific listener': ['GatewayHTTPListenerIsolation'],
  'e2e-gateway-tls.test.ts > a request whose Host belongs to another listener than its SNI chose is 421 (HTTPRouteHTTPSListenerDetectMisdirectedRequests)': ['HTTPRouteHTTPSListenerDetectMisdirectedRequests'],
  // Mirror and CORS scenarios run once per HTTP/1.1 engine (same titles): both must pass.
  'e2e-gateway-mirror.test.ts > HTTPRouteRequestMirror: v1 answers, the mirror gets the same method, path with query, Host and headers': ['HTTPRouteRequestMirror'],
  'e2e-gateway-mirror.test.ts > mirror-and-modify-headers: the route header edits reach v1 and the mirror alike': ['HTTPRouteRequestMirror'],
  'e2e-gateway-mirror.test.ts > HTTPRouteRequestMultipleMirrors: both mirrors get each request, once': ['HTTPRouteRequestMultipleMirrors'],
  'e2e-gateway-mirror.test.ts > HTTPRouteRequestPercentageMirror: percent and fraction within 3 standard deviations; 0 never': ['HTTPRouteRequestPercentageMirror'],
  'e2e-gateway-cors.test.ts > preflights from allowed origins are answered by Portico with the configured headers; the backend sees none': ['HTTPRouteCORS'],
  'e2e-gateway-cors.test.ts > a disallowed origin gets no allow-origin, to preflights and requests alike': ['HTTPRouteCORS'],
  'e2e-gateway-cors.test.ts > requests from allowed origins reach the backend and come back with allow-origin (and credentials, expose)': ['HTTPRouteCORS'],
  'e2e-gateway-cors.test.ts > wildcards: methods `*` allow the requested one; origin `*` without credentials is `*`; with credentials the origin is echoed': ['HTTPRouteCORS'],
  'e2e-gateway-cors.test.ts > -unauth: `*` or the requested values, no credentials; simple requests likewise': ['HTTPRouteCORS'],
  'e2e-gateway-ports.test.ts > HTTPRouteListenerPortMatching: parentRef port (and sectionName) choose listeners; each port serves its own routes': ['HTTPRouteListenerPortMatching'],
  'e2e-gateway-ports.test.ts > status: every listener Accepted and Programmed; attachedRoutes per listener': ['GatewayWithAttachedRoutesWithPort8080'],
  'e2e-gateway-ports.test.ts > HTTPRouteMultipleGateways: one route on two Gateways serves through both; each Gateway keeps its own routes': ['HTTPRouteMultipleGateways'],
  'e2e-gateway-ports.test.ts > HTTPRouteRedirectPortAndScheme on a listener of its own: no scheme and no port keep the listener port': ['HTTPRouteRedirectPortAndScheme'],
  'e2e-gateway-filters.test.ts > edits the request its backend gets as the rule-level filter does (HTTPRouteBackendRequestHeaderModifier)': ['HTTPRouteBackendRequestHeaderModifier'],
  'e2e-gateway-status.test.ts > GatewayClassObservedGenerationBump: the class conditions follow its generation': ['GatewayClassObservedGenerationBump'],
  'e2e-gateway-status.test.ts > HTTPRouteServiceTypes: a headless Service and a Service without selector serve from their EndpointSlices': ['HTTPRouteServiceTypes'],
};

type Profile = 'GATEWAY-HTTP' | 'GATEWAY-GRPC' | 'GATEWAY-TLS';

/** Conformance tests of v1.6.1 (conformance/tests), with their profile and the features they need. */
const TESTS: Record<string, { profile: Profile | undefined; features: readonly string[] }> = {};
const core = (profile: Profile, names: string[], features: string[]) => {
  for (const n of names) TESTS[n] = { profile, features };
};
core('GATEWAY-HTTP', ['HTTPRouteSimpleSameNamespace', 'HTTPRouteCrossNamespace', 'HTTPRouteExactPathMatching', 'HTTPRouteMatching', 'HTTPRouteHeaderMatching', 'HTTPRouteMatchingAcrossRoutes', 'HTTPRoutePathMatchOrder', 'HTTPRouteHostnameIntersection', 'HTTPRouteHTTPSListener', 'HTTPRouteWeight', 'HTTPRouteNoBackendRefs', 'HTTPRouteInvalidNonExistentBackendRef', 'HTTPRouteInvalidBackendRefUnknownKind', 'HTTPRouteRequestHeaderModifier', 'HTTPRouteRedirectHostAndStatus', 'GatewayWithAttachedRoutes', 'HTTPRouteListenerHostnameMatching', 'HTTPRouteMultipleGateways', 'HTTPRouteServiceTypes', 'HTTPRouteObservedGenerationBump', 'HTTPRouteInvalidCrossNamespaceParentRef', 'HTTPRouteInvalidParentRefNotMatchingSectionName', 'GatewayClassObservedGenerationBump', 'GatewayObservedGenerationBump', 'GatewayModifyListeners', 'GatewayInvalidRouteKind', 'GatewayInvalidTLSConfiguration', 'GatewayListenerUnsupportedProtocol', 'GatewayInvalidParametersRef'], ['Gateway', 'HTTPRoute']);
core('GATEWAY-HTTP', ['HTTPRouteInvalidCrossNamespaceBackendRef', 'HTTPRouteInvalidReferenceGrant', 'HTTPRouteReferenceGrant', 'HTTPRoutePartiallyInvalidViaInvalidReferenceGrant', 'GatewaySecretMissingReferenceGrant', 'GatewaySecretInvalidReferenceGrant', 'GatewaySecretReferenceGrantSpecific', 'GatewaySecretReferenceGrantAllInNamespace'], ['Gateway', 'HTTPRoute', 'ReferenceGrant']);
const ext = (name: string, features: string[], profile: Profile = 'GATEWAY-HTTP') => (TESTS[name] = { profile, features: ['Gateway', profile === 'GATEWAY-HTTP' ? 'HTTPRoute' : profile === 'GATEWAY-GRPC' ? 'GRPCRoute' : 'TLSRoute', ...features] });
ext('HTTPRouteQueryParamMatching', ['HTTPRouteQueryParamMatching']);
ext('HTTPRouteMethodMatching', ['HTTPRouteMethodMatching']);
ext('HTTPRouteResponseHeaderModifier', ['HTTPRouteResponseHeaderModification']);
ext('HTTPRouteRequestHeaderModifierBackendWeights', ['HTTPRouteBackendRequestHeaderModification']);
ext('HTTPRouteBackendRequestHeaderModifier', ['HTTPRouteBackendRequestHeaderModification']);
ext('HTTPRouteRedirectPath', ['HTTPRoutePathRedirect']);
ext('HTTPRouteRedirectPort', ['HTTPRoutePortRedirect']);
ext('HTTPRouteRedirectScheme', ['HTTPRouteSchemeRedirect']);
ext('HTTPRouteRedirectPortAndScheme', ['HTTPRoutePortRedirect', 'GatewayPort8080']);
ext('HTTPRoute303Redirect', ['HTTPRoute303RedirectStatusCode']);
ext('HTTPRoute307Redirect', ['HTTPRoute307RedirectStatusCode']);
ext('HTTPRoute308Redirect', ['HTTPRoute308RedirectStatusCode']);
ext('HTTPRouteRewriteHost', ['HTTPRouteHostRewrite']);
ext('HTTPRouteRewritePath', ['HTTPRoutePathRewrite']);
ext('HTTPRouteTimeoutRequest', ['HTTPRouteRequestTimeout']);
ext('HTTPRouteTimeoutBackendRequest', ['HTTPRouteBackendTimeout']);
ext('HTTPRouteBackendProtocolH2C', ['HTTPRouteBackendProtocolH2C']);
ext('HTTPRouteBackendProtocolWebSocket', ['HTTPRouteBackendProtocolWebSocket']);
ext('HTTPRouteNamedRule', ['HTTPRouteNamedRouteRule']);
ext('HTTPRouteRequestMirror', ['HTTPRouteRequestMirror']);
ext('HTTPRouteRequestMultipleMirrors', ['HTTPRouteRequestMirror', 'HTTPRouteRequestMultipleMirrors']);
ext('HTTPRouteRequestPercentageMirror', ['HTTPRouteRequestPercentageMirror']);
ext('HTTPRouteCORS', ['HTTPRouteCORS']);
ext('HTTPRouteListenerPortMatching', ['HTTPRouteParentRefPort']);
ext('GatewayHTTPListenerIsolation', ['GatewayHTTPListenerIsolation']);
ext('HTTPRouteHTTPSListenerDetectMisdirectedRequests', ['GatewayHTTPSListenerDetectMisdirectedRequests']);
ext('GatewayWithAttachedRoutesWithPort8080', ['GatewayPort8080']);
// Extended Gateway and TLS tests Portico has no support or scenario for: listed so their features
// show as unsupported rather than vanish from the report.
const gatewayExt = (name: string, features: string[], profiles: Profile[] = ['GATEWAY-HTTP']) => {
  for (const profile of profiles) TESTS[profiles.length > 1 ? `${name}@${profile}` : name] = { profile, features: ['Gateway', ...features] };
};
gatewayExt('GatewayStaticAddresses', ['GatewayStaticAddresses']);
gatewayExt('GatewayOptionalAddressValue', ['GatewayAddressEmpty']);
gatewayExt('GatewayInfrastructure', ['GatewayInfrastructurePropagation']);
gatewayExt('GatewayFrontendClientCertificateValidation', ['GatewayFrontendClientCertificateValidation']);
gatewayExt('GatewayFrontendClientCertificateValidationInsecureFallback', ['GatewayFrontendClientCertificateValidation', 'GatewayFrontendClientCertificateValidationInsecureFallback']);
gatewayExt('GatewayTLSBackendClientCertificate', ['GatewayBackendClientCertificate']);
gatewayExt('ListenerSetHTTPRouting', ['ListenerSet', 'HTTPRoute']);
ext('BackendTLSPolicy', ['BackendTLSPolicy']);
ext('BackendTLSPolicySANValidation', ['BackendTLSPolicy', 'BackendTLSPolicySANValidation']);
ext('TLSRouteListenerTerminateSupportedKinds', ['TLSRouteModeTerminate'], 'GATEWAY-TLS');
ext('TLSRouteMixedTerminationSameNamespace', ['TLSRouteModeTerminate', 'TLSRouteModeMixed'], 'GATEWAY-TLS');
core('GATEWAY-GRPC', ['GRPCExactMethodMatching', 'GRPCRouteHeaderMatching', 'GRPCRouteListenerHostnameMatching', 'GRPCRouteWeight'], ['Gateway', 'GRPCRoute']);
core('GATEWAY-TLS', ['TLSRouteSimpleSameNamespace', 'TLSRouteHostnameIntersection', 'TLSRouteInvalidBackendRefNonexistent', 'TLSRouteInvalidBackendRefUnknownKind', 'TLSRouteInvalidNoMatchingListenerHostname', 'TLSRouteInvalidNoMatchingListener', 'TLSRouteListenerPassthroughSupportedKinds', 'TLSRouteListenerTerminateNotSupported'], ['Gateway', 'TLSRoute']);
core('GATEWAY-TLS', ['TLSRouteInvalidReferenceGrant'], ['Gateway', 'TLSRoute', 'ReferenceGrant']);
TESTS.HTTPRouteDisallowedKind = { profile: undefined, features: ['Gateway', 'HTTPRoute', 'TLSRoute'] };

const CORE_FEATURES: Record<Profile, readonly string[]> = { 'GATEWAY-HTTP': ['Gateway', 'HTTPRoute', 'ReferenceGrant'], 'GATEWAY-GRPC': ['Gateway', 'GRPCRoute', 'ReferenceGrant'], 'GATEWAY-TLS': ['Gateway', 'TLSRoute', 'ReferenceGrant'] };

interface VitestJson {
  testResults: { name: string; assertionResults: { title: string; status: string }[] }[];
}

export function buildReport(results: VitestJson, version: string, date: string): Record<string, unknown> {
  // Outcome per scenario, then per conformance test (all of its scenarios must pass).
  const outcome = new Map<string, string>();
  for (const file of results.testResults) {
    const base = file.name.split('/').pop()!;
    // A title run more than once (describe.each over engines) passes only if every run passed.
    for (const a of file.assertionResults) {
      const key = `${base} > ${a.title}`;
      const prev = outcome.get(key);
      outcome.set(key, prev === 'failed' || a.status === 'failed' ? 'failed' : prev === 'passed' ? 'passed' : a.status);
    }
  }
  const missing = Object.keys(SCENARIOS).filter((s) => !outcome.has(s));
  if (missing.length > 0) throw new Error(`scenarios named in the report map did not run (renamed?):\n  ${missing.join('\n  ')}`);
  const testResult = new Map<string, 'passed' | 'failed'>();
  for (const [scenario, tests] of Object.entries(SCENARIOS)) {
    for (const t of tests) {
      if (TESTS[t] === undefined) throw new Error(`unknown conformance test ${t}`);
      const ok = outcome.get(scenario) === 'passed';
      if (!ok || !testResult.has(t)) testResult.set(t, ok && testResult.get(t) !== 'failed' ? 'passed' : 'failed');
    }
  }
  // A feature is supported when at least one test needing it ran and every one that ran passed.
  const featureTests = new Map<string, string[]>();
  for (const [t, info] of Object.entries(TESTS)) for (const f of info.features) featureTests.set(f, [...(featureTests.get(f) ?? []), t]);
  const supported = [...featureTests.entries()].filter(([, tests]) => tests.some((t) => testResult.has(t)) && tests.every((t) => testResult.get(t) !== 'failed')).map(([f]) => f).sort();
  const profiles = (Object.keys(CORE_FEATURES) as Profile[]).map((name) => {
    const coreSet = new Set(CORE_FEATURES[name]);
    const tests = Object.entries(TESTS).filter(([, i]) => i.profile === name);
    const status = (list: [string, unknown][]) => {
      const passed = list.filter(([t]) => testResult.get(t) === 'passed').map(([t]) => t);
      const failed = list.filter(([t]) => testResult.get(t) === 'failed').map(([t]) => t);
      const skipped = list.filter(([t]) => !testResult.has(t)).map(([t]) => t).sort();
      return {
        result: failed.length > 0 ? 'failure' : skipped.length > 0 ? 'partial' : 'success',
        statistics: { Failed: failed.length, Passed: passed.length, Skipped: skipped.length },
        ...(failed.length > 0 ? { failedTests: failed.sort() } : {}),
        ...(skipped.length > 0 ? { skippedTests: skipped } : {}),
      };
    };
    const coreTests = tests.filter(([, i]) => i.features.every((f) => coreSet.has(f)));
    const extTests = tests.filter(([, i]) => !i.features.every((f) => coreSet.has(f)));
    const extFeatures = [...new Set(extTests.flatMap(([, i]) => i.features.filter((f) => !coreSet.has(f))))].sort();
    return {
      name,
      core: status(coreTests),
      extended: { ...status(extTests.filter(([, i]) => i.features.every((f) => coreSet.has(f) || supported.includes(f)))), supportedFeatures: extFeatures.filter((f) => supported.includes(f)), unsupportedFeatures: extFeatures.filter((f) => !supported.includes(f)) },
      summary: "Portico's own scenario suites (test/e2e-gateway*.test.ts, modelled on these conformance tests, run through portico serve on loopback), not the official suite; skipped tests have no Portico scenario yet.",
    };
  });
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'ConformanceReport',
    date,
    gatewayAPIChannel: 'standard',
    gatewayAPIVersion: 'v1.6.1',
    implementation: { organization: 'portico', project: 'portico', url: 'https://github.com/portico/portico', version, contact: [] },
    mode: 'default',
    profiles,
    supportedFeatures: supported,
  };
}

function main(): void {
  const out = process.argv[2] ?? join(ROOT, 'test-results/conformance-report.yaml');
  const dir = mkdtempSync(join(tmpdir(), 'portico-conformance-'));
  const json = join(dir, 'results.json');
  const files = ['e2e-gateway.test.ts', 'e2e-gateway-status.test.ts', 'e2e-gateway-ports.test.ts', 'e2e-gateway-mirror.test.ts', 'e2e-gateway-cors.test.ts', 'e2e-gateway-filters.test.ts', 'e2e-gateway-grpc.test.ts', 'e2e-gateway-protocols.test.ts', 'e2e-gateway-tls.test.ts', 'e2e-gateway-tls-status.test.ts'].map((f) => join('test', f));
  try {
    try {
      // This Node (24: the suites spawn portico with it), not whatever `node` is first on PATH.
      execFileSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', ...files, '--reporter=default', '--reporter=json', `--outputFile.json=${json}`], { cwd: ROOT, stdio: 'inherit' });
    } catch {
      // Failing scenarios are part of the report: the JSON is still written.
    }
    const results = JSON.parse(readFileSync(json, 'utf8')) as VitestJson;
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
    const report = buildReport(results, version, new Date().toISOString().replace(/\.\d+Z$/, 'Z'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, YAML.stringify(report));
    console.log(`wrote ${out}: ${(report.supportedFeatures as string[]).length} supported features`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
