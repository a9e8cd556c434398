/**
 * A fixed ring of time slots (`size` slots of `widthMs` each, aligned to the epoch, so day
 * slots are UTC days): the slot of a time is reused, emptied, once its old period is over.
 * Slots are made on first use, so an idle series costs only its arrays.
 */
export class TimeRing<Slot> {
  private readonly slots: (Slot | undefined)[];
  private readonly starts: Float64Array;

  constructor(
    readonly size: number,
    readonly widthMs: number,
    private readonly create: () => Slot,
  ) {
    this.slots = new Array(size);
    this.starts = new Float64Array(size).fill(-1);
  }

  /** The slot `time` (ms since the epoch) falls in, emptied if it held an older period. */
  at(time: number): Slot {
    const start = Math.floor(time / this.widthMs) * this.widthMs;
    const index = Math.floor(time / this.widthMs) % this.size;
    let slot = this.slots[index];
    if (!slot || this.starts[index] !== start) {
      slot = this.create();
      this.slots[index] = slot;
      this.starts[index] = start;
    }
    return slot;
  }

  /**
   * Every period of the ring up to `now`, oldest first: its start and its slot (undefined when
   * nothing fell in it).
   */
  periods(now: number): { start: number; slot: Slot | undefined }[] {
    const current = Math.floor(now / this.widthMs);
    const periods = [];
    for (let period = current - this.size + 1; period <= current; period++) {
      const index = period % this.size;
      const start = period * this.widthMs;
      periods.push({ start, slot: this.starts[index] === start ? this.slots[index] : undefined });
    }
    return periods;
  }
}
