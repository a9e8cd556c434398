import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Cancellation } from "@aigw/provider";
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
    handleNodeRequest(gateway, request, response).catch(() => response.destroy());
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
  const cancellation = new Cancellation();
  response.once("close", () => {
    if (!response.writableFinished)
      cancellation.abort(new Error("The client closed the connection."));
  });
  const parsed = options.parsedBody !== undefined;
  const gatewayResponse = await gateway.handle(
    {
      method: request.method ?? "GET",
      path: options.path ?? request.url ?? "/",
      headers: request.headers,
      body: parsed ? undefined : await readBody(request, gateway.maxBodyBytes),
      parsedBody: options.parsedBody,
      clientAddress: request.socket.remoteAddress,
    },
    { cancellation },
  );
  await writeNodeResponse(response, gatewayResponse, cancellation);
}

/**
 * Collects the body with plain events (cheaper than async iteration). Past the limit it stops
 * reading without destroying the socket, so the gateway's 413 can still be written; Node
 * discards the rest once the response ends.
 */
function readBody(request: IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  if (request.method === "GET" || request.method === "HEAD") return Promise.resolve(undefined);
  if (Number(request.headers["content-length"]) > limitBytes) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      request.off("data", onData).off("end", finish).off("error", reject);
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limitBytes) finish();
    };
    request.on("data", onData).on("end", finish).on("error", reject);
  });
}

export async function writeNodeResponse(
  response: ServerResponse,
  gatewayResponse: GatewayResponse,
  cancellation: Cancellation,
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
      if (!response.write(event.raw)) {
        await once(response, "drain", { signal: cancellation.signal });
      }
    }
    response.end();
  } catch {
    // The client went away while we waited for drain: the stream's own cleanup already ran.
    response.destroy();
  }
}
