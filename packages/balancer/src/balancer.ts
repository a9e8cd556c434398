import type { CircuitBreaker, Outcome } from "./breaker.js";

/**
 * How a balancer chooses among the targets that can take a request:
 * - `weighted`: smooth weighted round robin (weights 5, 1, 1 give a a b a c a a per cycle);
 * - `round-robin`: each in turn;
 * - `least-busy`: the fewest attempts in flight (open streams count until they end);
 * - `latency`: the better of two at random, by time to first token plus time per output
 *   token (each an EWMA), times the attempts in flight; a target without a recent sample
 *   is tried first;
 * - `priority`: the first in order; the next only when the earlier ones are out.
 */
export type Strategy = "weighted" | "round-robin" | "least-busy" | "latency" | "priority";

export const strategies: readonly Strategy[] = [
  "weighted",
  "round-robin",
  "least-busy",
  "latency",
  "priority",
];

export interface BalancerTarget {
  /** Names the target, and its state in the circuit breaker (say "openai/gpt-4o-mini"). */
  id: string;
  /** Its share with `weighted` (1). 0: never picked. */
  weight?: number;
}

export interface BalancerOptions {
  /** The targets, in priority order. */
  targets: readonly BalancerTarget[];
  /** Default "weighted". */
  strategy?: Strategy;
  /** Keeps failing targets out: `createCircuitBreaker()` or `createRedisCircuitBreaker()`. */
  breaker?: CircuitBreaker;
  /**
   * With `latency`: the output tokens a typical answer has, which weighs time per token
   * against time to first token (256).
   */
  referenceTokens?: number;
  /** With `latency`: samples older than this no longer count, in milliseconds (30,000). */
  latencyTtlMs?: number;
  /** Random numbers in [0, 1), for `latency`'s two choices. Default Math.random. */
  random?: () => number;
}

export interface PickOptions {
  /** Targets not to pick (those already tried for this request). */
  exclude?: ReadonlySet<string>;
  /** Whether a target may take this request (its own rate limit, a budget). */
  eligible?: (id: string) => boolean;
}

/** One attempt at a picked target. Call `succeeded`, `failed` or `end` once it is over. */
export interface Attempt {
  readonly target: string;
  /**
   * The target answered; for a stream, its first event arrived. Counts a success for the
   * breaker and the time to first token since the pick.
   */
  answered(): void;
  /**
   * The attempt is over (a stream: it ended). `outputTokens`, when known after `answered`,
   * gives the time per output token.
   */
  end(outputTokens?: number): void;
  /**
   * A whole answer arrived at once (not a stream): a success, and the ends of `answered` and
   * `end` together. Its time over `outputTokens` is the time per token, so long answers do not
   * make a target look slow; without a count, the whole time counts as time to first token.
   */
  completed(outputTokens?: number): void;
  /** The target failed: counts for its breaker, and ends the attempt. */
  failed(options?: { retryAfterMs?: number | undefined; status?: number | undefined }): void;
}

export interface Balancer {
  /**
   * The next target, or undefined when none can take the request (all excluded, refused by
   * `eligible`, or held out by the breaker). The attempt counts as in flight until it ends.
   */
  pick(options?: PickOptions): Promise<Attempt | undefined>;
  /** Attempts in flight per target. */
  inFlight(id: string): number;
  /** The soonest time, in epoch milliseconds, at which a target held out by the breaker is back. */
  soonestRecovery(): number | undefined;
}

interface TargetStats {
  id: string;
  weight: number;
  /** Smooth weighted round robin's running weight. */
  current: number;
  inFlight: number;
  ttftMs: number | undefined;
  perTokenMs: number | undefined;
  sampledAt: number;
}

/** The weight a new latency sample gets in its average. */
const ewmaWeight = 0.3;

function ewma(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous + ewmaWeight * (sample - previous);
}

const success: Outcome = { ok: true };

class TargetAttempt implements Attempt {
  readonly target: string;
  private readonly startedAt = performance.now();
  private answeredAt: number | undefined;
  private over = false;

  constructor(
    private readonly stats: TargetStats,
    private readonly breaker: CircuitBreaker | undefined,
    /** It holds one of a half-open target's probe slots. */
    private readonly probe: boolean,
    /** Its balancer has no other target: a 429 is not the target's failure. */
    private readonly alone: boolean,
  ) {
    this.target = stats.id;
    stats.inFlight++;
  }

  answered() {
    if (this.over || this.answeredAt !== undefined) return;
    const { stats } = this;
    this.answeredAt = performance.now();
    stats.ttftMs = ewma(stats.ttftMs, this.answeredAt - this.startedAt);
    stats.sampledAt = Date.now();
    this.breaker?.record(stats.id, success, this.probe);
  }

  end(outputTokens?: number) {
    if (!this.finish()) return;
    const { stats, answeredAt } = this;
    if (answeredAt === undefined) {
      if (this.probe) this.breaker?.release(stats.id);
      return;
    }
    if (outputTokens !== undefined && outputTokens > 0) {
      stats.perTokenMs = ewma(stats.perTokenMs, (performance.now() - answeredAt) / outputTokens);
      stats.sampledAt = Date.now();
    }
  }

  completed(outputTokens?: number) {
    if (!this.finish()) return;
    const { stats } = this;
    const elapsed = performance.now() - this.startedAt;
    if (outputTokens !== undefined && outputTokens > 0) {
      stats.perTokenMs = ewma(stats.perTokenMs, elapsed / outputTokens);
    } else {
      stats.ttftMs = ewma(stats.ttftMs, elapsed);
    }
    stats.sampledAt = Date.now();
    this.breaker?.record(stats.id, success, this.probe);
  }

  failed(failure: { retryAfterMs?: number | undefined; status?: number | undefined } = {}) {
    if (!this.finish()) return;
    if (this.alone && failure.status === 429) {
      if (this.probe) this.breaker?.release(this.stats.id);
      return;
    }
    this.breaker?.record(
      this.stats.id,
      { ok: false, retryAfterMs: failure.retryAfterMs },
      this.probe,
    );
  }

  private finish(): boolean {
    if (this.over) return false;
    this.over = true;
    this.stats.inFlight--;
    return true;
  }
}

/**
 * Picks targets for requests and learns from each attempt's outcome. Not tied to any client:
 * give it targets, `pick` one, report how the attempt went.
 */
export function createBalancer(options: BalancerOptions): Balancer {
  const strategy = options.strategy ?? "weighted";
  if (!strategies.includes(strategy)) {
    throw new TypeError(`strategy must be one of ${strategies.join(", ")}, got '${strategy}'`);
  }
  if (options.targets.length === 0) throw new TypeError("a balancer needs at least one target");
  const breaker = options.breaker;
  const random = options.random ?? Math.random;
  const referenceTokens = options.referenceTokens ?? 256;
  const latencyTtlMs = options.latencyTtlMs ?? 30_000;
  const ids = new Set<string>();
  const targets: TargetStats[] = options.targets.map(({ id, weight = 1 }) => {
    if (ids.has(id)) throw new TypeError(`target '${id}' is listed twice`);
    ids.add(id);
    if (!(Number.isFinite(weight) && weight >= 0)) {
      throw new TypeError(`target '${id}': weight must be a number >= 0, got ${weight}`);
    }
    return {
      id,
      weight,
      current: 0,
      inFlight: 0,
      ttftMs: undefined,
      perTokenMs: undefined,
      sampledAt: 0,
    };
  });
  // One target has nowhere else to send a 429: its breaker does not count it.
  const alone = targets.length === 1;
  let cursor = 0;

  function available(target: TargetStats, pick: PickOptions): boolean {
    if (pick.exclude?.has(target.id)) return false;
    if (strategy === "weighted" && target.weight === 0) return false;
    if (breaker && breaker.state(target.id).status === "open") return false;
    return pick.eligible ? pick.eligible(target.id) : true;
  }

  function latencyScore(target: TargetStats, now: number): number {
    const unknown = target.ttftMs === undefined && target.perTokenMs === undefined;
    if (unknown || now - target.sampledAt > latencyTtlMs) return 0;
    const perAnswer = (target.ttftMs ?? 0) + (target.perTokenMs ?? 0) * referenceTokens;
    return perAnswer * (target.inFlight + 1);
  }

  function choose(candidates: TargetStats[]): TargetStats {
    switch (strategy) {
      case "weighted": {
        let total = 0;
        let best = candidates[0] as TargetStats;
        for (const target of candidates) {
          target.current += target.weight;
          total += target.weight;
          if (target.current > best.current) best = target;
        }
        best.current -= total;
        return best;
      }
      case "round-robin": {
        const count = targets.length;
        for (let step = 0; step < count; step++) {
          const target = targets[(cursor + step) % count] as TargetStats;
          if (candidates.includes(target)) {
            cursor = (cursor + step + 1) % count;
            return target;
          }
        }
        return candidates[0] as TargetStats;
      }
      case "least-busy": {
        // Ties go round: equal targets share the load instead of the first taking it all.
        const start = cursor++ % candidates.length;
        let best = candidates[start] as TargetStats;
        for (let step = 1; step < candidates.length; step++) {
          const target = candidates[(start + step) % candidates.length] as TargetStats;
          if (target.inFlight < best.inFlight) best = target;
        }
        return best;
      }
      case "latency": {
        const first = candidates[Math.floor(random() * candidates.length)] as TargetStats;
        if (candidates.length === 1) return first;
        const others = candidates.filter((target) => target !== first);
        const second = others[Math.floor(random() * others.length)] as TargetStats;
        const now = Date.now();
        return latencyScore(second, now) < latencyScore(first, now) ? second : first;
      }
      default:
        return candidates[0] as TargetStats;
    }
  }

  return {
    async pick(pickOptions = {}) {
      let refused: Set<TargetStats> | undefined;
      for (;;) {
        const candidates = targets.filter(
          (target) => !refused?.has(target) && available(target, pickOptions),
        );
        if (candidates.length === 0) return undefined;
        const target =
          candidates.length === 1 ? (candidates[0] as TargetStats) : choose(candidates);
        if (!breaker || breaker.state(target.id).status === "closed") {
          return new TargetAttempt(target, breaker, false, alone);
        }
        if (await breaker.claimProbe(target.id)) {
          return new TargetAttempt(target, breaker, true, alone);
        }
        refused ??= new Set();
        refused.add(target);
      }
    },
    inFlight: (id) => targets.find((target) => target.id === id)?.inFlight ?? 0,
    soonestRecovery() {
      let soonest: number | undefined;
      for (const target of targets) {
        const state = breaker?.state(target.id);
        if (state?.status === "open" && (soonest === undefined || state.until < soonest)) {
          soonest = state.until;
        }
      }
      return soonest;
    },
  };
}
