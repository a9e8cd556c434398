import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@aigw/testing";
import { afterEach, describe, expect, it } from "vitest";
import { BufferedLogOutput } from "./log-output.js";

const directory = mkdtempSync(join(tmpdir(), "aigw-log-output-"));
let fd: number | undefined;
let output: BufferedLogOutput | undefined;
let file = "";

function open(flushIntervalMs?: number, flags = "w") {
  file = join(directory, `${Date.now()}-${Math.random()}.log`);
  closeSync(openSync(file, "w"));
  fd = openSync(file, flags);
  output = new BufferedLogOutput(fd, flushIntervalMs);
  return output;
}

const written = () => readFileSync(file, "utf8");

afterEach(() => {
  output?.close();
  if (fd !== undefined) closeSync(fd);
  fd = undefined;
});

describe("BufferedLogOutput", () => {
  it("keeps lines until flushed, then writes them all in order", () => {
    const log = open(60_000);
    log.write('{"n":1}\n');
    log.write('{"n":2,"text":"naïve ✓"}\n');
    expect(written()).toBe("");
    let flushed = false;
    log.flush(() => {
      flushed = true;
    });
    expect(flushed).toBe(true);
    expect(written()).toBe('{"n":1}\n{"n":2,"text":"naïve ✓"}\n');
  });

  it("writes by itself when the buffer fills, losing and reordering nothing", () => {
    const log = open(60_000);
    const lines = Array.from({ length: 2000 }, (_, n) => `{"n":${n},"pad":"${"x".repeat(90)}"}\n`);
    for (const line of lines) log.write(line);
    const before = written();
    expect(before.length).toBeGreaterThan(0);
    expect(lines.join("").startsWith(before)).toBe(true);
    log.flush();
    expect(written()).toBe(lines.join(""));
  });

  it("writes a line longer than the buffer whole, after what came before it", () => {
    const log = open(60_000);
    const long = `{"text":"${"é".repeat(100_000)}"}\n`;
    log.write('{"n":1}\n');
    log.write(long);
    log.write('{"n":2}\n');
    log.flush();
    expect(written()).toBe(`{"n":1}\n${long}{"n":2}\n`);
  });

  it("flushes on its own at the interval", async () => {
    const log = open(100);
    log.write('{"n":1}\n');
    await waitFor(() => written() === '{"n":1}\n');
  });

  it("stops writing, and says so once, when the descriptor fails", () => {
    const log = open(60_000, "r");
    const messages: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((message: string) => messages.push(message) > 0) as typeof write;
    try {
      log.write("a\n");
      log.flush();
      log.write("b\n");
      log.flush();
    } finally {
      process.stderr.write = write;
    }
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/cannot write logs/);
  });
});

process.on("exit", () => rmSync(directory, { recursive: true, force: true }));
