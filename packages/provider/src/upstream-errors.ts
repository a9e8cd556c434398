import { AigwError } from "./errors.js";
import { firstHeader, parseRetryAfter } from "./retry.js";
import { REDACTED, type SecretScrubber } from "./secrets.js";

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamErrorContext {
  /** The provider's credentials: a field holding one in any form is dropped or withheld. */
  secrets: SecretScrubber;
  retryableStatusCodes: readonly number[];
}

/** The error fields an upstream may pass on to clients and logs, each checked and bounded. */
export interface RelayedErrorFields {
  message: string | undefined;
  type: string | undefined;
  param: string | undefined;
  code: string | undefined;
}

const keyShaped = /\bsk-[\w*.-]+|(?<=\bBearer\s+)[\w.~+/=-]+/gi;
/** Longest upstream message passed on, in characters; longer ones are cut. */
const MAX_MESSAGE_LENGTH = 1024;
const WITHHELD_MESSAGE =
  "(the upstream's message was withheld: it contained the gateway's credentials)";
const typePattern = /^[A-Za-z][\w.-]{0,63}$/;
const codePattern = /^[\w.:-]{1,64}$/;
const paramPattern = /^[\w.[\]$/-]{1,128}$/;
const requestIdPattern = /^[\w.:/+=-]{1,200}$/;

/** Whether a request id (a client's, an upstream's) is a plain id of at most 200 characters. */
export function isPlainRequestId(id: string): boolean {
  return requestIdPattern.test(id);
}

/** Removes the provider's credentials (verbatim copies) and anything shaped like a key. */
export function redactSecrets(text: string, secrets?: SecretScrubber): string {
  return (secrets ? secrets.redact(text) : text).replace(keyShaped, REDACTED);
}

/**
 * The upstream's request id (`x-request-id`, or Anthropic's `request-id`), when it is a plain,
 * bounded id that reveals no credential.
 */
export function upstreamRequestIdOf(
  headers: ResponseHeaders,
  secrets?: SecretScrubber,
): string | undefined {
  // Anthropic names it request-id.
  const id = firstHeader(headers["x-request-id"] ?? headers["request-id"]);
  return id !== undefined && isPlainRequestId(id) && !secrets?.reveals(id) ? id : undefined;
}

function asText(value: unknown): string | undefined {
  if (typeof value === "string" && value !== "") return value;
  return typeof value === "number" ? String(value) : undefined;
}

function token(value: unknown, pattern: RegExp, secrets: SecretScrubber): string | undefined {
  const text = asText(value);
  return text !== undefined && pattern.test(text) && !secrets.reveals(text) ? text : undefined;
}

function boundedMessage(value: unknown, secrets: SecretScrubber): string | undefined {
  const text = asText(value);
  if (text === undefined) return undefined;
  const cut = text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text;
  const withoutCopies = secrets.redact(cut);
  // Checked before key-shaped strings are cut out, which could hide a longer copy's rest.
  return secrets.reveals(withoutCopies) ? WITHHELD_MESSAGE : redactSecrets(withoutCopies);
}

/**
 * What of an upstream's error object may reach the client and the logs: `type`, `code` and
 * `param` when they are short identifiers that reveal no credential (dropped otherwise), and
 * `message` cut to 1,024 characters, with credentials and key-shaped strings redacted (or
 * withheld whole when a credential shows through in another form).
 */
export function relayedErrorFields(
  fields: Record<string, unknown>,
  secrets: SecretScrubber,
): RelayedErrorFields {
  const relayed = {
    message: boundedMessage(fields.message, secrets),
    type: token(fields.type, typePattern, secrets),
    param: token(fields.param, paramPattern, secrets),
    code: token(fields.code, codePattern, secrets),
  };
  // A credential cut into pieces, each in another field, shows once they are read together.
  const together = [relayed.type, relayed.code, relayed.param, relayed.message].join("");
  if (!secrets.reveals(together)) return relayed;
  return { message: WITHHELD_MESSAGE, type: undefined, param: undefined, code: undefined };
}

/** Reads `{ error: { message, type, param, code } }`, `{ error: "..." }` or `{ message }`. */
function readErrorFields(body: string, secrets: SecretScrubber): RelayedErrorFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return relayedErrorFields({}, secrets);
  const { error } = parsed as { error?: unknown };
  if (typeof error === "string") return relayedErrorFields({ message: error }, secrets);
  const fields = (typeof error === "object" && error !== null ? error : parsed) as Record<
    string,
    unknown
  >;
  return relayedErrorFields(fields, secrets);
}

/** Turns an upstream's non-2xx response into the AigwError the client should see. */
export function createUpstreamError(
  status: number,
  headers: ResponseHeaders,
  body: string,
  context: UpstreamErrorContext,
): AigwError {
  const { secrets } = context;
  const upstreamRequestId = upstreamRequestIdOf(headers, secrets);
  const retryAfterMs = parseRetryAfter(headers);
  const isRetryable = context.retryableStatusCodes.includes(status);
  const fields = readErrorFields(body, secrets);
  const { message } = fields;

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
  if (status === 529) {
    // Anthropic's "overloaded": a status OpenAI clients do not know, and a passing one.
    return new AigwError(`The upstream is overloaded (HTTP 529)${detail}`, {
      status: 503,
      type: "upstream_error",
      code: "upstream_overloaded",
      isRetryable,
      retryAfterMs,
      upstreamRequestId,
      upstreamStatus: status,
    });
  }
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
  // Clients learn the kind of failure, never the upstream's address (it stays in `cause`).
  return new AigwError(
    unreachable
      ? `Could not reach the upstream (${code})`
      : `The connection to the upstream failed (${code})`,
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
