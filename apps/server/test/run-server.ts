import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const cli = new URL("../dist/cli.js", import.meta.url).pathname;

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every line the server printed to stdout so far. */
  lines: string[];
  /** What the server printed to stderr so far. */
  readonly stderr: string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Starts the built CLI the way a user would, on a free port, and waits until it listens.
 * `openFiles` lowers the process's open-file limit first (`ulimit -n`).
 */
export async function runServer(
  args: string[],
  env: Record<string, string> = {},
  { openFiles }: { openFiles?: number } = {},
): Promise<ServerProcess> {
  const command = [process.execPath, cli, ...args];
  const [file, ...rest] =
    openFiles === undefined
      ? command
      : ["/bin/sh", "-c", `ulimit -n ${openFiles} && exec "$@"`, "sh", ...command];
  const child = spawn(file as string, rest, {
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { stdout, stderr: errors } = child;
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const lines: string[] = [];
  let stderr = "";
  errors.on("data", (chunk) => {
    stderr += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    // A server that never says where it listens is killed, not left behind.
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within 15 s: ${stderr}`));
    }, 15_000);
    createInterface({ input: stdout }).on("line", (line) => {
      lines.push(line);
      const parsed = JSON.parse(line) as { url?: string };
      if (parsed.url) {
        clearTimeout(timer);
        resolve(parsed.url);
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    url,
    child,
    lines,
    get stderr() {
      return stderr;
    },
    exited,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

/** Writes a config file into a new temporary folder and returns its path. */
export async function writeConfig(text: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "aigw-config-"));
  const file = join(folder, "aigw.yaml");
  await writeFile(file, text);
  return file;
}

/** `aigw keys create`: a new gateway key and the sha256 that goes into a config. */
export function createKey(): { key: string; hash: string } {
  const output = execFileSync(process.execPath, [cli, "keys", "create"], { encoding: "utf8" });
  const key = /^key:\s+(\S+)$/m.exec(output)?.[1];
  const hash = /^sha256:\s+([0-9a-f]{64})$/m.exec(output)?.[1];
  if (!key || !hash) throw new Error(`unexpected output: ${output}`);
  return { key, hash };
}
