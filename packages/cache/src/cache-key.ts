import { createHash } from "node:crypto";

export interface CacheKeyParts {
  tenant: string;
  /** The API path, such as "/v1/chat/completions". */
  endpoint: string;
  /**
   * Who answers: a provider, or a route that balances several (the key must not depend on
   * which of them did).
   */
  upstream: string;
  /** The model asked for. */
  model: string;
  /** The parsed JSON request body. */
  body: unknown;
  /**
   * Top-level body fields that change only how an answer is delivered or attributed, not the
   * answer, left out of the key. Default: OpenAI's `stream`, `stream_options` and `user`.
   */
  deliveryFields?: ReadonlySet<string>;
  /**
   * Number literals of the body's text that its parsed form cannot hold exactly (a 20-digit
   * `seed`), in the order written: two bodies that differ only there get different keys.
   */
  exactNumbers?: readonly string[];
}

const openAIDeliveryFields: ReadonlySet<string> = new Set(["stream", "stream_options", "user"]);

// Part of every key, so that a change of the canonical form never reads entries of the old one.
const keyVersion = "aigw-cache-key-1";

/** JSON with object keys sorted at every depth; undefined where JSON.stringify omits a value. */
function canonicalJson(value: unknown, omitted?: ReadonlySet<string>): string | undefined {
  if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    return undefined;
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => canonicalJson(item) ?? "null").join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const members: string[] = [];
    for (const name of Object.keys(value).sort()) {
      if (omitted?.has(name)) continue;
      const member = canonicalJson((value as Record<string, unknown>)[name]);
      if (member !== undefined) members.push(`${JSON.stringify(name)}:${member}`);
    }
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A hex SHA-256 of the request's canonical form: the same for the same request whatever the
 * order of its object keys, and different for any change of a parameter. The `deliveryFields`
 * at the top of the body are left out.
 */
export function cacheKey(parts: CacheKeyParts): string {
  const scope = [keyVersion, parts.tenant, parts.endpoint, parts.upstream, parts.model];
  const body = canonicalJson(parts.body, parts.deliveryFields ?? openAIDeliveryFields) ?? "null";
  const numbers = parts.exactNumbers?.length ? `,${JSON.stringify(parts.exactNumbers)}` : "";
  const canonical = `[${scope.map((part) => JSON.stringify(part)).join(",")},${body}${numbers}]`;
  return createHash("sha256").update(canonical).digest("hex");
}
