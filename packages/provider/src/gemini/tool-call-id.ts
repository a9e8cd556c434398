import { randomUUID } from "node:crypto";

/**
 * Gemini's function calls carry an id (Gemini 3 and later, which wants it echoed in the
 * response) and a `thoughtSignature` that must come back with the call in the next request.
 * OpenAI and Anthropic clients send back only a tool call's id, so both travel inside it:
 * `<Gemini's id, or one made here>[__ts_<signature as base64url>]`. Made ids start with
 * `call_aigw_` and are not sent to Gemini.
 */

const signatureMark = "__ts_";
const madePrefix = "call_aigw_";

export function encodeToolCallId(
  geminiId: string | undefined,
  thoughtSignature: string | undefined,
): string {
  const id = geminiId ?? `${madePrefix}${randomUUID().replaceAll("-", "")}`;
  if (thoughtSignature === undefined) return id;
  return `${id}${signatureMark}${Buffer.from(thoughtSignature, "base64").toString("base64url")}`;
}

/** Gemini's own id (undefined for one made here) and the signature inside a tool call id. */
export function decodeToolCallId(id: string): { id?: string; thoughtSignature?: string } {
  const at = id.indexOf(signatureMark);
  const own = at === -1 ? id : id.slice(0, at);
  const decoded: { id?: string; thoughtSignature?: string } = {};
  if (!own.startsWith(madePrefix) && own !== "") decoded.id = own;
  if (at !== -1) {
    const signature = id.slice(at + signatureMark.length);
    decoded.thoughtSignature = Buffer.from(signature, "base64url").toString("base64");
  }
  return decoded;
}
