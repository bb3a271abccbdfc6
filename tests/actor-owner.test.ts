import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './support/paths.js';

const SRC = join(repoRoot, 'src');
/** The only module that may change actor state (besides the table itself). */
const OWNER = 'coordinator/actor-manager.ts';
const MUTATORS = ['expect', 'register', 'heartbeat', 'setCurrentShard', 'clearCurrentShard', 'markRestarting', 'markDead', 'markAllDead', 'pruneDead'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [join(dir, e.name)] : []));
}

test('actor state has one owner: only the ActorManager calls the actor table’s mutators', () => {
  // The table is reached as `store.actors` (or `this.table` inside the owner); a call of a mutator on it anywhere else is a second owner.
  const call = new RegExp(`\\bstore\\.actors\\s*\\.\\s*(${MUTATORS.join('|')})\\s*\\(`);
  const offenders = sourceFiles(SRC)
    .map((file) => relative(SRC, file))
    .filter((path) => path !== OWNER && path !== 'store/actors.ts' && call.test(readFileSync(join(SRC, path), 'utf8')));
  assert.deepEqual(offenders, []);
  const handedOut = sourceFiles(SRC)
    .map((file) => relative(SRC, file))
    .filter((path) => /new ActorManager\(/.test(readFileSync(join(SRC, path), 'utf8')));
  assert.deepEqual(handedOut, ['coordinator/head.ts'], 'one manager, made by the coordinator');
});
