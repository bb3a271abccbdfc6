import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { repoRoot } from './support/paths.js';

const SRC = join(repoRoot, 'src');

/** The layer table, top first (src/layers.json: the one place it is written). */
const LAYERS = (JSON.parse(readFileSync(join(SRC, 'layers.json'), 'utf8')) as { layers: string[][] }).layers;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Every relative module a file names: static imports and re-exports (`import … from`, `import type
 * … from`, `export … from`), side-effect imports (`import '…'`) and dynamic `import('…')`.
 */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const re of [/\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g, /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g, /^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm]) {
    for (const m of text.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** The part of src/ a path lies in: its first folder, or the file's own name for a file directly in src/. */
function partOf(path: string): string {
  return relative(SRC, path).split(sep)[0]!;
}

function layerOf(part: string): number {
  return LAYERS.findIndex((layer) => layer.includes(part));
}

/** The imports in src/ that break the layering, as `from → to` lines. */
export function upwardImports(): string[] {
  const bad: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = partOf(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC + sep)) continue;
      const to = partOf(target.replace(/\.js$/, '.ts'));
      if (to === from) continue;
      if (layerOf(to) <= layerOf(from)) bad.push(`${relative(SRC, file)} → ${spec} (${from} may not import ${to})`);
    }
  }
  return bad;
}

test('layers: every part of src/ is in the table', () => {
  const parts = new Set(sourceFiles(SRC).map(partOf));
  assert.deepEqual([...parts].filter((p) => layerOf(p) < 0), [], 'add new folders to src/layers.json');
});

test('layers: imports run downhill (cli → app → dashboard/swarm/demo → coordinator/worker → output/model → store/filter/warc/wire → text/errors)', () => {
  assert.deepEqual(upwardImports(), []);
});

test('layers: the import scanner sees every form of import', () => {
  const text = [
    "import { a } from '../x/a.js';",
    "import type { B } from '../x/b.js';",
    'import {\n  c,\n  d,\n} from "../x/c.js";',
    "export { e } from './e.js';",
    "import './side-effect.js';",
    "const f = await import('../x/f.js');",
    "import { g } from 'package';",
  ].join('\n');
  assert.deepEqual(importsOf(text).sort(), ['../x/a.js', '../x/b.js', '../x/c.js', '../x/f.js', './e.js', './side-effect.js']);
});
