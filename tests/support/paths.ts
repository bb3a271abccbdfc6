import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file whether it runs from tests/ (tsx) or dist/tests/ (tsc). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'proto'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}

export const repoRoot = findRepoRoot();
/** ../shared beside the repository: real data the tests read. */
export const sharedDir = join(repoRoot, '..', 'shared');
export const sharedData = (...parts: string[]): string => join(sharedDir, 'data', ...parts);
