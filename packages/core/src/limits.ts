import { formatUsd } from "@aigw/pricing";
import { AigwError, type Endpoint, firstHeader } from "@aigw/provider";
import type { Admission, Limiter, RateLimitResult } from "@aigw/ratelimit";
import { invalidRequest, shown } from "./errors.js";
import type { Protocol } from "./protocols/protocol.js";
import type { Tenant } from "./tenants.js";
import type { GatewayRequest } from "./types.js";

export interface LimitsOptions {
  /** Limits for tenants without their own, and for everyone in open mode. */
  limiter?: Limiter;
  /**
   * "tenant": one budget per tenant. "tenant+user": also one per user of a tenant (the body's
   * `user`, or `userHeader`), from `userLimiter`, on top of the tenant's, never instead of it.
   */
  keyBy?: "tenant" | "tenant+user";
  /** Each user's own limits with keyBy "tenant+user" (required then). */
  userLimiter?: Limiter;
  userHeader?: string;
  /** Open mode: the header that names the client; the client address otherwise. */
  clientHeader?: string;
}

/** Longest user or client name used as a limit key, in characters. */
const maxKeyLength = 256;

/**
 * What a request may use, reserved before it runs: its prompt's estimate (an image or a file
 * counts a fixed number), plus the output it allows (`reserveOutputTokens` when it sets no cap).
 */
export function tokenNeed(
  protocol: Protocol,
  endpoint: Endpoint,
  body: Record<string, unknown>,
  reserveOutputTokens: number,
): TokenNeed {
  const cap = protocol.outputCap(endpoint, body);
  const inputTokens = protocol.promptTokens(endpoint, body);
  const outputTokens = Math.min(cap ?? reserveOutputTokens, Number.MAX_SAFE_INTEGER);
  // A client may ask for more output than a number can count exactly: reserve the most there is.
  return {
    tokens: Math.min(inputTokens + outputTokens, Number.MAX_SAFE_INTEGER),
    inputTokens,
    outputTokens,
    outputCapped: cap !== undefined,
    endpoint,
    cost: undefined,
  };
}

/** What a refused request asked for, so its refusal can say why it cannot fit. */
export interface TokenNeed {
  /** The tokens reserved for it. */
  tokens: number;
  /** Of `tokens`, the prompt's estimate and the output allowed. */
  inputTokens: number;
  outputTokens: number;
  /** The most it may cost in nano-USD, reserved from budgets; undefined when not priced. */
  cost: number | undefined;
  /** Whether the request set its own output cap (else its route's reserveOutputTokens were assumed). */
  outputCapped: boolean;
  endpoint: Endpoint;
}

function howToLower({ outputCapped, outputTokens, endpoint }: TokenNeed): string {
  if (endpoint === "embeddings") return "send less input to lower it";
  return outputCapped
    ? "a lower max_tokens (or max_completion_tokens) lowers it"
    : `without max_tokens, ${count(outputTokens)} output tokens are assumed: set max_tokens (or max_completion_tokens) to lower it`;
}

const count = (tokens: number) => Math.max(0, tokens).toLocaleString("en");
const usd = (nanoUsd: number) => `$${formatUsd(Math.max(0, nanoUsd))}`;

/** A request no budget can admit: its model has no price, so what it may cost is unknown. */
export function modelNotPriced(model: string, sentModel?: string): AigwError {
  const upstream =
    sentModel && sentModel !== model ? ` (sent upstream as '${shown(sentModel)}')` : "";
  return invalidRequest(
    `The model '${shown(model)}'${upstream} has no price, and a budget applies to this request: its cost cannot be checked. The gateway's operator can price it (prices, or the route's price).`,
    "model",
    "model_not_priced",
  );
}

/** A client-chosen name for a limit key, refused when it is too long to be one. */
function keyPart(value: unknown, source: string): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (value.length > maxKeyLength) {
    throw invalidRequest(
      `Invalid '${source}': longer than ${maxKeyLength} characters.`,
      source,
      "invalid_value",
    );
  }
  return value;
}

function headerValue(request: GatewayRequest, name: string | undefined): string | undefined {
  return name ? keyPart(firstHeader(request.headers[name.toLowerCase()]), name) : undefined;
}

/** Whose budgets a request spends: its tenant's (or client's, when open) and its user's. */
export interface LimitKeys {
  key: string;
  /** With keyBy "tenant+user" and a user named: the user's key within the tenant. */
  userKey: string | undefined;
}

export function limitKeys(
  options: LimitsOptions,
  tenant: Tenant,
  open: boolean,
  request: GatewayRequest,
  body: Record<string, unknown> | undefined,
): LimitKeys {
  if (open) {
    const client = headerValue(request, options.clientHeader) ?? request.clientAddress;
    return { key: client ?? "anonymous", userKey: undefined };
  }
  if (options.keyBy !== "tenant+user") return { key: tenant.id, userKey: undefined };
  const user = headerValue(request, options.userHeader) ?? keyPart(body?.user, "user");
  if (user === undefined) return { key: tenant.id, userKey: undefined };
  // The tenant's id is encoded, so no tenant and user can make another pair's key.
  return { key: tenant.id, userKey: `${encodeURIComponent(tenant.id)}:${user}` };
}

function duration(milliseconds: number): string {
  return milliseconds < 1000
    ? `${Math.ceil(milliseconds)}ms`
    : `${(milliseconds / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
}

/** A wait as people say it, rounded up: "40 s", "12 min", "5 h", "30 days". */
function waitText(milliseconds: number): string {
  const seconds = Math.max(1, Math.ceil(milliseconds / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.ceil(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.ceil(hours / 24)} days`;
}

function tightest(
  admissions: Admission[],
  pick: (admission: Admission) => RateLimitResult | undefined,
): RateLimitResult | undefined {
  let found: RateLimitResult | undefined;
  for (const admission of admissions) {
    const result = pick(admission);
    if (result && (!found || result.remaining < found.remaining)) found = result;
  }
  return found;
}

/**
 * OpenAI's x-ratelimit-* headers for what the admissions saw (the tightest limit of each
 * kind, when a user's limits apply on top of the tenant's); they replace the upstream's.
 */
export function rateLimitHeaders(admissions: Admission[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [suffix, result] of [
    ["requests", tightest(admissions, (admission) => admission.requests)],
    ["tokens", tightest(admissions, (admission) => admission.tokens)],
  ] as const) {
    if (!result) continue;
    headers[`x-ratelimit-limit-${suffix}`] = `${result.limit}`;
    headers[`x-ratelimit-remaining-${suffix}`] = `${Math.max(0, result.remaining)}`;
    headers[`x-ratelimit-reset-${suffix}`] = duration(result.resetMs);
  }
  return headers;
}

/**
 * The error for a denied admission, saying which limit refused and, when the request's own size
 * is why, how large it was estimated and how to lower that; 503 when the store is down and
 * limits fail closed.
 */
export function admissionError(
  admission: Admission,
  headers: Record<string, string>,
  need: TokenNeed,
  owner: "tenant" | "route" = "tenant",
): AigwError {
  if (admission.unavailable) {
    return new AigwError("Rate limits cannot be checked right now; retry shortly.", {
      status: 503,
      type: "server_error",
      code: "limits_unavailable",
      isRetryable: true,
      headers: { "retry-after": "1" },
    });
  }
  const never = !Number.isFinite(admission.retryAfterMs);
  const retryHeaders: Record<string, string> = never
    ? { "x-should-retry": "false" }
    : {
        "retry-after": `${Math.max(1, Math.ceil(admission.retryAfterMs / 1000))}`,
        "retry-after-ms": `${Math.ceil(admission.retryAfterMs)}`,
      };
  const { quota, tokens } = admission;
  const bucketsAllow = (admission.requests?.allowed ?? true) && (tokens?.allowed ?? true);
  if (quota && !quota.allowed && bucketsAllow) {
    const resets = `it resets in ${waitText(quota.resetMs)}`;
    const asked = `This request may use up to about ${count(need.tokens)} tokens`;
    const message =
      need.tokens > quota.limit
        ? `${asked}, more than your whole token quota (${count(quota.limit)} this period); ${howToLower(need)}.`
        : quota.remaining > 0
          ? `${asked} and only ${count(quota.remaining)} of your token quota (${count(quota.limit)} this period) remain; ${howToLower(need)}, or wait: ${resets}.`
          : `You used your token quota for this period (${count(quota.limit)} tokens); ${resets}.`;
    return new AigwError(message, {
      status: 429,
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: { ...headers, ...retryHeaders, "x-should-retry": "false" },
    });
  }
  const { budget } = admission;
  if (budget && !budget.allowed && bucketsAllow && (quota?.allowed ?? true)) {
    const whose = owner === "route" ? "this model's budget" : "your budget";
    const limit = `${usd(budget.limit)} this period`;
    const asked = `This request may cost up to ${usd(need.cost ?? 0)}`;
    const resets = `it resets in ${waitText(budget.resetMs)}`;
    const message =
      (need.cost ?? 0) > budget.limit
        ? `${asked}, more than ${whose} allows in a whole period (${limit}); ${howToLower(need)}.`
        : budget.remaining > 0
          ? `${asked} and only ${usd(budget.remaining)} of ${whose} (${limit}) remains; ${howToLower(need)}, or wait: ${resets}.`
          : `${whose[0]?.toUpperCase()}${whose.slice(1)} (${limit}) is spent or held by requests in flight; ${resets}.`;
    return new AigwError(message, {
      status: 429,
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: { ...headers, ...retryHeaders, "x-should-retry": "false" },
    });
  }
  const tooLarge = tokens && !tokens.allowed && need.tokens > tokens.limit;
  return new AigwError(
    tooLarge
      ? `This request may use up to about ${count(need.tokens)} tokens, more than the token rate limit ever allows at once (${count(tokens.limit)}); ${howToLower(need)}.`
      : never
        ? "This request needs more than the rate limit ever allows at once."
        : "Rate limit reached; retry after the time in the Retry-After header.",
    {
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      headers: { ...headers, ...retryHeaders },
    },
  );
}
