import { existsSync } from "node:fs";
import { request as httpRequest } from "node:http";
import {
  type MockUpstream,
  type RedisServer,
  readSse,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, runServer, type ServerProcess, writeConfig } from "./run-server.js";

const chromiumPath = "/usr/bin/chromium";
const adminToken = "admin-key-for-the-status-page-0123";
const xssModel = "<img src=x onerror=alert(1)>";
const acme = createKey();
const beta = createKey();

let primary: MockUpstream;
let backup: MockUpstream;
let server: ServerProcess;
let statusURL: string;
let browser: Browser;

beforeAll(async () => {
  primary = await startMockUpstream();
  backup = await startMockUpstream();
  const config = await writeConfig(`
providers:
  primary: { type: openai-compatible, baseURL: "${primary.baseURL}", retry: { maxRetries: 0 } }
  backup: { type: openai-compatible, baseURL: "${backup.baseURL}", retry: { maxRetries: 0 } }
models:
  gpt-4o-mini:
    strategy: priority
    maxAttempts: 2
    targets: [{ provider: primary }, { provider: backup }]
  solo: { provider: primary, model: gpt-4o-mini, budget: { usd: 1, period: day } }
tenants:
  acme:
    keys: ['${acme.hash}']
    limits: { budget: { usd: 5, period: month } }
  beta:
    keys: ['${beta.hash}']
    limits: { requestsPerSecond: 0.001, burst: 1 }
admin:
  bearerToken: "${adminToken}"
  port: 0
  statusPage: {}
`);
  server = await runServer(["--config", config]);
  const started = server.lines.map((line) => JSON.parse(line)).find((line) => line.url);
  statusURL = started.statusPage;
  if (noBrowser) return;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await Promise.all([primary?.close(), backup?.close()]);
});

async function chat(key: string, model: string, stream = false) {
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: "Hello" }] }),
  });
  if (stream && response.ok) for await (const _event of readSse(response)) void _event;
  else await response.text();
  return response.status;
}

async function sendTraffic() {
  expect(await chat(acme.key, "gpt-4o-mini")).toBe(200);
  expect(await chat(acme.key, "gpt-4o-mini", true)).toBe(200);
  primary.enqueue({ kind: "status", status: 503 });
  expect(await chat(acme.key, "gpt-4o-mini")).toBe(200); // answered by the fallback
  expect(await chat(acme.key, xssModel)).toBe(404);
  primary.enqueue({ kind: "status", status: 429 });
  expect(await chat(acme.key, "solo")).toBe(429); // the upstream's 429
  expect(await chat(beta.key, "gpt-4o-mini")).toBe(200);
  expect(await chat(beta.key, "gpt-4o-mini")).toBe(429); // the gateway's own limit
}

const adminOrigin = () => new URL(statusURL).origin;

async function openPage(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    // A 401 is how the page learns it must show the login form, not a problem.
    const expected = /^Failed to load resource: .* status of 401\b/.test(message.text());
    if (message.type() === "error" && !expected) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  await page.goto(statusURL);
  return { page, problems, close: () => context.close() };
}

async function logIn(page: Page, key: string) {
  await page.getByLabel("Admin key").fill(key);
  await page.getByRole("button", { name: "Log in" }).click();
}

const cardText = (page: Page, id: string) =>
  page.getByTestId(id).locator(".value").textContent({ timeout: 10_000 });

// Without Debian's chromium the browser tests are skipped, except where they are required (CI).
const noBrowser = !existsSync(chromiumPath) && process.env.REQUIRE_CHROMIUM !== "1";

describe.skipIf(noBrowser)("the status page", () => {
  it("serves its JSON API to the admin key only, never to a tenant key", async () => {
    await sendTraffic();
    const read = (headers: Record<string, string> = {}) =>
      fetch(`${adminOrigin()}/admin/api/status`, { headers });
    expect((await read()).status).toBe(401);
    expect((await read({ authorization: `Bearer ${acme.key}` })).status).toBe(401);
    const response = await read({ authorization: `Bearer ${adminToken}` });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const status = (await response.json()) as {
      last_hour: object;
      spend: { today_usd: number };
      models: { name: string }[];
      recent: { model: string }[];
      tenant_limits: object[];
      route_budgets: object[];
      target_states: { id: string }[];
    };
    expect(status.last_hour).toMatchObject({
      requests: 7,
      errors: 3,
      rate_limited: { gateway: 1, upstream: 1 },
      fallbacks: 1,
      errors_by_type: {
        "gateway invalid_request_error": 1,
        "gateway rate_limit_error": 1,
        "upstream rate_limit_error": 1,
      },
    });
    expect(status.spend.today_usd).toBeGreaterThan(0);
    // A model no route serves counts as "(no route)", so made-up names take no place; the tail
    // shows the name asked for.
    expect(status.models.map((model) => model.name).sort()).toEqual([
      "(no route)",
      "gpt-4o-mini",
      "solo",
    ]);
    expect(status.recent.map((request) => request.model)).toContain(xssModel);
    expect(status.tenant_limits).toContainEqual(
      expect.objectContaining({ tenant: "acme", budget: expect.objectContaining({ limit: 5 }) }),
    );
    expect(status.route_budgets).toEqual([
      { route: "solo", budget: expect.objectContaining({ limit: 1, spent: 0 }) },
    ]);
    expect(status.target_states.map((target) => target.id).sort()).toEqual([
      "backup/gpt-4o-mini",
      "primary/gpt-4o-mini",
    ]);
    // The admin surface has a port of its own: the gateway's port does not serve it.
    expect((await fetch(`${server.url}/admin/status`)).status).toBe(404);
    const login = (token: string, headers: Record<string, string> = {}) =>
      fetch(`${adminOrigin()}/admin/login`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ token }),
      });
    expect((await login(acme.key)).status).toBe(401);
    expect((await login(adminToken, { "sec-fetch-site": "cross-site" })).status).toBe(403);
    expect((await login("x".repeat(5000))).status).toBe(413);
    const cookie = (await login(adminToken)).headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(
      /^aigw_admin=\d+\.[\w-]{43}; Max-Age=43200; Path=\/admin; HttpOnly; SameSite=Strict$/,
    );
    expect(cookie).not.toContain(adminToken);
    const session = cookie.split(";")[0] as string;
    // The cookie opens the API, also behind a proxy that sends its own Basic auth; a tampered
    // one does not.
    expect((await read({ cookie: session })).status).toBe(200);
    expect((await read({ cookie: session, authorization: "Basic dXNlcjpwYXNz" })).status).toBe(200);
    expect((await read({ cookie: `${session.slice(0, -2)}xx` })).status).toBe(401);
    const logout = await fetch(`${adminOrigin()}/admin/logout`, { method: "POST" });
    expect(logout.headers.get("set-cookie")).toMatch(/^aigw_admin=; Max-Age=0;/);
  });

  it("holds at most 32 live pages; those that went away free their places", async () => {
    const open = async () => {
      const abort = new AbortController();
      const response = await fetch(`${adminOrigin()}/admin/api/events`, {
        headers: { authorization: `Bearer ${adminToken}` },
        signal: abort.signal,
      });
      return { status: response.status, close: () => abort.abort() };
    };
    const streams = [];
    try {
      for (let index = 0; index < 32; index++) {
        const stream = await open();
        streams.push(stream);
        expect(stream.status).toBe(200);
      }
      const refused = await open();
      refused.close();
      expect(refused.status).toBe(503);
    } finally {
      for (const stream of streams) stream.close();
    }
    await waitFor(async () => {
      const stream = await open();
      stream.close();
      return stream.status === 200;
    });
  });

  it("logs in, shows the traffic as text, updates live and shows a request's attempts", async () => {
    const { page, problems, close } = await openPage();
    try {
      await expect(page.getByTestId("login")).toBeDefined();
      await logIn(page, acme.key);
      await page.getByText("That key was refused.").waitFor();
      await logIn(page, adminToken);
      await page.getByTestId("requests").waitFor();
      const requests = Number(await cardText(page, "requests"));
      expect(requests).toBeGreaterThanOrEqual(7);
      expect(await cardText(page, "rate-limited")).toMatch(/^1 gateway · [1-9]\d* upstream$/);
      expect(await cardText(page, "fallbacks")).toMatch(/^1 \/ 0$/);
      expect(await cardText(page, "spend")).toMatch(/^\$0\.0\d+ \/ \$0\.0\d+$/);
      expect(
        await page.getByTestId("tenants").locator("tr", { hasText: "acme" }).textContent(),
      ).toMatch(/of \$5/);
      expect(await page.getByTestId("route-budgets").textContent()).toMatch(/solo.*\$0 of \$1/);

      // The model name is shown as the text it is, and nothing it names was made or run.
      await expect(page.getByText(xssModel).first().textContent()).resolves.toBe(xssModel);
      expect(await page.locator('img[src="x"]').count()).toBe(0);

      // Live: a request sent now shows up without a reload.
      expect(await chat(acme.key, "gpt-4o-mini")).toBe(200);
      await waitFor(async () => Number(await cardText(page, "requests")) === requests + 1, {
        timeoutMs: 10_000,
      });

      // The fallback's two attempts, on a click on its row.
      await page
        .getByTestId("recent")
        .locator("tr", { hasText: "backup/gpt-4o-mini" })
        .first()
        .click();
      const attempts = page.getByTestId("request-detail").getByTestId("attempts");
      await attempts.waitFor();
      const rows = await attempts.locator("tbody tr").allTextContents();
      expect(rows).toEqual([
        expect.stringContaining("primary/gpt-4o-mini"),
        expect.stringContaining("backup/gpt-4o-mini"),
      ]);
      expect(rows[0]).toContain("503");
      if (process.env.UPDATE_SCREENSHOT) {
        await page.screenshot({
          path: new URL("../docs/status-page.png", import.meta.url).pathname,
          fullPage: true,
        });
      }
      expect(problems).toEqual([]);
    } finally {
      await close();
    }
  });

  it("has no horizontal scroll at 1280 and at 390 pixels", async () => {
    for (const width of [1280, 390]) {
      const { page, problems, close } = await openPage({ width, height: 800 });
      try {
        await logIn(page, adminToken);
        await page.getByTestId("recent").waitFor();
        await page.getByTestId("chart-traffic").locator("canvas").waitFor();
        // Evaluated in the page, where `document` is.
        const overflow = await page.evaluate<number>(
          "document.documentElement.scrollWidth - document.documentElement.clientWidth",
        );
        expect(overflow, `horizontal overflow at ${width} px`).toBeLessThanOrEqual(0);
        if (width === 390) {
          // A table scrolled sideways stays where it was across a live update.
          const wrap = page.getByTestId("recent").locator("xpath=..");
          // Once its rows make the table wider than its place: before that it cannot scroll.
          await waitFor(
            () =>
              wrap.evaluate((element: { scrollLeft: number }) => {
                element.scrollLeft = 120;
                return element.scrollLeft === 120;
              }),
            { timeoutMs: 10_000 },
          );
          const since = await page.getByTestId("since").textContent();
          await waitFor(async () => (await page.getByTestId("since").textContent()) !== since, {
            timeoutMs: 10_000,
          });
          const left = await wrap.evaluate((element: { scrollLeft: number }) => element.scrollLeft);
          expect(left).toBe(120);
        }
        expect(problems).toEqual([]);
      } finally {
        await close();
      }
    }
  });
});

describe("the admin surface on the gateway's own port, two instances sharing Redis", () => {
  it("shows each instance its own traffic, and both the shared budget", async () => {
    const redis: RedisServer = await startRedis();
    const servers: ServerProcess[] = [];
    try {
      const config = await writeConfig(`
providers:
  primary: { type: openai-compatible, baseURL: "${primary.baseURL}", retry: { maxRetries: 0 } }
models:
  gpt-4o-mini: { provider: primary }
tenants:
  acme:
    keys: ['${acme.hash}']
    limits: { budget: { usd: 5, period: month }, requestsPerSecond: 50 }
limits:
  store: redis
  redis: { url: "redis://127.0.0.1:${redis.port}" }
admin:
  bearerToken: "${adminToken}"
  statusPage: {}
`);
      const first = await runServer(["--config", config]);
      servers.push(first);
      const second = await runServer(["--config", config]);
      servers.push(second);
      for (let index = 0; index < 3; index++) {
        const response = await fetch(`${first.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${acme.key}` },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "Hi" }],
          }),
        });
        expect(response.status).toBe(200);
        await response.text();
      }
      const status = async (instance: ServerProcess) => {
        const response = await fetch(`${instance.url}/admin/api/status`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        expect(response.status).toBe(200);
        return (await response.json()) as {
          last_hour: { requests: number };
          tenant_limits: {
            tenant: string;
            budget: { spent: number } | null;
            rate_limits: unknown;
          }[];
        };
      };
      const [ofFirst, ofSecond] = [await status(first), await status(second)];
      expect(ofFirst.last_hour.requests).toBe(3);
      expect(ofSecond.last_hour.requests).toBe(0);
      const spent = ofFirst.tenant_limits[0]?.budget?.spent ?? 0;
      expect(spent).toBeGreaterThan(0);
      expect(ofSecond.tenant_limits).toEqual([
        {
          object: "usage",
          tenant: "acme",
          quota: null,
          budget: expect.objectContaining({ spent, limit: 5 }),
          rate_limits: { requests_per_second: 50, burst: null, tokens_per_minute: null },
        },
      ]);
      // The page itself, under /admin/ of the gateway's port, with a policy that runs no inline script.
      const page = await fetch(`${second.url}/admin/status`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect((await fetch(`${second.url}/admin/api/status`)).status).toBe(401);
      // A name of its own pointed at this address gets nothing (DNS rebinding).
      const rebound = await new Promise<number | undefined>((resolve, reject) => {
        const headers = { host: "evil.example", authorization: `Bearer ${adminToken}` };
        httpRequest(`${second.url}/admin/api/status`, { headers }, (response) => {
          response.resume();
          resolve(response.statusCode);
        })
          .on("error", reject)
          .end();
      });
      expect(rebound).toBe(403);
      expect(
        (
          await fetch(`${second.url}/admin/api/status`, {
            headers: { authorization: `Bearer ${acme.key}` },
          })
        ).status,
      ).toBe(401);
    } finally {
      await Promise.all(servers.map((instance) => instance.stop()));
      await redis.stop();
    }
  });
});
