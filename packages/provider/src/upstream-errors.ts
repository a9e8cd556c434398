import { AigwError } from "./errors.js";
import { firstHeader, parseRetryAfter } from "./retry.js";

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamErrorContext {
  /** The provider's own key, removed from every message passed on. */
  apiKey?: string | undefined;
  retryableStatusCodes: readonly number[];
}

const REDACTED = "[redacted]";
const keyShaped = /\bsk-[\w*.-]+|(?<=\bBearer\s+)[\w.~+/=-]+/gi;

/** Removes the provider's key and anything shaped like a key from a message. */
export function redactSecrets(text: string, apiKey?: string): string {
  const withoutKey = apiKey ? text.replaceAll(apiKey, REDACTED) : text;
  return withoutKey.replace(keyShaped, REDACTED);
}

export function upstreamRequestIdOf(headers: ResponseHeaders): string | undefined {
  return firstHeader(headers["x-request-id"]);
}

interface UpstreamErrorFields {
  message?: string;
  type?: string;
  param?: string;
  code?: string;
}

function asText(value: unknown): string | undefined {
  if (typeof value === "string" && value !== "") return value;
  return typeof value === "number" ? String(value) : undefined;
}

/** Reads `{ error: { message, type, param, code } }`, `{ error: "..." }` or `{ message }`. */
function readErrorFields(body: string): UpstreamErrorFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof parsed !== "object" || parsed === null) return {};
  const { error } = parsed as { error?: unknown };
  if (typeof error === "string") return { message: error };
  const fields = (typeof error === "object" && error !== null ? error : parsed) as Record<
    string,
    unknown
  >;
  return {
    message: asText(fields.message),
    type: asText(fields.type),
    param: asText(fields.param),
    code: asText(fields.code),
  };
}

/** Turns an upstream's non-2xx response into the AigwError the client should see. */
export function createUpstreamError(
  status: number,
  headers: ResponseHeaders,
  body: string,
  context: UpstreamErrorContext,
): AigwError {
  const upstreamRequestId = upstreamRequestIdOf(headers);
  const retryAfterMs = parseRetryAfter(headers);
  const isRetryable = context.retryableStatusCodes.includes(status);
  const fields = readErrorFields(body);
  const message =
    fields.message === undefined ? undefined : redactSecrets(fields.message, context.apiKey);

  if (status === 401 || status === 403) {
    // The upstream's message is dropped: some providers echo the rejected key in it.
    return new AigwError(
      `The upstream rejected the gateway's credentials for this provider (HTTP ${status})`,
      {
        status: 502,
        type: "upstream_error",
        code: "upstream_auth_error",
        upstreamRequestId,
        upstreamStatus: status,
      },
    );
  }
  if (status === 429) {
    return new AigwError(message ?? "The upstream's rate limit was exceeded", {
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      isRetryable: true,
      retryAfterMs,
      headers:
        retryAfterMs === undefined ? {} : { "retry-after": String(Math.ceil(retryAfterMs / 1000)) },
      upstreamRequestId,
      upstreamStatus: status,
    });
  }
  if (status >= 400 && status < 500) {
    return new AigwError(message ?? `The upstream rejected the request with HTTP ${status}`, {
      status,
      type: fields.type ?? "invalid_request_error",
      param: fields.param,
      code: fields.code,
      isRetryable,
      retryAfterMs,
      upstreamRequestId,
      upstreamStatus: status,
    });
  }
  const detail = message === undefined ? "" : `: ${message}`;
  return new AigwError(`The upstream failed with HTTP ${status}${detail}`, {
    status: 502,
    type: "upstream_error",
    code: "upstream_error",
    isRetryable,
    retryAfterMs,
    upstreamRequestId,
    upstreamStatus: status,
  });
}

export function createTimeoutError(
  message: string,
  upstreamRequestId?: string,
  cause?: unknown,
): AigwError {
  return new AigwError(message, {
    status: 504,
    type: "timeout",
    code: "timeout",
    isRetryable: true,
    upstreamRequestId,
    cause,
  });
}

export function createInvalidResponseError(
  message: string,
  upstreamRequestId?: string,
  cause?: unknown,
): AigwError {
  return new AigwError(message, {
    status: 502,
    type: "upstream_error",
    code: "invalid_upstream_response",
    upstreamRequestId,
    cause,
  });
}

export function createStreamInterruptedError(
  upstreamRequestId?: string,
  cause?: unknown,
): AigwError {
  return new AigwError("The upstream stream ended before it was complete", {
    status: 502,
    type: "upstream_error",
    code: "stream_interrupted",
    isRetryable: true,
    upstreamRequestId,
    cause,
  });
}

// Failures to open a connection: nothing was sent, the upstream is out of reach.
const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);
// Failures of an open connection, or a response that is not valid HTTP.
const connectionCodes = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Maps a transport failure to an AigwError, or returns undefined when it is not one (a bug
 * or an abort, which the caller rethrows as is).
 */
export function createNetworkError(
  error: unknown,
  apiKey?: string,
  upstreamRequestId?: string,
): AigwError | undefined {
  const code = codeOf(error);
  if (code === undefined) return undefined;
  if (code === "UND_ERR_HEADERS_TIMEOUT") {
    return createTimeoutError(
      "The upstream sent no response headers in time",
      upstreamRequestId,
      error,
    );
  }
  if (code === "UND_ERR_BODY_TIMEOUT") {
    return createTimeoutError(
      "The upstream stopped sending data for longer than the read timeout",
      upstreamRequestId,
      error,
    );
  }
  const unreachable = unreachableCodes.has(code);
  if (!unreachable && !connectionCodes.has(code) && !code.startsWith("HPE_")) return undefined;
  const reason = redactSecrets((error as Error).message || code, apiKey);
  return new AigwError(
    unreachable
      ? `Could not reach the upstream: ${reason}`
      : `The connection to the upstream failed: ${reason}`,
    {
      status: 502,
      type: "upstream_error",
      code: unreachable ? "upstream_unreachable" : "upstream_connection_error",
      isRetryable: true,
      upstreamRequestId,
      cause: error,
    },
  );
}
