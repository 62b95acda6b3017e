/**
 * A copy of a model bundle whose encoder ranks more codes per level (`top_codes` / `top_distances` of width M instead of
 * the bundle's topM), with the same weights: for measuring how Hamming-1 candidates gain from a fuller ranking
 * (docs/rqvae.md, "Ranking every code") without retraining, which would change the model (the collision split of
 * `--max-items-per-sid` picks among the top-M codes). The copy has no beam.onnx (it is tied to the encoder's digest)
 * and the id `<id>-topM`.
 *
 *   node --import tsx bench/widen-top-m.ts SRC_BUNDLE OUT_DIR M
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const [src, out, width] = process.argv.slice(2);
if (!src || !out || !width || !(Number(width) >= 1)) throw new Error('usage: bench/widen-top-m.ts SRC_BUNDLE OUT_DIR M');
const manifest = JSON.parse(readFileSync(join(src, 'model.json'), 'utf8')) as { id: string; topM: number; codebookSizes: number[] };
const m = Number(width);
if (m > Math.min(...manifest.codebookSizes)) throw new Error(`M ${m} exceeds the smallest codebook (${Math.min(...manifest.codebookSizes)})`);

const model = onnx.ModelProto.decode(readFileSync(join(src, 'encoder.onnx')));
const graph = model.graph!;
const inits = new Map((graph.initializer ?? []).map((t) => [t.name, t]));
const int64 = (v: number) => Buffer.from(BigInt64Array.of(BigInt(v)).buffer);
let widened = 0;
for (const node of graph.node ?? []) {
  if (node.opType !== 'TopK') continue;
  const k = inits.get(node.input?.[1] ?? '');
  const value = k?.rawData?.length ? Buffer.from(k.rawData).readBigInt64LE(0) : BigInt(String(k?.int64Data?.[0] ?? -1)); // a Long prints its digits
  if (k === undefined || value !== BigInt(manifest.topM)) continue; // the argmin TopKs (k = 1) stay
  k.rawData = int64(m);
  k.int64Data = [];
  widened++;
}
if (widened === 0) throw new Error(`no TopK of width ${manifest.topM} in ${src}/encoder.onnx`);
for (const output of graph.output ?? []) {
  const dims = output.type?.tensorType?.shape?.dim;
  if (dims?.length === 3 && Number(dims[2]!.dimValue) === manifest.topM) dims[2]!.dimValue = m;
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'encoder.onnx'), onnx.ModelProto.encode(model).finish());
if (existsSync(join(src, 'decoder.onnx'))) copyFileSync(join(src, 'decoder.onnx'), join(out, 'decoder.onnx'));
writeFileSync(join(out, 'model.json'), `${JSON.stringify({ ...manifest, id: `${manifest.id}-top${m}`, topM: m }, null, 2)}\n`);
console.log(`${out}: ${widened} TopK initializer(s) widened from ${manifest.topM} to ${m}`);
