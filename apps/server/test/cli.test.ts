import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

const cli = new URL("../dist/cli.js", import.meta.url).pathname;
const root = new URL("../../..", import.meta.url).pathname;
const { version } = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
) as { version: string };

interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, in `cwd`, with only PATH (and `env`) in its environment. */
function run(file: string, args: string[], env: Record<string, string> = {}, cwd = root) {
  return new Promise<Finished>((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const aigw = (args: string[], env?: Record<string, string>) =>
  run(process.execPath, [cli, ...args], env);

let running: ServerProcess | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

const onlyHere = "providers: { echo: { type: echo } }\nmodels: { only-here: { provider: echo } }\n";

describe("the aigw command line", () => {
  it("prints its usage and version, and starts nothing", async () => {
    for (const flag of ["--help", "-h"]) {
      const help = await aigw([flag]);
      expect(help).toMatchObject({ code: 0, stderr: "" });
      expect(help.stdout).toMatch(/^Usage:\n {2}aigw \[--config FILE\]/);
      expect(help.stdout).toContain("aigw check");
      expect(help.stdout).toContain("aigw keys create [--json]");
    }
    for (const flag of ["--version", "-v"]) {
      expect(await aigw([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
    }
  });

  it("refuses unknown options, commands and stray arguments with the usage, exit 2", async () => {
    const cases: [string[], string][] = [
      [["--conifg", "aigw.yaml"], "unknown option '--conifg'"],
      [["serve"], "unknown command 'serve'"],
      [["keys"], "keys needs a command: keys create"],
      [["keys", "delete"], "unknown keys command 'delete'"],
      [["--config"], "argument missing"],
      [["--config="], "--config needs a file path"],
      [["--json"], "--json goes with keys create only"],
      [["keys", "create", "--config", "x.yaml"], "keys create reads no config"],
    ];
    for (const [args, message] of cases) {
      const result = await aigw(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain("Usage:");
    }
  });

  it("reads --config FILE, --config=FILE, -c FILE and AIGW_CONFIG alike", async () => {
    const file = await writeConfig(onlyHere);
    for (const [args, env] of [
      [["--config", file], {}],
      [[`--config=${file}`], {}],
      [["-c", file], {}],
      [["--", "--config", file], {}],
      [[], { AIGW_CONFIG: file }],
    ] as [string[], Record<string, string>][]) {
      running = await runServer(args, env);
      const models = (await (await fetch(`${running.url}/v1/models`)).json()) as {
        data: { id: string }[];
      };
      expect(models.data.map((model) => model.id)).toEqual(["only-here"]);
      await running.stop();
    }
  });

  it("says at startup which version, config, tenants, stores and metrics are running", async () => {
    const file = await writeConfig(
      [
        "tenants:",
        `  a: { keys: ["${"a".repeat(64)}"] }`,
        "  b: {}",
        "cache: { store: memory }",
        onlyHere,
      ].join("\n"),
    );
    running = await runServer(["--config", file]);
    const startup = JSON.parse(running.lines.find((line) => line.includes('"url"')) as string);
    expect(startup).toMatchObject({
      msg: `aigw ${version} listening on ${running.url}`,
      url: running.url,
      version,
      config: file,
      models: ["only-here"],
      tenants: 2,
      limitStore: "memory",
      cacheStore: "memory",
      metrics: `${running.url}/metrics`,
    });
    await running.stop();
    running = await runServer([]);
    const bare = JSON.parse(running.lines.find((line) => line.includes('"url"')) as string);
    expect(bare).toMatchObject({ config: "none (environment)", tenants: 0, cacheStore: "off" });
  });

  it("serves /metrics on a port of its own, or behind a bearer token, when configured", async () => {
    const token = "metrics-token-0123456789";
    const startup = (server: ServerProcess) =>
      JSON.parse(server.lines.find((line) => line.includes('"url"')) as string) as {
        metrics: string;
      };
    const status = async (url: string, headers: Record<string, string> = {}) =>
      (await fetch(url, { headers })).status;

    running = await runServer(["-c", await writeConfig(`metrics: { port: 0 }\n${onlyHere}`)]);
    const separate = startup(running).metrics;
    expect(separate).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(separate).not.toBe(`${running.url}/metrics`);
    expect(await status(`${running.url}/metrics`)).toBe(404);
    const scraped = await fetch(separate);
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("aigw_active_requests");
    expect(await status(separate.replace("/metrics", "/v1/models"))).toBe(404);
    await running.stop();

    for (const extra of [`port: 0, bearerToken: ${token}`, `bearerToken: ${token}`]) {
      running = await runServer(["-c", await writeConfig(`metrics: { ${extra} }\n${onlyHere}`)]);
      const url = startup(running).metrics;
      expect(await status(url)).toBe(401);
      expect(await status(url, { authorization: "Bearer wrong-token-0123456789" })).toBe(401);
      expect(await status(url, { authorization: `Bearer ${token}` })).toBe(200);
      expect(await status(url, { authorization: `bearer ${token}` })).toBe(200);
      await running.stop();
    }
    const checked = await aigw([
      "check",
      "-c",
      await writeConfig(`metrics: { bearerToken: ${token} }\n${onlyHere}`),
    ]);
    expect(checked.stdout).not.toContain(token);
    expect(checked.stdout).toContain('bearerToken: "***"');
  });

  it("checks a config: the effective settings with secrets masked, exit 0; errors, exit 1", async () => {
    const secrets = [
      "sk-upstream-0123456789",
      "Bearer hdr-secret-42",
      "redis-pass-77",
      "url-pass-55",
      "query-key-66",
      "guardrails-secret-88",
      "T000/B000/hook-path-99",
      "hook-header-11",
    ];
    const file = await writeConfig(
      [
        "providers:",
        `  o: { type: openai, baseURL: "https://me:${secrets[3]}@api.openai.com/v1?key=${secrets[4]}", apiKey: ${secrets[0]}, headers: { authorization: "${secrets[1]}" } }`,
        'models: { "gpt-*": { provider: o } }',
        `limits: { store: redis, redis: { url: "redis://user:${secrets[2]}@127.0.0.1:6379" }, budgetWebhook: { url: "https://hooks.example.com/${secrets[6]}", headers: { x-token: ${secrets[7]} } } }`,
        `cache: { store: redis, redis: { url: "redis://:${secrets[2]}@127.0.0.1:6379" } }`,
        `guardrails: { secret: ${secrets[5]} }`,
      ].join("\n"),
    );
    const checked = await aigw(["check", "--config", file]);
    expect(checked.code).toBe(0);
    for (const secret of secrets) expect(checked.stdout).not.toContain(secret);
    expect(checked.stdout).toContain(`# ${file}`);
    expect(checked.stdout).toContain('apiKey: "***"');
    expect(checked.stdout).toContain('authorization: "***"');
    expect(checked.stdout).toContain("url: redis://user:***@127.0.0.1:6379");
    expect(checked.stdout).toContain("url: redis://:***@127.0.0.1:6379");
    expect(checked.stdout).toContain('secret: "***"');
    expect(checked.stdout).toContain("url: https://hooks.example.com/***");
    const misspelt = await writeConfig(
      `${onlyHere}guardrails: { secret: sixteen-characters-at-least, default: { pii: { actions: { US_SNN: block } } } }\n`,
    );
    const refusedEntity = await aigw(["check", "-c", misspelt]);
    expect(refusedEntity.code).toBe(1);
    expect(refusedEntity.stderr).toContain("guardrails.default.pii.actions.US_SNN: unknown entity");
    // Defaults are filled in.
    expect(checked.stdout).toMatch(/port: 8080\n/);
    expect(checked.stdout).toMatch(/commandTimeoutMs: 500\n/);

    const broken = await writeConfig(`${onlyHere}limits: { default: { rateLimit: 5 } }\n`);
    const refused = await aigw(["check", "-c", broken]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain(
      "limits.default: unknown key 'rateLimit'; valid keys here: requestsPerSecond, burst, tokensPerMinute, quota",
    );
  });

  it("creates keys, as the README's pnpm command says, and as JSON for scripts", async () => {
    const json = await run("pnpm", [
      "--filter",
      "@aigw/server",
      "exec",
      "aigw",
      "keys",
      "create",
      "--json",
    ]);
    expect(json.code).toBe(0);
    const created = JSON.parse(json.stdout) as { key: string; sha256: string };
    expect(Object.keys(created)).toEqual(["key", "sha256"]);
    expect(created.key).toMatch(/^aigw-[A-Za-z0-9_-]{43}$/);
    expect(created.sha256).toBe(createHash("sha256").update(created.key).digest("hex"));

    const text = await aigw(["keys", "create"]);
    expect(text.code).toBe(0);
    const key = /^key: +(\S+)$/m.exec(text.stdout)?.[1] as string;
    const digest = /^sha256: +(\S+)$/m.exec(text.stdout)?.[1];
    expect(digest).toBe(createHash("sha256").update(key).digest("hex"));
    expect(key).not.toBe(created.key);
  });

  it("fails to start with one sentence naming what to change, never a stack trace", async () => {
    const busy = createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => busy.once("listening", resolve));
    const { port } = busy.address() as { port: number };
    const empty = await writeConfig("");
    const list = await writeConfig("- providers\n");
    const noModels = await writeConfig("providers: { echo: { type: echo } }\n");
    try {
      const cases: [string[], Record<string, string>, RegExp][] = [
        [
          [],
          { PORT: String(port) },
          /^aigw: Port \d+ on 127\.0\.0\.1 is already in use: stop what listens there, or choose another port with PORT or server\.port\n$/,
        ],
        [
          ["-c", empty],
          {},
          /^aigw: The configuration is empty: it needs at least providers \(.*\) and models \(.*\)\n$/,
        ],
        [
          ["-c", list],
          {},
          /^aigw: The configuration must be a mapping of sections .* not a list\n$/,
        ],
        [
          ["-c", noModels],
          {},
          /^aigw: Invalid configuration:\n {2}models: missing: the routes from model names to providers, for example/,
        ],
        [["-c", "/nonexistent/aigw.yaml"], {}, /^aigw: Cannot read config file \/nonexistent/],
        [[], { HOST: "192.0.2.1" }, /^aigw: 192\.0\.2\.1 is not an address of this machine/],
      ];
      for (const [args, env, message] of cases) {
        const result = await aigw(args, { LOG_FORMAT: "json", ...env });
        expect(result.code, args.join(" ")).toBe(1);
        expect(result.stderr).toMatch(message);
        expect(result.stderr).not.toMatch(/\n\s+at /);
        expect(result.stderr).not.toContain("expected");
      }
    } finally {
      busy.close();
    }
  });
});
