import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOADER_OPTIONS } from '../src/wire/contract.js';
import { packageRoot } from '../src/swarm/package-root.js';

/** Where the generated wire types are committed (src/wire/contract.ts names them). */
export const WIRE_TYPES_DIR = join('src', 'wire', 'generated');

/**
 * Runs @grpc/proto-loader's proto-loader-gen-types on proto/cah.proto into `outDir`, with the
 * options the runtime loads the proto with: the types describe exactly what is decoded.
 * `npm run gen:wire` writes them into src/wire/generated; a test checks the committed ones.
 */
export function generateWireTypes(outDir: string): void {
  const flags = Object.entries(LOADER_OPTIONS).flatMap(([name, value]) => {
    if (value === false) return [];
    if (value === true) return [`--${name}`];
    return [`--${name}=${typeof value === 'function' ? value.name : String(value)}`];
  });
  const loaderMain = createRequire(import.meta.url).resolve('@grpc/proto-loader');
  const generator = join(dirname(loaderMain), '..', 'bin', 'proto-loader-gen-types.js');
  execFileSync(
    process.execPath,
    [generator, ...flags, '--includeComments', '--grpcLib=@grpc/grpc-js', '--importFileExtension=.js', '-O', outDir, join('proto', 'cah.proto')],
    { cwd: packageRoot(), stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = join(packageRoot(), WIRE_TYPES_DIR);
  // A message removed from the proto must not leave its file behind.
  rmSync(outDir, { recursive: true, force: true });
  generateWireTypes(outDir);
  process.stdout.write(`wire types written to ${outDir}\n`);
}
