import type { Metric, Registry, RegistryContentType } from "prom-client";

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket, not cumulative; the last one is above every bound (`+Inf`). */
  counts: number[];
  sum: number;
  count: number;
}

interface ExposedValue {
  value: number;
  metricName: string;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
}

export interface HistogramOptions<LabelName extends string> {
  name: string;
  help: string;
  labelNames: readonly LabelName[];
  /** Upper bounds of the buckets, ascending; `+Inf` is added. */
  buckets: readonly number[];
  registry: Registry<RegistryContentType>;
}

/**
 * A Prometheus histogram, registered into a prom-client `Registry` and exposed by it exactly as
 * prom-client's own `Histogram` would be. It exists for speed: prom-client copies, validates and
 * hashes the labels of every observation, which `pnpm bench` measured at about 5 µs each (six
 * per request), where this costs a string key, one Map lookup and a bucket search.
 *
 * @throws TypeError from `observe` when the value is not a finite number.
 */
export class LabelledHistogram<LabelName extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly LabelName[];
  private readonly upperBounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(options: HistogramOptions<LabelName>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.upperBounds = options.buckets;
    // The registry reads any object with this shape (get, reset, name, type, aggregator); its
    // type names only prom-client's own classes.
    options.registry.registerMetric(this as unknown as Metric);
  }

  observe(labels: Readonly<Record<LabelName, string>>, value: number): void {
    if (!Number.isFinite(value)) {
      throw new TypeError(`${this.name}: value must be a finite number, got ${value}`);
    }
    let key = "";
    for (const labelName of this.labelNames) key += `${labels[labelName]}\u0000`;
    let series = this.series.get(key);
    if (!series) {
      series = {
        labels: { ...labels },
        counts: new Array<number>(this.upperBounds.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    let bucket = 0;
    while (bucket < this.upperBounds.length && value > (this.upperBounds[bucket] as number)) {
      bucket++;
    }
    (series.counts[bucket] as number)++;
    series.sum += value;
    series.count++;
  }

  /** What the registry's text exposition reads: a series' own labels as shared labels. */
  getForPromString() {
    const values: ExposedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      const sharedLabels = series.labels;
      let cumulative = 0;
      this.upperBounds.forEach((upperBound, index) => {
        cumulative += series.counts[index] as number;
        values.push({
          value: cumulative,
          metricName: bucketName,
          labels: { le: upperBound },
          sharedLabels,
        });
      });
      values.push(
        { value: series.count, metricName: bucketName, labels: { le: "+Inf" }, sharedLabels },
        { value: series.sum, metricName: `${this.name}_sum`, labels: {}, sharedLabels },
        { value: series.count, metricName: `${this.name}_count`, labels: {}, sharedLabels },
      );
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** The values with every label in `labels`, as prom-client's `get()` gives them. */
  get() {
    const exposed = this.getForPromString();
    return {
      ...exposed,
      values: exposed.values.map(({ sharedLabels, ...value }) => ({
        ...value,
        labels: { ...value.labels, ...sharedLabels },
      })),
    };
  }

  reset(): void {
    this.series = new Map();
  }
}
