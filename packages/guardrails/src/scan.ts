import { detectors, type Entity } from "./entities.js";

/** One entity found in a text: `text.slice(start, end)` is its value. */
export interface Finding {
  entity: Entity | (string & {});
  start: number;
  end: number;
}

export interface ScanOptions {
  /** The entities looked for. Default: every built-in one. */
  entities?: readonly string[];
  /** ISO region for phone numbers written without "+" and a country code. Default "US". */
  phoneRegion?: string;
}

/**
 * The longest value a finding spans, in UTF-16 code units (a private key block; other values
 * are far shorter): longer candidates are not looked at. Text read this far past a cut shows
 * every value that starts before the cut whole.
 */
export const maxEntityLength = 16_500;

/**
 * The entities in `text`, in order, none overlapping: where two would overlap, the detector
 * listed first in `detectors` wins (a key over the digits inside it). Linear in the text's
 * length: every pattern is bounded, and a candidate is checked only when it overlaps nothing
 * found before.
 */
export function scanText(text: string, options: ScanOptions = {}): Finding[] {
  const wanted = options.entities ? new Set(options.entities) : undefined;
  const region = options.phoneRegion ?? "US";
  const kept = new Kept();
  for (const detector of detectors) {
    if (wanted && !wanted.has(detector.entity)) continue;
    const found: Finding[] = [];
    for (const match of text.matchAll(detector.pattern)) {
      let start = match.index;
      const end = start + match[0].length;
      if (detector.before) {
        const { chars, max } = detector.before;
        while (start > 0 && match.index - start <= max && chars.test(text[start - 1] as string))
          start--;
        if (start === match.index || match.index - start > max) continue;
      }
      if (end - start > maxEntityLength || kept.overlaps(start, end)) continue;
      if (detector.excluded?.(text, start, end)) continue;
      if (detector.valid && !detector.valid(text.slice(start, end), region)) continue;
      found.push({ entity: detector.entity, start, end });
    }
    // A detector's own matches never overlap one another: they join the kept ones together.
    kept.merge(found);
  }
  return kept.findings;
}

/** Findings in order of start, none overlapping another. */
class Kept {
  findings: Finding[] = [];

  /** Where a finding starting at `start` goes. */
  private position(start: number): number {
    let low = 0;
    let high = this.findings.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.findings[middle] as Finding).start < start) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  overlaps(start: number, end: number): boolean {
    const at = this.position(start);
    const previous = this.findings[at - 1];
    const next = this.findings[at];
    return (
      (previous !== undefined && previous.end > start) || (next !== undefined && next.start < end)
    );
  }

  add(finding: Finding): void {
    this.findings.splice(this.position(finding.start), 0, finding);
  }

  /** Adds findings in order of start, none overlapping a kept one: one linear merge. */
  merge(found: readonly Finding[]): void {
    if (found.length === 0) return;
    const merged: Finding[] = [];
    let index = 0;
    for (const finding of this.findings) {
      while (index < found.length && (found[index] as Finding).start < finding.start) {
        merged.push(found[index++] as Finding);
      }
      merged.push(finding);
    }
    while (index < found.length) merged.push(found[index++] as Finding);
    this.findings = merged;
  }
}

/**
 * Findings of several sources (an external analyzer's and these), in order, none overlapping:
 * the lower `rank` first, then the longer.
 */
export function withoutOverlaps(found: readonly (Finding & { rank: number })[]): Finding[] {
  const kept = new Kept();
  const byPrecedence = found.toSorted(
    (a, b) => a.rank - b.rank || b.end - b.start - (a.end - a.start) || a.start - b.start,
  );
  for (const { entity, start, end } of byPrecedence) {
    if (!kept.overlaps(start, end)) kept.add({ entity, start, end });
  }
  return kept.findings;
}
