/**
 * Co-occurring item pairs for the contrastive loss, from
 * - a FORGE contrastive .npz (`pairs` of raw item ids [M, 2], its own `embeds`; the row ids come from `idFile`, one
 *   id per line, because FORGE's `itemEncID` dict is pickled): pairs map to rows of those embeds, and pairs naming
 *   an id without a row are dropped (counted);
 * - a JSON sequence file `{user: [row, ...]}` or a RecBole sequential `.inter` file (history + next item; items =
 *   rows of the training input, oldest first): every two consecutive distinct items of a sequence form a pair;
 *   repeated pairs (RecBole files repeat every prefix of a user's history) are kept once.
 */
import { SidxError } from '../errors.ts';
import type { Embeddings } from '../io/embeddings.ts';
import { readForgeContrastive } from '../io/forge.ts';
import { itemsOf } from '../io/interactions.ts';
import { readRecboleInter } from '../io/recbole.ts';
import { readSequences } from '../io/sequences.ts';
import type { PairSet } from './rqvae-contrastive.ts';

export interface LoadedPairs extends PairSet {
  /** Pairs left out (unknown ids, or sequence items outside the input). */
  dropped: number;
}

export async function loadPairs(path: string, input: Embeddings, idFile?: string): Promise<LoadedPairs> {
  const a: number[] = [];
  const b: number[] = [];
  let dropped = 0;
  let vectors: Float32Array;
  if (path.toLowerCase().endsWith('.npz')) {
    const c = await readForgeContrastive(path, idFile === undefined ? {} : { idFile });
    if (c.dim !== input.dim) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: embeds have dimension ${c.dim}, the input ${input.dim}`, { field: 'pairs' });
    }
    const rowOf = new Map<bigint, number>();
    c.ids.forEach((id, row) => rowOf.set(id, row));
    for (let i = 0; i < c.m; i++) {
      const ra = rowOf.get(c.pairs[2 * i]!);
      const rb = rowOf.get(c.pairs[2 * i + 1]!);
      if (ra === undefined || rb === undefined) dropped++;
      else { a.push(ra); b.push(rb); }
    }
    vectors = c.embeds;
  } else {
    const seen = new Set<number>();
    const add = (x: number, y: number) => {
      if (x === y) return;
      if (x >= input.n || y >= input.n) { dropped++; return; }
      const key = x * input.n + y;
      if (seen.has(key)) return;
      seen.add(key);
      a.push(x);
      b.push(y);
    };
    const lower = path.toLowerCase();
    if (lower.endsWith('.inter') || lower.endsWith('.tsv')) {
      const inter = await readRecboleInter(path);
      for (let r = 0; r < inter.n; r++) {
        const items = itemsOf(inter, r);
        for (let t = 0; t + 1 < items.length; t++) add(items[t]!, items[t + 1]!);
        if (items.length > 0) add(items[items.length - 1]!, inter.targets[r]!);
      }
    } else {
      const seqs = await readSequences(path);
      for (let u = 0; u < seqs.n; u++) {
        const items = itemsOf(seqs, u);
        for (let t = 0; t + 1 < items.length; t++) add(items[t]!, items[t + 1]!);
      }
    }
    vectors = input.vectors;
  }
  if (a.length === 0) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: no usable pairs (${dropped} dropped)`, { field: 'pairs' });
  return { vectors, a: Int32Array.from(a), b: Int32Array.from(b), count: a.length, dropped };
}
