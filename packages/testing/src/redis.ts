import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { getFreePort } from "./server.js";

export interface RedisServer {
  port: number;
  url: string;
  process: ChildProcess;
  /** Kills the server and waits for it to exit. */
  stop(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but stops answering. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
}

const STARTUP_TIMEOUT_MS = 10_000;

function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on("error", () => finish(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (reply.includes("\r\n")) finish(reply.startsWith("+PONG"));
    });
  });
}

/** Starts a throwaway redis-server (no persistence) on a free port of 127.0.0.1. */
export async function startRedis(): Promise<RedisServer> {
  const port = await getFreePort();
  const child = spawn(
    "redis-server",
    ["--save", "", "--appendonly", "no", "--port", String(port), "--bind", "127.0.0.1"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let spawnError: Error | undefined;
  child.on("error", (error) => {
    spawnError = error;
  });
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async () => {
    if (hasExited()) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (!(await pingRedis(port))) {
    if ((spawnError as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
      throw new Error(
        "redis-server was not found on PATH; install it (e.g. apt-get install redis-server) to run the Redis tests",
      );
    }
    if (spawnError) throw new Error(`Could not start redis-server: ${spawnError.message}`);
    if (hasExited()) {
      throw new Error(`redis-server exited before accepting connections:\n${output}`);
    }
    if (Date.now() >= deadline) {
      await stop();
      throw new Error(
        `redis-server did not answer PING on port ${port} within ${STARTUP_TIMEOUT_MS} ms:\n${output}`,
      );
    }
    await delay(20);
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    process: child,
    stop,
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
  };
}
