/**
 * The coarse quantizer and list sizes of a trained, filled "IVF<nlist>,Flat" VectorIndex, read back from FAISS's
 * own file format (faiss/impl/index_write.cpp, FAISS 1.7): IndexIDMap2 ("IxM2") around IndexIVFFlat ("IwFl"),
 * whose quantizer is an IndexFlat ("IxFI" inner product, "IxF2" L2) and whose inverted lists are "ilar" ("full":
 * one size per list; "sprs": (list, size) pairs). `sidx eval` counts the vectors an IVF search scores from them
 * instead of asking FAISS for k = n results per query.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VectorIndex } from '../vector/vector-index.ts';

export interface IvfLayout {
  /** nlist × dim coarse centroids, in list order. */
  centroids: Float32Array;
  /** Vectors held by each list. */
  sizes: Float64Array;
}

/** header: d i32, ntotal i64, two i64 fields, is_trained u8, metric_type i32 (+ metric_arg f32 when > 1). */
const HEADER_BYTES = 4 + 8 + 8 + 8 + 1 + 4;

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  fourcc(...expected: string[]): string {
    const tag = this.buf.toString('latin1', this.offset, this.offset + 4);
    if (!expected.includes(tag)) throw new Error(`IVF layout: expected ${expected.join(' or ')} at byte ${this.offset}, found ${JSON.stringify(tag)}`);
    this.offset += 4;
    return tag;
  }
  header(): void {
    const metric = this.buf.readInt32LE(this.offset + HEADER_BYTES - 4);
    this.offset += HEADER_BYTES + (metric > 1 ? 4 : 0);
  }
  u8(): number {
    return this.buf.readUInt8(this.offset++);
  }
  u64(): number {
    const v = Number(this.buf.readBigUInt64LE(this.offset));
    this.offset += 8;
    return v;
  }
}

export async function ivfLayout(index: VectorIndex): Promise<IvfLayout> {
  const dir = mkdtempSync(join(tmpdir(), 'sidx-ivf-'));
  try {
    const path = join(dir, 'ivf.faiss');
    await index.write(path);
    const r = new Reader(readFileSync(path));
    r.fourcc('IxM2');
    r.header();
    r.fourcc('IwFl');
    r.header();
    const nlist = r.u64();
    r.u64(); // nprobe
    r.fourcc('IxFI', 'IxF2');
    r.header();
    const floats = r.u64();
    if (floats !== nlist * index.dim) throw new Error(`IVF layout: ${floats} centroid floats for ${nlist} lists of ${index.dim}`);
    const centroids = new Float32Array(floats);
    for (let i = 0; i < floats; i++) centroids[i] = r.buf.readFloatLE(r.offset + 4 * i);
    r.offset += 4 * floats;
    const directMap = r.u8();
    if (directMap > 1) throw new Error(`IVF layout: unsupported direct map type ${directMap}`);
    const mapped = r.u64();
    r.offset += 8 * mapped;
    r.fourcc('ilar');
    if (r.u64() !== nlist) throw new Error('IVF layout: inverted lists do not match nlist');
    r.u64(); // code size
    const sizes = new Float64Array(nlist);
    if (r.fourcc('full', 'sprs') === 'full') {
      if (r.u64() !== nlist) throw new Error('IVF layout: list sizes do not match nlist');
      for (let l = 0; l < nlist; l++) sizes[l] = r.u64();
    } else {
      const pairs = r.u64() / 2;
      for (let i = 0; i < pairs; i++) {
        const list = r.u64();
        sizes[list] = r.u64();
      }
    }
    return { centroids, sizes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
