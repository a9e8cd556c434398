import { AigwError } from "./errors.js";
import { createHttpProvider, parseUpstreamUrl, type TransportOptions } from "./http-provider.js";
import type { Provider } from "./types.js";

export interface AzureOpenAIOptions extends TransportOptions {
  /** The resource's endpoint, e.g. "https://NAME.openai.azure.com". */
  endpoint: string;
  /** Sent as the `api-key` header. */
  apiKey: string;
  /** The `api-version` query parameter, e.g. "2024-10-21". */
  apiVersion: string;
  /** Deployment name per model; a model not listed is used as its own deployment name. */
  deployments?: Record<string, string>;
}

/** A provider for Azure OpenAI: the OpenAI transport with Azure's URLs and key header. */
export function createAzureOpenAI(options: AzureOpenAIOptions): Provider {
  const url = parseUpstreamUrl(options.endpoint, "endpoint");
  if (!options.apiVersion) throw new TypeError("apiVersion is required");
  const prefix = url.pathname.replace(/\/+$/, "");
  const query = `?api-version=${encodeURIComponent(options.apiVersion)}`;
  const deployments = new Map(Object.entries(options.deployments ?? {}));
  return createHttpProvider({
    ...options,
    kind: "azure",
    origin: url.origin,
    pathFor(request) {
      if (request.endpoint === "models") return `${prefix}/openai/models${query}`;
      const model = request.body?.model;
      const deployment = typeof model === "string" ? (deployments.get(model) ?? model) : "";
      if (deployment === "") {
        throw new AigwError("model is required to choose an Azure deployment", {
          status: 400,
          type: "invalid_request_error",
          param: "model",
        });
      }
      return `${prefix}/openai/deployments/${encodeURIComponent(deployment)}/${request.endpoint}${query}`;
    },
    authHeaders: { "api-key": options.apiKey },
  });
}
