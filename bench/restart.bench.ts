/**
 * Restart to ready of `sidx serve` on a data directory built by the bulk loader (`sidx index`), and its RSS split
 * into anonymous and file-backed pages, as ratios to the raw float32 vectors.
 *
 *   node --import tsx bench/restart.bench.ts --dir /tmp/r1m --n 1000000 [--model models/default] [--runs 3]
 *
 * Build (once per --dir): n unit-norm rows around 1,024 seeded random centres written as a .npy, then `sidx index`
 * into <dir>/data (its own items/s line is printed). Then --runs restarts, each a fresh `sidx serve` child: ms from
 * spawn to "listening" and to /readyz 200, RSS at ready (/proc/PID/status: RssAnon, RssFile); the first run's log
 * lines with their offsets show where the start goes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../src/io/npy.ts';
import { seededUniform } from '../src/random.ts';
import { processMemory, REPO_ROOT, SIDX_BIN, startBenchServer } from '../src/bench/server.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  dir: { type: 'string', default: '/tmp/sidx-restart' },
  n: { type: 'string', default: '100000' },
  model: { type: 'string', default: join(REPO_ROOT, 'models/default') },
  runs: { type: 'string', default: '3' },
});
const n = Number(args.n);
const dataDir = join(args.dir, 'data');
const manifest = JSON.parse(readFileSync(join(args.model, 'model.json'), 'utf8')) as { inputDim: number };
const dim = manifest.inputDim;
const mib = (bytes: number) => bytes / 2 ** 20;
const rawBytes = n * dim * 4;

/** n rows, each a random centre (of 1,024) plus noise, L2-normalised; one chunk of rows at a time into one array. */
function rows(): Float32Array {
  const rand = seededUniform(1);
  const centres = Float32Array.from({ length: 1024 * dim }, () => rand() - 0.5);
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    const c = Math.floor(rand() * 1024) * dim;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const x = centres[c + j]! + 0.3 * (rand() - 0.5);
      out[r * dim + j] = x;
      norm += x * x;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[r * dim + j]! *= scale;
  }
  return out;
}

if (!existsSync(join(dataDir, 'vectors.json'))) {
  mkdirSync(args.dir, { recursive: true });
  const input = join(args.dir, 'input.npy');
  await writeNpy(input, rows(), [n, dim]);
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [SIDX_BIN, 'index', '--input', input, '--model', args.model, '--data-dir', dataDir],
    { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  rmSync(input, { force: true });
  console.log(`sidx index: ${out.trim().split('\n').at(-1)} (${((performance.now() - t0) / 1000).toFixed(1)} s wall)`);
}

const table: string[][] = [];
for (let run = 1; run <= Number(args.runs); run++) {
  const server = await startBenchServer({ dataDir, modelDir: args.model, timeoutMs: 600_000 });
  const rss = processMemory(server.pid);
  const log = server.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { time: number; msg: string });
  await server.stop();
  table.push([String(run), server.startMs.listening.toFixed(0), server.startMs.ready.toFixed(0),
    `${mib(rss.anonBytes).toFixed(0)} (${(rss.anonBytes / rawBytes).toFixed(2)}x)`, `${mib(rss.fileBytes).toFixed(0)} (${(rss.fileBytes / rawBytes).toFixed(2)}x)`]);
  if (run === 1) for (const line of log) console.log(`  +${line.time - log[0]!.time} ms: ${line.msg.slice(0, 160)}`);
}
const size = (name: string) => mib(statSync(join(dataDir, name)).size).toFixed(0);
console.log(`# ${n} x ${dim} (raw ${mib(rawBytes).toFixed(0)} MiB); data.mdb ${size('catalog/data.mdb')} MiB, vectors.f32 ${size('catalog/vectors.f32')} MiB`);
console.log(markdownTable(['run', 'listening, ms', 'ready, ms', 'RSS anon at ready, MiB', 'RSS file-backed at ready, MiB'], table));
