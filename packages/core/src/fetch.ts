import { Cancellation } from "@aigw/provider";
import type { Gateway } from "./gateway.js";

const encoder = new TextEncoder();

/** Serves a Web-standard Request through the gateway (Hono, Next.js route handlers on Node). */
export async function fetchHandler(gateway: Gateway, request: Request): Promise<Response> {
  const url = new URL(request.url);
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  // Cancelling the returned stream must stop the upstream as surely as the client leaving.
  const cancellation = new Cancellation();
  const abort = () => cancellation.abort(request.signal.reason);
  if (request.signal.aborted) abort();
  else request.signal.addEventListener("abort", abort, { once: true });

  const response = await gateway.handle(
    {
      method: request.method,
      path: url.pathname + url.search,
      headers,
      body: request.body ?? undefined,
    },
    { cancellation },
  );
  const body = response.body;
  if (body === undefined || typeof body === "string" || body instanceof Uint8Array) {
    request.signal.removeEventListener("abort", abort);
    const nullBody = response.status === 204 || response.status === 304;
    return new Response(nullBody ? null : body, {
      status: response.status,
      headers: response.headers,
    });
  }
  const events = body[Symbol.asyncIterator]();
  const stream = new ReadableStream<Uint8Array>({
    async pull(streamController) {
      const next = await events.next();
      if (next.done) {
        request.signal.removeEventListener("abort", abort);
        streamController.close();
      } else {
        streamController.enqueue(encoder.encode(next.value.raw));
      }
    },
    async cancel(reason) {
      cancellation.abort(reason);
      await events.return?.();
    },
  });
  return new Response(stream, { status: response.status, headers: response.headers });
}
