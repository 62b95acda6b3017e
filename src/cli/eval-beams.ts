/**
 * `sidx eval-beams`: FORGE HR@K of generated SID beams against the items users interacted with
 * (src/eval/beam-hitrate.ts). SIDs map to items through a service data directory's index (LMDB catalog, the
 * model's key space) or through an item -> SID table written by `sidx encode --out FILE.jsonl`.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SidxError } from '../errors.ts';
import { beamHitRate, type BeamHitRateResult, type SidLookup } from '../eval/beam-hitrate.ts';
import { Catalog } from '../store/catalog.ts';
import { ControlPlane } from '../store/control-plane.ts';
import { ALGR_TOKEN_OFFSET, MAX_ALGR_TOKEN_OFFSET, MAX_CODEBOOK_SIZE, sidToText } from '../sid/codec.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';

export const evalBeamsUsage = `Usage: sidx eval-beams --beams FILE.jsonl [--truth FILE.jsonl] [--k 20,100,500,1000]
                       [--data-dir DIR] [--model DIR] [--items FILE.jsonl] [--out FILE.json]
                       [--token-offset 8192] [--decoder-only] [--lenient-answers]

FORGE HR@K of generated beams, scored as al_sid's algr/calc_hr.py does: each --beams line is an ordered list of
SIDs ([12,7,300], "12-7-300" or AL-GR tokens "C12C8199C16684"), or al_sid's generation line
{"_generated_text_": [...], "answer": "id;id"}; the same line of --truth the ids of the items the user went on to
interact with. The SIDs map to items in beam order (repeats kept), truncated to K; HR@K = |set(top K) ∩ truth| /
|truth|, averaged over rows. Invalid SIDs are skipped and counted. Answers as al_sid reads them:
answer.strip().split(";"), parts kept as they are ("x; y" holds " y", "x;y;" holds ""), an empty answer scores 0.

  --data-dir        a service data directory (default ./data): its catalog maps SIDs to item ids
  --model           the bundle whose SIDs these are (default: the data directory's active model)
  --items           instead of --data-dir: the item -> SID table of \`sidx encode --out FILE.jsonl\`
  --k               cut-offs (default 20,100,500,1000)
  --token-offset    AL-GR tokens: level l's token is its code + l x this (default 8192, al_sid's, whatever the
                    codebook sizes: C{lv1}C{lv2+8192}C{lv3+16384})
  --decoder-only    read _generated_new_text_, not _generated_text_ (al_sid's --decoder_only; T5 lines carry both)
  --lenient-answers not al_sid: strip each answer id, drop empty ones, leave rows without ids out
  --out             also write the result as JSON`;

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
      lookup: (codes, limit) => Array.from(catalog.exact(row.version, codes, limit), (key) => catalog.recordOf(key)?.id)
        .filter((x): x is string => x !== undefined),
      close: () => catalog.close(),
    };
  } finally {
    control.close();
  }
}

async function tableMapping(path: string, modelDir: string | undefined): Promise<Mapping> {
  const bySid = new Map<string, string[]>();
  let levels = 0;
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
    if (typeof row.id !== 'string' || !Array.isArray(codes) || codes.length === 0 || !codes.every((c) => Number.isInteger(c) && c >= 0)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${i + 1}: expected {"id": "...", "codes": [...]} (sidx encode JSONL)`, { field: 'items' });
    }
    levels ||= codes.length;
    if (codes.length !== levels) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${i + 1}: ${codes.length} codes, earlier rows have ${levels}`, { field: 'items' });
    }
    const key = codes.join('-');
    const list = bySid.get(key);
    if (list) list.push(row.id);
    else bySid.set(key, [row.id]);
  });
  if (levels === 0) throw new UsageError(`${path} holds no items`);
  // Without --model the codebook sizes are unknown: any code parses, and a SID outside the table holds no item.
  let sizes: number[] = new Array<number>(levels).fill(MAX_CODEBOOK_SIZE);
  let model = path;
  if (modelDir !== undefined) {
    const manifest = (await loadBundle(resolve(modelDir))).manifest;
    if (manifest.codebookSizes.length !== levels) {
      throw new UsageError(`${path} has ${levels} levels, model ${manifest.id} has ${manifest.codebookSizes.length}`);
    }
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

/** The warning for a file whose SIDs mostly do not parse (wrong token offset, wrong model, wrong level count). */
function invalidWarning(result: BeamHitRateResult, beams: string, sizes: readonly number[], tokenOffset: number): string {
  const known = sizes.some((k) => k !== MAX_CODEBOOK_SIZE);
  const first = result.firstInvalid!;
  return `sidx eval-beams: ${result.invalidSids} of ${result.sids} SIDs (${(100 * result.invalidSids / result.sids).toFixed(1)}%) `
    + `are invalid for ${sizes.length} levels${known ? ` of codebook sizes ${sizes.join(',')}` : ''} with AL-GR tokens read as `
    + `code + level x ${tokenOffset}; first at ${beams}:${first.line}: ${JSON.stringify(first.sid)}: ${first.reason}. `
    + `Tokens written with another offset per level need --token-offset N (al_sid's is 8192; 0 for "C12C7C300"); `
    + 'SIDs of another model need --model.';
}

export async function evalBeamsCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    beams: { type: 'string' }, truth: { type: 'string' }, k: { type: 'string' }, 'data-dir': { type: 'string' },
    model: { type: 'string' }, items: { type: 'string' }, out: { type: 'string' }, 'token-offset': { type: 'string' },
    'decoder-only': { type: 'boolean' }, 'lenient-answers': { type: 'boolean' },
  }, evalBeamsUsage);
  if (values.help) {
    console.log(evalBeamsUsage);
    return 0;
  }
  if (values.beams === undefined) throw new UsageError(`--beams is required\n\n${evalBeamsUsage}`);
  if (values.items !== undefined && values['data-dir'] !== undefined) throw new UsageError('give --data-dir or --items, not both');
  const ks = (values.k ?? '20,100,500,1000').split(',').map((s) => Number(s.trim()));
  if (ks.some((k) => !Number.isInteger(k) || k < 1)) throw new UsageError(`--k must be a comma-separated list of positive integers, got ${JSON.stringify(values.k)}`);
  const tokenOffset = intFlag(values['token-offset'], 'token-offset') ?? ALGR_TOKEN_OFFSET;
  if (tokenOffset < 0 || tokenOffset > MAX_ALGR_TOKEN_OFFSET) throw new UsageError(`--token-offset must be in 0..${MAX_ALGR_TOKEN_OFFSET}, got ${tokenOffset}`);
  const decoderOnly = values['decoder-only'] === true;
  const lenientAnswers = values['lenient-answers'] === true;
  const mapping = values.items !== undefined
    ? await tableMapping(resolve(values.items), values.model)
    : await catalogMapping(resolve(values['data-dir'] ?? './data'), values.model);
  try {
    const result = await beamHitRate(resolve(values.beams), values.truth === undefined ? undefined : resolve(values.truth), {
      ks, codebookSizes: mapping.codebookSizes, lookup: mapping.lookup, tokenOffset, decoderOnly, lenientAnswers,
    });
    const report = {
      beams: values.beams, truth: values.truth ?? null, model: mapping.model, tokenOffset, decoderOnly,
      answers: lenientAnswers ? 'lenient' : 'al_sid', ...result,
    };
    if (values.out !== undefined) await writeFile(resolve(values.out), `${JSON.stringify(report, null, 2)}\n`);
    const header = ks.map((k) => `HR@${k}`);
    console.log(`| ${header.join(' | ')} | rows | SIDs | invalid SIDs | SIDs without items | mean item slots |`);
    console.log(`|${header.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|`);
    console.log(`| ${ks.map((k) => result.hr[String(k)]!.toFixed(4)).join(' | ')} | ${result.rows} | ${result.sids} | `
      + `${result.invalidSids} | ${result.emptySids} | ${result.meanItems.toFixed(1)} |`);
    if (result.rowsWithoutTruth > 0) {
      console.error(`sidx eval-beams: ${result.rowsWithoutTruth} row(s) with an empty answer `
        + `${lenientAnswers ? 'were left out (--lenient-answers)' : 'scored 0, as in al_sid (--lenient-answers leaves them out)'}`);
    }
    if (2 * result.invalidSids > result.sids) console.error(invalidWarning(result, values.beams, mapping.codebookSizes, tokenOffset));
    return 0;
  } finally {
    await mapping.close();
  }
}
