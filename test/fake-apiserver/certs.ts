// A CA and a serving certificate for 127.0.0.1/localhost, made with the openssl CLI at start.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServingCerts { caPem: string; certPem: string; keyPem: string }

export function makeServingCerts(dir: string): ServingCerts {
  const f = (n: string): string => join(dir, n);
  const run = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe' }); };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=fake-apiserver-ca', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', f('tls.key'), '-out', f('tls.csr'), '-subj', '/CN=kube-apiserver']);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n');
  run(['x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('tls.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { caPem: readFileSync(f('ca.crt'), 'utf8'), certPem: readFileSync(f('tls.crt'), 'utf8'), keyPem: readFileSync(f('tls.key'), 'utf8') };
}
