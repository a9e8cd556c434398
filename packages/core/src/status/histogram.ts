/** Bucket i holds durations up to 2^(i/3) ms: 60 buckets reach about 14 minutes. */
const bucketCount = 60;
const stepsPerDoubling = 3;

/**
 * Durations in milliseconds counted in fixed buckets whose bounds grow by 2^(1/3) (about 26%),
 * so a quantile read from them is within about 12% of the true one. Longer than the last
 * bound counts in the last bucket. Fixed size whatever is added.
 */
export class DurationHistogram {
  readonly counts = new Uint32Array(bucketCount);
  total = 0;

  /** The bucket `milliseconds` falls in, for `addToBucket`: one duration counted in many. */
  static bucketOf(milliseconds: number): number {
    if (!(milliseconds > 1)) return 0;
    const index = Math.ceil(Math.log2(milliseconds) * stepsPerDoubling - 1e-9);
    return Math.min(index, bucketCount - 1);
  }

  add(milliseconds: number): void {
    this.addToBucket(DurationHistogram.bucketOf(milliseconds));
  }

  addToBucket(index: number): void {
    this.counts[index] = (this.counts[index] as number) + 1;
    this.total += 1;
  }

  addAll(other: DurationHistogram): void {
    for (let index = 0; index < bucketCount; index++) {
      this.counts[index] = (this.counts[index] as number) + (other.counts[index] as number);
    }
    this.total += other.total;
  }

  /**
   * The duration below which a share `q` (0 to 1) of those counted fall, in ms, rounded to
   * the geometric middle of its bucket; null when nothing was counted.
   */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let index = 0; index < bucketCount; index++) {
      seen += this.counts[index] as number;
      if (seen >= rank) {
        if (index === 0) return 1;
        return Math.round(2 ** ((index - 0.5) / stepsPerDoubling) * 10) / 10;
      }
    }
    return null;
  }
}
