/**
 * RQ-KMeans training time: sidx against FAISS's own Python k-means, on the same data in the same run.
 *
 *   node --import tsx bench/rqkmeans-vs-faiss.ts [--runs 3] [--threads N] [--python PATH] [--out FILE]
 *
 * For each data set (../shared/data: scientific text 3 x 256 with --normalize l2, instruments SASRec 4 x 256), it
 * alternates, `runs` times:
 *   - trainer:    trainRqKmeans in this process (load excluded), the work `sidx train` does;
 *   - sidx train: the CLI as a child process, wall time (node start, read, train, export encoder.onnx, metrics);
 *   - faiss py:   bench/rqkmeans-vs-faiss.py, the same residual k-means with faiss.Kmeans (load excluded), and its
 *                 process wall time.
 * and prints medians, the ratios and the largest relative gap between the two final k-means objectives of a level
 * (same FAISS library, seeds and parameters: the same clustering up to float round-off, which L2 normalisation
 * computed by numpy vs sidx introduces and later levels amplify). Needs python3 with numpy and faiss
 * (Debian: apt-get install python3-faiss); a benchmark baseline only, never a runtime dependency.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readNpy } from '../src/io/npy.ts';
import { trainRqKmeans, type Normalize } from '../src/train/rqkmeans.ts';
import { getVectorThreads, setVectorThreads } from '../src/vector/vector-index.ts';
import { benchArgs, markdownTable } from './lib.ts';

const run = promisify(execFile);
const args = benchArgs({
  runs: { type: 'string', default: '3' },
  threads: { type: 'string', default: String(availableParallelism()) },
  iters: { type: 'string', default: '25' },
  python: { type: 'string' },
  out: { type: 'string' },
});
const RUNS = Number(args.runs);
const THREADS = Number(args.threads);
const ITERS = Number(args.iters);
const SEED = 0;
const root = resolve(import.meta.dirname, '..');

interface DataSet {
  name: string;
  file: string;
  levels: number;
  k: number;
  normalize: Normalize;
}

const dataSets: DataSet[] = [
  { name: 'scientific text_emb (1585 x 512)', file: '../shared/data/scientific/text_emb.npy', levels: 3, k: 256, normalize: 'l2' },
  { name: 'instruments sasrec_emb (9922 x 32)', file: '../shared/data/instruments/sasrec_emb.npy', levels: 4, k: 256, normalize: 'none' },
];

/** The first Python that can import faiss (a pyenv `python3` on PATH may lack Debian's dist-packages). */
async function findPython(): Promise<string> {
  const candidates = args.python ? [args.python as string] : ['python3', '/usr/bin/python3'];
  for (const candidate of candidates) {
    if (await run(candidate, ['-c', 'import faiss, numpy']).then(() => true, () => false)) return candidate;
  }
  throw new Error(`no Python with faiss and numpy among ${candidates.join(', ')}: apt-get install python3-faiss, or pass --python`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timedProcess(cmd: string, argv: string[]): Promise<{ wall: number; stdout: string }> {
  const started = performance.now();
  const { stdout } = await run(cmd, argv, { cwd: root, maxBuffer: 16 << 20 });
  return { wall: (performance.now() - started) / 1000, stdout };
}

async function python(ds: DataSet): Promise<{ wall: number; seconds: number; objective: number[]; faiss: string }> {
  const { wall, stdout } = await timedProcess(PYTHON, [join(root, 'bench', 'rqkmeans-vs-faiss.py'), ds.file,
    String(ds.levels), String(ds.k), String(ITERS), String(SEED), ds.normalize, String(THREADS)]);
  return { wall, ...(JSON.parse(stdout) as { seconds: number; objective: number[]; faiss: string }) };
}

async function sidxCli(ds: DataSet, out: string): Promise<number> {
  const { wall } = await timedProcess(process.execPath, [join(root, 'bin', 'sidx.js'), 'train', '--method', 'rqkmeans',
    '--input', ds.file, '--levels', String(ds.levels), '--codebook-size', String(ds.k), '--iters', String(ITERS),
    '--seed', String(SEED), '--normalize', ds.normalize, '--threads', String(THREADS), '--out', out]);
  return wall;
}

async function trainer(ds: DataSet): Promise<{ seconds: number; objective: number[] }> {
  const { data, shape } = await readNpy(resolve(root, ds.file));
  const started = performance.now();
  const result = await trainRqKmeans(data, shape[1]!, {
    codebookSizes: new Array<number>(ds.levels).fill(ds.k), iterations: ITERS, seed: SEED, normalize: ds.normalize,
  });
  return { seconds: (performance.now() - started) / 1000, objective: result.levels.map((l) => l.kmeansObjective.at(-1)!) };
}

setVectorThreads(THREADS);
const PYTHON = await findPython();
const scratch = mkdtempSync(join(tmpdir(), 'sidx-bench-rq-'));
const rows: Array<Array<string | number>> = [];
let faissVersion = '';
try {
  for (const ds of dataSets) {
    if (!existsSync(resolve(root, ds.file))) {
      console.error(`skipping ${ds.name}: ${ds.file} not found`);
      continue;
    }
    await trainer(ds); // warm-up: first FAISS/OpenBLAS call in this process pays thread-pool start-up
    const t: { trainer: number[]; cli: number[]; py: number[]; pyWall: number[] } = { trainer: [], cli: [], py: [], pyWall: [] };
    let objectiveGap = 0;
    for (let r = 0; r < RUNS; r++) {
      const ours = await trainer(ds);
      const theirs = await python(ds);
      faissVersion = theirs.faiss;
      t.trainer.push(ours.seconds);
      t.py.push(theirs.seconds);
      t.pyWall.push(theirs.wall);
      t.cli.push(await sidxCli(ds, join(scratch, `model-${r}`)));
      ours.objective.forEach((o, l) => (objectiveGap = Math.max(objectiveGap, Math.abs(o - theirs.objective[l]!) / o)));
    }
    const [trainerS, pyS, cliS, pyWallS] = [median(t.trainer), median(t.py), median(t.cli), median(t.pyWall)];
    rows.push([ds.name, `${ds.levels} x ${ds.k}`, trainerS.toFixed(3), pyS.toFixed(3), (trainerS / pyS).toFixed(2),
      cliS.toFixed(2), pyWallS.toFixed(2), (cliS / pyWallS).toFixed(2), `${(100 * objectiveGap).toFixed(3)}%`]);
    console.error(`${ds.name}: trainer ${t.trainer.map((s) => s.toFixed(3))}, faiss ${t.py.map((s) => s.toFixed(3))}, `
      + `cli ${t.cli.map((s) => s.toFixed(2))}, python process ${t.pyWall.map((s) => s.toFixed(2))}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

const table = markdownTable(
  ['data', 'levels x K', 'sidx trainer s', 'faiss.Kmeans (Python) s', 'ratio sidx/faiss', '`sidx train` process s',
    'Python process s', 'process ratio', 'objective gap'],
  rows,
);
const header = `RQ-KMeans training, ${ITERS} k-means iterations per level, seed ${SEED}, ${getVectorThreads()} threads, `
  + `median of ${RUNS} runs; FAISS ${faissVersion} (Python) vs the sidx addon.`;
console.log(`${header}\n\n${table}`);
if (args.out) writeFileSync(args.out as string, `${header}\n\n${table}\n`);
