import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { WORKER_DEPENDENCIES } from '../src/swarm/bundle.js';
import { repoRoot } from './support/paths.js';

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The npm packages `cah worker` loads at run time: static and dynamic value imports reachable from its command module. */
function workerPackages(): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const queue = [join(repoRoot, 'src', 'cli', 'main.ts'), join(repoRoot, 'src', 'cli', 'worker.ts')];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
        // main.ts loads each command's module on demand; the worker runs only its own.
        if (file.endsWith(join('cli', 'main.ts')) && /\/cli\/(?!errors|early-env)[\w-]+\.ts$/.test(target)) continue;
        if (existsSync(target)) queue.push(target);
        else if (existsSync(target.replace(/\.ts$/, '.tsx'))) queue.push(target.replace(/\.ts$/, '.tsx'));
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  }
  return packages;
}

test('the swarm worker bundle carries every package `cah worker` imports (a missing one fails on every server)', () => {
  const needed = [...workerPackages()].sort();
  assert.ok(needed.includes('sharp') && needed.includes('@grpc/grpc-js'), needed.join(', '));
  const missing = needed.filter((name) => !WORKER_DEPENDENCIES.includes(name));
  assert.deepEqual(missing, [], 'imported by the worker, absent from WORKER_DEPENDENCIES (src/swarm/bundle.ts)');
});
