import type { RequestListener } from "node:http";
import { bearerTokenCheck } from "@aigw/core";
import type { Metrics } from "@aigw/metrics";

/**
 * The handler of a listener of its own for GET /metrics (the usual practice: the scrape port
 * stays off the public one). Every other path is a 404, every other method a 405, and with
 * `bearerToken` a request without `Authorization: Bearer <token>` a 401.
 */
export function metricsHandler(metrics: Metrics, bearerToken: string | undefined): RequestListener {
  const allowed = bearerToken ? bearerTokenCheck(bearerToken) : () => true;
  return async (request, response) => {
    const path = request.url?.split("?")[0];
    if (path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("Not found: try /metrics\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end();
      return;
    }
    if (!allowed(request.headers)) {
      response
        .writeHead(401, { "www-authenticate": "Bearer", "content-type": "text/plain" })
        .end("GET /metrics needs 'Authorization: Bearer <token>' with its token.\n");
      return;
    }
    let exposition: string;
    try {
      exposition = await metrics.expose();
    } catch {
      response
        .writeHead(500, { "content-type": "text/plain" })
        .end("The metrics could not be read.\n");
      return;
    }
    response.writeHead(200, { "content-type": metrics.contentType });
    response.end(request.method === "HEAD" ? undefined : exposition);
  };
}
