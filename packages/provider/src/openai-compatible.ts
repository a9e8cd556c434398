import { createHttpProvider, parseUpstreamUrl, type TransportOptions } from "./http-provider.js";
import type { Provider } from "./types.js";

export interface OpenAICompatibleOptions extends TransportOptions {
  /** The API's base URL, endpoints are appended to it: e.g. "https://api.openai.com/v1". */
  baseURL: string;
  /** Sent as `authorization: Bearer <apiKey>`; omit for upstreams without auth. */
  apiKey?: string;
  /** Sent as `OpenAI-Organization`: the organization the key bills. Clients cannot choose it. */
  organization?: string;
  /** Sent as `OpenAI-Project`: the project the key bills. Clients cannot choose it. */
  project?: string;
  /** What the provider reports as its kind. Default "openai". */
  kind?: string;
}

/** A provider for OpenAI and every server that speaks its HTTP API. */
export function createOpenAICompatible(options: OpenAICompatibleOptions): Provider {
  const url = parseUpstreamUrl(options.baseURL, "baseURL");
  const prefix = url.pathname.replace(/\/+$/, "");
  const query = url.search;
  return createHttpProvider({
    ...options,
    kind: options.kind ?? "openai",
    origin: url.origin,
    pathFor: (request) => `${prefix}/${request.endpoint}${query}`,
    headers: {
      ...(options.organization ? { "openai-organization": options.organization } : {}),
      ...(options.project ? { "openai-project": options.project } : {}),
      ...options.headers,
    },
    authHeaders: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
  });
}
