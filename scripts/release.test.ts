// The release path, offline from the registry's point of view: changesets version a scratch
// copy, every public package passes `pnpm publish --dry-run`, and the packed tarballs install
// into a fresh project outside the workspace (their third-party dependencies come from the
// registry, as a user's would) where ESM, CommonJS and strict TypeScript all use them.
import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), "aigw-release-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      file,
      args,
      { cwd, timeout: 240_000, maxBuffer: 16 * 2 ** 20, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

const manifests = ["packages", "apps", "examples"]
  .flatMap((parent) =>
    readdirSync(join(root, parent)).map((name) => join(parent, name, "package.json")),
  )
  .filter((file) => existsSync(join(root, file)));
const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const published = readdirSync(join(root, "packages"))
  .map((name) => ({ name, manifest: readJson(join(root, "packages", name, "package.json")) }))
  .filter(({ manifest }) => !manifest.private);

// npm, pnpm and tsc each take a while on a busy machine: these tests get their own time.
const slow = 300_000;

describe("the release path", () => {
  it(
    "changeset version bumps versions, internal dependents and changelogs",
    async () => {
      const copy = join(scratch, "version");
      for (const file of ["package.json", "pnpm-workspace.yaml", ...manifests]) {
        mkdirSync(dirname(join(copy, file)), { recursive: true });
        cpSync(join(root, file), join(copy, file));
      }
      cpSync(join(root, ".changeset"), join(copy, ".changeset"), { recursive: true });
      writeFileSync(
        join(copy, ".changeset", "release-check.md"),
        '---\n"@aigw/provider": patch\n---\n\nA change to release.\n',
      );
      const changeset = join(root, "node_modules/.bin/changeset");
      const { code, output } = await run(changeset, ["version"], copy);
      expect(output).toContain("All files have been updated");
      expect(code).toBe(0);
      for (const { name } of published) {
        const manifest = readJson(join(copy, "packages", name, "package.json"));
        expect(manifest.version, name).not.toBe("0.0.0");
        expect(readFileSync(join(copy, "packages", name, "CHANGELOG.md"), "utf8")).toContain(
          `# @aigw/${name}`,
        );
      }
      expect(readFileSync(join(copy, "packages/provider/CHANGELOG.md"), "utf8")).toContain(
        "A change to release.",
      );
      expect(readdirSync(join(copy, ".changeset"))).toEqual(["config.json"]);
    },
    slow,
  );

  it(
    "publishes every public package in a dry run",
    async () => {
      const { code, output } = await run(
        "pnpm",
        ["-r", "publish", "--dry-run", "--no-git-checks"],
        root,
      );
      expect(code, output).toBe(0);
      for (const { manifest } of published) {
        expect(output).toContain(`${manifest.name}@${manifest.version}`);
      }
      expect(output).not.toContain("@aigw/testing@");
      expect(output).not.toContain("@aigw/server@");
    },
    slow,
  );

  it(
    "installs the packed tarballs into a fresh project, usable from ESM, CommonJS and TypeScript",
    async () => {
      const packs = join(scratch, "packs");
      const packed = await run(
        "pnpm",
        [
          "-r",
          "--filter",
          "./packages/*",
          "--filter",
          "!@aigw/testing",
          "pack",
          "--pack-destination",
          packs,
        ],
        root,
      );
      expect(packed.code, packed.output).toBe(0);
      const tarballs = readdirSync(packs);
      const project = join(scratch, "project");
      mkdirSync(project);
      const uses = [
        "core",
        "provider",
        "cache",
        "ratelimit",
        "balancer",
        "metrics",
        "guardrails",
        "pricing",
        "audit",
      ];
      const dependencies = Object.fromEntries(
        uses.map((name) => {
          const tarball = tarballs.find((file) => file.startsWith(`aigw-${name}-`)) as string;
          return [`@aigw/${name}`, `file:${join(packs, tarball)}`];
        }),
      );
      writeFileSync(
        join(project, "package.json"),
        JSON.stringify({
          name: "fresh-project",
          private: true,
          type: "module",
          dependencies: { ...dependencies, "@types/node": "^20.19.0" },
        }),
      );
      const installed = await run("npm", ["install", "--no-audit", "--no-fund"], project);
      expect(installed.code, installed.output).toBe(0);

      const usage = `
      import { createGateway } from "@aigw/core";
      import { createEcho } from "@aigw/provider";
      import { createMemoryCache } from "@aigw/cache";
      import { createMemoryLimiter } from "@aigw/ratelimit";
      import { createMetrics } from "@aigw/metrics";
      import { createAuditLog, createFileSink } from "@aigw/audit";
      import { createAuditHooks } from "@aigw/core/audit";

      const metrics = createMetrics();
      const auditLog = createAuditLog({
        sink: createFileSink({ path: "audit/requests.jsonl" }),
        key: "a key for the tarball test, 32 bytes",
      });
      const gateway = createGateway({
        hooks: [createAuditHooks(auditLog)],
        providers: { echo: createEcho() },
        models: { echo: { provider: "echo" } },
        cache: { store: createMemoryCache() },
        limits: { limiter: createMemoryLimiter({ requests: { perMinute: 100 } }) },
        metrics,
      });
      const ask = () =>
        gateway.fetch(
          new Request("http://localhost/v1/chat/completions", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "from a tarball" }] }),
          }),
        );
      const first = await ask();
      const body = (await first.json()) as { choices: { message: { content: string } }[] };
      const second = await ask();
      await second.arrayBuffer();
      const exposition = await metrics.expose();
      await gateway.close();
      await auditLog.close();
      console.log(JSON.stringify({
        audited: auditLog.stats().written,
        status: first.status,
        content: body.choices[0]?.message.content,
        cache: second.headers.get("x-aigw-cache"),
        metrics: exposition.includes("aigw_requests_total"),
      }));
    `;
      writeFileSync(join(project, "use.ts"), usage);
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            skipLibCheck: false,
            types: ["node"],
            lib: ["ES2023", "DOM"],
            outDir: "out",
          },
          files: ["use.ts"],
        }),
      );
      const tsc = join(root, "node_modules/typescript/bin/tsc");
      const compiled = await run(process.execPath, [tsc, "-p", "."], project);
      expect(compiled.output).toBe("");
      expect(compiled.code).toBe(0);
      const ran = await run(process.execPath, ["out/use.js"], project);
      expect(ran.code, ran.output).toBe(0);
      expect(JSON.parse(ran.output)).toEqual({
        audited: 2,
        status: 200,
        content: "from a tarball",
        cache: "HIT",
        metrics: true,
      });

      writeFileSync(
        join(project, "use.cjs"),
        uses
          .map((name) => `if (typeof require("@aigw/${name}") !== "object") process.exit(1);`)
          .join("\n"),
      );
      const required = await run(process.execPath, ["use.cjs"], project);
      expect(required.code, required.output).toBe(0);
    },
    slow,
  );
});
