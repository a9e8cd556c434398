import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  ConfigError,
  configFromEnv,
  loadConfigFile,
  parseConfig,
  resolveConfig,
} from "./config.js";

const minimal = {
  providers: { echo: { type: "echo" } },
  models: { echo: { provider: "echo" } },
};

describe("the README's example config", () => {
  it("is a valid config with the environment it names", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Config file"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    const file = join(await mkdtemp(join(tmpdir(), "aigw-readme-")), "example.yaml");
    await writeFile(file, example as string);
    const config = await loadConfigFile(file, {
      OPENAI_API_KEY: "sk-openai",
      AZURE_OPENAI_KEY: "azure-key",
      ANTHROPIC_API_KEY: "sk-ant",
      GEMINI_API_KEY: "AIza-gemini",
    });
    expect(Object.keys(config.providers)).toContain("claude");
    expect(config.providers.gemini?.type).toBe("gemini");
    expect(config.models["claude-*"]?.provider).toBe("claude");
  });
});

describe("the README's guardrails example", () => {
  it("is a valid section, its rules compiled as written", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Guardrails"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] as string;
    const file = join(await mkdtemp(join(tmpdir(), "aigw-readme-")), "guardrails.yaml");
    await writeFile(
      file,
      [
        "providers: { up: { type: openai-compatible, baseURL: 'http://127.0.0.1:9/v1' } }",
        "models: { local-llama: { provider: up } }",
        `tenants: { clinic: { keys: ["${"a".repeat(64)}"] } }`,
        example,
      ].join("\n"),
    );
    const config = await loadConfigFile(file, { GUARDRAILS_SECRET: "sixteen-bytes-or-more" });
    const [, tickets] = config.guardrails?.default?.rules ?? [];
    expect(new RegExp(tickets?.patterns?.[0] as string).test("see T-1234")).toBe(true);
    expect(config.guardrails?.tenants?.clinic?.pii?.presidio?.url).toBe(
      "http://presidio-analyzer:3000",
    );
  });
});

describe("the README's status page example", () => {
  it("is a valid section", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Status page"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] as string;
    const file = join(await mkdtemp(join(tmpdir(), "aigw-readme-")), "status.yaml");
    await writeFile(
      file,
      ["providers: { echo: { type: echo } }", "models: { echo: { provider: echo } }", example].join(
        "\n",
      ),
    );
    const config = await loadConfigFile(file, {
      AIGW_ADMIN_TOKEN: "an-admin-key-of-32-characters-ok",
    });
    expect(config.admin).toMatchObject({
      port: 9090,
      statusPage: { enabled: true, recentRequests: 100, maxSeries: 100, sessionHours: 12 },
    });
  });
});

describe("ports", () => {
  it("refuses an admin or metrics port that is the gateway's own, PORT included", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "aigw-ports-")), "ports.yaml");
    await writeFile(
      file,
      [
        "providers: { echo: { type: echo } }",
        "models: { echo: { provider: echo } }",
        "admin: { bearerToken: an-admin-key-0123456789, port: 9090 }",
      ].join("\n"),
    );
    await expect(resolveConfig(file, { PORT: "9090" })).rejects.toThrow(
      "admin.port is 9090, the gateway's own port (server.port or PORT): choose another, or leave admin.port out to serve it on the gateway's port",
    );
    await expect(resolveConfig(file, { PORT: "9091" })).resolves.toBeDefined();
    await writeFile(
      file,
      [
        "providers: { echo: { type: echo } }",
        "models: { echo: { provider: echo } }",
        "server: { port: 9464 }",
        "metrics: { port: 9464 }",
      ].join("\n"),
    );
    await expect(resolveConfig(file, {})).rejects.toThrow(
      /^metrics.port is 9464, the gateway's own port/,
    );
  });
});

describe("the README's costs and budgets examples", () => {
  it("are valid sections", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Costs and budgets"));
    const [prices, budgets] = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map(
      (match) => match[1] as string,
    );
    const upstream = "{ type: openai-compatible, baseURL: 'http://127.0.0.1:9/v1' }";
    const load = async (example: string) => {
      const file = join(await mkdtemp(join(tmpdir(), "aigw-readme-")), "budgets.yaml");
      const providers = `providers: { vllm: ${upstream}, openai: ${upstream}, azure: ${upstream} }`;
      await writeFile(file, `${providers}\n${example.replace("<sha256>", "a".repeat(64))}`);
      return loadConfigFile(file, { HOOK_TOKEN: "token" });
    };
    expect((await load(prices as string)).prices["gpt-4o-mini"]).toMatchObject({ input: 0.15 });
    const config = await load(budgets as string);
    expect(config.tenants.acme?.limits?.budget).toMatchObject({ usd: 500, softUsd: [250, 400] });
    expect(config.models["gpt-4o"]?.targets?.[0]?.budget).toMatchObject({ usd: 1500 });
  });
});

describe("the README's audit example", () => {
  it("is a valid section", async () => {
    const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Audit log"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] as string;
    const file = join(await mkdtemp(join(tmpdir(), "aigw-readme-")), "audit.yaml");
    await writeFile(
      file,
      [
        "providers: { echo: { type: echo } }",
        "models: { m: { provider: echo } }",
        `tenants: { legal: { keys: ["${"a".repeat(64)}"] } }`,
        example,
      ].join("\n"),
    );
    const config = await loadConfigFile(file, { AIGW_AUDIT_KEY: "k".repeat(32) });
    expect(config.audit).toMatchObject({
      file: { maxFiles: 30 },
      content: { enabled: false, tenants: ["legal"], maxChars: 32768 },
      checkpointEvery: 1000,
      minCheckpointIntervalMs: 1000,
      checkpointWithinMs: 10_000,
    });
  });

  it("refuses content entities the redactor does not know, or none", async () => {
    const directory = await mkdtemp(join(tmpdir(), "aigw-audit-entities-"));
    const withEntities = async (entities: string) => {
      const file = join(directory, "audit.yaml");
      await writeFile(
        file,
        [
          "providers: { echo: { type: echo } }",
          "models: { m: { provider: echo } }",
          "audit:",
          `  key: ${"k".repeat(32)}`,
          "  file: { path: audit.jsonl }",
          `  content: { enabled: true, entities: ${entities} }`,
        ].join("\n"),
      );
      return resolveConfig(file, {});
    };
    await expect(withEntities("[EMAIL_ADDRESS, EMAIL]")).rejects.toThrow(
      /audit\.content\.entities\.1: unknown entity 'EMAIL'; built-in: .*EMAIL_ADDRESS/,
    );
    await expect(withEntities("[]")).rejects.toThrow(/audit\.content\.entities/);
    await expect(withEntities("[EMAIL_ADDRESS]")).resolves.toBeDefined();
  });
});

describe("parseConfig", () => {
  it("says a pasted key is not its digest", () => {
    expect(() =>
      parseConfig({ ...minimal, tenants: { a: { keys: ["aigw-0123456789abcdef"] } } }),
    ).toThrow(
      /tenants\.a\.keys\.0: must be a sha256 hex digest: the sha256 that aigw keys create prints/,
    );
  });

  it("refuses limits a limiter could not take, naming them, so that check catches them too", () => {
    const withLimits = (limits: unknown) => parseConfig({ ...minimal, tenants: { a: { limits } } });
    expect(() =>
      withLimits({ quota: { tokens: 10, period: "day", timeZone: "Mars/Base" } }),
    ).toThrow(/tenants\.a\.limits\.quota\.timeZone: must be an IANA time zone/);
    expect(() => withLimits({ requestsPerSecond: 1e300 })).toThrow(
      /tenants\.a\.limits\.requestsPerSecond/,
    );
    expect(() => withLimits({ tokensPerMinute: 2 ** 60 })).toThrow(
      /tenants\.a\.limits\.tokensPerMinute/,
    );
    expect(
      withLimits({ quota: { tokens: 10, period: "day", timeZone: "Europe/Paris" } }).tenants.a,
    ).toBeDefined();
  });

  it("suggests providers that would parse as they are written", () => {
    const hint = /for example `(providers: .*)`/.exec(
      (() => {
        try {
          parseConfig({ models: minimal.models });
        } catch (error) {
          return (error as Error).message;
        }
        return "";
      })(),
    )?.[1];
    expect(hint).toBeDefined();
    const suggested = parseYaml(hint as string) as {
      providers: Record<string, Record<string, string>>;
    };
    for (const provider of Object.values(suggested.providers)) provider.apiKey = "sk-x";
    expect(() =>
      parseConfig({
        ...suggested,
        models: { m: { provider: Object.keys(suggested.providers)[0] } },
      }),
    ).not.toThrow();
  });

  it("says what an empty or missing section needs, and which keys are valid where one is unknown", () => {
    expect(() => parseConfig(null)).toThrow(/empty: it needs at least providers .* and models/);
    expect(() => parseConfig(["providers"])).toThrow(/mapping of sections .* not a list/);
    expect(() => parseConfig({ providers: minimal.providers })).toThrow(
      /models: missing: the routes from model names to providers/,
    );
    expect(() =>
      parseConfig({ ...minimal, tenants: { a: { limits: { rateLimit: 1, quota: {} } } } }),
    ).toThrow(
      /tenants\.a\.limits: unknown key 'rateLimit'; valid keys here: requestsPerSecond, burst, tokensPerMinute, quota/,
    );
    expect(() =>
      parseConfig({
        ...minimal,
        providers: { x: { type: "azure", endpoint: "https://a", baseURL: "" } },
      }),
    ).toThrow(
      /providers\.x: unknown key 'baseURL'; valid keys here: type, endpoint, apiVersion, deployments/,
    );
    expect(() =>
      parseConfig({ ...minimal, providers: { x: { type: "echo", apiKey: "k" } } }),
    ).toThrow(/providers\.x: unknown key 'apiKey'; valid keys here: type$/m);
    for (const limits of [{ default: {} }, { default: { burst: 5 } }]) {
      expect(() => parseConfig({ ...minimal, limits })).toThrow(
        /limits\.default: sets no limit; give requestsPerSecond, tokensPerMinute, quota or budget/,
      );
    }
    expect(() => parseConfig({ ...minimal, models: { m: { provider: "lokal" } } })).toThrow(
      /models\.m\.provider: unknown provider 'lokal'; configured providers: echo/,
    );
  });

  it("fills the server defaults", () => {
    const config = parseConfig(minimal);
    expect(config.server).toEqual({
      host: "127.0.0.1",
      port: 8080,
      shutdownGraceMs: 30_000,
      requestTimeoutMs: 60_000,
    });
    expect(config.logging.level).toBe("info");
  });

  it("names the field at fault", () => {
    expect(() =>
      parseConfig({
        providers: { openai: { type: "openai", baseURL: "not a url" } },
        models: {},
      }),
    ).toThrow(/providers\.openai\.baseURL/);
    expect(() =>
      parseConfig({
        ...minimal,
        providers: { openai: { type: "openai", baseURL: "https://x.test/v1", timeout: -1 } },
      }),
    ).toThrow(/providers\.openai\.timeout/);
    expect(() => parseConfig({ ...minimal, server: { port: "eighty" } })).toThrow(/server\.port/);
    expect(() => parseConfig({ ...minimal, surprise: true })).toThrow(
      /\(root\): unknown key 'surprise'; valid keys here: server, gateway, tenants, limits, cache, guardrails, audit, metrics, logging, routing, admin, providers, models/,
    );
    expect(() => parseConfig({ ...minimal, models: { m: { provider: "missing" } } })).toThrow(
      /models\.m\.provider: unknown provider 'missing'/,
    );
  });

  it("takes routes with several targets, and refuses ones that cannot work", () => {
    const providers = { a: { type: "echo" }, b: { type: "echo" } };
    const config = parseConfig({
      providers,
      models: {
        chat: {
          strategy: "latency",
          maxAttempts: 4,
          targets: [{ provider: "a", model: "x", weight: 3 }, { provider: "b" }],
          fallbacks: ["backup"],
        },
        backup: { provider: "b" },
      },
      routing: { store: "memory", breaker: { consecutiveFailures: 3 } },
    });
    expect(config.models.chat?.targets?.length).toBe(2);
    expect(config.routing.breaker).toMatchObject({ consecutiveFailures: 3, cooldownMs: 5_000 });
    const refused = (models: Record<string, unknown>, routing?: unknown) => () =>
      parseConfig({ providers, models, ...(routing ? { routing } : {}) });
    expect(refused({ m: { targets: [{ provider: "missing" }] } })).toThrow(
      /models\.m\.targets\.0\.provider: unknown provider 'missing'/,
    );
    expect(refused({ m: { provider: "a", targets: [{ provider: "b" }] } })).toThrow(
      /models\.m: give either provider \(and model\) or targets/,
    );
    expect(refused({ m: { provider: "a", fallbacks: ["nowhere"] } })).toThrow(
      /models\.m\.fallbacks: no route named 'nowhere'; routes it may name \(exact names, no '\*'\): none/,
    );
    expect(refused({ m: { targets: [{ provider: "a" }], strategy: "fastest" } })).toThrow(
      /models\.m\.strategy/,
    );
    expect(refused({ m: { provider: "a" } }, { store: "redis" })).toThrow(
      /routing\.redis: store redis needs routing\.redis\.url/,
    );
  });

  it("takes budgets in USD and prices per million tokens, and says what is wrong with bad ones", () => {
    const config = parseConfig({
      ...minimal,
      models: {
        echo: {
          provider: "echo",
          price: { input: 0.5, output: 1.5, tiers: [{ aboveInputTokens: 200_000, input: 1 }] },
          budget: { usd: 100, period: "month" },
          reserveOutputTokens: 1_024,
        },
      },
      tenants: { acme: { limits: { budget: { softUsd: 5.25, period: "day" } } } },
      prices: { "my-model": { input: 0.1, output: 0.2 } },
    });
    expect(config.tenants.acme?.limits?.budget).toEqual({
      softUsd: [5.25],
      period: "day",
      timeZone: "UTC",
    });
    expect(config.models.echo?.budget).toMatchObject({ usd: 100, period: "month" });
    const refused = (extra: object) => () => parseConfig({ ...minimal, ...extra });
    expect(
      parseConfig({ ...minimal, limits: { default: { budget: { period: "day" } } } }).limits.default
        ?.budget,
    ).toEqual({ period: "day", timeZone: "UTC" });
    expect(
      refused({ limits: { default: { budget: { usd: 0.0000000001, period: "day" } } } }),
    ).toThrow(/limits\.default\.budget\.usd: must have at most 9 decimals/);
    expect(refused({ limits: { default: { budget: { usd: 0, period: "day" } } } })).toThrow(
      /^Invalid configuration:\n {2}limits\.default\.budget\.usd: Too small: expected number to be >0$/,
    );
    expect(
      refused({ limits: { default: { budget: { usd: 5, softUsd: [1, 5], period: "day" } } } }),
    ).toThrow(/limits\.default\.budget\.softUsd: every softUsd must be below usd/);
    expect(
      refused({
        models: {
          echo: { targets: [{ provider: "echo", price: { input: 1, output: 2, foo: 1 } }] },
        },
      }),
    ).toThrow(/models\.echo\.targets\.0\.price: unknown key 'foo'; valid keys here: input, output/);
    expect(refused({ prices: { x: { input: 1 } } })).toThrow(/prices\.x\.output/);
    expect(refused({ prices: { x: { input: 1, output: 2, cached: 1 } } })).toThrow(/prices\.x/);
    expect(
      refused({ models: { echo: { provider: "echo", price: { input: 0.1234567, output: 1 } } } }),
    ).toThrow(/models\.echo\.price: input has more than 6 decimals/);
    expect(
      refused({
        limits: { budgetWebhook: { url: "ftp://example.com/hook" } },
      }),
    ).toThrow(/limits\.budgetWebhook\.url: must be an http:\/\/ or https:\/\/ URL/);
  });

  it("interpolates ${ENV} and ${ENV:-fallback}, and says which variable is missing", () => {
    const config = parseConfig(
      {
        providers: {
          up: {
            type: "openai-compatible",
            baseURL: "${BASE:-http://localhost:1/v1}",
            apiKey: "${KEY}",
          },
        },
        models: { m: { provider: "up" } },
      },
      { KEY: "sk-from-env" },
    );
    const provider = config.providers.up;
    expect(provider?.type === "openai-compatible" && provider.apiKey).toBe("sk-from-env");
    expect(provider?.type === "openai-compatible" && provider.baseURL).toBe(
      "http://localhost:1/v1",
    );
    expect(() =>
      parseConfig({ ...minimal, providers: { x: { type: "openai", baseURL: "${NOPE}" } } }, {}),
    ).toThrow(/providers\.x\.baseURL: environment variable NOPE is not set/);
  });

  it("leaves the cache off unless its section is present, and validates it", () => {
    expect(parseConfig(minimal).cache).toBeUndefined();
    const config = parseConfig({
      ...minimal,
      models: { echo: { provider: "echo", cache: { ttlMs: 60_000, shared: true } } },
      cache: {},
    });
    expect(config.cache).toEqual({
      enabled: true,
      store: "memory",
      maxSizeBytes: 100 * 2 ** 20,
      maxItems: 10_000,
      ttlMs: 300_000,
      shared: false,
      chargeHits: false,
      maxWaiters: 1000,
      maxEntryBytes: 16 * 2 ** 20,
    });
    expect(config.models.echo?.cache).toEqual({ ttlMs: 60_000, shared: true });
    expect(() => parseConfig({ ...minimal, cache: { store: "redis" } })).toThrow(
      /cache\.redis: store redis needs cache\.redis\.url/,
    );
    expect(() => parseConfig({ ...minimal, cache: { ttlMs: 0 } })).toThrow(/cache\.ttlMs/);
    expect(() =>
      parseConfig({ ...minimal, models: { echo: { provider: "echo", cache: true } } }),
    ).toThrow(/models\.echo\.cache: needs the top-level cache section/);
  });
});

describe("settings that would be unsafe", () => {
  it("refuses CORS origins '*' with credentials", () => {
    expect(() =>
      parseConfig({ ...minimal, gateway: { cors: { origins: "*", credentials: true } } }),
    ).toThrow(/gateway\.cors\.credentials: origins "\*" cannot be combined with credentials/);
    expect(
      parseConfig({ ...minimal, gateway: { cors: { origins: "*" } } }).gateway.cors?.origins,
    ).toBe("*");
  });

  it("wants per-user limits with keyBy tenant+user, and a limit in them", () => {
    expect(() => parseConfig({ ...minimal, limits: { keyBy: "tenant+user" } })).toThrow(
      /limits\.perUser: keyBy tenant\+user needs limits\.perUser/,
    );
    expect(() =>
      parseConfig({ ...minimal, limits: { keyBy: "tenant+user", perUser: {} } }),
    ).toThrow(/limits\.perUser: sets no limit/);
    const config = parseConfig({
      ...minimal,
      limits: { keyBy: "tenant+user", perUser: { requestsPerSecond: 1 } },
    });
    expect(config.limits.perUser).toEqual({ requestsPerSecond: 1 });
  });

  it("takes allowedHosts as a list of names or '*'", () => {
    expect(parseConfig({ ...minimal, server: { allowedHosts: "*" } }).server.allowedHosts).toBe(
      "*",
    );
    expect(() => parseConfig({ ...minimal, server: { allowedHosts: [] } })).toThrow(
      /server\.allowedHosts/,
    );
  });
});

describe("loading files and the environment", () => {
  it("reads YAML and JSON files", async () => {
    const folder = await mkdtemp(join(tmpdir(), "aigw-config-"));
    const yamlFile = join(folder, "aigw.yaml");
    await writeFile(
      yamlFile,
      "providers:\n  echo: { type: echo }\nmodels:\n  echo: { provider: echo }\n",
    );
    const jsonFile = join(folder, "aigw.json");
    await writeFile(jsonFile, JSON.stringify(minimal));
    expect((await loadConfigFile(yamlFile, {})).models).toEqual({ echo: { provider: "echo" } });
    expect((await loadConfigFile(jsonFile, {})).models).toEqual({ echo: { provider: "echo" } });
    await expect(loadConfigFile(join(folder, "absent.yaml"), {})).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it("serves echo alone without OPENAI_API_KEY, and OpenAI's families with it", () => {
    expect(Object.keys(configFromEnv({}).models)).toEqual(["echo"]);
    const withKey = configFromEnv({
      OPENAI_API_KEY: "sk-x",
      OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
    });
    expect(Object.keys(withKey.models)).toEqual([
      "echo",
      "gpt-*",
      "o1*",
      "o3*",
      "o4*",
      "chatgpt-*",
      "text-embedding-*",
      "openai/*",
    ]);
    const openai = withKey.providers.openai;
    expect(openai?.type === "openai" && openai.baseURL).toBe("http://127.0.0.1:9/v1");
  });

  it("routes Anthropic's families when ANTHROPIC_API_KEY is set, its base URL as given (the provider adds a missing /v1)", () => {
    const withKey = configFromEnv({
      ANTHROPIC_API_KEY: "sk-ant-x",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:9/",
    });
    expect(Object.keys(withKey.models)).toEqual(["echo", "claude-*", "anthropic/*"]);
    expect(withKey.providers.anthropic).toEqual({
      type: "anthropic",
      baseURL: "http://127.0.0.1:9/",
      apiKey: "sk-ant-x",
    });
    const withV1 = configFromEnv({
      ANTHROPIC_API_KEY: "sk-ant-x",
      ANTHROPIC_BASE_URL: "http://127.0.0.1:9/v1/",
    }).providers.anthropic;
    expect(withV1?.type === "anthropic" && withV1.baseURL).toBe("http://127.0.0.1:9/v1/");
    const official = configFromEnv({ ANTHROPIC_API_KEY: "sk-ant-x" }).providers.anthropic;
    expect(official?.type === "anthropic" && official.baseURL).toBe("https://api.anthropic.com/v1");
  });

  it("routes Gemini's families when GEMINI_API_KEY is set", () => {
    const config = configFromEnv({ GEMINI_API_KEY: "AIza-x" });
    expect(Object.keys(config.models)).toEqual(["echo", "gemini-*", "gemini/*"]);
    expect(config.providers.gemini).toEqual({
      type: "gemini",
      baseURL: "https://generativelanguage.googleapis.com/v1beta",
      apiKey: "AIza-x",
    });
  });

  it("applies PORT, HOST and LOG_LEVEL, and rejects bad values", async () => {
    const config = await resolveConfig(undefined, {
      PORT: "9090",
      HOST: "0.0.0.0",
      LOG_LEVEL: "warn",
    });
    expect(config.server).toMatchObject({ port: 9090, host: "0.0.0.0" });
    expect(config.logging.level).toBe("warn");
    await expect(resolveConfig(undefined, { PORT: "http" })).rejects.toThrow(/PORT/);
    await expect(resolveConfig(undefined, { LOG_LEVEL: "loud" })).rejects.toThrow(/LOG_LEVEL/);
  });
});
