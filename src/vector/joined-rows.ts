/**
 * `rows` (each `dim` floats) as one row-major Float32Array: a view, without a copy, when they lie back to back in one
 * buffer (as the views of one decoded request or one input file do), else a copy. The upsert path hands its batch
 * down as such views; the caller must not change the rows while it uses the result.
 */
export function joinedRows(rows: readonly Float32Array[], dim: number): Float32Array {
  const first = rows[0];
  const adjacent = first !== undefined
    && rows.every((r, i) => r.buffer === first.buffer && r.length === dim && r.byteOffset === first.byteOffset + i * dim * 4);
  if (adjacent) return new Float32Array(first.buffer, first.byteOffset, rows.length * dim);
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r, i * dim));
  return out;
}
