import { type RedisServer, startRedis } from "@aigw/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";

// Each test file that imports this gets its own redis-server, a client on it, and cleanup.
export let server: RedisServer;
export let client: Redis;
const closables: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.port);
});

afterAll(async () => {
  await Promise.all(closables.map((closable) => closable.close()));
  client?.disconnect();
  await server?.stop();
});

/** Closes what it is given once the file's tests are done. */
export function closeAfterAll<T extends { close(): Promise<void> }>(...items: T[]): void {
  closables.push(...items);
}

let keyCount = 0;
export const uniqueKey = () => `tenant-${++keyCount}`;
