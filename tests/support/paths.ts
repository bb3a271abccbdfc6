import { join } from 'node:path';
import { packageRoot } from '../../src/swarm/package-root.js';

/** The repository root (the cah package root), whether tests run from tests/ (tsx) or dist/tests/ (tsc). */
export const repoRoot = packageRoot();
/** ../shared beside the repository: real data the tests read. */
export const sharedDir = join(repoRoot, '..', 'shared');
export const sharedData = (...parts: string[]): string => join(sharedDir, 'data', ...parts);
