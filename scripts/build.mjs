// Bundles the CLI (src/cli/main.ts and everything it imports from src/, npm packages left as imports) into
// dist/sidx.mjs with esbuild. bin/sidx.js runs the bundle while it is newer than every file under src/, else the
// TypeScript sources through tsx: a start of `sidx serve` loads a few bundled chunks instead of ~200 transpiled modules (about
// 0.4 s less to listening, docs/benchmarks.md "Where it stands (stop 33)"). Worker scripts (src/**/*.mjs) stay where they are.
//   node scripts/build.mjs [--quiet]
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const t0 = performance.now();
rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { sidx: 'src/cli/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: '[name]-[hash]', // beside sidx.mjs: one level below the root, as src/paths.ts expects
  // The CLI's commands are imported on demand (src/cli/main.ts): each stays a chunk of its own, loaded with the npm
  // packages it needs only when it runs.
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
if (!process.argv.includes('--quiet')) console.log(`dist/sidx.mjs built in ${(performance.now() - t0).toFixed(0)} ms`);
