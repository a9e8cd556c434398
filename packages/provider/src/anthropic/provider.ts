import { createHttpProvider, parseUpstreamUrl, type TransportOptions } from "../http-provider.js";
import { DEFAULT_RETRY } from "../retry.js";
import type { Provider } from "../types.js";
import { createAnthropicFormat } from "./format.js";

export interface AnthropicOptions extends TransportOptions {
  /** Sent as `x-api-key`. */
  apiKey: string;
  /**
   * The API's base URL, endpoints are appended to it; one without a path, as the Anthropic SDKs
   * take it, gets `/v1`. Default "https://api.anthropic.com/v1".
   */
  baseURL?: string;
  /** Sent as `anthropic-version` when the client sends none of its own. Default "2023-06-01". */
  version?: string;
  /** `max_tokens` sent when a request has none (Anthropic requires it). Default 4,096. */
  defaultMaxTokens?: number;
  /**
   * Drop what Anthropic cannot honour (`n` above 1, `temperature` above 1, `logprobs`) instead
   * of answering 400. Default false.
   */
  dropUnsupportedParams?: boolean;
  /** Told, once per name, of each request field that has no Anthropic counterpart and was left out. */
  onDroppedField?: (name: string) => void;
}

// Endpoints whose path below the base URL is their name; chat completions go to `messages`.
const nativePaths: ReadonlySet<string> = new Set(["models", "messages", "messages/count_tokens"]);

/**
 * A provider for Anthropic's Messages API, serving OpenAI chat completions requests (JSON and
 * streams) translated both ways, and the model list. The client's `anthropic-version` and
 * `anthropic-beta` headers are passed on. HTTP 529 (overloaded) is retried by default and reaches clients as 503.
 */
export function createAnthropic(options: AnthropicOptions): Provider {
  const url = parseUpstreamUrl(options.baseURL ?? "https://api.anthropic.com/v1", "baseURL");
  // The Anthropic SDKs take the base URL without /v1: one without a path gets it.
  const prefix = url.pathname.replace(/\/+$/, "") || "/v1";
  const defaultMaxTokens = options.defaultMaxTokens ?? 4096;
  if (!Number.isSafeInteger(defaultMaxTokens) || defaultMaxTokens < 1) {
    throw new TypeError(`defaultMaxTokens must be an integer >= 1, got ${defaultMaxTokens}`);
  }
  return createHttpProvider({
    ...options,
    kind: "anthropic",
    origin: url.origin,
    pathFor: (request) =>
      `${prefix}/${nativePaths.has(request.endpoint) ? request.endpoint : "messages"}${url.search}`,
    defaultHeaders: { "anthropic-version": options.version ?? "2023-06-01" },
    authHeaders: { "x-api-key": options.apiKey },
    defaultForwardHeaders: ["anthropic-beta", "anthropic-version"],
    retry: {
      ...options.retry,
      retryableStatusCodes: options.retry?.retryableStatusCodes ?? [
        ...DEFAULT_RETRY.retryableStatusCodes,
        529,
      ],
    },
    format: createAnthropicFormat({
      defaultMaxTokens,
      dropUnsupported: options.dropUnsupportedParams ?? false,
      onDroppedField: options.onDroppedField,
    }),
  });
}
