import { describe, expect, it } from "vitest";
import { AigwError } from "./errors.js";
import { createSecretScrubber } from "./secrets.js";
import { createNetworkError, createUpstreamError, redactSecrets } from "./upstream-errors.js";

const secrets = createSecretScrubber(["sk-provider-secret"]);
const context = { secrets, retryableStatusCodes: [408, 429, 500, 502, 503] };
const errorBody = (message: string, extra: object = {}) =>
  JSON.stringify({ error: { message, type: "invalid_request_error", ...extra } });

describe("redactSecrets", () => {
  it("removes the provider's key and key-shaped strings", () => {
    expect(redactSecrets("key abc123XYZ was wrong", createSecretScrubber(["abc123XYZ"]))).toBe(
      "key [redacted] was wrong",
    );
    expect(redactSecrets("Incorrect API key provided: sk-proj-AbC_12-***xyz.")).toBe(
      "Incorrect API key provided: [redacted]",
    );
    expect(redactSecrets("header was Bearer eyJhbGciOi.J9x")).toBe("header was Bearer [redacted]");
    expect(redactSecrets("a task-based disk-usage note")).toBe("a task-based disk-usage note");
  });
});

describe("createUpstreamError", () => {
  it("passes a 4xx through with the upstream's fields", () => {
    const error = createUpstreamError(
      400,
      { "x-request-id": "req_1" },
      errorBody("max_tokens is too large", { param: "max_tokens", code: "invalid_value" }),
      context,
    );
    expect(AigwError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      status: 400,
      message: "max_tokens is too large",
      type: "invalid_request_error",
      param: "max_tokens",
      code: "invalid_value",
      isRetryable: false,
      upstreamRequestId: "req_1",
    });
  });

  it("falls back to a message naming the status, and retries listed 4xx", () => {
    const error = createUpstreamError(408, {}, "<html>timeout</html>", context);
    expect(error).toMatchObject({
      status: 408,
      type: "invalid_request_error",
      isRetryable: true,
    });
    expect(error.message).toContain("408");
  });

  it("scrubs secrets from passed-through messages", () => {
    const error = createUpstreamError(
      404,
      {},
      errorBody("no model for sk-provider-secret or sk-other1234"),
      context,
    );
    expect(error.message).toBe("no model for [redacted] or [redacted]");
  });

  it.each([401, 403])("turns %i into a 502 without the upstream's message", (status) => {
    const error = createUpstreamError(
      status,
      {},
      errorBody("Incorrect API key provided: sk-provider-secret"),
      context,
    );
    expect(error).toMatchObject({
      status: 502,
      type: "upstream_error",
      code: "upstream_auth_error",
      isRetryable: false,
    });
    expect(error.message).not.toContain("sk-");
    expect(error.message).toContain("credentials");
  });

  it("keeps a 429 with its wait", () => {
    const error = createUpstreamError(
      429,
      { "retry-after-ms": "1200" },
      errorBody("Rate limit reached for gpt-4o"),
      context,
    );
    expect(error).toMatchObject({
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      message: "Rate limit reached for gpt-4o",
      isRetryable: true,
      retryAfterMs: 1200,
      headers: { "retry-after": "2" },
    });
  });

  it("turns a 5xx into a 502 naming the status and message", () => {
    const error = createUpstreamError(
      503,
      { "retry-after": "1" },
      JSON.stringify({ error: "overloaded" }),
      context,
    );
    expect(error).toMatchObject({
      status: 502,
      type: "upstream_error",
      code: "upstream_error",
      isRetryable: true,
      retryAfterMs: 1000,
    });
    expect(error.message).toBe("The upstream failed with HTTP 503: overloaded");
    expect(createUpstreamError(501, {}, "", context).isRetryable).toBe(false);
  });
});

describe("createUpstreamError relays only what reveals no credential", () => {
  const key = "sk-live-9fQ2mZxR7tLp4WvK8cYh";
  const keyed = { secrets: createSecretScrubber([key]), retryableStatusCodes: [] };
  const relayed = (fields: object) =>
    createUpstreamError(400, {}, JSON.stringify({ error: fields }), keyed);

  it.each(["param", "code", "type"])("drops %s when it holds the key", (field) => {
    const error = relayed({ message: "bad", [field]: key });
    expect(JSON.stringify(error.toBody())).not.toContain(key.slice(8));
    expect(error.type).toBe("invalid_request_error");
  });

  it.each([
    ["lowercased", key.toLowerCase()],
    ["split", `${key.slice(0, 14)} / ${key.slice(14)}`],
    ["base64", Buffer.from(key).toString("base64")],
  ])("keeps a message with the key %s from the client", (_form, copy) => {
    const error = relayed({ message: `you sent ${copy}` });
    expect(error.message).toMatch(/withheld|^you sent \[redacted\]$/);
    expect(createSecretScrubber([key]).reveals(error.message)).toBe(false);
  });

  it("redacts a verbatim key and keeps the rest of the message", () => {
    expect(relayed({ message: `key ${key} is not valid here` }).message).toBe(
      "key [redacted] is not valid here",
    );
  });

  it("bounds every field: a long message is cut, long or odd identifiers are dropped", () => {
    const error = relayed({
      message: "x".repeat(100_000),
      type: "t".repeat(500),
      code: "has spaces and \n newlines",
      param: "p".repeat(1000),
    });
    expect(error.message.length).toBeLessThanOrEqual(1025);
    expect(error).toMatchObject({ type: "invalid_request_error", code: null, param: null });
  });

  it("drops an upstream request id that holds the key or is not an id", () => {
    const withKey = createUpstreamError(400, { "x-request-id": key }, "{}", keyed);
    const odd = createUpstreamError(400, { "x-request-id": "a b".repeat(200) }, "{}", keyed);
    expect(withKey.upstreamRequestId).toBeUndefined();
    expect(odd.upstreamRequestId).toBeUndefined();
  });
});

describe("createNetworkError", () => {
  const failure = (code: string, message = `failed with ${code}`) =>
    Object.assign(new Error(message), { code });

  it.each(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT"])(
    "maps %s to a retryable 502 upstream_unreachable",
    (code) => {
      expect(createNetworkError(failure(code))).toMatchObject({
        status: 502,
        type: "upstream_error",
        code: "upstream_unreachable",
        isRetryable: true,
      });
    },
  );

  it.each(["ECONNRESET", "UND_ERR_SOCKET", "HPE_INVALID_CONSTANT"])(
    "maps %s to a retryable 502",
    (code) => {
      expect(createNetworkError(failure(code))).toMatchObject({
        status: 502,
        code: "upstream_connection_error",
        isRetryable: true,
      });
    },
  );

  it.each(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"])("maps %s to a 504", (code) => {
    expect(createNetworkError(failure(code), "req_9")).toMatchObject({
      status: 504,
      type: "timeout",
      code: "timeout",
      isRetryable: true,
      upstreamRequestId: "req_9",
    });
  });

  it("leaves other errors alone, and tells clients the kind of failure, not the address", () => {
    expect(createNetworkError(new TypeError("bug"))).toBeUndefined();
    expect(createNetworkError(failure("UND_ERR_ABORTED"))).toBeUndefined();
    const error = createNetworkError(failure("ECONNRESET", "reset near key-12345"));
    expect(error?.message).toBe("The connection to the upstream failed (ECONNRESET)");
    const refused = createNetworkError(
      failure("ECONNREFUSED", "connect ECONNREFUSED 10.1.2.3:443"),
    );
    expect(refused?.message).toBe("Could not reach the upstream (ECONNREFUSED)");
  });
});
