import { isApiError } from './hetzner/errors.js';
import type { HetznerClient } from './hetzner/client.js';
import type { SshKey } from './hetzner/types.js';
import { SWARM_LABEL, type SshKeyPair } from './state.js';

/** The swarm key in a project, registered once: found by fingerprint, else created (labelled as cah's). */
export async function ensureRegisteredKey(client: HetznerClient, swarm: string, pair: SshKeyPair): Promise<SshKey> {
  const [existing] = await client.listSshKeys({ fingerprint: pair.fingerprint });
  if (existing) return existing;
  const labels = { [SWARM_LABEL]: swarm };
  try {
    return await client.createSshKey({ name: `cah-${swarm}`, public_key: pair.publicKey, labels });
  } catch (err) {
    if (!isApiError(err, 'uniqueness_error')) throw err;
    // Registered meanwhile by a concurrent run, or the name is taken by another key.
    const [raced] = await client.listSshKeys({ fingerprint: pair.fingerprint });
    if (raced) return raced;
    return client.createSshKey({ name: `cah-${swarm}-${pair.fingerprint.replace(/:/g, '').slice(0, 8)}`, public_key: pair.publicKey, labels });
  }
}

/**
 * Removes cah's key from a project once no cah server is left there. Only a key with this key pair's
 * fingerprint and cah's label is touched.
 */
export async function removeKeyIfUnused(client: HetznerClient, pair: SshKeyPair): Promise<SshKey | null> {
  const remaining = await client.listServers(SWARM_LABEL);
  if (remaining.some((s) => SWARM_LABEL in s.labels)) return null;
  const [key] = await client.listSshKeys({ fingerprint: pair.fingerprint });
  if (!key || !(SWARM_LABEL in key.labels)) return null;
  try {
    await client.deleteSshKey(key.id);
  } catch (err) {
    if (!isApiError(err, 'not_found')) throw err;
  }
  return key;
}
