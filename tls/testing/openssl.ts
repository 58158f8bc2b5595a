// Test support only: certificate fixtures made with the openssl CLI in a temporary directory.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  certPem: string;
  keyPem: string;
}

export class OpensslFixtures {
  readonly dir = mkdtempSync(join(tmpdir(), 'portico-tls-'));
  private n = 0;

  run(args: string[], input?: string): string {
    return execFileSync('openssl', args, { cwd: this.dir, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  write(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  private keyArgs(keyType: 'rsa' | 'ec'): string[] {
    return keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  }

  /** Self-signed certificate; `sans` like ['DNS:a.test', 'IP:127.0.0.1'], none for a CN-only certificate. */
  selfSigned(opts: { cn: string; sans?: string[]; keyType?: 'rsa' | 'ec'; days?: number; ca?: boolean }): Pem {
    const id = `ss${++this.n}`;
    const args = ['req', '-x509', ...this.keyArgs(opts.keyType ?? 'ec'), '-nodes', '-keyout', `${id}.key`, '-out', `${id}.crt`, '-days', String(opts.days ?? 2), '-subj', `/CN=${opts.cn}`];
    if (opts.sans !== undefined && opts.sans.length > 0) args.push('-addext', `subjectAltName=${opts.sans.join(',')}`);
    if (opts.ca) args.push('-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    this.run(args);
    return { certPem: this.read(`${id}.crt`), keyPem: this.read(`${id}.key`) };
  }

  /** Leaf signed by `issuer`; returns the leaf alone (chain it yourself). */
  signed(issuer: Pem, opts: { cn: string; sans?: string[]; keyType?: 'rsa' | 'ec'; ca?: boolean }): Pem {
    const id = `cs${++this.n}`;
    this.write(`${id}-issuer.crt`, issuer.certPem);
    this.write(`${id}-issuer.key`, issuer.keyPem);
    this.run(['req', ...this.keyArgs(opts.keyType ?? 'ec'), '-nodes', '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${opts.cn}`]);
    const ext: string[] = [];
    if (opts.sans !== undefined && opts.sans.length > 0) ext.push(`subjectAltName=${opts.sans.join(',')}`);
    ext.push(opts.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE');
    this.write(`${id}.ext`, ext.join('\n') + '\n');
    this.run(['x509', '-req', '-in', `${id}.csr`, '-CA', `${id}-issuer.crt`, '-CAkey', `${id}-issuer.key`, '-CAcreateserial', '-out', `${id}.crt`, '-days', '2', '-extfile', `${id}.ext`]);
    return { certPem: this.read(`${id}.crt`), keyPem: this.read(`${id}.key`) };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
