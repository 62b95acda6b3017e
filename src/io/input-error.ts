/**
 * The one error shape of the readers in src/io: a SidxError SIDX_ERR_INVALID_INPUT whose message starts with the
 * file (and the 1-based line, where there is one) and whose `field` is `file` or `file:line`.
 */
import { SidxError } from '../errors.ts';

export function inputError(file: string, message: string, line?: number, cause?: unknown): SidxError {
  const where = line === undefined ? file : `${file}:${line}`;
  return new SidxError('SIDX_ERR_INVALID_INPUT', `${where}: ${message}`, { field: where, cause });
}

/** Wraps an fs error (ENOENT, EACCES, ...) as an input error naming the file; SidxErrors pass through. */
export function ioError(file: string, err: unknown): Error {
  if (err instanceof SidxError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return inputError(file, `cannot read (${msg})`, undefined, err);
}
