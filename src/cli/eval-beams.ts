/**
 * `sidx eval-beams`: FORGE HR@K of generated SID beams against the items users interacted with
 * (src/eval/beam-hitrate.ts). SIDs map to items through a service data directory's index (LMDB catalog, the
 * model's key space) or through an item -> SID table written by `sidx encode --out FILE.jsonl`.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SidxError } from '../errors.ts';
import { beamHitRate, type SidLookup } from '../eval/beam-hitrate.ts';
import { Catalog } from '../store/catalog.ts';
import { ControlPlane } from '../store/control-plane.ts';
import { sidToText } from '../sid/codec.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { parseFlags, UsageError } from './args.ts';

export const evalBeamsUsage = `Usage: sidx eval-beams --beams FILE.jsonl [--truth FILE.jsonl] [--k 20,100,500,1000]
                       [--data-dir DIR] [--model DIR] [--items FILE.jsonl] [--out FILE.json]

FORGE HR@K of generated beams: each --beams line is an ordered list of SIDs ([12,7,300], "12-7-300" or AL-GR
"C12C8199C16684"; or al_sid's {"_generated_new_text_": [...], "answer": "id;id"}), the same line of --truth the
ids of the items the user went on to interact with. The SIDs map to items in beam order (repeats kept, as in
al_sid calc_hr), truncated to K; HR@K = |set(top K) ∩ truth| / |truth|, averaged over rows. Invalid SIDs are
skipped and counted.

  --data-dir  a service data directory (default ./data): its catalog maps SIDs to item ids
  --model     the bundle whose SIDs these are (default: the data directory's active model)
  --items     instead of --data-dir: the item -> SID table of \`sidx encode --out FILE.jsonl\`
  --k         cut-offs (default 20,100,500,1000)
  --out       also write the result as JSON`;

interface Mapping {
  lookup: SidLookup;
  codebookSizes: number[];
  model: string;
  close(): Promise<void>;
}

async function catalogMapping(dataDir: string, modelDir: string | undefined): Promise<Mapping> {
  const sqlite = join(dataDir, 'control.sqlite');
  if (!existsSync(sqlite) || !existsSync(join(dataDir, 'catalog'))) {
    throw new UsageError(`${dataDir} is not a service data directory (no control.sqlite / catalog)`);
  }
  const control = ControlPlane.open(sqlite);
  try {
    const id = modelDir === undefined ? undefined : (await loadBundle(resolve(modelDir))).manifest.id;
    const row = id === undefined ? control.activeModel() : control.getModel(id);
    if (!row) throw new UsageError(id === undefined ? `${dataDir} has no active model` : `model ${id} is not registered in ${dataDir}`);
    const catalog = Catalog.open(join(dataDir, 'catalog'));
    return {
      model: row.id,
      codebookSizes: row.codebookSizes,
      lookup: (codes, limit) => Array.from(catalog.exact(row.version, codes, limit), (key) => catalog.getByKey(key)?.id)
        .filter((x): x is string => x !== undefined),
      close: () => catalog.close(),
    };
  } finally {
    control.close();
  }
}

async function tableMapping(path: string, modelDir: string | undefined): Promise<Mapping> {
  const bySid = new Map<string, string[]>();
  let sizes: number[] = [];
  const lines = (await readFile(path, 'utf8')).split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let row: { id?: unknown; codes?: unknown };
    try {
      row = JSON.parse(text);
    } catch (err) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${i + 1}: not JSON (${(err as Error).message})`, { field: 'items' });
    }
    const codes = row.codes;
    if (typeof row.id !== 'string' || !Array.isArray(codes) || !codes.every((c) => Number.isInteger(c) && c >= 0)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${i + 1}: expected {"id": "...", "codes": [...]} (sidx encode JSONL)`, { field: 'items' });
    }
    const key = codes.join('-');
    const list = bySid.get(key);
    if (list) list.push(row.id);
    else bySid.set(key, [row.id]);
    codes.forEach((c: number, l: number) => {
      sizes[l] = Math.max(sizes[l] ?? 0, c + 1);
    });
  });
  let model = path;
  if (modelDir !== undefined) {
    const manifest = (await loadBundle(resolve(modelDir))).manifest;
    sizes = manifest.codebookSizes;
    model = manifest.id;
  }
  return {
    model,
    codebookSizes: sizes,
    lookup: (codes, limit) => (bySid.get(sidToText(codes)) ?? []).slice(0, limit),
    close: async () => {},
  };
}

export async function evalBeamsCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    beams: { type: 'string' }, truth: { type: 'string' }, k: { type: 'string' }, 'data-dir': { type: 'string' },
    model: { type: 'string' }, items: { type: 'string' }, out: { type: 'string' },
  }, evalBeamsUsage);
  if (values.help) {
    console.log(evalBeamsUsage);
    return 0;
  }
  if (values.beams === undefined) throw new UsageError(`--beams is required\n\n${evalBeamsUsage}`);
  if (values.items !== undefined && values['data-dir'] !== undefined) throw new UsageError('give --data-dir or --items, not both');
  const ks = (values.k ?? '20,100,500,1000').split(',').map((s) => Number(s.trim()));
  if (ks.some((k) => !Number.isInteger(k) || k < 1)) throw new UsageError(`--k must be a comma-separated list of positive integers, got ${JSON.stringify(values.k)}`);
  const mapping = values.items !== undefined
    ? await tableMapping(resolve(values.items), values.model)
    : await catalogMapping(resolve(values['data-dir'] ?? './data'), values.model);
  try {
    const result = await beamHitRate(resolve(values.beams), values.truth === undefined ? undefined : resolve(values.truth), ks, mapping.codebookSizes, mapping.lookup);
    const report = { beams: values.beams, truth: values.truth ?? null, model: mapping.model, ...result };
    if (values.out !== undefined) await writeFile(resolve(values.out), `${JSON.stringify(report, null, 2)}\n`);
    const header = ks.map((k) => `HR@${k}`);
    console.log(`| ${header.join(' | ')} | rows | SIDs | invalid SIDs | SIDs without items | mean item slots |`);
    console.log(`|${header.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|`);
    console.log(`| ${ks.map((k) => result.hr[String(k)]!.toFixed(4)).join(' | ')} | ${result.rows} | ${result.sids} | `
      + `${result.invalidSids} | ${result.emptySids} | ${result.meanItems.toFixed(1)} |`);
    if (result.rowsWithoutTruth > 0) console.error(`sidx eval-beams: ${result.rowsWithoutTruth} row(s) with an empty truth were left out`);
    return 0;
  } finally {
    await mapping.close();
  }
}
