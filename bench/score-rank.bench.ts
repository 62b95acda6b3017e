/**
 * The rerank's ordering step (service/score-rank.ts): the first k of N candidate scores by the bounded selection the
 * service uses, against a full comparator sort of all N (what the rerank did before), on the same seeded scores.
 *
 *   node --import tsx bench/score-rank.bench.ts [--candidates 1000] [--k 10] [--rounds 20000]
 */
import { rankByScore } from '../src/service/score-rank.ts';
import { benchArgs, markdownTable } from './lib.ts';
import { seededUniform } from '../src/random.ts';

const args = benchArgs({ candidates: { type: 'string', default: '1000' }, k: { type: 'string', default: '10' }, rounds: { type: 'string', default: '20000' } });
const n = Number(args.candidates);
const k = Number(args.k);
const rounds = Number(args.rounds);
const scores = Float32Array.from({ length: n }, seededUniform(1));

function fullSort(s: Float32Array): number {
  const order = [...s.keys()].sort((a, b) => s[b]! - s[a]! || a - b);
  return order[k - 1]!;
}

function topK(s: Float32Array): number {
  let n = 0;
  for (const i of rankByScore(s, 1, k)) if (++n >= k) return i;
  return -1;
}

function time(fn: (s: Float32Array) => number): number {
  for (let r = 0; r < rounds / 10; r++) fn(scores.slice());
  const t = performance.now();
  for (let r = 0; r < rounds; r++) fn(scores.slice());
  return ((performance.now() - t) / rounds) * 1000;
}

if (fullSort(scores.slice()) !== topK(scores.slice())) throw new Error('the two orders disagree');
const sorted = time(fullSort);
const selected = time(topK);
console.log(markdownTable(['ordering of ' + n + ' candidates, first ' + k, 'us per query', 'ratio'], [
  ['full comparator sort (before)', sorted.toFixed(1), '1.00'],
  ['bounded selection (score-rank.ts)', selected.toFixed(1), (selected / sorted).toFixed(3)],
]));
