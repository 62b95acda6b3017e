/**
 * A labelled Prometheus histogram for the per-request observations (a retrieve makes about a dozen). prom-client's
 * `observe` allocates a closure and a pair, validates and sorts the label names into a hash, and keys its buckets by
 * their bounds as object properties (a number-to-string conversion each call); here a series is found by its label
 * values in a Map and its bucket by a scan of the bounds. The registry exposes it in prom-client's own format: the
 * same lines, in the same order, as a prom-client Histogram given the same observations (test/service/fast-histogram.test.ts).
 */
import type { Registry } from 'prom-client';

/** One labelled series: a caller that observes the same labels often keeps it (`FastHistogram.series`). */
export class HistogramSeries {
  /** counts[b]: observations in (bounds[b - 1], bounds[b]]; counts[bounds.length]: above the last bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly labels: Readonly<Record<string, string>>, readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let b = 0;
    while (b < bounds.length && value > bounds[b]!) b++;
    this.counts[b]!++;
    this.sum += value;
    this.count++;
  }
}

interface ValuePair {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  /** prom-client's buckets carry null (no exemplars); kept so that getMetricsAsJSON matches it. */
  exemplar?: null;
}

export interface FastHistogramConfig<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  buckets: readonly number[];
  registers: Registry[];
}

export class FastHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly L[];
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, HistogramSeries>();

  constructor(config: FastHistogramConfig<L>) {
    this.name = config.name;
    this.help = config.help;
    this.#labelNames = config.labelNames;
    this.#bounds = Float64Array.from(config.buckets);
    for (let b = 1; b < this.#bounds.length; b++) {
      if (!(this.#bounds[b]! > this.#bounds[b - 1]!)) throw new Error(`${config.name}: buckets must increase`);
    }
    for (const registry of config.registers) registry.registerMetric(this as never);
  }

  observe(labels: Readonly<Record<L, string>>, value: number): void {
    this.series(labels).observe(value);
  }

  /** The series of these label values (created empty on first use), to observe without finding it each time. */
  series(labels: Readonly<Record<L, string>>): HistogramSeries {
    let key = '';
    for (const name of this.#labelNames) key += `${labels[name]}\u0000`;
    return this.#series.get(key) ?? this.#addSeries(key, labels);
  }

  #addSeries(key: string, labels: Readonly<Record<L, string>>): HistogramSeries {
    const own: Record<string, string> = {};
    for (const name of this.#labelNames) {
      const v = labels[name];
      if (typeof v !== 'string') throw new Error(`${this.name}: label "${name}" must be a string, got ${typeof v}`);
      own[name] = v;
    }
    const series = new HistogramSeries(own, this.#bounds);
    this.#series.set(key, series);
    return series;
  }

  /** What prom-client's Registry formats: per series its cumulative buckets, +Inf, _sum and _count. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const values: ValuePair[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      if (s.count === 0) continue; // reset, not observed since (prom-client drops such a series)
      let acc = 0;
      this.#bounds.forEach((le, b) => {
        acc += s.counts[b]!;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** prom-client's `get()` shape (Registry.getMetricsAsJSON): each value's labels with its series' merged in. */
  async get(): Promise<{ name: string; help: string; type: string; values: ValuePair[]; aggregator: string }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, ...v }) => ({ ...v, labels: { ...v.labels, ...sharedLabels } })) };
  }

  /** Empties every series; one is exposed again once observed (the handles callers keep stay valid). */
  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
