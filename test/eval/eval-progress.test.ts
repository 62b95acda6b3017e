import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalCommand } from '../../src/cli/eval.ts';
import type { ProgressOptions } from '../../src/cli/progress.ts';
import { renderEvalMarkdown } from '../../src/eval/eval-render.ts';
import { tempDir } from '../helpers/paths.ts';
import { syntheticEvalSet } from './synthetic-eval-set.ts';

const ERASE_LINE = '\r\x1b[2K';
const PREFIX = 'sidx eval: ';
/** A progress line: "PHASE: DONE / TOTAL UNIT (elapsed)" or "PHASE (elapsed)". */
const PROGRESS = /\((\d+\.\d s|\d+ min \d\d s)\)$/;

interface Run {
  stderr: string;
  stdout: string;
  report: Record<string, unknown>;
  markdown: string;
}

/** One `sidx eval` in process, stderr's progress going to a string, console.log (stdout) captured. */
async function run(t: TestContext, dsDir: string, modelDir: string, out: string,
  progress: ProgressOptions): Promise<Run> {
  let stderr = '';
  let stdout = '';
  const log = t.mock.method(console, 'log', (...args: unknown[]) => { stdout += `${args.join(' ')}\n`; });
  try {
    const code = await evalCommand(['--dataset', dsDir, '--model', modelDir, '--out', out, '--k', '10,20', '--budget', '0.03',
      '--sweep', '0.01,0.03'], { progress: { ...progress, stream: { write: (s: string) => { stderr += s; } } } });
    assert.equal(code, 0);
  } finally {
    log.mock.restore();
  }
  const report = JSON.parse(readFileSync(out, 'utf8'));
  return { stderr, stdout, report, markdown: readFileSync(out.replace(/\.json$/, '.md'), 'utf8') };
}

/** report.json without its run time. */
const timeless = (report: Record<string, unknown>) => JSON.stringify({ ...report, protocol: { ...(report.protocol as object), seconds: 0 } });

test('sidx eval: progress of each phase on stderr (terminal: one redrawn line; log: heartbeat lines), stdout and report unchanged', async (t) => {
  const tmp = tempDir();
  try {
    const { dsDir, modelDir } = await syntheticEvalSet(tmp.dir);

    // A terminal, every update drawn: each draw starts with an erase; permanent lines end with a newline.
    const tty = await run(t, dsDir, modelDir, join(tmp.dir, 'tty', 'report.json'), { tty: true, minIntervalMs: 0 });
    assert.ok(tty.stderr.endsWith('\n'), 'no progress line left open');
    // A warning or note is a permanent line written without an erase (ProgressLine.log): split lines too.
    const draws = tty.stderr.split(ERASE_LINE).flatMap((s) => s.match(/[^\n]*\n|[^\n]+$/g) ?? []);
    assert.ok(draws.every((d) => d.startsWith(PREFIX)));
    const progressDraws = draws.filter((d) => !d.endsWith('\n')).map((d) => d.slice(PREFIX.length));
    const logLines = draws.filter((d) => d.endsWith('\n')).map((d) => d.slice(PREFIX.length, -1));
    for (const d of progressDraws) assert.match(d, PROGRESS);
    const phases = [...new Set(progressDraws.map((d) => d.replace(/(:| \().*$/, '')))];
    assert.deepEqual(phases.slice(1), ['indexing the catalog', 'exact search', 'sid', 'sid+hamming1', 'sid+beam w=32',
      'Embedding HitRate', 'ivf-flat'], progressDraws.join('\n'));
    assert.match(phases[0]!, /^reading .*synthetic$/);
    assert.ok(progressDraws.some((d) => d.startsWith('indexing the catalog: 1,200 / 1,200 items (')));
    assert.ok(progressDraws.some((d) => d.startsWith('exact search (FAISS Flat): 294 queries over 1,200 items (')));
    assert.ok(progressDraws.some((d) => /^ivf-flat: training IVF\d+,Flat, then \d+ nprobe values x 294 queries \(/.test(d)));
    const beam = progressDraws.filter((d) => d.startsWith('sid+beam w=32: ')).map((d) => Number(/: (\d+) \//.exec(d)![1]));
    assert.deepEqual(beam, [0, 128, 256, 294], 'every 128 answered queries, and the last');
    // The row lines, as before progress existed, in order; each phase's result line ends its progress line.
    assert.match(logLines[0]!, /^indexed 1200 items with synthetic-3x16; 294 queries \(mean5\), budget 36 candidates$/);
    assert.deepEqual(logLines.slice(1, -1).map((l) => l.replace(/:.*$/, '')), ['note', 'exact', 'sid', 'sid+rerank', 'sid+hamming1',
      'sid+hamming1+rerank', '  sid+hamming1+rerank @ 12', '  sid+hamming1+rerank @ 36', 'sid+beam', 'sid+beam+rerank',
      '  sid+beam+rerank @ 12', '  sid+beam+rerank @ 36', 'Embedding HitRate@30', 'ivf-flat']);
    assert.match(logLines.at(-1)!, /^wrote .*\/tty\/report\.json, .*report\.md, .*report\.svg$/);
    assert.equal(tty.stdout, `${tty.markdown}\n`, 'stdout: the table alone (console.log adds the newline)');
    assert.equal(tty.markdown, renderEvalMarkdown(tty.report as never));

    // A log (no terminal), on a clock that runs 2 s per reading: a progress line only after 5 s without output, each
    // its own line; the other lines are the row lines above, byte for byte.
    let clock = 0;
    const log = await run(t, dsDir, modelDir, join(tmp.dir, 'log', 'report.json'), { tty: false, now: () => (clock += 2000) });
    assert.ok(!log.stderr.includes('\r') && !log.stderr.includes('\x1b'));
    const lines = log.stderr.split('\n').slice(0, -1);
    assert.ok(lines.every((l) => l.startsWith(PREFIX)));
    const heartbeats = lines.filter((l) => PROGRESS.test(l));
    assert.ok(heartbeats.length > 0, lines.join('\n'));
    assert.deepEqual(lines.filter((l) => !PROGRESS.test(l)).map((l) => l.slice(PREFIX.length).replaceAll('/log/', '/tty/')), logLines);

    // Same report and table either way.
    assert.equal(log.stdout, tty.stdout);
    assert.equal(timeless(log.report), timeless(tty.report));
  } finally {
    tmp.cleanup();
  }
});
