/**
 * Turns request embeddings (JSON number arrays or base64 little-endian float32) into one flat Float32Array,
 * rejecting wrong dimensions, NaN/Infinity (including numbers beyond float32's range), norms above
 * limits.maxVectorNorm and malformed base64, each with the offending field named.
 */
import { SidxError } from '../errors.ts';
import { checkNorm } from '../service/vector-norm.ts';
import type { EmbeddingInput } from './schemas/common.ts';


export function decodeEmbeddings(inputs: readonly EmbeddingInput[], dim: number, maxNorm: number, field: (i: number) => string): Float32Array {
  const out = new Float32Array(inputs.length * dim);
  for (let i = 0; i < inputs.length; i++) decodeInto(inputs[i]!, dim, maxNorm, field(i), out, i * dim);
  return out;
}

export function decodeEmbedding(input: EmbeddingInput, dim: number, maxNorm: number, field: string): Float32Array {
  const out = new Float32Array(dim);
  decodeInto(input, dim, maxNorm, field, out, 0);
  return out;
}

function decodeInto(input: EmbeddingInput, dim: number, maxNorm: number, field: string, out: Float32Array, offset: number): void {
  if (typeof input === 'string') {
    // Node's decoder skips characters outside the alphabet (and takes the URL-safe one too): only a string that is
    // exactly the canonical encoding of what it decodes to is valid. Cheaper than a regular expression over it.
    const bytes = Buffer.from(input, 'base64');
    if (input.length % 4 !== 0 || bytes.toString('base64') !== input) {
      throw new SidxError('SIDX_ERR_BASE64', `${field} is not valid base64`, { field });
    }
    if (bytes.length !== dim * 4) {
      throw new SidxError('SIDX_ERR_DIMENSION', `${field} decodes to ${bytes.length / 4} floats, expected ${dim}`, { field });
    }
    // Little-endian float32 bytes into the output's own bytes (the service runs on little-endian hosts only).
    new Uint8Array(out.buffer, out.byteOffset + offset * 4, dim * 4).set(bytes);
  } else {
    if (input.length !== dim) {
      throw new SidxError('SIDX_ERR_DIMENSION', `${field} has ${input.length} values, expected ${dim}`, { field });
    }
    out.set(input, offset);
  }
  for (let j = 0; j < dim; j++) {
    if (!Number.isFinite(out[offset + j]!)) {
      throw new SidxError('SIDX_ERR_NOT_FINITE', `${field}[${j}] is not a finite float32`, { field: `${field}[${j}]` });
    }
  }
  checkNorm(out, offset, dim, maxNorm, field);
}
