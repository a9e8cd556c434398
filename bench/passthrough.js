// The yardstick: the least a proxy can do, forwarding bytes both ways over an undici Pool.
import { createServer } from "node:http";
import { Pool } from "undici";

// No cap on connections, as aigw by default: slow streams each hold one open upstream.
const pool = new Pool(process.argv[2]);
const server = createServer(async (request, response) => {
  try {
    const upstream = await pool.request({
      path: request.url,
      method: request.method,
      headers: { "content-type": request.headers["content-type"] ?? "application/json" },
      body: request,
    });
    response.writeHead(upstream.statusCode, upstream.headers);
    upstream.body.pipe(response);
  } catch {
    response.writeHead(502).end();
  }
});
server.listen(0, "127.0.0.1", () =>
  process.stdout.write(`http://127.0.0.1:${server.address().port}\n`),
);
process.on("SIGTERM", () => pool.close().then(() => process.exit(0)));
