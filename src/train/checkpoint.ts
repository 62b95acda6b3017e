/**
 * Training checkpoints: one binary file holding a JSON header and float32 arrays, written atomically (temporary
 * file + rename), so a crash mid-write leaves the previous checkpoint intact.
 *
 * Layout (little-endian):
 *   bytes 0..7    magic "SIDXCKP1"
 *   bytes 8..11   uint32 header length H
 *   bytes 12..    H bytes of UTF-8 JSON: { version, header (caller's), arrays: [{ name, length }] }
 *   then, from the next multiple of 4, the arrays' float32 values back to back in the listed order.
 * The caller's header carries everything that is not a float array (configuration, epoch, step counts).
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { SidxError } from '../errors.ts';

const MAGIC = 'SIDXCKP1';
const VERSION = 1;

export interface Checkpoint<H> {
  header: H;
  arrays: Map<string, Float32Array>;
}

function invalid(path: string, msg: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: not a valid checkpoint (${msg})`, { field: 'resume' });
}

export function encodeCheckpoint<H>(header: H, arrays: ReadonlyMap<string, Float32Array>): Uint8Array {
  const list = [...arrays].map(([name, a]) => ({ name, length: a.length }));
  const json = Buffer.from(JSON.stringify({ version: VERSION, header, arrays: list }), 'utf8');
  const dataStart = Math.ceil((12 + json.length) / 4) * 4;
  const total = dataStart + list.reduce((s, a) => s + a.length * 4, 0);
  const out = new Uint8Array(total);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  let at = dataStart;
  for (const a of arrays.values()) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return out;
}

export function decodeCheckpoint<H>(bytes: Uint8Array, path = '<buffer>'): Checkpoint<H> {
  if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== MAGIC) throw invalid(path, 'bad magic');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + headerLength > bytes.length) throw invalid(path, 'truncated header');
  let parsed: { version: number; header: H; arrays: { name: string; length: number }[] };
  try {
    parsed = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerLength)).toString('utf8'));
  } catch (err) {
    throw invalid(path, `header is not JSON: ${(err as Error).message}`);
  }
  if (parsed.version !== VERSION) throw invalid(path, `version ${parsed.version}, expected ${VERSION}`);
  let at = Math.ceil((12 + headerLength) / 4) * 4;
  const arrays = new Map<string, Float32Array>();
  for (const { name, length } of parsed.arrays) {
    if (!Number.isInteger(length) || length < 0 || at + length * 4 > bytes.length) throw invalid(path, `array ${name} is truncated`);
    const a = new Float32Array(length);
    new Uint8Array(a.buffer).set(bytes.subarray(at, at + length * 4));
    arrays.set(name, a);
    at += length * 4;
  }
  if (at !== bytes.length) throw invalid(path, `${bytes.length - at} trailing bytes`);
  return { header: parsed.header, arrays };
}

export async function writeCheckpoint<H>(path: string, header: H, arrays: ReadonlyMap<string, Float32Array>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, encodeCheckpoint(header, arrays));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function readCheckpoint<H>(path: string): Promise<Checkpoint<H>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: cannot read checkpoint (${(err as Error).message})`,
      { field: 'resume', cause: err });
  }
  return decodeCheckpoint<H>(bytes, path);
}
