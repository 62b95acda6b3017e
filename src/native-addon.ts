/**
 * Where the project's N-API addon (native/, FAISS and the native beam) is built. vector/binding.ts loads it on the
 * threads that score vectors; the encoder lanes (tokenizer/encoder-session.mjs) load it for the native beam.
 */
import { repoPath } from './paths.ts';

export const addonPath = repoPath('native/build/Release/sidx_faiss.node');
