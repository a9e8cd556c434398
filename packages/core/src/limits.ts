import { AigwError, type Endpoint, firstHeader } from "@aigw/provider";
import type { Admission, Limiter } from "@aigw/ratelimit";
import type { Tenant } from "./tenants.js";
import type { GatewayRequest } from "./types.js";

export interface LimitsOptions {
  /** Limits for tenants without their own, and for everyone in open mode. */
  limiter?: Limiter;
  /** Limit per tenant, or per tenant and user (the body's `user`, or `userHeader`). */
  keyBy?: "tenant" | "tenant+user";
  userHeader?: string;
  /** Open mode: the header that names the client; the client address otherwise. */
  clientHeader?: string;
}

const defaultOutputTokens = 4096;

/**
 * The tokens a request may use, reserved before it runs: a quarter of its prompt's bytes,
 * plus the output it allows (embeddings have none).
 */
export function estimateTokens(endpoint: Endpoint, body: Record<string, unknown>): number {
  const prompt = body.messages ?? body.input ?? body.prompt ?? "";
  const promptTokens = Math.ceil(
    Buffer.byteLength(typeof prompt === "string" ? prompt : JSON.stringify(prompt)) / 4,
  );
  if (endpoint === "embeddings") return promptTokens;
  const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens;
  const output =
    typeof maxOutput === "number" && Number.isInteger(maxOutput) && maxOutput >= 0
      ? maxOutput
      : defaultOutputTokens;
  return promptTokens + output;
}

function headerValue(request: GatewayRequest, name: string | undefined): string | undefined {
  return name ? firstHeader(request.headers[name.toLowerCase()]) : undefined;
}

/** Whose budget a request spends. */
export function limitKey(
  options: LimitsOptions,
  tenant: Tenant,
  open: boolean,
  request: GatewayRequest,
  body: Record<string, unknown> | undefined,
): string {
  if (open) {
    return headerValue(request, options.clientHeader) ?? request.clientAddress ?? "anonymous";
  }
  if (options.keyBy !== "tenant+user") return tenant.id;
  const user = headerValue(request, options.userHeader) ?? body?.user;
  return typeof user === "string" && user ? `${tenant.id}:${user}` : tenant.id;
}

function duration(milliseconds: number): string {
  return milliseconds < 1000
    ? `${Math.ceil(milliseconds)}ms`
    : `${(milliseconds / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
}

/** OpenAI's x-ratelimit-* headers for what the admission saw; they replace the upstream's. */
export function rateLimitHeaders(admission: Admission): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [suffix, result] of [
    ["requests", admission.requests],
    ["tokens", admission.tokens],
  ] as const) {
    if (!result) continue;
    headers[`x-ratelimit-limit-${suffix}`] = `${result.limit}`;
    headers[`x-ratelimit-remaining-${suffix}`] = `${Math.max(0, result.remaining)}`;
    headers[`x-ratelimit-reset-${suffix}`] = duration(result.resetMs);
  }
  return headers;
}

/** The error for a denied admission: 503 when the store is down and limits fail closed. */
export function admissionError(admission: Admission, headers: Record<string, string>): AigwError {
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
  const quotaDenied = admission.quota && !admission.quota.allowed;
  const bucketsAllow = (admission.requests?.allowed ?? true) && (admission.tokens?.allowed ?? true);
  if (quotaDenied && bucketsAllow) {
    return new AigwError(
      "You exceeded your token quota for this period; it resets at the period's end.",
      {
        status: 429,
        type: "insufficient_quota",
        code: "insufficient_quota",
        headers: { ...headers, ...retryHeaders, "x-should-retry": "false" },
      },
    );
  }
  return new AigwError(
    never
      ? "This request needs more tokens than the rate limit ever allows at once."
      : "Rate limit reached; retry after the time in the Retry-After header.",
    {
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      headers: { ...headers, ...retryHeaders },
    },
  );
}
