import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { createInterface } from "node:readline";
import { macOf } from "./chain.js";
import type { AuditQuery, AuditSink, AuditSource, Checkpoint, SealedRecord } from "./types.js";

export interface FileSinkOptions {
  /** The file records are appended to, as JSON Lines ("/var/log/aigw/audit.jsonl"). One writer per file. */
  path: string;
  /** Rotate once the file reaches this many bytes. Default 100 MiB. */
  maxBytes?: number;
  /** Rotate when the UTC day changes. Default true. */
  daily?: boolean;
  /** Rotated files kept; older ones are deleted (a retention checkpoint records it). Default 30. */
  maxFiles?: number;
  /** Where checkpoints go (JSON Lines). Default: `path` with `.checkpoints` before its extension. */
  checkpointPath?: string;
}

/** A rotated file's name: `audit.2026-12-01.3.jsonl` for `audit.jsonl`. */
const rotatedName = /^(.*)\.(\d{4}-\d{2}-\d{2})\.(\d+)(\.[^.]*)?$/;

function defaultCheckpointPath(path: string): string {
  const extension = extname(path);
  return `${path.slice(0, path.length - extension.length)}.checkpoints${extension || ".jsonl"}`;
}

const utcDay = (time: number) => new Date(time).toISOString().slice(0, 10);

/** The rotated files of `path`, oldest first. */
async function rotatedFiles(path: string): Promise<string[]> {
  const directory = dirname(path);
  const extension = extname(path);
  const stem = basename(path, extension);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return [];
  }
  const found: { name: string; day: string; number: number }[] = [];
  for (const name of names) {
    const match = rotatedName.exec(name);
    if (match && match[1] === stem && (match[4] ?? "") === extension) {
      found.push({ name, day: match[2] as string, number: Number(match[3]) });
    }
  }
  found.sort((left, right) =>
    left.day === right.day ? left.number - right.number : left.day < right.day ? -1 : 1,
  );
  return found.map(({ name }) => join(directory, name));
}

async function* fileLines(path: string): AsyncGenerator<string> {
  const input = createReadStream(path, { encoding: "utf8" });
  try {
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      if (line !== "") yield line;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  } finally {
    input.destroy();
  }
}

/**
 * Appends records to a JSON Lines file, rotated by size and by UTC day into
 * `<name>.<YYYY-MM-DD>.<n><ext>`, keeping `maxFiles` rotated files. Each rotation writes a
 * checkpoint of the chain heads in the closed file; each deletion writes a retention
 * checkpoint, so verify knows where the kept chain starts.
 */
export function createFileSink(options: FileSinkOptions): AuditSink {
  const { path } = options;
  const maxBytes = options.maxBytes ?? 100 * 2 ** 20;
  const daily = options.daily ?? true;
  const maxFiles = options.maxFiles ?? 30;
  const checkpointPath = options.checkpointPath ?? defaultCheckpointPath(path);
  let file: { handle: FileHandle; bytes: number; day: string } | undefined;
  /** The newest record of each instance in the open file: the heads a rotation checkpoints. */
  const heads = new Map<string, { seq: number; mac: string }>();

  async function appendCheckpoints(checkpoints: Checkpoint[]) {
    if (checkpoints.length === 0) return;
    const handle = await open(checkpointPath, "a");
    try {
      await handle.appendFile(checkpoints.map((each) => `${JSON.stringify(each)}\n`).join(""));
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async function openFile() {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, "a");
    const info = await handle.stat();
    file = { handle, bytes: info.size, day: utcDay(info.size > 0 ? info.mtimeMs : Date.now()) };
    return file;
  }

  async function rotate(current: NonNullable<typeof file>) {
    await current.handle.datasync();
    await current.handle.close();
    file = undefined;
    const extension = extname(path);
    const stem = path.slice(0, path.length - extension.length);
    const existing = await rotatedFiles(path);
    let number = 1;
    for (const name of existing) {
      const match = rotatedName.exec(basename(name));
      if (match?.[2] === current.day) number = Math.max(number, Number(match[3]) + 1);
    }
    await rename(path, `${stem}.${current.day}.${number}${extension}`);
    const time = new Date().toISOString();
    await appendCheckpoints(
      [...heads].map(([instance, head]) => ({ instance, ...head, time, reason: "rotation" })),
    );
    heads.clear();
    await prune();
  }

  async function prune() {
    const rotated = await rotatedFiles(path);
    for (const old of rotated.slice(0, Math.max(0, rotated.length - maxFiles))) {
      const last = new Map<string, { seq: number; mac: string }>();
      for await (const line of fileLines(old)) {
        const mac = macOf(line);
        const { instance, seq } = JSON.parse(line) as { instance: string; seq: number };
        if (mac) last.set(instance, { seq, mac });
      }
      const time = new Date().toISOString();
      await appendCheckpoints(
        [...last].map(([instance, head]) => ({ instance, ...head, time, reason: "retention" })),
      );
      await unlink(old);
    }
  }

  return {
    async write(records: readonly SealedRecord[]) {
      let current = file ?? (await openFile());
      if (current.bytes > 0 && daily && current.day !== utcDay(Date.now())) {
        await rotate(current);
        current = await openFile();
      }
      const text = records.map((record) => `${record.line}\n`).join("");
      await current.handle.appendFile(text);
      current.bytes += Buffer.byteLength(text);
      for (const record of records) {
        heads.set(record.instance, { seq: record.seq, mac: macOf(record.line) as string });
      }
      if (current.bytes >= maxBytes) await rotate(current);
    },
    async checkpoint(checkpoint) {
      await file?.handle.datasync();
      await appendCheckpoints([checkpoint]);
    },
    async close() {
      const current = file;
      file = undefined;
      if (!current) return;
      await current.handle.datasync();
      await current.handle.close();
    },
  };
}

function matches(line: string, query: AuditQuery | undefined): boolean {
  if (!query || (!query.tenant && !query.model && !query.since && !query.until)) return true;
  let record: { tenant?: unknown; model?: unknown; time?: unknown };
  try {
    record = JSON.parse(line);
  } catch {
    return false;
  }
  if (query.tenant !== undefined && record.tenant !== query.tenant) return false;
  if (query.model !== undefined && record.model !== query.model) return false;
  const time = typeof record.time === "string" ? Date.parse(record.time) : Number.NaN;
  if (query.since && !(time >= query.since.getTime())) return false;
  if (query.until && !(time <= query.until.getTime())) return false;
  return true;
}

/** Reads what a file sink wrote: rotated files oldest first, then the current one. */
export function createFileSource(
  options: Pick<FileSinkOptions, "path" | "checkpointPath">,
): AuditSource {
  const { path } = options;
  const checkpointPath = options.checkpointPath ?? defaultCheckpointPath(path);

  async function* records(query?: AuditQuery): AsyncGenerator<string> {
    for (const file of [...(await rotatedFiles(path)), path]) {
      for await (const line of fileLines(file)) if (matches(line, query)) yield line;
    }
  }

  return {
    records,
    async tail(count) {
      // A ring of the newest `count` lines: one pass, bounded memory, whatever the files hold.
      const ring: string[] = [];
      let seen = 0;
      if (count <= 0) return ring;
      for await (const line of records()) {
        ring[seen % count] = line;
        seen += 1;
      }
      return seen <= count ? ring : [...ring.slice(seen % count), ...ring.slice(0, seen % count)];
    },
    async *checkpoints() {
      for await (const line of fileLines(checkpointPath)) yield JSON.parse(line) as Checkpoint;
    },
    async close() {},
  };
}
