import { createHttpProvider, parseUpstreamUrl, type TransportOptions } from "../http-provider.js";
import type { Provider, ProviderRequest } from "../types.js";
import { createGeminiFormat, geminiModelName } from "./format.js";

export interface GeminiOptions extends TransportOptions {
  /** Sent as `x-goog-api-key`, never in the URL (where access logs and traces would keep it). */
  apiKey: string;
  /**
   * The API's base URL, with its version; endpoints are appended to it. Default
   * "https://generativelanguage.googleapis.com/v1beta".
   */
  baseURL?: string;
  /** Drop what Gemini cannot honour (`logprobs`) instead of answering 400. Default false. */
  dropUnsupportedParams?: boolean;
  /** Told, once per name, of each request field that has no Gemini counterpart and was left out. */
  onDroppedField?: (name: string) => void;
}

// Each endpoint's method on the model, `models/{model}:{method}`.
const methods: Partial<Record<ProviderRequest["endpoint"], string>> = {
  embeddings: "batchEmbedContents",
  "messages/count_tokens": "countTokens",
};

/**
 * A provider for Google's Generative Language API (Gemini): OpenAI chat completions (JSON and
 * streams), embeddings and the model list, translated both ways, and Anthropic's count_tokens
 * through Gemini's own count. HTTP 429 (RESOURCE_EXHAUSTED) and 503 (UNAVAILABLE) are retried,
 * as by every provider; a 400 for a bad API key counts as the gateway's credentials refused.
 */
export function createGemini(options: GeminiOptions): Provider {
  const url = parseUpstreamUrl(
    options.baseURL ?? "https://generativelanguage.googleapis.com/v1beta",
    "baseURL",
  );
  const prefix = url.pathname.replace(/\/+$/, "");
  const query = url.searchParams;
  if (query.has("key")) {
    throw new TypeError("baseURL must not carry the API key (?key=): give it as apiKey");
  }
  const search = (extra: Record<string, string>) => {
    const params = new URLSearchParams(query);
    for (const [name, value] of Object.entries(extra)) params.set(name, value);
    const text = params.toString();
    return text === "" ? "" : `?${text}`;
  };
  return createHttpProvider({
    ...options,
    kind: "gemini",
    origin: url.origin,
    pathFor(request) {
      if (request.endpoint === "models") return `${prefix}/models${search({ pageSize: "1000" })}`;
      const model = encodeURIComponent(
        geminiModelName(request.body?.model).slice("models/".length),
      );
      if (request.endpoint === "chat/completions" && request.body?.stream === true) {
        return `${prefix}/models/${model}:streamGenerateContent${search({ alt: "sse" })}`;
      }
      const method = methods[request.endpoint] ?? "generateContent";
      return `${prefix}/models/${model}:${method}${search({})}`;
    },
    authHeaders: { "x-goog-api-key": options.apiKey },
    defaultForwardHeaders: [],
    format: createGeminiFormat({
      dropUnsupported: options.dropUnsupportedParams ?? false,
      onDroppedField: options.onDroppedField,
    }),
  });
}
