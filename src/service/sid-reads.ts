/**
 * The catalog's SID trie for generative recommenders: the codes that extend given prefixes towards an item
 * (`next`), and every occupied SID of a model, or the SIDs occupied and emptied since a seq (`trie`).
 *
 * A model has a key space when it is served or is the target of a running re-index; any other registered model
 * is refused with SIDX_ERR_NO_KEY_SPACE. Every answer is read synchronously from the catalog's in-memory tries
 * (store/sid-occupancy.ts), so it reflects one committed state: the seq it reports.
 */
import { SidxError } from '../errors.ts';
import { codeBytesFor, encodeNext, type CodeBytes } from '../sid/next-format.ts';
import { encodeTrie } from '../sid/trie-format.ts';
import type { Catalog } from '../store/catalog.ts';
import type { NextCodes } from '../sid/sid-trie.ts';
import type { ControlPlane } from '../store/control-plane.ts';
import type { ActiveModel } from './model-space.ts';

export interface SidReadsHost {
  catalog: Catalog;
  control: ControlPlane;
  served: () => ActiveModel;
  target: () => ActiveModel | null;
}

export interface NextOutput {
  model: string;
  levels: number;
  /** Bytes per code in the binary answer: 2 when every codebook size is at most 65,536, else 4. */
  codeBytes: CodeBytes;
  /** Read-only and shared between answers while the prefix's node is unchanged (SidTrie.next). */
  next: ReadonlyArray<Readonly<NextCodes>>;
}

const NO_CODES: NextCodes = Object.freeze({ codes: new Int32Array(0), counts: new Uint32Array(0) });

export interface TrieOutput {
  model: string;
  /** The model's key-space version (the first part of the ETag). */
  version: number;
  levels: number;
  seq: bigint;
  kind: 'full' | 'delta';
  /** 0n for a full snapshot. */
  since: bigint;
  /** Flat n × L codes in lexicographic order: every occupied SID (full) or those occupied since (delta). */
  added: Uint16Array;
  removed: Uint16Array;
}

/** A delta's starting point: a seq, optionally with the model version it was read from ("<version>.<seq>"). */
export interface SinceRef {
  seq: bigint;
  version?: number;
}

export class SidReads {
  #h: SidReadsHost;

  constructor(host: SidReadsHost) {
    this.#h = host;
  }

  /** The model named `id` (default: the served one), if it has a key space. */
  model(id?: string, field = 'model'): ActiveModel {
    const served = this.#h.served();
    if (id === undefined || id === served.id) return served;
    const target = this.#h.target();
    if (target && target.id === id) return target;
    if (this.#h.control.getModel(id)) {
      throw new SidxError('SIDX_ERR_NO_KEY_SPACE', `model ${JSON.stringify(id)} is neither served nor being re-indexed into: it has no SIDs in the catalog`, { field });
    }
    throw new SidxError('SIDX_ERR_UNKNOWN_MODEL', `model ${JSON.stringify(id)} is not registered`, { field });
  }

  /** For each prefix, its occupied next codes with item counts; validated against the model's codebooks first. */
  next(prefixes: readonly (readonly number[])[], modelId?: string): NextOutput {
    const model = this.model(modelId);
    const { levels, codebookSizes } = model;
    prefixes.forEach((p, i) => {
      if (p.length > levels) {
        throw new SidxError('SIDX_ERR_INVALID_INPUT', `prefixes[${i}] has ${p.length} codes, the model has ${levels} levels`, { field: `prefixes[${i}]` });
      }
      p.forEach((code, l) => {
        if (!Number.isInteger(code) || code < 0 || code >= codebookSizes[l]!) {
          throw new SidxError('SIDX_ERR_INVALID_INPUT', `prefixes[${i}][${l}] = ${code} is outside codebook ${l} (size ${codebookSizes[l]})`, { field: `prefixes[${i}][${l}]` });
        }
      });
    });
    const { trie } = this.#h.catalog.sids.trie(model.version);
    return { model: model.id, levels, codeBytes: codeBytesFor(codebookSizes), next: prefixes.map((p) => trie?.next(p) ?? NO_CODES) };
  }

  /** The SIDN binary form of a `next` answer (layout in src/sid/next-format.ts and docs/sid-trie.md). */
  nextBinary(out: NextOutput): Buffer {
    return encodeNext(out);
  }

  /** The ETag parts of the model's trie now (cheap: no SIDs read): the seq the tries reflect, as their answers carry. */
  tag(modelId?: string): { version: number; seq: bigint } {
    const model = this.model(modelId);
    return { version: model.version, seq: this.#h.catalog.sids.seq() };
  }

  /**
   * Every occupied SID of the model, or with `since` the SIDs occupied and emptied after it when the catalog can
   * still tell: the log covers it, it is not in the future, it names this model's version (when it names one), and,
   * for the served model asked for by default, it was read after that model became served. Otherwise a full snapshot.
   */
  trie(modelId?: string, since?: SinceRef): TrieOutput {
    const model = this.model(modelId);
    const { catalog } = this.#h;
    const base = { model: model.id, version: model.version, levels: model.levels };
    if (since && this.#deltaPossible(model, modelId === undefined, since)) {
      const { delta, seq } = catalog.sids.delta(model.version, model.levels, since.seq);
      if (delta) return { ...base, seq, kind: 'delta', since: since.seq, added: Uint16Array.from(delta.added), removed: Uint16Array.from(delta.removed) };
    }
    const { trie, seq } = catalog.sids.trie(model.version);
    const added = new Uint16Array((trie?.size ?? 0) * model.levels);
    trie?.writeSids(added);
    return { ...base, seq, kind: 'full', since: 0n, added, removed: new Uint16Array(0) };
  }

  /** The SIDT binary form of a trie answer (layout in src/sid/trie-format.ts and docs/sid-trie.md). */
  binary(t: TrieOutput): Buffer {
    return encodeTrie(t);
  }

  #deltaPossible(model: ActiveModel, byDefault: boolean, since: SinceRef): boolean {
    if (since.version !== undefined && since.version !== model.version) return false;
    // A bare seq asked of "the served model" may come from the model served before a swap.
    if (byDefault && since.version === undefined && since.seq < this.#h.catalog.spaces.servedFromSeq) return false;
    return true;
  }
}
