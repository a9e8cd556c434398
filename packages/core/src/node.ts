import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Gateway } from "./gateway.js";
import type { GatewayResponse } from "./types.js";

export interface NodeRequestOptions {
  /** The path below the mount point, when a framework mounted the gateway under a prefix. */
  path?: string;
  /** A body a framework already parsed as JSON. */
  parsedBody?: unknown;
}

/** A `(req, res)` listener for `http.createServer`, writing straight to the socket. */
export function toNodeListener(gateway: Gateway) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    void handleNodeRequest(gateway, request, response);
  };
}

/**
 * Serves one Node request: the request is cancelled when the response closes before it
 * finished, and stream writes wait for `drain`, so a slow reader never makes us buffer.
 */
export async function handleNodeRequest(
  gateway: Gateway,
  request: IncomingMessage,
  response: ServerResponse,
  options: NodeRequestOptions = {},
): Promise<void> {
  const controller = new AbortController();
  response.once("close", () => {
    if (!response.writableFinished)
      controller.abort(new Error("The client closed the connection."));
  });
  const parsed = options.parsedBody !== undefined;
  const gatewayResponse = await gateway.handle(
    {
      method: request.method ?? "GET",
      path: options.path ?? request.url ?? "/",
      headers: request.headers,
      // Leaving early (413) must not destroy the socket the error is written to.
      body: parsed ? undefined : request.iterator({ destroyOnReturn: false }),
      parsedBody: options.parsedBody,
      clientAddress: request.socket.remoteAddress,
    },
    { signal: controller.signal },
  );
  await writeNodeResponse(response, gatewayResponse, controller.signal);
}

export async function writeNodeResponse(
  response: ServerResponse,
  gatewayResponse: GatewayResponse,
  signal: AbortSignal,
): Promise<void> {
  const { status, headers, body } = gatewayResponse;
  if (response.destroyed) {
    if (body !== undefined && typeof body === "object" && Symbol.asyncIterator in body) {
      await body[Symbol.asyncIterator]().return?.();
    }
    return;
  }
  if (body === undefined || typeof body === "string" || body instanceof Uint8Array) {
    if (body !== undefined) headers["content-length"] = `${Buffer.byteLength(body)}`;
    response.writeHead(status, headers);
    response.end(body);
    return;
  }
  response.writeHead(status, headers);
  response.flushHeaders();
  try {
    for await (const event of body) {
      if (!response.write(event.raw)) await once(response, "drain", { signal });
    }
    response.end();
  } catch {
    // The client went away while we waited for drain: the stream's own cleanup already ran.
    response.destroy();
  }
}
