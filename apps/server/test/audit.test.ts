import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MockUpstream, readSse, startMockUpstream } from "@aigw/testing";
import OpenAI from "openai";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createKey, runServer, type ServerProcess, writeConfig } from "./run-server.js";

// The audit log as an operator runs it: the real CLI, a config file, SIGTERM, `aigw audit`.
const cli = new URL("../dist/cli.js", import.meta.url).pathname;
const auditKey = "an operator's audit key, 32 characters or more";
const auditDirectory = mkdtempSync(join(tmpdir(), "aigw-audit-server-"));
const env = { AIGW_AUDIT_KEY: auditKey, AUDIT_DIR: auditDirectory };
let upstream: MockUpstream;
let running: ServerProcess | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  upstream.reset();
  await running?.stop();
  running = undefined;
});

function aigw(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }),
    );
  });
}

async function auditedServer() {
  const acme = createKey();
  const beta = createKey();
  const file = await writeConfig(`
providers:
  up: { type: openai, baseURL: "${upstream.baseURL}" }
models:
  gpt-4o-mini: { provider: up }
  notes: { provider: up, model: gpt-4o-mini }
tenants:
  acme: { keys: ["${acme.hash}"] }
  beta: { keys: ["${beta.hash}"] }
audit:
  key: \${AIGW_AUDIT_KEY}
  instance: gw-a
  file: { path: "\${AUDIT_DIR}/requests.jsonl" }
  content: { tenants: [acme], routes: [notes] }
server: { shutdownGraceMs: 20000 }
`);
  running = await runServer(["--config", file], env);
  const client = (key: string) =>
    new OpenAI({ baseURL: `${running?.url}/v1`, apiKey: key, maxRetries: 0 });
  return {
    file,
    path: join(auditDirectory, "requests.jsonl"),
    acmeKey: acme.key,
    acme: client(acme.key),
    beta: client(beta.key),
  };
}

const ask = (content: string) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
});

describe("aigw with an audit file", () => {
  it("records every request, a stream that ends during the drain included, and verifies", async () => {
    const { file, path, acme, acmeKey, beta } = await auditedServer();
    await acme.chat.completions.create(ask("call +1 415 555 0100 today"));
    await beta.chat.completions.create(ask("beta's own question"));
    await beta.chat.completions.create({ ...ask("mail ops@example.com"), model: "notes" });
    const gate = upstream.holdStream();
    const response = await fetch(`${running?.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${acmeKey}`,
      },
      body: JSON.stringify({ ...ask("a slow one"), stream: true }),
    });
    const events = readSse(response);
    await events.next();
    await gate.reached;
    running?.child.kill("SIGTERM");
    gate.release();
    for await (const _event of events) {
      // to its end
    }
    expect(await running?.exited).toBe(0);

    const records = readFileSync(path, "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(records.map((record) => [record.tenant, record.status, record.stream ?? false])).toEqual(
      [
        ["acme", 200, false],
        ["beta", 200, false],
        ["beta", 200, false],
        ["acme", 200, true],
      ],
    );
    expect(records[0].instance).toMatch(/^gw-a-[0-9a-f]{8}$/);
    expect(new Set(records.map((record) => record.instance)).size).toBe(1);
    expect(records[0].content.request[0].text).toMatch(/^call <PHONE_NUMBER_[0-9a-f]{8}> today$/);
    expect(records[1].content).toBeUndefined();
    expect(records[2].content.request[0].text).toMatch(/^mail <EMAIL_ADDRESS_[0-9a-f]{8}>$/);
    expect(records[3].content.response[0].text).toBeTruthy();
    const checkpoints = readFileSync(join(auditDirectory, "requests.checkpoints.jsonl"), "utf8");
    expect(checkpoints).toContain('"reason":"shutdown"');

    const verified = await aigw(["audit", "verify", "--config", file]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, records: 4 });

    const tail = await aigw(["audit", "tail", "-n", "1", "--config", file]);
    expect(tail.code).toBe(0);
    expect(JSON.parse(tail.stdout).seq).toBe(4);
    const query = await aigw(["audit", "query", "--tenant", "beta", "--config", file]);
    expect(
      query.stdout
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line).seq),
    ).toEqual([2, 3]);
    const none = await aigw(["audit", "query", "--since", "2999-01-01", "--config", file]);
    expect(none).toMatchObject({ code: 0, stdout: "" });
    const badTime = await aigw(["audit", "query", "--since", "yesterday", "--config", file]);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain("--since must be an ISO 8601 date");
    for (const value of ["12/01/2026", "2026-02-30", "2026-12-01T10:00"]) {
      expect((await aigw(["audit", "query", "--since", value, "--config", file])).code).toBe(2);
    }
    // A date is a whole UTC day, so --until a day includes that day's records.
    const day = records[0].time.slice(0, 10);
    const untilDay = await aigw(["audit", "query", "--until", day, "--config", file]);
    expect(untilDay.stdout.trimEnd().split("\n")).toHaveLength(4);

    // The newest record removed: the shutdown checkpoint gives it away.
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    writeFileSync(path, `${lines.slice(0, -1).join("\n")}\n`);
    const broken = await aigw(["audit", "verify", "--config", file]);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout).problems).toEqual([
      `${records[0].instance}: the newest records 4..4 are missing (checkpointed)`,
    ]);

    // Removed with the stored checkpoints too: the gateway's own log lines still tell.
    writeFileSync(join(auditDirectory, "requests.checkpoints.jsonl"), "");
    expect((await aigw(["audit", "verify", "--config", file])).code).toBe(0);
    const savedLog = join(auditDirectory, "gateway.log");
    writeFileSync(savedLog, `${running?.lines.join("\n")}\n`);
    expect(running?.lines.some((line) => line.includes('"auditCheckpoint"'))).toBe(true);
    const garbage = join(auditDirectory, "garbage.log");
    writeFileSync(garbage, "not a log\n");
    const refusedLog = await aigw(["audit", "verify", "--checkpoints", garbage, "--config", file]);
    expect(refusedLog.code).toBe(2);
    expect(refusedLog.stderr).toContain("--checkpoints: no checkpoint in");
    const withLog = await aigw(["audit", "verify", "--checkpoints", savedLog, "--config", file]);
    expect(withLog.code).toBe(1);
    expect(JSON.parse(withLog.stdout).problems).toEqual([
      `${records[0].instance}: the newest records 4..4 are missing (checkpointed)`,
    ]);
  });

  it("check masks the audit key; a config without one is refused by name", async () => {
    const file = await writeConfig(`
providers: { echo: { type: echo } }
models: { m: { provider: echo } }
audit: { key: "\${AIGW_AUDIT_KEY}", file: { path: /tmp/aigw-never-written.jsonl } }
`);
    const checked = await aigw(["check", "--config", file]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).not.toContain(auditKey);
    expect(checked.stdout).toMatch(/key: "\*\*\*"/);
    const short = await writeConfig(`
providers: { echo: { type: echo } }
models: { m: { provider: echo } }
audit: { key: too-short, file: { path: a.jsonl }, content: { routes: [nope] } }
`);
    const refused = await aigw(["check", "--config", short]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("audit.key: must be at least 32 characters");
    const neither = await writeConfig(`
providers: { echo: { type: echo } }
models: { m: { provider: echo } }
audit: { key: "${auditKey}" }
`);
    expect((await aigw(["check", "--config", neither])).stderr).toContain(
      "give a place for the records: file or postgres",
    );
    const missing = await writeConfig(`
providers: { echo: { type: echo } }
models: { m: { provider: echo } }
audit: { key: "${auditKey}", file: { path: /tmp/aigw-no-such-dir/audit.jsonl } }
`);
    const notThere = await aigw(["audit", "verify", "--config", missing]);
    expect(notThere).toMatchObject({ code: 1, stdout: "" });
    expect(notThere.stderr).toContain("no audit log at /tmp/aigw-no-such-dir/audit.jsonl");
    const plain = await writeConfig(
      "providers: { echo: { type: echo } }\nmodels: { m: { provider: echo } }\n",
    );
    const noAudit = await aigw(["audit", "tail", "--config", plain]);
    expect(noAudit).toMatchObject({ code: 1, stdout: "" });
    expect(noAudit.stderr).toContain("the config has no audit section");
  });

  it("writes to PostgreSQL, and verify reads the chain back from the table", async () => {
    const database = `aigw_audit_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: "postgres://postgres@127.0.0.1:5432/test" });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = `postgres://postgres@127.0.0.1:5432/${database}`;
    try {
      const file = await writeConfig(`
providers:
  up: { type: openai, baseURL: "${upstream.baseURL}" }
models:
  gpt-4o-mini: { provider: up }
audit:
  key: "\${AIGW_AUDIT_KEY}"
  postgres: { url: "${url}", spoolPath: "\${AUDIT_DIR}/spool.jsonl" }
`);
      running = await runServer(["--config", file], env);
      const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "none", maxRetries: 0 });
      for (const question of ["one", "two", "three"]) {
        await client.chat.completions.create(ask(question));
      }
      running.child.kill("SIGTERM");
      expect(await running.exited).toBe(0);

      const verified = await aigw(["audit", "verify", "--config", file]);
      expect(verified.code, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, records: 3 });
      const tail = await aigw(["audit", "tail", "-n", "2", "--config", file]);
      expect(
        tail.stdout
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line).seq),
      ).toEqual([2, 3]);

      const rows = new pg.Client({ connectionString: url });
      await rows.connect();
      await rows.query("DELETE FROM aigw_audit_log WHERE seq = 3");
      await rows.end();
      const broken = await aigw(["audit", "verify", "--config", file]);
      expect(broken.code).toBe(1);
      expect(JSON.parse(broken.stdout).problems[0]).toMatch(
        /: the newest records 3\.\.3 are missing \(checkpointed\)$/,
      );
    } finally {
      await running?.stop();
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });
});
