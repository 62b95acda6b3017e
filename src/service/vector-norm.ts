/**
 * The bound on embedding norms (`limits.maxVectorNorm`): every embedding the service takes in (upsert, retrieve,
 * encode, `sidx index`) is checked at the edge that can name it. Inner products and squared distances of vectors
 * under the bound stay far inside float32's range (norm 1e4: scores up to 4e8), so no score overflows to
 * Infinity/NaN; and one item with a huge norm cannot become every inner-product query's top hit.
 */
import { SidxError } from '../errors.ts';
import { firstNonFinite } from '../finite.ts';

/** L2 norm of `dim` floats at `offset` (float64 accumulation: float32 squares may overflow float32). */
export function l2Norm(vectors: Float32Array, offset: number, dim: number): number {
  let sum = 0;
  for (let j = offset; j < offset + dim; j++) sum += vectors[j]! * vectors[j]!;
  return Math.sqrt(sum);
}

const isAbove = (norm: number, maxNorm: number) => maxNorm > 0 && norm > maxNorm;

/** The vector's L2 norm when it is above `maxNorm` (0: no bound), else undefined: a caller names the vector only then. */
export function normAbove(vectors: Float32Array, offset: number, dim: number, maxNorm: number): number | undefined {
  if (maxNorm <= 0) return undefined;
  const norm = l2Norm(vectors, offset, dim);
  return isAbove(norm, maxNorm) ? norm : undefined;
}

/** Why a vector of L2 norm `norm`, above `maxNorm`, is refused; `what` names it. */
export function normMessage(norm: number, maxNorm: number, what: string): string {
  return `${what} has L2 norm ${norm.toPrecision(4)}, above limits.maxVectorNorm (${maxNorm})`;
}


/**
 * checkNorm for values not yet known to be finite, in one pass: the float64 sum of squares of float32 values is
 * finite exactly when every value is (it cannot overflow), so the values are searched only when it is not.
 */
export function checkFiniteAndNorm(vectors: Float32Array, offset: number, dim: number, maxNorm: number, field: string): void {
  const norm = l2Norm(vectors, offset, dim);
  if (!Number.isFinite(norm)) {
    const j = firstNonFinite(vectors, offset, offset + dim) - offset;
    throw new SidxError('SIDX_ERR_NOT_FINITE', `${field}[${j}] is not a finite float32`, { field: `${field}[${j}]` });
  }
  if (isAbove(norm, maxNorm)) throw new SidxError('SIDX_ERR_NORM_TOO_LARGE', normMessage(norm, maxNorm, field), { field });
}

/** Throws SIDX_ERR_NORM_TOO_LARGE naming `field` when the vector's norm exceeds `maxNorm`. Values must be finite. */
export function checkNorm(vectors: Float32Array, offset: number, dim: number, maxNorm: number, field: string): void {
  const norm = normAbove(vectors, offset, dim, maxNorm);
  if (norm !== undefined) throw new SidxError('SIDX_ERR_NORM_TOO_LARGE', normMessage(norm, maxNorm, field), { field });
}
