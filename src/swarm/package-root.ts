import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The cah package root (holding package.json and swarm/), from src/swarm (tsx) or dist/src/swarm (compiled). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'swarm'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cah package root not found');
    dir = parent;
  }
  return dir;
}

/** A file of the package's swarm/ directory (cloud-init, the bootstrap and service templates). */
export function swarmAsset(name: string): string {
  return join(packageRoot(), 'swarm', name);
}
