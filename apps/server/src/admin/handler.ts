import { readFileSync } from "node:fs";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { bearerTokenCheck, createHostCheck, type Gateway, type Logger } from "@aigw/core";
import type { StatusRecorder } from "@aigw/core/status";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import { createSessions, sessionCookie } from "./session.js";

export interface AdminOptions {
  gateway: Gateway;
  bearerToken: string;
  /** The status page's data; without it only /admin/targets is served. */
  status?:
    | {
        recorder: StatusRecorder;
        /**
         * Configured tenants, whose quotas and budgets the page reads, and the rate limits
         * each has (shown as configured).
         */
        tenants: readonly { name: string; rateLimits: RateLimits | null }[];
        sessionHours: number;
      }
    | undefined;
  /** Serves GET /metrics too (the admin listener, when metrics.port is its port). */
  metrics?: RequestListener | undefined;
  /** The `Host` names served, as the gateway's `allowedHosts`; undefined: any. */
  allowedHosts?: readonly string[] | undefined;
  logger: Logger;
}

/** A tenant's configured request and token rates, as the status API shows them. */
export interface RateLimits {
  requests_per_second: number | null;
  burst: number | null;
  tokens_per_minute: number | null;
}

export interface AdminHandler {
  listener: RequestListener;
  /** Ends the live streams of open status pages. */
  close(): void;
}

/** Milliseconds between two live updates of an open status page. */
const updateIntervalMs = 2_000;
/** How long one read of the status serves every page and API call. */
const cacheMs = 1_000;
/** Status pages open at once; more get 503. */
const maxLiveStreams = 32;
/** Updates in a row a live page may miss, still reading an earlier one, before it is dropped. */
const maxSkippedUpdates = 15;
/** How long a status read may take (a store that does not answer) before it fails. */
const readTimeoutMs = 5_000;
/** The login form's body, at most. */
const maxLoginBytes = 4_096;
/** Tenants whose limits one status read looks up. */
const maxTenantsShown = 500;

const pageSecurityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aigw status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/status/app.css">
<script defer src="/admin/status/app.js"></script>
</head>
<body>
<noscript>The status page needs JavaScript; the same numbers are at GET /admin/api/status.</noscript>
</body>
</html>
`;

/** The built page's script and styles, read once; undefined when the build left them out. */
function readAssets() {
  const directory = new URL("./status-page/", import.meta.url);
  try {
    return {
      "app.js": readFileSync(new URL("app.js", directory)),
      "app.css": readFileSync(new URL("app.css", directory)),
    };
  } catch {
    return undefined;
  }
}

function sendJson(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  response.end(JSON.stringify(body));
}

function sendError(response: ServerResponse, status: number, message: string, type: string) {
  sendJson(response, status, { error: { message, type } });
}

/** `promise`, or a rejection once it took `readTimeoutMs`. */
function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the status read took more than ${readTimeoutMs} ms`)),
      readTimeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A POST body of at most `limit` bytes; undefined when it is larger (the rest is not read:
 * the caller answers and the connection closes) or breaks off.
 */
function readSmallBody(request: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      request.off("data", onData);
      request.pause();
      resolve(undefined);
    };
    if (Number(request.headers["content-length"]) > limit) {
      resolve(undefined);
      return;
    }
    request.on("data", onData);
    request.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.once("error", () => resolve(undefined));
    request.once("close", () => resolve(undefined));
  });
}

/** The token of a login: JSON `{"token": "..."}` or a form's `token=...`. */
function loginToken(contentType: string | undefined, body: string): string | undefined {
  if (contentType?.startsWith("application/json")) {
    try {
      const parsed = JSON.parse(body) as { token?: unknown };
      return typeof parsed?.token === "string" ? parsed.token : undefined;
    } catch {
      return undefined;
    }
  }
  return new URLSearchParams(body).get("token") ?? undefined;
}

/**
 * A POST a browser sent from another page than this origin's (Sec-Fetch-Site, which current
 * browsers send and no page can forge): refused, whatever it carries. Clients that are not
 * browsers send none. The Host header is no guide here: proxies rewrite it.
 */
function crossSite(request: IncomingMessage): boolean {
  const site = request.headers["sec-fetch-site"];
  return site !== undefined && site !== "same-origin" && site !== "none";
}

/**
 * The admin surface under /admin/: GET /admin/targets, and with `status` the status page
 * (/admin/status), its login (POST /admin/login, /admin/logout) and its JSON API
 * (/admin/api/status, /admin/api/requests/{id}, /admin/api/events as server-sent events).
 * Every read needs the admin token, as `Authorization: Bearer` or through the login's
 * HttpOnly, SameSite=Strict cookie; tenant keys open nothing here.
 */
export function createAdminHandler(options: AdminOptions): AdminHandler {
  const { gateway, status, logger } = options;
  const sessions = createSessions(options.bearerToken, (status?.sessionHours ?? 12) * 3_600_000);
  const assets = status ? readAssets() : undefined;
  if (status && !assets) {
    logger.error({}, "the status page was not built: run pnpm build (apps/server)");
  }
  const hostAllowed = options.allowedHosts && createHostCheck(options.allowedHosts);
  const bearerIsAdminKey = bearerTokenCheck(options.bearerToken);
  const live = new Map<ServerResponse, { skipped: number }>();
  let ticker: NodeJS.Timeout | undefined;
  let closed = false;

  /** A Bearer header decides; anything else (a proxy's Basic auth) leaves it to the cookie. */
  function authorized(request: IncomingMessage): boolean {
    if (/^bearer[ \t]/i.test(request.headers.authorization ?? "")) {
      return bearerIsAdminKey(request.headers);
    }
    const cookies = parseCookies(request.headers.cookie ?? "");
    return sessions.isValid(cookies[sessionCookie]);
  }

  /** The session cookie's Set-Cookie: `value` for `maxAge` seconds (0 ends it). */
  const sessionSetCookie = (value: string, maxAge: number, secure = false) =>
    serializeCookie(sessionCookie, value, {
      httpOnly: true,
      sameSite: "strict",
      path: "/admin",
      maxAge,
      secure,
    });

  /** One read serves every page and API call within a second: store reads stay bounded. */
  let cached: { at: number; body: Promise<object>; settled: boolean } | undefined;
  function statusBody(): Promise<object> {
    const now = Date.now();
    // A read still going is waited for, however old: reads never pile up.
    if (!cached || (cached.settled && now - cached.at >= cacheMs)) {
      const entry = { at: now, body: withTimeout(readStatus()), settled: false };
      cached = entry;
      entry.body.then(
        () => {
          entry.settled = true;
          entry.at = Date.now();
        },
        () => {
          if (cached === entry) cached = undefined;
        },
      );
    }
    return cached.body;
  }

  async function readStatus() {
    if (!status) throw new Error("no status recorder");
    const tenants = status.tenants.slice(0, maxTenantsShown);
    const limits = await Promise.all(
      tenants.map(async ({ name, rateLimits }) => {
        try {
          return { ...(await gateway.tenantUsage(name)), rate_limits: rateLimits };
        } catch (error) {
          logger.warn(
            { tenant: name, err: error },
            "status page: a tenant's limits could not be read",
          );
          const usage = { object: "usage", tenant: name, quota: null, budget: null };
          return { ...usage, rate_limits: rateLimits, unavailable: true };
        }
      }),
    );
    const routeBudgets = await gateway.routeBudgets().catch((error: unknown) => {
      logger.warn({ err: error }, "status page: the routes' budgets could not be read");
      return [];
    });
    return {
      ...status.recorder.snapshot(),
      target_states: gateway.targetStates(),
      tenant_limits: limits,
      route_budgets: routeBudgets,
    };
  }

  /** Sends an update to every open page, then waits the interval: updates never overlap. */
  async function update() {
    ticker = undefined;
    if (live.size === 0) return;
    try {
      const event = `event: status\ndata: ${JSON.stringify(await statusBody())}\n\n`;
      for (const [response, page] of live) {
        // A page still reading the last update skips this one; one that stopped is dropped.
        if (response.writableLength === 0) {
          page.skipped = 0;
          response.write(event);
        } else if (++page.skipped > maxSkippedUpdates) response.destroy();
      }
    } catch (error) {
      logger.error({ err: error }, "status page: the live update failed");
    }
    if (live.size > 0 && !closed) scheduleUpdate();
  }

  function scheduleUpdate() {
    ticker ??= setTimeout(update, updateIntervalMs);
    ticker.unref();
  }

  async function openLiveStream(response: ServerResponse) {
    if (live.size >= maxLiveStreams) {
      sendError(response, 503, "Too many status pages are open; close one.", "overloaded");
      return;
    }
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    live.set(response, { skipped: 0 });
    response.once("close", () => live.delete(response));
    const first = JSON.stringify(await statusBody());
    // Shut down, or the page went away, while the status was read.
    if (closed || response.writableEnded || response.destroyed) return;
    response.write(`retry: 5000\nevent: status\ndata: ${first}\n\n`);
    scheduleUpdate();
  }

  async function login(request: IncomingMessage, response: ServerResponse) {
    if (crossSite(request)) {
      sendError(response, 403, "A login must come from this page.", "permission_error");
      return;
    }
    const body = await readSmallBody(request, maxLoginBytes);
    if (body === undefined) {
      response.setHeader("connection", "close");
      sendError(
        response,
        413,
        `A login is at most ${maxLoginBytes} bytes.`,
        "invalid_request_error",
      );
      return;
    }
    const token = loginToken(request.headers["content-type"], body);
    if (token === undefined || !sessions.isAdminToken(token)) {
      sendError(response, 401, "That is not the admin key.", "authentication_error");
      return;
    }
    const secure = request.headers["x-forwarded-proto"] === "https";
    response.writeHead(204, {
      "set-cookie": sessionSetCookie(sessions.issue(), sessions.maxAgeSeconds, secure),
      "cache-control": "no-store",
    });
    response.end();
  }

  function logout(response: ServerResponse) {
    response.writeHead(204, { "set-cookie": sessionSetCookie("", 0) });
    response.end();
  }

  async function route(request: IncomingMessage, response: ServerResponse, path: string) {
    const method = request.method === "HEAD" ? "GET" : request.method;
    const notFound = () =>
      sendError(response, 404, `Not found: ${request.method} ${path.slice(0, 200)}`, "not_found");
    if (hostAllowed && !hostAllowed(request.headers.host)) {
      // A page on a DNS name of its own, pointed at this address, gets nothing here.
      return sendError(
        response,
        403,
        "Requests for this host name are not accepted here.",
        "permission_error",
      );
    }
    if (path === "/metrics" && options.metrics) return options.metrics(request, response);

    if (status && (path === "/admin" || path === "/admin/")) {
      response.writeHead(302, { location: "/admin/status" }).end();
      return;
    }
    if (status && path === "/admin/status" && method === "GET") {
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        ...pageSecurityHeaders,
      });
      response.end(page);
      return;
    }
    const asset = status && /^\/admin\/status\/(app\.js|app\.css)$/.exec(path)?.[1];
    if (asset && method === "GET") {
      const content = assets?.[asset as keyof NonNullable<typeof assets>];
      if (!content) return sendError(response, 500, "The status page was not built.", "api_error");
      response.writeHead(200, {
        "content-type": asset.endsWith(".js")
          ? "text/javascript; charset=utf-8"
          : "text/css; charset=utf-8",
        "cache-control": "no-cache",
        ...pageSecurityHeaders,
      });
      response.end(content);
      return;
    }
    if (status && path === "/admin/login" && request.method === "POST") {
      return login(request, response);
    }
    if (status && path === "/admin/logout" && request.method === "POST") {
      return logout(response);
    }

    const reads =
      path === "/admin/targets" ||
      (status &&
        (path === "/admin/api/status" ||
          path === "/admin/api/events" ||
          path.startsWith("/admin/api/requests/")));
    if (!reads) return notFound();
    if (method !== "GET") {
      response.writeHead(405, { allow: "GET, HEAD" });
      response.end();
      return;
    }
    if (!authorized(request)) {
      return sendError(
        response,
        401,
        "The admin endpoints need 'Authorization: Bearer <admin key>' or a login at /admin/status.",
        "authentication_error",
      );
    }
    if (path === "/admin/targets") {
      return sendJson(response, 200, { object: "list", data: gateway.targetStates() });
    }
    if (!status) return notFound();
    if (path === "/admin/api/status") return sendJson(response, 200, await statusBody());
    if (path === "/admin/api/events") {
      if (request.method === "HEAD") {
        response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" }).end();
        return;
      }
      return openLiveStream(response);
    }
    let id: string;
    try {
      id = decodeURIComponent(path.slice("/admin/api/requests/".length));
    } catch {
      id = "";
    }
    const found = status.recorder.recentRequest(id);
    if (!found) {
      return sendError(response, 404, "No such request among the recent ones.", "not_found");
    }
    return sendJson(response, 200, found);
  }

  return {
    listener(request, response) {
      const path = (request.url ?? "/").split("?")[0] ?? "/";
      route(request, response, path).catch((error: unknown) => {
        logger.error({ err: error, path: path.slice(0, 200) }, "admin request failed");
        if (!response.headersSent)
          sendError(response, 500, "The admin request failed.", "api_error");
        else response.destroy();
      });
    },
    close() {
      closed = true;
      clearTimeout(ticker);
      ticker = undefined;
      for (const response of live.keys()) response.end();
      live.clear();
    },
  };
}
