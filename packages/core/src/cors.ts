import type { HeaderValue } from "./types.js";

export interface CorsOptions {
  /** Allowed origins, or "*" for any (then without `credentials`). */
  origins: string[] | "*";
  methods?: string[];
  /** Request headers a browser may send; defaults to the ones the request asks for. */
  headers?: string[];
  /** Seconds a browser may cache a preflight answer. */
  maxAge?: number;
  credentials?: boolean;
}

const exposedHeaders = [
  "x-request-id",
  "x-trace-id",
  "x-aigw-provider",
  "x-aigw-attempts",
  "x-aigw-cache",
  "x-upstream-request-id",
  "x-should-retry",
  "retry-after",
  "retry-after-ms",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
].join(", ");

export interface Cors {
  /** Headers to add to a response for this request's origin (empty when not allowed). */
  responseHeaders(origin: HeaderValue): Record<string, string>;
  /** The answer to a preflight request, or undefined when the request is not one. */
  preflight(
    method: string,
    headers: Record<string, HeaderValue>,
  ): { status: number; headers: Record<string, string> } | undefined;
}

/** Throws a TypeError for `origins: "*"` with `credentials: true`, which CORS forbids. */
export function createCors(options: CorsOptions): Cors {
  const allowAny = options.origins === "*";
  if (allowAny && options.credentials) {
    throw new TypeError(
      'cors: origins "*" cannot be combined with credentials: true (the CORS standard forbids it: any web page could then send requests with the user\'s credentials); list the allowed origins instead',
    );
  }
  const allowed = new Set(allowAny ? [] : options.origins);
  const methods = (options.methods ?? ["GET", "POST", "OPTIONS"]).join(", ");
  const maxAge = String(options.maxAge ?? 600);

  function allowOrigin(origin: HeaderValue): string | undefined {
    if (typeof origin !== "string") return undefined;
    if (allowAny) return "*";
    return allowed.has(origin) ? origin : undefined;
  }

  function baseHeaders(origin: string): Record<string, string> {
    const headers: Record<string, string> = { "access-control-allow-origin": origin };
    if (origin !== "*") headers.vary = "origin";
    if (options.credentials) headers["access-control-allow-credentials"] = "true";
    return headers;
  }

  return {
    responseHeaders(origin) {
      const allowedOrigin = allowOrigin(origin);
      if (!allowedOrigin) return {};
      return { ...baseHeaders(allowedOrigin), "access-control-expose-headers": exposedHeaders };
    },
    preflight(method, headers) {
      if (method !== "OPTIONS" || !headers["access-control-request-method"]) return undefined;
      const allowedOrigin = allowOrigin(headers.origin);
      if (!allowedOrigin) return { status: 204, headers: {} };
      const requested = headers["access-control-request-headers"];
      return {
        status: 204,
        headers: {
          ...baseHeaders(allowedOrigin),
          "access-control-allow-methods": methods,
          "access-control-allow-headers":
            options.headers?.join(", ") ?? (typeof requested === "string" ? requested : ""),
          "access-control-max-age": maxAge,
        },
      };
    },
  };
}
