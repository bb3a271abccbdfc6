import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateWireTypes, WIRE_TYPES_DIR } from '../scripts/wire-types.js';
import { repoRoot } from './support/paths.js';
import type { ExtractionCounts } from '../src/warc/extract.js';
import type { ExtractionCounts__Output } from '../src/wire/generated/cah/v1/ExtractionCounts.js';

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), readFileSync(path, 'utf8'));
  }
  return out;
}

test('the committed wire types are what proto-loader-gen-types makes of proto/cah.proto (run `npm run gen:wire`)', () => {
  const fresh = mkdtempSync(join(tmpdir(), 'cah-wire-types-'));
  try {
    generateWireTypes(fresh);
    const expected = files(fresh);
    const committed = files(join(repoRoot, WIRE_TYPES_DIR));
    assert.deepEqual([...committed.keys()].sort(), [...expected.keys()].sort(), 'generated files differ');
    for (const [name, text] of expected) assert.equal(committed.get(name), text, `${name} differs from the proto`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

// The extraction counts a worker reports are declared by the extractor; the proto message must hold the same fields (checked by tsc in pretest).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const extractionCountsMatch: Same<ExtractionCounts, ExtractionCounts__Output> = true;
test('the proto ExtractionCounts holds exactly the extractor\'s counts', () => assert.equal(extractionCountsMatch, true));
