/**
 * Where a target stands: `closed` takes requests; `open` takes none until `until`; `half_open`
 * takes a few probes, whose outcomes close it again or open it for longer.
 */
export type BreakerStatus = "closed" | "open" | "half_open";

export interface TargetState {
  status: BreakerStatus;
  /** When an open target's cooldown ends, in epoch milliseconds (0 when not open). */
  until: number;
  /** Times it tripped since it was last closed by its probes: each trip doubles the cooldown. */
  trips: number;
}

export interface BreakerOptions {
  /** Trips when at least this share of a window's outcomes failed (0.5). */
  failureRatio?: number;
  /** ...and the window holds at least this many outcomes (10). */
  minimumRequests?: number;
  /** Length of the window the ratio is counted over, in milliseconds (30,000). */
  windowMs?: number;
  /** Trips on this many failures in a row, whatever the ratio (5). */
  consecutiveFailures?: number;
  /**
   * The first cooldown, in milliseconds (5,000); each further trip without a recovery doubles
   * it, up to `maxCooldownMs` (300,000). A Retry-After from the upstream that is longer wins.
   */
  cooldownMs?: number;
  maxCooldownMs?: number;
  /** Probes a half-open target takes at once, and the successes that close it (3). */
  probes?: number;
  /**
   * Told each time a target trips (closed or half-open to open). With shared state, only the
   * instance whose outcomes tripped it is told. Must not throw.
   */
  onTrip?: ((target: string) => void) | undefined;
}

export type ResolvedBreakerOptions = Required<Omit<BreakerOptions, "onTrip">>;

/** What one attempt said about its target. */
export type Outcome =
  | { ok: true }
  | {
      ok: false;
      /** The upstream's Retry-After, in milliseconds: the cooldown is at least that long. */
      retryAfterMs?: number | undefined;
    };

/**
 * Keeps failing targets out of rotation and lets them back when they recover. The state is
 * read without I/O on every pick; where it lives (memory, Redis) is the implementation's.
 */
export interface CircuitBreaker {
  readonly options: ResolvedBreakerOptions;
  /** The target's state now (a target never seen is closed); read-only, read on every pick. */
  state(target: string): Readonly<TargetState>;
  /**
   * Takes one of a half-open target's probe slots; false when they are all taken. A probe's
   * outcome, or its `release`, frees its slot.
   */
  claimProbe(target: string): boolean | Promise<boolean>;
  /** Counts one attempt's outcome; `probe`: the attempt held a probe slot. */
  record(target: string, outcome: Outcome, probe: boolean): void;
  /** Frees a probe slot whose attempt ended without saying anything of the target. */
  release(target: string): void;
  /** Stops timers and, for shared state, sends what is not sent yet. */
  close(): Promise<void>;
}

export function resolveBreakerOptions(
  options: Omit<BreakerOptions, "onTrip"> = {},
): ResolvedBreakerOptions {
  const resolved: ResolvedBreakerOptions = {
    failureRatio: options.failureRatio ?? 0.5,
    minimumRequests: options.minimumRequests ?? 10,
    windowMs: options.windowMs ?? 30_000,
    consecutiveFailures: options.consecutiveFailures ?? 5,
    cooldownMs: options.cooldownMs ?? 5_000,
    maxCooldownMs: options.maxCooldownMs ?? 300_000,
    probes: options.probes ?? 3,
  };
  if (!(resolved.failureRatio > 0 && resolved.failureRatio <= 1)) {
    throw new TypeError(`breaker.failureRatio must be in (0, 1], got ${resolved.failureRatio}`);
  }
  for (const name of [
    "minimumRequests",
    "windowMs",
    "consecutiveFailures",
    "cooldownMs",
    "maxCooldownMs",
    "probes",
  ] as const) {
    const value = resolved[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`breaker.${name} must be a positive integer, got ${value}`);
    }
  }
  if (resolved.maxCooldownMs < resolved.cooldownMs) {
    throw new TypeError(
      `breaker.maxCooldownMs (${resolved.maxCooldownMs}) is below breaker.cooldownMs (${resolved.cooldownMs})`,
    );
  }
  return resolved;
}

/** The cooldown of a target's `trips`-th trip in a row, at least `retryAfterMs`. */
export function cooldownFor(
  options: ResolvedBreakerOptions,
  trips: number,
  retryAfterMs: number | undefined,
): number {
  const doubled = options.cooldownMs * 2 ** Math.min(Math.max(trips - 1, 0), 30);
  return Math.max(Math.min(doubled, options.maxCooldownMs), retryAfterMs ?? 0);
}

/** The state of a target that has not failed. */
export const closedState: Readonly<TargetState> = Object.freeze({
  status: "closed",
  until: 0,
  trips: 0,
});

interface MemoryTarget {
  state: TargetState;
  windowStart: number;
  successes: number;
  failures: number;
  consecutive: number;
  probesOut: number;
  probeSuccesses: number;
}

/** A circuit breaker for one process: every target's state in memory. */
export function createCircuitBreaker(
  options: BreakerOptions = {},
  now: () => number = Date.now,
): CircuitBreaker {
  const resolved = resolveBreakerOptions(options);
  const targets = new Map<string, MemoryTarget>();

  function entry(target: string): MemoryTarget {
    let found = targets.get(target);
    if (!found) {
      found = {
        state: { status: "closed", until: 0, trips: 0 },
        windowStart: now(),
        successes: 0,
        failures: 0,
        consecutive: 0,
        probesOut: 0,
        probeSuccesses: 0,
      };
      targets.set(target, found);
    }
    return found;
  }

  function open(target: string, found: MemoryTarget, retryAfterMs: number | undefined) {
    const trips = found.state.trips + 1;
    found.state = {
      status: "open",
      until: now() + cooldownFor(resolved, trips, retryAfterMs),
      trips,
    };
    found.probesOut = 0;
    found.probeSuccesses = 0;
    options.onTrip?.(target);
  }

  /** Open past its cooldown: half-open, with all its probe slots free. */
  function current(found: MemoryTarget): TargetState {
    if (found.state.status === "open" && now() >= found.state.until) {
      found.state = { status: "half_open", until: 0, trips: found.state.trips };
      found.probesOut = 0;
      found.probeSuccesses = 0;
    }
    return found.state;
  }

  return {
    options: resolved,
    state(target) {
      const found = targets.get(target);
      return found ? current(found) : closedState;
    },
    claimProbe(target) {
      const found = entry(target);
      if (current(found).status !== "half_open" || found.probesOut >= resolved.probes) return false;
      found.probesOut++;
      return true;
    },
    release(target) {
      const found = targets.get(target);
      if (found && found.probesOut > 0) found.probesOut--;
    },
    record(target, outcome, probe) {
      const found = entry(target);
      const { status } = current(found);
      if (probe && found.probesOut > 0) found.probesOut--;
      if (status === "open") {
        // An attempt that started before the trip failed too: the target is not back yet.
        if (!outcome.ok) {
          const cooldown = cooldownFor(resolved, found.state.trips, outcome.retryAfterMs);
          found.state.until = Math.max(found.state.until, now() + cooldown);
        }
        return;
      }
      if (status === "half_open") {
        if (!outcome.ok) return open(target, found, outcome.retryAfterMs);
        if (probe && ++found.probeSuccesses >= resolved.probes) {
          targets.delete(target);
        }
        return;
      }
      const at = now();
      if (at - found.windowStart >= resolved.windowMs) {
        found.windowStart = at;
        found.successes = 0;
        found.failures = 0;
      }
      if (outcome.ok) {
        found.successes++;
        found.consecutive = 0;
        return;
      }
      found.failures++;
      found.consecutive++;
      const total = found.successes + found.failures;
      if (
        found.consecutive >= resolved.consecutiveFailures ||
        (total >= resolved.minimumRequests && found.failures / total >= resolved.failureRatio)
      ) {
        open(target, found, outcome.retryAfterMs);
      }
    },
    async close() {},
  };
}
