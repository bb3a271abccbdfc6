import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CoordinatorCertificate {
  certPath: string;
  keyPath: string;
  certPem: string;
}

/** Where the coordinator finds its TLS certificate and key for `--direct` swarms. */
export function coordinatorCertPaths(stateDir: string): { certPath: string; keyPath: string } {
  return { certPath: join(stateDir, 'tls', 'coordinator.crt'), keyPath: join(stateDir, 'tls', 'coordinator.key') };
}

/**
 * The self-signed certificate `--direct` workers pin (generated once with openssl: an EC P-256 key,
 * 0600, valid for the coordinator's host name or address).
 */
export async function ensureCoordinatorCertificate(stateDir: string, host: string): Promise<CoordinatorCertificate> {
  const { certPath, keyPath } = coordinatorCertPaths(stateDir);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(join(stateDir, 'tls'), { recursive: true, mode: 0o700 });
    const san = isIP(host) ? `IP:${host}` : `DNS:${host}`;
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '3650', '-subj', '/CN=cah-coordinator', '-addext', `subjectAltName=${san}`,
    ]);
    chmodSync(keyPath, 0o600);
  }
  return { certPath, keyPath, certPem: readFileSync(certPath, 'utf8') };
}
