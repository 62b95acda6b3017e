/**
 * The rerank's scorer: exact scores of a query against a subset of the catalog's items, read in place from their
 * LMDB records (store/catalog-vectors.ts) with the kernels of vector/kernels.ts. It replaced a FAISS flat index that
 * held a second copy of every vector in memory and a third in its checkpoint file (docs/benchmarks.md, "Each vector
 * stored once"). Scores are FAISS's: inner product for `ip`, squared L2 for `l2`.
 */
import { SidxError } from '../errors.ts';
import type { Catalog } from '../store/catalog.ts';
import { innerProduct, squaredL2 } from '../vector/kernels.ts';
import type { Metric } from '../vector/vector-index.ts';

/** What orderCandidates needs: FAISS's VectorIndex has the same method. */
export interface SubsetScorer {
  /** One score per key, NaN where the key holds no item. */
  scoreSubset(query: Float32Array, keys: BigInt64Array): Float32Array;
}

export class CatalogScorer implements SubsetScorer {
  #catalog: Catalog;
  readonly dim: number;
  readonly metric: Metric;

  constructor(catalog: Catalog, dim: number, metric: Metric) {
    this.#catalog = catalog;
    this.dim = dim;
    this.metric = metric;
  }

  scoreSubset(query: Float32Array, keys: BigInt64Array): Float32Array {
    const dim = this.dim;
    if (!(query instanceof Float32Array) || query.length !== dim) {
      throw new SidxError('SIDX_ERR_DIMENSION', `query has ${query.length} floats, the catalog holds ${dim}-d vectors`, { field: 'embedding' });
    }
    const scores = new Float32Array(keys.length).fill(Number.NaN);
    const kernel = this.metric === 'ip' ? innerProduct : squaredL2;
    this.#catalog.vectors.forEach(keys, dim, (i, data, offset) => {
      scores[i] = kernel(query, data, offset, dim);
    });
    return scores;
  }
}
