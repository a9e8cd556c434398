import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { startRedis } from "./redis.js";

function ping(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve("timeout");
    });
    socket.on("data", (chunk) => {
      socket.destroy();
      resolve(chunk.toString("utf8").trim());
    });
  });
}

describe("startRedis", () => {
  it("starts, pauses, resumes and stops a redis-server", async () => {
    const redis = await startRedis();
    try {
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
      expect(await ping(redis.port, 1000)).toBe("+PONG");
      redis.pause();
      expect(await ping(redis.port, 100)).toBe("timeout");
      redis.resume();
      expect(await ping(redis.port, 1000)).toBe("+PONG");
    } finally {
      await redis.stop();
    }
    expect(redis.process.exitCode !== null || redis.process.signalCode !== null).toBe(true);
    await redis.stop();
  });

  it("explains a missing binary", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await expect(startRedis()).rejects.toThrow(/redis-server was not found on PATH/);
    } finally {
      process.env.PATH = path;
    }
  });
});
