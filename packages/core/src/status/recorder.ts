import { shown } from "../errors.js";
import type { FinishedAttempt, FinishedRequest, GatewayHooks, GuardrailVerdict } from "../types.js";
import { DurationHistogram } from "./histogram.js";
import { TimeRing } from "./window.js";

export interface StatusRecorderOptions {
  /** Requests kept for the live tail, newest first. Default 100, at most 1,000. */
  recentRequests?: number;
  /**
   * Distinct names tracked per dimension (models, providers, targets, tenants), about 30 KB
   * each at most; a new name beyond takes the place of one idle for an hour that spent
   * nothing this month, or counts under "(other)". Models count by the name asked for when
   * a route matched, under "(no route)" otherwise. Default 100, at most 1,000.
   */
  maxSeries?: number;
  /**
   * Endpoints not counted. Default: those that are not use of a model ("health", "metrics",
   * "targets", "models", "model", "usage") and paths that name no endpoint ("unknown").
   */
  skipEndpoints?: readonly string[];
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/** Traffic of one window, as the admin API reports it. */
export interface WindowSummary {
  requests: number;
  /** Answers with status 400 and above, clients that went away (499) apart. */
  errors: number;
  /** `errors / requests`; 0 without requests. */
  error_rate: number;
  client_closed: number;
  /** Errors by where they came from and their type: "gateway rate_limit_error", "upstream api_error". */
  errors_by_type: Record<string, number>;
  /** 429s the gateway's own limits gave, and attempts the upstreams answered with 429. */
  rate_limited: { gateway: number; upstream: number };
  latency_ms: { p50: number | null; p95: number | null };
  time_to_first_token_ms: { p50: number | null; p95: number | null };
  /** Tokens in, out, and of those in, read from the provider's prompt cache. */
  tokens: { input: number; output: number; cached: number };
  /** The gateway's response cache: hits among lookups (HIT and MISS). */
  cache: { hits: number; lookups: number; hit_ratio: number | null };
  /** Attempts on another target than the one before, and again on the same one. */
  fallbacks: number;
  retries: number;
  cost_usd: number;
  /** Requests whose cost is unknown (no price for the model that answered). */
  unpriced_requests: number;
}

/** One minute or hour of the time series: its start (seconds since the epoch) and numbers. */
export interface StatusPoint {
  time: number;
  requests: number;
  errors: number;
  gateway_429: number;
  upstream_429: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cache_hits: number;
  cache_lookups: number;
  fallbacks: number;
  retries: number;
  cost_usd: number;
}

/** One model, provider, target or tenant. Spend is by UTC day and month. */
export interface SeriesReport {
  name: string;
  last_hour: WindowSummary;
  last_day: WindowSummary;
  spend: { today_usd: number; month_usd: number; today_tokens: number; month_tokens: number };
}

export interface RecentAttempt {
  target: string;
  route: string | null;
  status: number;
  duration_ms: number;
}

/** A request of the live tail: what it was and how it went, never its content. */
export interface RecentRequest {
  id: string;
  time: string;
  tenant: string;
  model: string | null;
  route: string | null;
  target: string | null;
  provider: string | null;
  status: number;
  error_type: string | null;
  stream: boolean;
  input_tokens: number | null;
  output_tokens: number | null;
  cost_usd: number | null;
  duration_ms: number;
  ttft_ms: number | null;
  cache: string | null;
  /** The guardrail verdicts: "pii redact (input)"; empty when none applied. */
  guardrails: string[];
  attempts: RecentAttempt[];
}

export interface StatusSnapshot {
  object: "status";
  /** When this recorder started: its numbers cover traffic since. ISO 8601. */
  started_at: string;
  generated_at: string;
  /** The last 10 whole seconds. */
  now: { requests_per_second: number; errors_per_second: number };
  last_hour: WindowSummary;
  last_day: WindowSummary;
  /** The last 60 minutes and the last 24 hours, oldest first, the current one last. */
  per_minute: StatusPoint[];
  per_hour: StatusPoint[];
  spend: { today_usd: number; month_usd: number };
  models: SeriesReport[];
  providers: SeriesReport[];
  /**
   * Per target, its attempts rather than requests: `requests` counts attempts, `errors` those
   * answered with 400 and above (as "upstream http_<status>"), latency is the attempts'; the
   * request's tokens and cost go to the target that answered it.
   */
  targets: SeriesReport[];
  tenants: SeriesReport[];
  recent: RecentRequest[];
}

export interface StatusRecorder {
  /** An `onFinish` hook that counts each request: a few additions, nothing awaited. */
  readonly hooks: GatewayHooks;
  /** Everything counted, as the admin API serves it. */
  snapshot(): StatusSnapshot;
  /** A request of the live tail by id (attempts included), while it is still kept. */
  recentRequest(id: string): RecentRequest | undefined;
}

const otherName = "(other)";
/** Requests that matched no route count under this model name, whatever they asked for. */
const noRouteName = "(no route)";
/** Not use of models: operations, listings, and paths that name no endpoint. */
const defaultSkipped = ["health", "metrics", "targets", "models", "model", "usage", "unknown"];
/** Error kinds counted apart per slot; rarer ones count as "other". */
const maxErrorKinds = 32;
const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;
const nanoPerUsd = 1e9;

class Tally {
  requests = 0;
  errors = 0;
  clientClosed = 0;
  errorKinds = new Map<string, number>();
  gatewayRateLimited = 0;
  upstreamRateLimited = 0;
  inputTokens = 0;
  outputTokens = 0;
  cachedTokens = 0;
  cacheHits = 0;
  cacheLookups = 0;
  fallbacks = 0;
  retries = 0;
  costNanoUsd = 0;
  unpriced = 0;
  readonly latency = new DurationHistogram();
  readonly firstToken = new DurationHistogram();

  addAll(other: Tally): void {
    this.requests += other.requests;
    this.errors += other.errors;
    this.clientClosed += other.clientClosed;
    for (const [kind, count] of other.errorKinds) countKind(this.errorKinds, kind, count);
    this.gatewayRateLimited += other.gatewayRateLimited;
    this.upstreamRateLimited += other.upstreamRateLimited;
    this.inputTokens += other.inputTokens;
    this.outputTokens += other.outputTokens;
    this.cachedTokens += other.cachedTokens;
    this.cacheHits += other.cacheHits;
    this.cacheLookups += other.cacheLookups;
    this.fallbacks += other.fallbacks;
    this.retries += other.retries;
    this.costNanoUsd += other.costNanoUsd;
    this.unpriced += other.unpriced;
    this.latency.addAll(other.latency);
    this.firstToken.addAll(other.firstToken);
  }
}

function countKind(kinds: Map<string, number>, kind: string, count: number) {
  const key = kinds.has(kind) || kinds.size < maxErrorKinds ? kind : "other";
  kinds.set(key, (kinds.get(key) ?? 0) + count);
}

class Spend {
  costNanoUsd = 0;
  tokens = 0;
}

/**
 * One name's traffic: the last hour in slots of `hourSlotMs` (a minute for the overall series,
 * which draws the per-minute chart; five for a name's, a fifth of the memory), per hour for a
 * day, spend per UTC day for a month. `lastSeen`: the time of its latest request.
 */
class Series {
  readonly recentHour: TimeRing<Tally>;
  readonly hours = new TimeRing(24, hourMs, () => new Tally());
  readonly days = new TimeRing(32, dayMs, () => new Spend());
  lastSeen = 0;

  constructor(hourSlotMs = 5 * minuteMs) {
    this.recentHour = new TimeRing(hourMs / hourSlotMs, hourSlotMs, () => new Tally());
  }

  /** Nothing in the last `idleMs`, and nothing spent this month: its slot may be reused. */
  idle(now: number, idleMs: number): boolean {
    return now - this.lastSeen >= idleMs && spendOf(this.days, now).month_tokens === 0;
  }
}

/** What one request adds, worked out once for every series it counts in. */
interface Outcome {
  time: number;
  request: FinishedRequest;
  errorKind: string | undefined;
  /** Histogram buckets of the request's duration and time to first token (-1: none). */
  latencyBucket: number;
  firstTokenBucket: number;
  upstream429s: number;
  fallbacks: number;
  retries: number;
}

/** The tokens and cost of a request's answer. */
function addAnswer(tally: Tally, { usage, cost }: FinishedRequest) {
  if (usage) {
    tally.inputTokens += usage.inputTokens;
    tally.outputTokens += usage.outputTokens;
    tally.cachedTokens += usage.cacheReadTokens ?? 0;
  }
  if (cost) {
    if (cost.nanoUsd === undefined) tally.unpriced += 1;
    else tally.costNanoUsd += cost.nanoUsd;
  }
}

function addTo(tally: Tally, outcome: Outcome) {
  const { request, errorKind, upstream429s, fallbacks, retries } = outcome;
  tally.requests += 1;
  if (request.status === 499) tally.clientClosed += 1;
  else if (errorKind) {
    tally.errors += 1;
    countKind(tally.errorKinds, errorKind, 1);
    if (request.status === 429 && request.error?.upstreamStatus === undefined) {
      tally.gatewayRateLimited += 1;
    }
  }
  tally.upstreamRateLimited += upstream429s;
  addAnswer(tally, request);
  const { cache } = request;
  if (cache === "HIT" || cache === "MISS") {
    tally.cacheLookups += 1;
    if (cache === "HIT") tally.cacheHits += 1;
  }
  tally.fallbacks += fallbacks;
  tally.retries += retries;
  tally.latency.addToBucket(outcome.latencyBucket);
  if (outcome.firstTokenBucket >= 0) tally.firstToken.addToBucket(outcome.firstTokenBucket);
}

/**
 * One attempt on a target: a target's health is how its attempts went, those a fallback or
 * retry made good included. The request's tokens and cost go to the target that answered.
 */
function addAttempt(tally: Tally, attempt: FinishedAttempt, answered: FinishedRequest | undefined) {
  tally.requests += 1;
  if (attempt.status >= 400 && attempt.status !== 499) {
    tally.errors += 1;
    countKind(tally.errorKinds, `upstream http_${attempt.status}`, 1);
    if (attempt.status === 429) tally.upstreamRateLimited += 1;
  }
  tally.latency.add(attempt.durationMs);
  if (!answered) return;
  addAnswer(tally, answered);
  if (answered.timeToFirstTokenMs !== undefined) {
    tally.firstToken.add(answered.timeToFirstTokenMs);
  }
}

function outcomeOf(request: FinishedRequest, time: number): Outcome {
  let errorKind: string | undefined;
  if (request.status >= 400 && request.status !== 499) {
    const origin = request.error?.upstreamStatus === undefined ? "gateway" : "upstream";
    errorKind = `${origin} ${shown(request.error?.type ?? `http_${request.status}`, 64)}`;
  }
  let upstream429s = 0;
  let fallbacks = 0;
  let retries = 0;
  const { attempts } = request;
  for (let index = 0; index < attempts.length; index++) {
    const attempt = attempts[index] as FinishedAttempt;
    if (attempt.status === 429) upstream429s += 1;
    if (index === 0) continue;
    const previous = attempts[index - 1] as FinishedAttempt;
    if (previous.target === attempt.target && previous.route === attempt.route) retries += 1;
    else fallbacks += 1;
  }
  return {
    time,
    request,
    errorKind,
    latencyBucket: DurationHistogram.bucketOf(request.durationMs),
    firstTokenBucket:
      request.timeToFirstTokenMs === undefined
        ? -1
        : DurationHistogram.bucketOf(request.timeToFirstTokenMs),
    upstream429s,
    fallbacks,
    retries,
  };
}

const usd = (nanoUsd: number) => Math.round(nanoUsd) / nanoPerUsd;
const ratio = (part: number, whole: number) => (whole === 0 ? 0 : part / whole);

function summary(tally: Tally): WindowSummary {
  return {
    requests: tally.requests,
    errors: tally.errors,
    error_rate: ratio(tally.errors, tally.requests),
    client_closed: tally.clientClosed,
    errors_by_type: Object.fromEntries(tally.errorKinds),
    rate_limited: { gateway: tally.gatewayRateLimited, upstream: tally.upstreamRateLimited },
    latency_ms: { p50: tally.latency.quantile(0.5), p95: tally.latency.quantile(0.95) },
    time_to_first_token_ms: {
      p50: tally.firstToken.quantile(0.5),
      p95: tally.firstToken.quantile(0.95),
    },
    tokens: { input: tally.inputTokens, output: tally.outputTokens, cached: tally.cachedTokens },
    cache: {
      hits: tally.cacheHits,
      lookups: tally.cacheLookups,
      hit_ratio: tally.cacheLookups === 0 ? null : tally.cacheHits / tally.cacheLookups,
    },
    fallbacks: tally.fallbacks,
    retries: tally.retries,
    cost_usd: usd(tally.costNanoUsd),
    unpriced_requests: tally.unpriced,
  };
}

/** What a period without requests reads as; never added to. */
const noTraffic = new Tally();

function point(start: number, tally: Tally | undefined): StatusPoint {
  const counted = tally ?? noTraffic;
  return {
    time: start / 1000,
    requests: counted.requests,
    errors: counted.errors,
    gateway_429: counted.gatewayRateLimited,
    upstream_429: counted.upstreamRateLimited,
    latency_p50_ms: counted.latency.quantile(0.5),
    latency_p95_ms: counted.latency.quantile(0.95),
    ttft_p50_ms: counted.firstToken.quantile(0.5),
    ttft_p95_ms: counted.firstToken.quantile(0.95),
    input_tokens: counted.inputTokens,
    output_tokens: counted.outputTokens,
    cached_tokens: counted.cachedTokens,
    cache_hits: counted.cacheHits,
    cache_lookups: counted.cacheLookups,
    fallbacks: counted.fallbacks,
    retries: counted.retries,
    cost_usd: usd(counted.costNanoUsd),
  };
}

function merged(ring: TimeRing<Tally>, now: number): Tally {
  const total = new Tally();
  for (const { slot } of ring.periods(now)) if (slot) total.addAll(slot);
  return total;
}

function spendOf(days: TimeRing<Spend>, now: number) {
  const date = new Date(now);
  const monthStart = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  const todayStart = Math.floor(now / dayMs) * dayMs;
  const today = new Spend();
  const month = new Spend();
  for (const { start, slot } of days.periods(now)) {
    if (!slot || start < monthStart) continue;
    month.costNanoUsd += slot.costNanoUsd;
    month.tokens += slot.tokens;
    if (start === todayStart) {
      today.costNanoUsd += slot.costNanoUsd;
      today.tokens += slot.tokens;
    }
  }
  return {
    today_usd: usd(today.costNanoUsd),
    month_usd: usd(month.costNanoUsd),
    today_tokens: today.tokens,
    month_tokens: month.tokens,
  };
}

/**
 * Series by name, at most `limit` of them. A new name beyond takes the place of one idle for
 * an hour that spent nothing this month (names clients made up and never used again), else
 * counts under "(other)".
 */
class Dimension {
  readonly series = new Map<string, Series>();
  /** When full, idle names are looked for at most once a minute. */
  private nextIdleSearch = 0;

  constructor(private readonly limit: number) {}

  of(name: string, now: number): Series {
    let series = this.series.get(name);
    if (!series) {
      let key = name;
      if (this.series.size >= this.limit) {
        let idle: [string, Series] | undefined;
        if (now >= this.nextIdleSearch) {
          idle = [...this.series].find(
            ([other, candidate]) => other !== otherName && candidate.idle(now, hourMs),
          );
          // None now: none can be for a while, so the next search waits a minute.
          if (!idle) this.nextIdleSearch = now + minuteMs;
        }
        if (idle) this.series.delete(idle[0]);
        else key = otherName;
      }
      series = this.series.get(key) ?? new Series();
      this.series.set(key, series);
    }
    series.lastSeen = now;
    return series;
  }

  reports(now: number): SeriesReport[] {
    return [...this.series]
      .map(([name, series]) => ({
        name,
        last_hour: summary(merged(series.recentHour, now)),
        last_day: summary(merged(series.hours, now)),
        spend: spendOf(series.days, now),
      }))
      .filter((report) => report.last_day.requests > 0 || report.spend.month_tokens > 0)
      .sort((first, second) => second.last_day.requests - first.last_day.requests);
  }
}

const noVerdicts: readonly GuardrailVerdict[] = [];
const noAttempts: readonly FinishedAttempt[] = [];

/**
 * One place of the tail, reused for request after request: its fields are copies, and a
 * single attempt (the usual case) is kept inline, so a usual request leaves no objects here
 * (only guardrail verdicts and several attempts are kept as the request had them); objects
 * kept for the tail's whole turn would outlive the young generation and cost the garbage
 * collector more than the rest of the counting.
 */
class TailEntry {
  requestId = "";
  time = 0;
  tenant = "";
  model: string | undefined;
  route: string | undefined;
  provider: string | undefined;
  status = 0;
  errorType: string | null = null;
  stream = false;
  inputTokens: number | null = null;
  outputTokens: number | null = null;
  costNanoUsd: number | undefined;
  durationMs = 0;
  timeToFirstTokenMs: number | undefined;
  cache: string | undefined;
  verdicts = noVerdicts;
  /** Several attempts; with one, it is the fields below. */
  attempts = noAttempts;
  target: string | undefined;
  targetRoute: string | undefined;
  targetStatus = 0;
  targetMs = 0;

  fill(request: FinishedRequest, model: string | undefined, time: number): void {
    const { usage, attempts } = request;
    this.requestId = request.requestId;
    this.time = time;
    this.tenant = request.tenant;
    this.model = model;
    this.route = request.route;
    this.provider = request.provider;
    this.status = request.status;
    this.errorType = request.error?.type ?? (request.status === 499 ? "client_closed" : null);
    this.stream = request.stream;
    this.inputTokens = usage ? usage.inputTokens : null;
    this.outputTokens = usage ? usage.outputTokens : null;
    this.costNanoUsd = request.cost?.nanoUsd;
    this.durationMs = request.durationMs;
    this.timeToFirstTokenMs = request.timeToFirstTokenMs;
    this.cache = request.cache;
    this.verdicts = request.verdicts.length > 0 ? request.verdicts : noVerdicts;
    const only = attempts.length === 1 ? attempts[0] : undefined;
    this.attempts = only ? noAttempts : attempts;
    this.target = only?.target;
    this.targetRoute = only?.route;
    this.targetStatus = only?.status ?? 0;
    this.targetMs = only?.durationMs ?? 0;
  }

  report(): RecentRequest {
    const attempts: RecentAttempt[] = this.target
      ? [
          {
            target: this.target,
            route: this.targetRoute ?? null,
            status: this.targetStatus,
            duration_ms: Math.round(this.targetMs),
          },
        ]
      : this.attempts.map((attempt) => ({
          target: attempt.target,
          route: attempt.route ?? null,
          status: attempt.status,
          duration_ms: Math.round(attempt.durationMs),
        }));
    return {
      id: this.requestId,
      time: new Date(this.time).toISOString(),
      tenant: this.tenant,
      model: this.model ?? null,
      route: this.route ?? null,
      target: attempts.at(-1)?.target ?? null,
      provider: this.provider ?? null,
      status: this.status,
      error_type: this.errorType,
      stream: this.stream,
      input_tokens: this.inputTokens,
      output_tokens: this.outputTokens,
      cost_usd: this.costNanoUsd === undefined ? null : usd(this.costNanoUsd),
      duration_ms: Math.round(this.durationMs),
      ttft_ms: this.timeToFirstTokenMs === undefined ? null : Math.round(this.timeToFirstTokenMs),
      cache: this.cache ?? null,
      guardrails: this.verdicts.map(
        (verdict) => `${verdict.rule} ${verdict.action} (${verdict.phase})`,
      ),
      attempts,
    };
  }
}

/**
 * Counts every request the gateway finishes (through `onFinish`) into fixed time buckets, in
 * memory: per second for a minute, per minute for an hour, per hour for a day and spend per
 * UTC day for a month, overall and per model, provider, target and tenant (each dimension
 * capped at `maxSeries` names), plus the last `recentRequests` requests. Memory stays bounded
 * whatever the traffic; numbers cover this process only, since it started.
 */
export function createStatusRecorder(options: StatusRecorderOptions = {}): StatusRecorder {
  const now = options.now ?? Date.now;
  const recentLimit = Math.min(1000, Math.max(1, options.recentRequests ?? 100));
  const maxSeries = Math.min(1000, Math.max(1, options.maxSeries ?? 100));
  const skipped = new Set(options.skipEndpoints ?? defaultSkipped);
  const startedAt = now();
  const overall = new Series(minuteMs);
  const seconds = new TimeRing(60, 1000, () => ({ requests: 0, errors: 0 }));
  const dimensions = {
    models: new Dimension(maxSeries),
    providers: new Dimension(maxSeries),
    targets: new Dimension(maxSeries),
    tenants: new Dimension(maxSeries),
  };
  /** The tail, a ring: `next` is where the next request goes. */
  const recent: TailEntry[] = [];
  let next = 0;
  const newestFirst = () => {
    const kept: TailEntry[] = [];
    for (let index = 1; index <= recent.length; index++) {
      kept.push(recent[(next - index + recent.length) % recent.length] as TailEntry);
    }
    return kept;
  };

  function count(series: Series, outcome: Outcome, attempt?: FinishedAttempt, last = true) {
    const { request, time } = outcome;
    if (attempt) {
      const answered = last ? request : undefined;
      addAttempt(series.recentHour.at(time), attempt, answered);
      addAttempt(series.hours.at(time), attempt, answered);
    } else {
      addTo(series.recentHour.at(time), outcome);
      addTo(series.hours.at(time), outcome);
    }
    if (!last) return;
    const spend = series.days.at(time);
    spend.tokens += request.usage ? request.usage.inputTokens + request.usage.outputTokens : 0;
    spend.costNanoUsd += request.cost?.nanoUsd ?? 0;
  }

  function record(request: FinishedRequest) {
    if (skipped.has(request.endpoint)) return;
    const time = now();
    const outcome = outcomeOf(request, time);
    const second = seconds.at(time);
    second.requests += 1;
    if (outcome.errorKind) second.errors += 1;
    // The client's own string, kept to a length that says enough.
    const model = request.model === undefined ? undefined : shown(request.model, 256);
    count(overall, outcome);
    if (model !== undefined) {
      count(dimensions.models.of(request.route === undefined ? noRouteName : model, time), outcome);
    }
    if (request.provider !== undefined) {
      count(dimensions.providers.of(request.provider, time), outcome);
    }
    const { attempts } = request;
    for (let index = 0; index < attempts.length; index++) {
      const attempt = attempts[index] as FinishedAttempt;
      const last = index === attempts.length - 1;
      count(dimensions.targets.of(attempt.target, time), outcome, attempt, last);
    }
    count(dimensions.tenants.of(request.tenant, time), outcome);
    let entry = recent[next];
    if (!entry) {
      entry = new TailEntry();
      recent.push(entry);
    }
    entry.fill(request, model, time);
    next = (next + 1) % recentLimit;
  }

  return {
    hooks: {
      onFinish(request) {
        record(request);
      },
    },
    snapshot() {
      const time = now();
      const lastTen = seconds.periods(time).slice(-11, -1);
      const perSecond = (field: "requests" | "errors") =>
        lastTen.reduce((sum, { slot }) => sum + (slot?.[field] ?? 0), 0) / lastTen.length;
      const spend = spendOf(overall.days, time);
      return {
        object: "status",
        started_at: new Date(startedAt).toISOString(),
        generated_at: new Date(time).toISOString(),
        now: { requests_per_second: perSecond("requests"), errors_per_second: perSecond("errors") },
        last_hour: summary(merged(overall.recentHour, time)),
        last_day: summary(merged(overall.hours, time)),
        per_minute: overall.recentHour.periods(time).map(({ start, slot }) => point(start, slot)),
        per_hour: overall.hours.periods(time).map(({ start, slot }) => point(start, slot)),
        spend: { today_usd: spend.today_usd, month_usd: spend.month_usd },
        models: dimensions.models.reports(time),
        providers: dimensions.providers.reports(time),
        targets: dimensions.targets.reports(time),
        tenants: dimensions.tenants.reports(time),
        recent: newestFirst().map((entry) => entry.report()),
      };
    },
    recentRequest(id) {
      return newestFirst()
        .find((entry) => entry.requestId === id)
        ?.report();
    },
  };
}
