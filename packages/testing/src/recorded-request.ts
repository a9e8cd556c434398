import type { IncomingMessage, ServerResponse } from "node:http";

/** One request as a mock upstream received it, and how its answer went. */
export interface RecordedRequest {
  method: string;
  /** Includes the query string. */
  path: string;
  /** Lower-case names; repeated headers are joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  body: unknown;
  rawBody: string;
  /** The client closed the connection before the mock finished responding. */
  clientClosed: boolean;
  /** The mock wrote its full response. */
  finished: boolean;
  /** Events of a streamed reply handed to the socket so far (they stop while nobody reads). */
  eventsWritten: number;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Reads a request whole and records it. `destroy` cuts the connection as a fault does (not
 * counted as the client closing); `closing` tells whether the mock itself is shutting down.
 * Resolves undefined when the client went away while sending the body.
 */
export async function recordRequest(
  request: IncomingMessage,
  response: ServerResponse,
  closing: () => boolean,
): Promise<{ record: RecordedRequest; destroy(): void } | undefined> {
  const record: RecordedRequest = {
    method: request.method ?? "GET",
    path: request.url ?? "/",
    headers: Object.fromEntries(
      Object.entries(request.headersDistinct).map(([name, values]) => [
        name,
        (values ?? []).join(", "),
      ]),
    ),
    body: undefined,
    rawBody: "",
    clientClosed: false,
    finished: false,
    eventsWritten: 0,
  };
  let destroyedByMock = false;
  response.on("finish", () => {
    record.finished = true;
  });
  response.on("close", () => {
    if (!response.writableFinished && !destroyedByMock && !closing()) record.clientClosed = true;
  });
  try {
    record.rawBody = await readBody(request);
  } catch {
    return undefined;
  }
  record.body = record.rawBody === "" ? undefined : parseJson(record.rawBody);
  return {
    record,
    destroy() {
      destroyedByMock = true;
      request.socket.destroy();
    },
  };
}
