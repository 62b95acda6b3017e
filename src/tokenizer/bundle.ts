/**
 * Model bundles: `models/<id>/` holding `model.json` (the manifest), `encoder.onnx` and optionally `decoder.onnx`.
 *
 * `loadBundle` validates every manifest field and fails with SidxError SIDX_ERR_MODEL_BUNDLE whose message names
 * the file and whose `field` is the offending key (e.g. "codebookSizes[2]"). `writeBundle` writes each file under
 * a temporary name and renames it into place, ONNX files first and model.json last, so a reader never sees a
 * model.json whose encoder is missing or half written.
 *
 * The bundle digest `sha256` covers the whole bundle: it is the SHA-256 of the text that
 * `sha256sum model.json encoder.onnx [decoder.onnx]` prints, so `cd models/<id> && sha256sum model.json
 * encoder.onnx | sha256sum` reproduces it. `encoderSha256` is the digest of encoder.onnx alone (the SID function).
 *
 * An optional `beam.onnx` (src/numeric/beam-graph.ts: the level-wise beam over code prefixes for `expand: "beam"`)
 * is derived from the encoder's codebooks and is not part of the digest (adding one keeps the model's identity).
 * Its ONNX metadata names the sha256 of the encoder.onnx it was built beside; `loadBundle` refuses a beam.onnx
 * built for another encoder.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import onnxProto from 'onnx-proto';
import { SidxError } from '../errors.ts';
import { BEAM_ENCODER_DIGEST_KEY } from '../numeric/beam-graph.ts';

export type ModelMethod = 'rqkmeans' | 'rqvae' | 'vqvae';

export interface TrainingInfo {
  /** Where the training data came from, e.g. "shared/data/scientific/text_emb.npy". */
  source: string;
  /** The command line that produced the bundle. */
  command: string;
  seed: number;
  /** sha256 (hex) of the training data. */
  dataDigest: string;
  [key: string]: unknown;
}

export interface ModelManifest {
  id: string;
  method: ModelMethod;
  /** Dimension of the input embeddings. */
  inputDim: number;
  normalize: 'l2' | 'none';
  levels: number;
  /** Codebook size per level; length === levels. */
  codebookSizes: number[];
  /** Dimension the codebooks live in (inputDim for rqkmeans, the encoder MLP output for rqvae/vqvae). */
  latentDim: number;
  /** Similarity used for retrieval scoring over this model's embeddings. */
  metric: 'ip' | 'l2';
  /** Top-M codes per level that encoder.onnx reports; <= min(codebookSizes). */
  topM: number;
  /** ONNX opset of encoder.onnx (and decoder.onnx). */
  opset: number;
  /**
   * How expand "beam" scores a prefix with codeword sum c: w ||c||^2 - 2 q.c, w in [0, 1] (1: the squared distance up
   * to ||q||^2, 0: the partial inner product). Absent: 0 for ip RQ-KMeans bundles, 1 otherwise (retrieve-steps.ts).
   */
  beamNormWeight?: number;
  training?: TrainingInfo;
  /** SID quality and retrieval metrics recorded at training time. */
  metrics?: Record<string, unknown>;
}

export interface ModelBundle {
  dir: string;
  manifest: ModelManifest;
  encoderPath: string;
  decoderPath?: string;
  /** beam.onnx, when the bundle has one (see module doc). */
  beamPath?: string;
  /** Digest of the whole bundle (see module doc). */
  sha256: string;
  /** Digest of encoder.onnx alone. */
  encoderSha256: string;
}

export const MANIFEST_FILE = 'model.json';
export const ENCODER_FILE = 'encoder.onnx';
export const DECODER_FILE = 'decoder.onnx';
export const BEAM_FILE = 'beam.onnx';

const KEYS = new Set(['id', 'method', 'inputDim', 'normalize', 'levels', 'codebookSizes', 'latentDim', 'metric',
  'topM', 'opset', 'beamNormWeight', 'training', 'metrics']);
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MAX_CODEBOOK = 2 ** 31 - 1; // codes travel as Int32

function bundleError(file: string, field: string | undefined, msg: string, cause?: unknown): SidxError {
  return new SidxError('SIDX_ERR_MODEL_BUNDLE', `${file}: ${field === undefined ? '' : `${field} `}${msg}`,
    { field, cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks a parsed manifest; returns it typed (a copy without shared references) or throws SIDX_ERR_MODEL_BUNDLE
 * naming `file` and the field.
 */
export function validateManifest(value: unknown, file = MANIFEST_FILE): ModelManifest {
  if (!isObject(value)) throw bundleError(file, undefined, 'must be a JSON object');
  const v = value;
  const err = (field: string, msg: string) => bundleError(file, field, msg);
  for (const key of Object.keys(v)) if (!KEYS.has(key)) throw err(key, 'is not a known manifest field');
  const posInt = (field: string, x: unknown, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > max) {
      throw err(field, `must be an integer in [1, ${max}], got ${JSON.stringify(x)}`);
    }
    return x;
  };
  const oneOf = <T extends string>(field: string, x: unknown, allowed: readonly T[]): T => {
    if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x)) {
      throw err(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(x)}`);
    }
    return x as T;
  };

  if (typeof v.id !== 'string' || !ID_RE.test(v.id)) {
    throw err('id', `must match ${ID_RE} (letters, digits, . _ -), got ${JSON.stringify(v.id)}`);
  }
  const method = oneOf('method', v.method, ['rqkmeans', 'rqvae', 'vqvae'] as const);
  const inputDim = posInt('inputDim', v.inputDim);
  const normalize = oneOf('normalize', v.normalize, ['l2', 'none'] as const);
  const levels = posInt('levels', v.levels, 64);
  if (!Array.isArray(v.codebookSizes)) throw err('codebookSizes', 'must be an array of integers');
  if (v.codebookSizes.length !== levels) {
    throw err('codebookSizes', `has ${v.codebookSizes.length} entries, levels is ${levels}`);
  }
  const codebookSizes = v.codebookSizes.map((k, i) => posInt(`codebookSizes[${i}]`, k, MAX_CODEBOOK));
  const latentDim = posInt('latentDim', v.latentDim);
  if (method === 'rqkmeans' && latentDim !== inputDim) {
    throw err('latentDim', `must equal inputDim (${inputDim}) for method "rqkmeans", got ${latentDim}`);
  }
  const metric = oneOf('metric', v.metric, ['ip', 'l2'] as const);
  const topM = posInt('topM', v.topM, Math.min(...codebookSizes));
  const opset = posInt('opset', v.opset, 1000);
  if (opset < 13) throw err('opset', `must be >= 13, got ${opset}`);

  const manifest: ModelManifest = {
    id: v.id, method, inputDim, normalize, levels, codebookSizes, latentDim, metric, topM, opset,
  };
  if (v.beamNormWeight !== undefined) {
    if (typeof v.beamNormWeight !== 'number' || !(v.beamNormWeight >= 0 && v.beamNormWeight <= 1)) {
      throw err('beamNormWeight', `must be a number in [0, 1], got ${JSON.stringify(v.beamNormWeight)}`);
    }
    manifest.beamNormWeight = v.beamNormWeight;
  }
  if (v.training !== undefined) {
    const t = v.training;
    if (!isObject(t)) throw err('training', 'must be an object');
    for (const key of ['source', 'command', 'dataDigest'] as const) {
      if (typeof t[key] !== 'string' || (t[key] as string).length === 0) {
        throw err(`training.${key}`, `must be a non-empty string, got ${JSON.stringify(t[key])}`);
      }
    }
    if (typeof t.seed !== 'number' || !Number.isSafeInteger(t.seed)) {
      throw err('training.seed', `must be an integer, got ${JSON.stringify(t.seed)}`);
    }
    if (!/^[0-9a-f]{64}$/.test(t.dataDigest as string)) {
      throw err('training.dataDigest', `must be a lowercase hex sha256, got ${JSON.stringify(t.dataDigest)}`);
    }
    manifest.training = structuredClone(t) as TrainingInfo;
  }
  if (v.metrics !== undefined) {
    if (!isObject(v.metrics)) throw err('metrics', 'must be an object');
    manifest.metrics = structuredClone(v.metrics);
  }
  return manifest;
}

function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function bundleDigest(files: readonly (readonly [string, string])[]): string {
  return sha256Hex(files.map(([name, digest]) => `${digest}  ${name}\n`).join(''));
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Throws unless each bundle file present in `dir` resolves (symlinks followed) to a path inside `root`: a bundle
 * registered over the API must not read files from elsewhere (e.g. model.json -> /etc/passwd).
 */
async function assertFilesInside(dir: string, root: string): Promise<void> {
  const base = await realpath(root);
  for (const name of [MANIFEST_FILE, ENCODER_FILE, DECODER_FILE, BEAM_FILE]) {
    const path = join(dir, name);
    let real: string;
    try {
      real = await realpath(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !(await lstat(path).catch(() => undefined))) continue; // absent (a dangling link is not)
      throw bundleError(path, undefined, `cannot be resolved (${code ?? 'error'})`);
    }
    const rel = relative(base, real);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw bundleError(path, undefined, 'resolves to a file outside the models directory');
    const st = await stat(real);
    if (!st.isFile()) throw bundleError(path, undefined, 'is not a regular file');
  }
}

/**
 * Loads and validates `dir/model.json`, checks that encoder.onnx exists, and digests the bundle. With `root`, every
 * bundle file must resolve inside it (model registration: see assertFilesInside).
 */
export async function loadBundle(dir: string, opts: { root?: string } = {}): Promise<ModelBundle> {
  if (opts.root !== undefined) await assertFilesInside(dir, opts.root);
  const manifestPath = join(dir, MANIFEST_FILE);
  const encoderPath = join(dir, ENCODER_FILE);
  const decoderPath = join(dir, DECODER_FILE);
  let text: Buffer | undefined;
  try {
    text = await readOptional(manifestPath);
  } catch (e) {
    throw bundleError(manifestPath, undefined, `cannot be read (${(e as Error).message})`, e);
  }
  if (text === undefined) throw bundleError(manifestPath, undefined, 'not found');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch (e) {
    // JSON.parse's message quotes the text: never echo a file's bytes (model.json may be anything, e.g. a symlink).
    const what = (e as Error).message.startsWith('Unexpected end') ? 'it ends before the value is complete' : 'a character JSON does not allow';
    throw bundleError(manifestPath, undefined, `is not valid JSON (${what}, ${text.length} bytes)`);
  }
  const manifest = validateManifest(parsed, manifestPath);

  const encoder = await readOptional(encoderPath);
  if (encoder === undefined) throw bundleError(encoderPath, undefined, 'not found (every bundle needs an encoder)');
  if (encoder.length === 0) throw bundleError(encoderPath, undefined, 'is empty');
  const decoder = await readOptional(decoderPath);
  const files: [string, string][] = [[MANIFEST_FILE, sha256Hex(text)], [ENCODER_FILE, sha256Hex(encoder)]];
  if (decoder !== undefined) files.push([DECODER_FILE, sha256Hex(decoder)]);
  const bundle: ModelBundle = { dir, manifest, encoderPath, sha256: bundleDigest(files), encoderSha256: files[1]![1] };
  if (decoder !== undefined) bundle.decoderPath = decoderPath;
  const beamPath = join(dir, BEAM_FILE);
  const beam = await readOptional(beamPath);
  if (beam !== undefined) {
    checkBeam(beamPath, beam, bundle.encoderSha256);
    bundle.beamPath = beamPath;
  }
  return bundle;
}

/** Throws unless `bytes` is an ONNX model whose metadata names the encoder digest `encoderSha256`. */
function checkBeam(path: string, bytes: Buffer, encoderSha256: string): void {
  let recorded: string | undefined;
  try {
    const model = onnxProto.onnx.ModelProto.decode(bytes);
    recorded = (model.metadataProps ?? []).find((p) => p.key === BEAM_ENCODER_DIGEST_KEY)?.value ?? undefined;
  } catch (e) {
    throw bundleError(path, undefined, `is not a readable ONNX model (${(e as Error).message})`, e);
  }
  if (recorded !== encoderSha256) {
    throw bundleError(path, undefined, `was built for encoder sha256 ${recorded ?? '(none recorded)'}, but encoder.onnx `
      + `has ${encoderSha256}: rebuild it with the bundle (sidx train) or delete it`);
  }
}

async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Validates `manifest`, writes the bundle into `dir` (created if needed) and returns it as `loadBundle` sees it.
 * Without `decoderBytes` (`beamBytes`), a decoder.onnx (beam.onnx) left from an earlier bundle in `dir` is removed.
 */
export async function writeBundle(dir: string, manifest: ModelManifest, encoderBytes: Uint8Array,
  decoderBytes?: Uint8Array, beamBytes?: Uint8Array): Promise<ModelBundle> {
  const checked = validateManifest(manifest, join(dir, MANIFEST_FILE));
  if (encoderBytes.length === 0) throw bundleError(join(dir, ENCODER_FILE), undefined, 'encoder bytes are empty');
  await mkdir(dir, { recursive: true });
  const existing = await stat(join(dir, MANIFEST_FILE)).catch(() => undefined);
  // Remove the old manifest first, so a crash mid-way leaves no manifest pointing at mismatched ONNX files.
  if (existing) await rm(join(dir, MANIFEST_FILE), { force: true });
  await writeAtomic(join(dir, ENCODER_FILE), encoderBytes);
  if (decoderBytes !== undefined) await writeAtomic(join(dir, DECODER_FILE), decoderBytes);
  else await rm(join(dir, DECODER_FILE), { force: true });
  if (beamBytes !== undefined) await writeAtomic(join(dir, BEAM_FILE), beamBytes);
  else await rm(join(dir, BEAM_FILE), { force: true });
  await writeAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(checked, null, 2)}\n`);
  return loadBundle(dir);
}
