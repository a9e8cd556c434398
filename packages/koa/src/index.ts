import type { IncomingMessage, ServerResponse } from "node:http";
import type { Gateway } from "@aigw/core";
import { dispatchNodeRequest, parsedBodyOptions } from "@aigw/core/node";

export interface AigwKoaOptions {
  /** Serve only paths under this prefix ("/ai"), passing the others on; default: every path. */
  prefix?: string;
}

/** The parts of Koa's context the middleware uses. */
export interface KoaContext {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  url: string;
  /** `body` is whatever a body parser before the gateway left. */
  request: { body?: unknown };
  status: number;
  body: unknown;
  set(headers: Record<string, string>): void;
}

export type KoaMiddleware = (context: KoaContext, next: () => Promise<unknown>) => Promise<void>;

/**
 * Koa middleware serving the gateway: `app.use(aigw(gateway, { prefix: "/ai" }))` answers
 * `/ai/v1/chat/completions` through `ctx.status`, `ctx.set` and `ctx.body` (a Readable for
 * streams, pulled as the client reads). A body @koa/bodyparser already parsed is used as is.
 */
export function aigw(gateway: Gateway, options: AigwKoaOptions = {}): KoaMiddleware {
  const prefix = (options.prefix ?? "").replace(/\/$/, "");
  return async (context, next) => {
    const { path } = context;
    if (prefix && path !== prefix && !path.startsWith(`${prefix}/`)) {
      await next();
      return;
    }
    const response = await dispatchNodeRequest(gateway, context.req, context.res, {
      path: context.url.slice(prefix.length) || "/",
      ...parsedBodyOptions(context.req, context.request.body),
    });
    context.status = response.status;
    context.set(response.headers);
    if (response.body !== undefined) context.body = response.body;
  };
}
