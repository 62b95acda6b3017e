// server.threadNice: the encoder workers (and the ORT threads their sessions start) and the libuv pool threads that run
// the addon's [async] methods get a lower CPU priority than the event loop. Read back from /proc (Linux only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import type { ModelBundle } from '../../src/tokenizer/bundle.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomRows, writeEncoderBundle, SPEC } from './fixtures/encoder-bundle.ts';

const linux = existsSync('/proc/thread-self');

/** This process's threads and their niceness (field 19 of /proc/self/task/TID/stat; the comm field may hold spaces). */
function threadNice(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])); // fields from 3 (state) on
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Niceness of the threads started since `before` was taken. */
const startedSince = (before: Map<number, number>) => [...threadNice()].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
const threadsAt = (nice: number) => [...threadNice()].filter(([, n]) => n === nice).map(([tid]) => tid);
const mainNice = () => threadNice().get(process.pid);

let tmp: { dir: string; cleanup: () => void };
let bundle: ModelBundle;
before(async () => {
  tmp = tempDir('sidx-nice-');
  bundle = await writeEncoderBundle(join(tmp.dir, 'model'));
});
after(() => tmp.cleanup());

test('encoder workers run at the pool\'s niceness, the event loop at its own', { skip: !linux && 'needs Linux /proc' }, async () => {
  assert.equal(mainNice(), 0, 'the test process starts at niceness 0');
  let before = threadNice();
  const logged: string[] = [];
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1, nice: 3, log: (_level, msg) => logged.push(msg) });
  try {
    assert.ok(logged.some((m) => m.startsWith('encoder pool ready') && m.includes('at niceness +3')), logged.join('\n'));
    await pool.encode(randomRows(64, SPEC.dim, 5), 64);
    const started = startedSince(before);
    assert.ok(started.filter((n) => n === 3).length >= 2, `two workers at niceness 3, the new threads at ${started.join(', ')}`);
    assert.ok(started.every((n) => n === 3), `every thread the pool started (workers, ORT's) inherits it: ${started.join(', ')}`);
    assert.equal(mainNice(), 0, 'the event loop keeps niceness 0');
  } finally {
    await pool.close();
  }
  before = threadNice();
  const plain = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1 });
  try {
    await plain.encode(randomRows(8, SPEC.dim, 6), 8);
    const started = startedSince(before);
    assert.ok(started.length >= 1 && started.every((n) => n === 0), `without \`nice\` the worker keeps niceness 0: ${started.join(', ')}`);
  } finally {
    await plain.close();
  }
});

test('setPoolNice: a pool thread that runs an addon [async] method takes the niceness; bad values are refused', { skip: !linux && 'needs Linux /proc' }, async () => {
  const binding = loadFaissBinding();
  for (const bad of [-1, 20, 2.5, Number.NaN, '4']) {
    assert.throws(() => binding.setPoolNice(bad as number), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
      assert.match(err.message, /nice must be an integer in \[0, 19\]/);
      return true;
    }, String(bad));
  }
  assert.deepEqual(threadsAt(4), []);
  const data = randomRows(256, 8, 9);
  await binding.kmeans(data, 8, 4);
  assert.deepEqual(threadsAt(4), [], 'nothing lowered before setPoolNice');
  binding.setPoolNice(4);
  try {
    // The libuv pool has 4 threads by default: enough concurrent calls reach all of them.
    await Promise.all(Array.from({ length: 16 }, () => binding.kmeans(data, 8, 4)));
    // The sync methods that re-apply the thread settings on the JS thread (an index add, PQ training) leave its niceness.
    const index = new binding.Index(8, 'ip', 'Flat');
    index.add(data, BigInt64Array.from({ length: 256 }, (_, i) => BigInt(i)));
    binding.pqTrain(data, 8, 2, { niter: 2 });
    const lowered = threadsAt(4);
    assert.ok(lowered.length >= 1, 'at least one pool thread at niceness 4');
    assert.ok(!lowered.includes(process.pid) && mainNice() === 0, 'the event loop keeps niceness 0');
  } finally {
    binding.setPoolNice(0);
  }
});
