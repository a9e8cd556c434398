// What the bench scripts share: the processes they measure, each started with `node` (or with
// `node` under a wrapper such as valgrind), and the temporary files they leave behind until
// cleanUp().
import { spawn } from "node:child_process";
import { openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const root = new URL("..", import.meta.url).pathname;
const clockTicksPerSecond = 100;
const temporaryFiles = [];

export function temporaryFile(name) {
  const file = join(tmpdir(), `aigw-bench-${process.pid}-${name}`);
  temporaryFiles.push(file);
  return file;
}

export function cleanUp() {
  for (const file of temporaryFiles) rmSync(file, { force: true, recursive: true });
}

/** `node` with its arguments, run through `wrapper` (a command and its arguments) when given. */
function nodeCommand(wrapper, args) {
  return wrapper.length === 0
    ? [process.execPath, args]
    : [wrapper[0], [...wrapper.slice(1), process.execPath, ...args]];
}

/** Starts a script that prints its URL as its first line of stdout. */
export function startScript(args, { env = {}, nodeArgs = [], wrapper = [] } = {}) {
  const [command, commandArgs] = nodeCommand(wrapper, [...nodeArgs, ...args]);
  const child = spawn(command, commandArgs, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      // Keep reading so a process that logs to stdout never blocks on a full pipe.
      lines.on("line", () => {});
      resolve({ child, url: line.trim() });
    });
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)));
  });
}

export function median(values) {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/**
 * A gateway config: `extra` lines, then one route, "gpt-*", to the mock at `upstreamURL`
 * (OpenAI-compatible; or `type` anthropic or gemini, `upstreamURL` then with its version).
 * With `targets` above 1, the route balances that many providers, all of them that same mock.
 */
export function writeGatewayConfig(
  name,
  upstreamURL,
  extra = [],
  type = "openai-compatible",
  targets = 1,
) {
  const file = temporaryFile(`${name}.yaml`);
  const baseURL = type === "openai-compatible" ? `${upstreamURL}/v1` : upstreamURL;
  const providers = Array.from({ length: targets }, (_, index) => `mock${index || ""}`);
  const route =
    targets === 1
      ? "{ provider: mock }"
      : `{ targets: [${providers.map((provider) => `{ provider: ${provider} }`).join(", ")}] }`;
  writeFileSync(
    file,
    [
      ...extra,
      "providers:",
      ...providers.map(
        (provider) => `  ${provider}: { type: ${type}, baseURL: "${baseURL}", apiKey: bench }`,
      ),
      "models:",
      `  "gpt-*": ${route}`,
    ].join("\n"),
  );
  return file;
}

async function freePort() {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts apps/server as it ships, its access log going to a file as in production; waits up
 * to `startSeconds` (10) for it to answer.
 */
export async function startGateway(
  configFile,
  { env = {}, nodeArgs = [], wrapper = [], startSeconds = 10 } = {},
) {
  const port = await freePort();
  const [command, commandArgs] = nodeCommand(wrapper, [
    ...nodeArgs,
    "apps/server/dist/cli.js",
    "--config",
    configFile,
  ]);
  const child = spawn(command, commandArgs, {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      LOG_FORMAT: "json",
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
      ...env,
    },
    // Draining a pipe here instead would spend this process's CPU, which drives the load, on
    // the gateway's behalf.
    stdio: ["ignore", openSync(temporaryFile(`${port}.log`), "w"), "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let tries = 0; tries < startSeconds * 10; tries++) {
    if (child.exitCode !== null) break;
    const ready = await fetch(`${url}/health`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return { child, url };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGKILL");
  throw new Error("the gateway did not start");
}
