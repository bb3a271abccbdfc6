import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { SwarmConfigError } from '../errors.js';

/** One Hetzner Cloud project, known by its API token; `project` is a non-secret id safe to store and print. */
export interface HetznerAccount {
  token: string;
  project: string;
}

/** A short, stable, non-reversible id of a token: records say which project a server is in without the secret. */
export function projectIdOf(token: string): string {
  return 'p-' + createHash('sha256').update(token).digest('hex').slice(0, 10);
}

/**
 * The tokens from `HCLOUD_TOKEN` (the hcloud CLI's variable), else from `.env` in `cwd`. Several
 * tokens (one per line or comma separated) are several projects: `up` fills them in order.
 */
export function loadHetznerAccounts(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): HetznerAccount[] {
  let raw = env['HCLOUD_TOKEN'];
  if (!raw) {
    const dotenv = join(cwd, '.env');
    if (existsSync(dotenv)) raw = parseEnv(readFileSync(dotenv, 'utf8'))['HCLOUD_TOKEN'];
  }
  const tokens = [...new Set((raw ?? '').split(/[\s,]+/).map((t) => t.trim()).filter(Boolean))];
  return tokens.map((token) => ({ token, project: projectIdOf(token) }));
}

/** `HCLOUD_ENDPOINT` overrides the API URL, as it does for the hcloud CLI; anything but an http(s) URL is a configuration error. */
export function hetznerEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env['HCLOUD_ENDPOINT'];
  if (!raw) return undefined;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    // Reported below.
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.hostname) {
    throw new SwarmConfigError(`HCLOUD_ENDPOINT must be an http(s) URL such as https://api.hetzner.cloud/v1, got "${raw}"`);
  }
  return raw;
}
