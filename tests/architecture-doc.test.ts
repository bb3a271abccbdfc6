import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');

test('docs/architecture.md: every file and folder it names exists', () => {
  const named = [...doc.matchAll(/`((?:src|proto|swarm|scripts|tests|bench|docs|assets)\/[\w./-]*)`/g)].map((m) => m[1]!);
  assert.ok(named.length >= 40, `the map names ${named.length} paths`);
  const missing = named.filter((path) => !existsSync(join(root, path)));
  assert.deepEqual(missing, [], 'named in docs/architecture.md but not in the tree');
});

test('docs/architecture.md: every folder of src/ has its line, every state has an owner file', () => {
  const folders = readdirSync(join(root, 'src')).filter((name) => statSync(join(root, 'src', name)).isDirectory());
  const unmapped = folders.filter((folder) => !doc.includes(`\`src/${folder}/\``));
  assert.deepEqual(unmapped, [], 'folders of src/ the map does not describe');
  const owners = doc.slice(doc.indexOf('## State and its owner'));
  assert.ok(owners.length > 0 && /\| .* \| `src\/store\/shards\.ts` \|/.test(owners), 'the state → owner table names store/shards.ts');
});
