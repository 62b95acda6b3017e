/**
 * Turns request embeddings (JSON number arrays or base64 little-endian float32) into one flat Float32Array,
 * rejecting wrong dimensions, NaN/Infinity (including numbers beyond float32's range), norms above
 * limits.maxVectorNorm and malformed base64, each with the offending field named.
 */
import { base64ByteLength } from '../base64.ts';
import { SidxError } from '../errors.ts';
import { checkFiniteAndNorm } from '../service/vector-norm.ts';
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
    if (!decodeCanonicalInto(input, out, offset, dim)) checkBase64Apart(input, dim, field);
  } else {
    if (input.length !== dim) {
      throw new SidxError('SIDX_ERR_DIMENSION', `${field} has ${input.length} values, expected ${dim}`, { field });
    }
    out.set(input, offset);
  }
  checkFiniteAndNorm(out, offset, dim, maxNorm, field);
}

/** The value of a standard-alphabet base64 character, or -1. */
function sextet(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  return c === 0x2b ? 62 : c === 0x2f ? 63 : -1;
}

/**
 * Decodes `input` straight into out's bytes (little-endian float32: the service runs on little-endian hosts only)
 * when it is the canonical standard base64 of exactly dim floats; false otherwise (out may then hold garbage).
 * Node's decoder skips characters outside the alphabet, stops at a '=' and takes the URL-safe alphabet too, so a
 * canonical string is one that decodes to every byte its length promises, holds no '-' or '_', and leaves the bits
 * past its last byte zero.
 */
function decodeCanonicalInto(input: string, out: Float32Array, offset: number, dim: number): boolean {
  const bytes = base64ByteLength(input);
  if (bytes !== dim * 4) return false;
  const len = input.length;
  const pads = (len / 4) * 3 - bytes;
  const written = Buffer.from(out.buffer, out.byteOffset + offset * 4, bytes).write(input, 'base64');
  if (written !== bytes || input.indexOf('-') >= 0 || input.indexOf('_') >= 0) return false;
  return pads === 0 || (sextet(input.charCodeAt(len - pads - 1)) & (pads === 1 ? 0b11 : 0b1111)) === 0;
}

/** Throws the error a string that is not the canonical base64 of dim floats gets: malformed, or the wrong size. */
function checkBase64Apart(input: string, dim: number, field: string): never {
  const bytes = Buffer.from(input, 'base64');
  if (input.length % 4 !== 0 || bytes.toString('base64') !== input) {
    throw new SidxError('SIDX_ERR_BASE64', `${field} is not valid base64`, { field });
  }
  if (bytes.length % 4 !== 0) {
    throw new SidxError('SIDX_ERR_DIMENSION', `${field}: base64 decodes to ${bytes.length} bytes, not a multiple of 4 (float32); expected ${dim * 4} bytes (${dim} floats)`, { field });
  }
  throw new SidxError('SIDX_ERR_DIMENSION', `${field} decodes to ${bytes.length / 4} floats, expected ${dim}`, { field });
}
