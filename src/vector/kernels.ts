/**
 * Scalar kernels for the rerank: one query against one stored vector, read in place (`data` from `offset`), no
 * allocation. Sums run in float64 (four accumulators) and are rounded once to float32 by the caller's
 * Float32Array, so a sum beyond float32's range becomes Infinity, as FAISS's float32 sums do.
 */

/** Inner product of query[0..dim) and data[offset..offset+dim). */
export function innerProduct(query: Float32Array, data: Float32Array, offset: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 4 <= dim; j += 4) {
    s0 += query[j]! * data[offset + j]!;
    s1 += query[j + 1]! * data[offset + j + 1]!;
    s2 += query[j + 2]! * data[offset + j + 2]!;
    s3 += query[j + 3]! * data[offset + j + 3]!;
  }
  for (; j < dim; j++) s0 += query[j]! * data[offset + j]!;
  return s0 + s1 + s2 + s3;
}

/** Squared L2 distance between query[0..dim) and data[offset..offset+dim). */
export function squaredL2(query: Float32Array, data: Float32Array, offset: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 4 <= dim; j += 4) {
    const d0 = query[j]! - data[offset + j]!;
    const d1 = query[j + 1]! - data[offset + j + 1]!;
    const d2 = query[j + 2]! - data[offset + j + 2]!;
    const d3 = query[j + 3]! - data[offset + j + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; j < dim; j++) {
    const d = query[j]! - data[offset + j]!;
    s0 += d * d;
  }
  return s0 + s1 + s2 + s3;
}
