import type { AigwError, Endpoint, SseEvent } from "@aigw/provider";

/**
 * A wire format clients speak to the gateway: OpenAI's API today, Anthropic's Messages API
 * next. What is specific to one lives behind this interface, and the request loop knows
 * protocols only through it; a new protocol is a new file in this folder, listed in
 * `gateway.ts`.
 */
export interface Protocol {
  /** What logs and hooks call it ("openai"). */
  readonly name: string;
  /** The endpoints it serves, by request path ("/v1/chat/completions"). */
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  /**
   * Checks what the gateway itself relies on in a request body and gives the requested model.
   * @throws AigwError 400 `invalid_request_error` naming the field at fault.
   */
  validate(endpoint: Endpoint, body: Record<string, unknown>): string;
  /** An error as the protocol's JSON error body. */
  errorBody(error: AigwError): string;
  /** An error after a stream started, as the protocol's frame; nothing follows it. */
  streamErrorEvent(endpoint: Endpoint, error: AigwError): SseEvent;
}
