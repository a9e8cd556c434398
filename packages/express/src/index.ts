import type { IncomingMessage, ServerResponse } from "node:http";
import type { Gateway } from "@aigw/core";
import { handleNodeRequest, parsedBodyOptions } from "@aigw/core/node";

/** What Express hands a middleware; `body` is whatever a body parser before it left. */
export type ExpressRequest = IncomingMessage & { body?: unknown };

export type ExpressMiddleware = (
  request: ExpressRequest,
  response: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/**
 * Express (4 or 5) middleware serving the gateway under its mount path:
 * `app.use("/ai", aigw(gateway))` answers `/ai/v1/chat/completions`. A body that
 * `express.json()` already parsed is used as is; otherwise the raw body is read.
 */
export function aigw(gateway: Gateway): ExpressMiddleware {
  return (request, response, next) => {
    handleNodeRequest(gateway, request, response, {
      // Express strips the mount path from `url` (and keeps it in `originalUrl`).
      path: request.url ?? "/",
      ...parsedBodyOptions(request, request.body),
    }).catch(next);
  };
}
