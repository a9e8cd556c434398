import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { createInterface } from "node:readline";
import { macOf } from "./chain.js";
import type { AuditLogger } from "./log.js";
import type {
  AuditQuery,
  AuditSink,
  AuditSource,
  ChainHead,
  Checkpoint,
  SealedRecord,
  SinkReport,
} from "./types.js";

export interface FileSinkOptions {
  /** The file records are appended to, as JSON Lines ("/var/log/aigw/audit.jsonl"). One writer per file. */
  path: string;
  /** Rotate once the file reaches this many bytes. Default 100 MiB. */
  maxBytes?: number;
  /** Rotate when the UTC day changes. Default true. */
  daily?: boolean;
  /** Rotated files kept; older ones are deleted (a retention checkpoint records it). Default 30. */
  maxFiles?: number;
  /**
   * Where checkpoints go (JSON Lines). Default: `path` with `.checkpoints` before its extension.
   * It is rotated with the records (`audit.checkpoints.2026-12-01.3.jsonl` holds the checkpoints
   * written while `audit.2026-12-01.3.jsonl` was open), and a rotated one is deleted once it is
   * older than every rotated record file left.
   */
  checkpointPath?: string;
  /** Where a failed rotation is reported (the records are kept; rotation is tried again). */
  logger?: AuditLogger | undefined;
}

/** A rotated file's name: `audit.2026-12-01.3.jsonl` for `audit.jsonl` (up to 9 digits). */
const rotatedName = /^(.*)\.(\d{4}-\d{2}-\d{2})\.(\d{1,9})(\.[^.]*)?$/;

function defaultCheckpointPath(path: string): string {
  const extension = extname(path);
  return `${path.slice(0, path.length - extension.length)}.checkpoints${extension || ".jsonl"}`;
}

/**
 * @internal Files the sinks create (records, checkpoints, spool) are the owner's alone: they
 * hold prompts when content is recorded. Files that exist keep their mode.
 */
export const fileMode = 0o600;

const utcDay = (time: number) => new Date(time).toISOString().slice(0, 10);

/** `path` rotated: `audit.2026-12-01.3.jsonl` for `audit.jsonl`, day "2026-12-01" and number 3. */
function rotatedPathOf(path: string, day: string, number: number): string {
  const extension = extname(path);
  return `${path.slice(0, path.length - extension.length)}.${day}.${number}${extension}`;
}

interface RotatedFile {
  path: string;
  day: string;
  number: number;
}

const isOlder = (left: RotatedFile, right: RotatedFile) =>
  left.day === right.day ? left.number < right.number : left.day < right.day;

/** The rotated files of `path`, oldest first. */
async function rotatedFiles(path: string): Promise<string[]> {
  return (await rotatedFilesOf(path)).map((file) => file.path);
}

/** The rotated files of `path` with their day and number, oldest first by name. */
async function rotatedFilesOf(path: string): Promise<RotatedFile[]> {
  const directory = dirname(path);
  const extension = extname(path);
  const stem = basename(path, extension);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return [];
  }
  const found: RotatedFile[] = [];
  for (const name of names) {
    const match = rotatedName.exec(name);
    if (match && match[1] === stem && (match[4] ?? "") === extension) {
      found.push({
        path: join(directory, name),
        day: match[2] as string,
        number: Number(match[3]),
      });
    }
  }
  return found.sort((left, right) => (isOlder(left, right) ? -1 : isOlder(right, left) ? 1 : 0));
}

const newline = 0x0a;

/** Rotation numbers have at most 9 digits: a file named with the highest uses up its day. */
const maxRotationNumber = 999_999_999;

/** Ends a last line a crash or a failed write left without its newline; the bytes added. */
async function endTornLine(handle: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  if (last[0] === newline) return 0;
  await handle.appendFile("\n");
  return 1;
}

/** The records' lines as UTF-8 JSON Lines, each encoded once into one buffer. */
function linesOf(records: readonly SealedRecord[]): Buffer {
  let length = 0;
  for (const record of records) length += record.line.length;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  const bytes = Buffer.allocUnsafe(length * 3 + records.length);
  let used = 0;
  for (const record of records) {
    used += bytes.write(record.line, used);
    bytes[used++] = newline;
  }
  return bytes.subarray(0, used);
}

/** A record line's start: sealed records begin with their instance and sequence number. */
const recordStart = /^\{"instance":("(?:[^"\\]|\\.)*"),"seq":(\d+),/;

/** The newest record of each instance in a file, read without parsing whole records. */
async function headsIn(path: string): Promise<Map<string, ChainHead>> {
  const heads = new Map<string, ChainHead>();
  for await (const line of fileLines(path)) {
    const start = recordStart.exec(line);
    const mac = start && macOf(line);
    if (!start || !mac) continue;
    const instance = JSON.parse(start[1] as string) as string;
    heads.set(instance, { instance, seq: Number(start[2]), mac });
  }
  return heads;
}

/**
 * The non-empty lines of a file. A path that is gone or is not a regular file (a directory; a
 * FIFO, whose read would wait for a writer for good; a socket; a device) has none.
 */
async function* fileLines(path: string): AsyncGenerator<string> {
  let handle: FileHandle;
  try {
    // Non-blocking, so that opening a FIFO returns at once rather than wait for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    // Gone, or a socket (which cannot be opened).
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENXIO") return;
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) return;
    const input = handle.createReadStream({ encoding: "utf8" });
    try {
      for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
        if (line !== "") yield line;
      }
    } finally {
      input.destroy();
    }
  } finally {
    await handle.close();
  }
}

/** The lines of the checkpoint file and of its rotated files, oldest first. */
async function* checkpointLines(checkpointPath: string): AsyncGenerator<string> {
  for (const file of [...(await rotatedFiles(checkpointPath)), checkpointPath]) {
    yield* fileLines(file);
  }
}

/**
 * Appends records to a JSON Lines file, rotated by size and by UTC day into
 * `<name>.<YYYY-MM-DD>.<n><ext>`, keeping `maxFiles` rotated files. A write reports what a
 * rotation closed and what retention is about to delete, for the log to checkpoint; a file is
 * deleted only once the retention checkpoints of its chains are stored, so verify always knows
 * where a kept chain starts. A line torn by a crash or a failed write is ended, never glued to
 * the next record.
 */
export function createFileSink(options: FileSinkOptions): AuditSink {
  const { path, logger } = options;
  const maxBytes = options.maxBytes ?? 100 * 2 ** 20;
  const daily = options.daily ?? true;
  const maxFiles = options.maxFiles ?? 30;
  const checkpointPath = options.checkpointPath ?? defaultCheckpointPath(path);
  let file: { handle: FileHandle; bytes: number; day: string } | undefined;
  /** The newest record of each instance in the open file: the heads a rotation checkpoints. */
  const heads = new Map<string, ChainHead>();
  /** Tells a signed checkpoint from one made up; the log gives it (no key, nothing deleted). */
  let isSigned: ((checkpoint: Checkpoint) => boolean) | undefined;
  /**
   * What retention may vouch for: per rotated file (by name), per instance, the newest rotation
   * checkpoint naming it and signed with the key: those of this run as the log stores them,
   * those of earlier runs read once. Duplicates take no room.
   */
  const rotations = new Map<string, Map<string, Checkpoint>>();
  /**
   * Files this run rotated whose rotation checkpoints are awaited: when each was closed, and
   * the instances still awaited.
   */
  const pending = new Map<string, { time: string; awaited: Set<string> }>();
  /** Files this run rotated: the instances in them are those their rotations name. */
  const rotatedHere = new Set<string>();
  /** Reading earlier runs' rotation checkpoints, from the first open: whether it succeeded. */
  let earlierRead: Promise<boolean> | undefined;
  /** Rotated files retention keeps because nothing vouches for some of them, reported once. */
  const unvouched = new Set<string>();
  /** Earlier runs' files retention could not read, and why: reported again once that changes. */
  const unreadable = new Map<string, string>();
  /** Rotated files past retention, each waiting for its chains' retention checkpoints. */
  const deletions: { path: string; waiting: Map<string, number> }[] = [];

  /** Keeps a rotation checkpoint signed with the key; whether it was one. */
  function addRotation(checkpoint: Checkpoint): boolean {
    const { file, reason } = checkpoint;
    if (reason !== "rotation" || typeof file !== "string" || !isSigned?.(checkpoint)) return false;
    let byInstance = rotations.get(file);
    if (!byInstance) {
      byInstance = new Map();
      rotations.set(file, byInstance);
    }
    const known = byInstance.get(checkpoint.instance);
    if (!known || known.seq < checkpoint.seq) byInstance.set(checkpoint.instance, checkpoint);
    return true;
  }

  /**
   * Reads the rotation checkpoints of the files rotated before this run. Files this run
   * rotates get names none of those has, and their checkpoints come through `checkpoint`.
   */
  async function readEarlierRotations(): Promise<boolean> {
    try {
      const names = new Set((await rotatedFiles(path)).map((name) => basename(name)));
      if (names.size === 0) return true;
      for await (const line of checkpointLines(checkpointPath)) {
        if (!line.includes('"reason":"rotation"')) continue;
        try {
          const checkpoint = JSON.parse(line) as Checkpoint;
          if (names.has(checkpoint?.file as string)) addRotation(checkpoint);
        } catch {
          // Not a checkpoint: verify reports it.
        }
      }
      return true;
    } catch (error) {
      logger?.error({ path: checkpointPath, err: error }, "audit checkpoints could not be read");
      return false;
    }
  }

  /** When a rotated file was closed, as its signed rotation checkpoints (or this run) say. */
  function rotatedAt(name: string): string {
    const awaiting = pending.get(name);
    if (awaiting) return awaiting.time;
    let newest = "";
    for (const checkpoint of rotations.get(name)?.values() ?? []) {
      if (checkpoint.time > newest) newest = checkpoint.time;
    }
    return newest;
  }

  async function appendCheckpoints(checkpoints: Checkpoint[]) {
    const handle = await open(checkpointPath, "a+", fileMode);
    try {
      await endTornLine(handle, (await handle.stat()).size);
      await handle.appendFile(checkpoints.map((each) => `${JSON.stringify(each)}\n`).join(""));
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async function openFile() {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, "a+", fileMode);
    const info = await handle.stat();
    const bytes = info.size + (await endTornLine(handle, info.size));
    // Records an earlier run left in the file: their heads go into its rotation checkpoint.
    if (bytes > 0 && heads.size === 0) {
      for (const [instance, head] of await headsIn(path)) heads.set(instance, head);
    }
    file = { handle, bytes, day: utcDay(bytes > 0 ? info.mtimeMs : Date.now()) };
    earlierRead ??= readEarlierRotations();
    return file;
  }

  async function rotate(current: NonNullable<typeof file>): Promise<SinkReport> {
    // Retention counts and orders what earlier runs rotated too, and the checkpoint file must
    // not move while it is read: the first rotation after a start waits for the read.
    earlierRead ??= readEarlierRotations();
    const earlierKnown = await earlierRead;
    if (!earlierKnown) earlierRead = undefined;
    // A number above any record or checkpoint file of the day has: a rename replaces what it
    // finds, and files are read back in the order of their names. A day whose numbers a file
    // has used up gives way to today.
    const taken = [...(await rotatedFilesOf(path)), ...(await rotatedFilesOf(checkpointPath))];
    const nextNumber = (day: string) =>
      taken.reduce(
        (next, rotated) => (rotated.day === day ? Math.max(next, rotated.number + 1) : next),
        1,
      );
    let day = current.day;
    let number = nextNumber(day);
    if (number > maxRotationNumber) {
      day = utcDay(Date.now());
      number = nextNumber(day);
    }
    if (number > maxRotationNumber) {
      throw new Error(`no rotation number is left for ${day}: a file takes the highest`);
    }
    await current.handle.datasync();
    await current.handle.close();
    file = undefined;
    const rotatedPath = rotatedPathOf(path, day, number);
    await rename(path, rotatedPath);
    // The checkpoints written while the file was open go with it; retention deletes both. What
    // verify needs of them is in later checkpoints once the file is gone (see deleteCovered).
    await rename(checkpointPath, rotatedPathOf(checkpointPath, day, number)).catch(
      (error: NodeJS.ErrnoException) => {
        // They stay in the open checkpoint file, to go with the next rotated file.
        if (error.code !== "ENOENT") {
          logger?.error(
            { path: checkpointPath, err: error },
            "audit checkpoint file rotation failed",
          );
        }
      },
    );
    const name = basename(rotatedPath);
    const time = new Date().toISOString();
    const rotated = [...heads.values()].map(({ instance, seq, mac }) => ({
      instance,
      seq,
      mac,
      file: name,
      time,
    }));
    heads.clear();
    rotatedHere.add(name);
    if (rotated.length > 0) {
      pending.set(name, { time, awaited: new Set(rotated.map((head) => head.instance)) });
    }
    // If the read failed, nothing is deleted until it succeeds at a later rotation.
    return { rotated, retained: earlierKnown ? await pastRetention() : [] };
  }

  /**
   * The rotation checkpoints of the files retention deletes next: the oldest, by when they were
   * closed as their signed rotation checkpoints say, beyond the newest `maxFiles`. A file waits
   * for a retention checkpoint of each. A file that no signed rotation checkpoint names, or
   * that holds records of an instance none names, is kept (a name, a date or a line on disk
   * vouches for nothing), and reported once.
   */
  async function pastRetention(): Promise<Checkpoint[]> {
    const known: string[] = [];
    for (const file of await rotatedFiles(path)) {
      const name = basename(file);
      if (rotations.has(name) || pending.has(name)) known.push(file);
      else keep(file);
    }
    const closedAt = new Map(known.map((file) => [file, rotatedAt(basename(file))]));
    const at = (file: string) => closedAt.get(file) as string;
    known.sort((left, right) => (at(left) < at(right) ? -1 : at(left) > at(right) ? 1 : 0));
    const retained: Checkpoint[] = [];
    for (const old of known.slice(0, Math.max(0, known.length - maxFiles))) {
      const name = basename(old);
      // Files go oldest first: none before one whose rotation checkpoint is still on its way.
      // One kept for good (reported) does not hold the others back: disk use stays bounded.
      if (pending.has(name)) break;
      if (unvouched.has(old)) continue;
      if (deletions.some((deletion) => deletion.path === old)) continue;
      const named = rotations.get(name) as Map<string, Checkpoint>;
      // An earlier run's file: all its instances must be named (one's store may have failed).
      if (!rotatedHere.has(name)) {
        let unnamed: string[];
        try {
          unnamed = [...(await headsIn(old)).keys()].filter((each) => !named.has(each));
        } catch (error) {
          const failure = String(error);
          if (unreadable.get(old) !== failure) {
            unreadable.set(old, failure);
            logger?.error({ path: old, err: error }, "audit retention could not read a file");
          }
          break;
        }
        unreadable.delete(old);
        if (unnamed.length > 0) {
          keep(old, unnamed);
          continue;
        }
      }
      deletions.push({
        path: old,
        waiting: new Map([...named.values()].map((head) => [head.instance, head.seq])),
      });
      retained.push(...named.values());
    }
    await deleteCovered();
    return retained;
  }

  function keep(file: string, instances?: string[]) {
    if (unvouched.has(file)) return;
    unvouched.add(file);
    logger?.error(
      { path: file, ...(instances && { instances }) },
      "audit file kept: no rotation checkpoint signed with the audit key vouches for it (or for the instances listed); retention keeps it, and the checkpoint files after it, until it is removed",
    );
  }

  /**
   * Deletes the files whose every chain has its retention checkpoint stored, then the rotated
   * checkpoint files older than every rotated record file left. A failed deletion is logged
   * and tried again later.
   */
  async function deleteCovered() {
    let deleted = false;
    for (const deletion of [...deletions]) {
      if (deletion.waiting.size > 0) continue;
      if (!(await removed(deletion.path))) continue;
      deletions.splice(deletions.indexOf(deletion), 1);
      rotations.delete(basename(deletion.path));
      rotatedHere.delete(basename(deletion.path));
      deleted = true;
    }
    if (deleted) await deleteOldCheckpoints();
  }

  /**
   * What verify needs of a rotated checkpoint file is written at or after the records it
   * covers: in it only for records in its record file (same day and number) or older ones.
   * So a checkpoint file older than every rotated record file left covers none of them, and
   * the newest retention checkpoint of each chain is in a newer one. A record file kept out of
   * order (one no signed rotation checkpoint names) holds back the deletion of newer ones.
   * Name order is time order as long as the clock is not set back across a UTC day.
   */
  async function deleteOldCheckpoints() {
    const [oldest] = await rotatedFilesOf(path);
    for (const checkpoints of await rotatedFilesOf(checkpointPath)) {
      if (oldest && !isOlder(checkpoints, oldest)) break;
      await removed(checkpoints.path);
    }
  }

  /** Deletes a file; whether it is gone. */
  async function removed(target: string): Promise<boolean> {
    try {
      await unlink(target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        logger?.error({ path: target, err: error }, "audit retention could not delete a file");
        return false;
      }
    }
    return true;
  }

  /** Rotation reports not yet handed to the log. */
  let unreported: SinkReport | undefined;
  /** The failure of the last rotation, if it failed. */
  let rotationFailure: string | undefined;

  /**
   * Rotates, keeping what it reports for the next successful write; the open file after it.
   * A failure is logged: the records are kept, the file grows on and rotation is tried again.
   */
  async function rotateSafely(current: NonNullable<typeof file>) {
    try {
      const report = await rotate(current);
      rotationFailure = undefined;
      unreported = {
        rotated: [...(unreported?.rotated ?? []), ...(report.rotated ?? [])],
        retained: [...(unreported?.retained ?? []), ...(report.retained ?? [])],
      };
      return await openFile();
    } catch (error) {
      // Tried again at each write: reported when it first fails, and when the failure changes.
      const failure = String(error);
      if (failure !== rotationFailure)
        logger?.error({ path, err: error }, "audit file rotation failed");
      rotationFailure = failure;
      return file ?? (await openFile());
    }
  }

  async function append(current: NonNullable<typeof file>, bytes: Buffer) {
    try {
      await current.handle.appendFile(bytes);
      current.bytes += bytes.length;
    } catch (error) {
      // Nothing of a failed batch stays: the next record starts on a line of its own.
      file = undefined;
      await current.handle
        .truncate(current.bytes)
        .catch(() => {})
        .finally(() => current.handle.close().catch(() => {}));
      throw error;
    }
  }

  return {
    async write(records) {
      if (records.length === 0) return undefined;
      let current = file ?? (await openFile());
      if (current.bytes > 0 && daily && current.day !== utcDay(Date.now())) {
        current = await rotateSafely(current);
      }
      await append(current, linesOf(records));
      let previous: SealedRecord | undefined;
      for (const record of records) {
        // The last record of each run of one instance (a batch is usually one run).
        if (previous && previous.instance !== record.instance)
          heads.set(previous.instance, previous);
        previous = record;
      }
      if (previous) heads.set(previous.instance, previous);
      if (current.bytes >= maxBytes) await rotateSafely(current);
      // What rotations found goes out with a write that succeeded, so none of it is lost.
      const report = unreported;
      unreported = undefined;
      return report;
    },
    async checkpoint(checkpoint) {
      await file?.handle.datasync();
      await appendCheckpoints([checkpoint]);
      if (addRotation(checkpoint)) {
        const awaiting = pending.get(checkpoint.file as string);
        awaiting?.awaited.delete(checkpoint.instance);
        if (awaiting?.awaited.size === 0) pending.delete(checkpoint.file as string);
      }
      if (checkpoint.reason !== "retention") return;
      for (const deletion of deletions) {
        if (
          (deletion.waiting.get(checkpoint.instance) ?? Number.POSITIVE_INFINITY) <= checkpoint.seq
        ) {
          deletion.waiting.delete(checkpoint.instance);
        }
      }
      await deleteCovered();
    },
    setCheckpointVerifier(verifier) {
      isSigned = verifier;
    },
    async close() {
      await earlierRead;
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
      for await (const line of checkpointLines(checkpointPath)) {
        try {
          yield JSON.parse(line) as Checkpoint;
        } catch {
          // Verify reports what it cannot read as a checkpoint it cannot trust.
          yield { line } as unknown as Checkpoint;
        }
      }
    },
    async close() {},
  };
}
