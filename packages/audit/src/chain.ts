import { createHmac, createSecretKey, KeyObject, timingSafeEqual } from "node:crypto";
import type { AuditEntry, ChainHead, Checkpoint, SealedRecord } from "./types.js";

/** An HMAC key: text (UTF-8), bytes or a secret KeyObject, at least 32 bytes. */
export type AuditKey = string | Uint8Array | KeyObject;

const macSuffix = /,"mac":"([0-9a-f]{64})"\}$/;

/** @throws TypeError for a key shorter than 32 bytes, or a KeyObject that is not a secret key. */
export function checkKey(key: AuditKey): void {
  if (key instanceof KeyObject && key.type !== "secret") {
    throw new TypeError("the audit key must be a secret key, not a public or private one");
  }
  const length =
    typeof key === "string"
      ? Buffer.byteLength(key)
      : key instanceof KeyObject
        ? (key.symmetricKeySize ?? 0)
        : key.length;
  if (length < 32) throw new TypeError("the audit key must be at least 32 bytes");
}

/** The key as a KeyObject: an HMAC made from one skips converting the key each time. */
export function keyObjectOf(key: AuditKey): KeyObject {
  return key instanceof KeyObject
    ? key
    : createSecretKey(typeof key === "string" ? Buffer.from(key) : key);
}

/** Where an instance's chain starts: the `mac` its first record is chained to. */
export function genesisMac(key: AuditKey, instance: string): string {
  return createHmac("sha256", key).update(`aigw-audit genesis\n${instance}`).digest("hex");
}

function macOfText(key: AuditKey, previousMac: string, text: string): string {
  return createHmac("sha256", key).update(`${previousMac}\n${text}`).digest("hex");
}

/**
 * A checkpoint of `head`, signed: `sig` is the HMAC, under `key`, of its fields (`file` too,
 * when the head names one), apart from record MACs by a prefix of its own.
 */
export function signCheckpoint(
  key: AuditKey,
  head: ChainHead & { file?: string | undefined },
  reason: Checkpoint["reason"],
  time = new Date().toISOString(),
): Checkpoint {
  const { instance, seq, mac, file } = head;
  const checkpoint = { instance, seq, mac, time, reason, ...(file !== undefined && { file }) };
  return { ...checkpoint, sig: checkpointSig(key, checkpoint) };
}

function checkpointSig(key: AuditKey, checkpoint: Omit<Checkpoint, "sig">): string {
  const { instance, seq, mac, time, reason, file } = checkpoint;
  const fields = [instance, seq, mac, time, reason];
  if (file !== undefined) fields.push(file);
  return createHmac("sha256", key)
    .update(`aigw-audit checkpoint\n${JSON.stringify(fields)}`)
    .digest("hex");
}

/** @internal Whether `checkpoint` is well formed and signed with `key`. */
export function isSignedCheckpoint(key: AuditKey, checkpoint: Checkpoint): boolean {
  return (
    typeof checkpoint === "object" &&
    checkpoint !== null &&
    typeof checkpoint.instance === "string" &&
    Number.isSafeInteger(checkpoint.seq) &&
    (checkpoint.file === undefined || typeof checkpoint.file === "string") &&
    typeof checkpoint.sig === "string" &&
    equalHex(checkpointSig(key, checkpoint), checkpoint.sig)
  );
}

/**
 * The record's line: `{"instance":…,"seq":…,<entry>,"mac":…}`, its MAC over the previous one
 * and the line without `mac`.
 */
export function sealRecord(
  key: AuditKey,
  entry: AuditEntry,
  instance: string,
  seq: number,
  previousMac: string,
): SealedRecord {
  const { time, tenant, requestId, model, status } = entry;
  const index = { time, tenant, requestId, model, status };
  return sealMembers(key, JSON.stringify(entry).slice(1, -1), index, instance, seq, previousMac);
}

/** @internal The fields of a record that sinks keep apart from its line (PostgreSQL columns). */
export type RecordIndex = Pick<SealedRecord, "time" | "tenant" | "requestId" | "model" | "status">;

/**
 * @internal `sealRecord` for an entry given as the text of its JSON members (`"time":…,…`, no
 * braces), and the fields sinks index.
 */
export function sealMembers(
  key: AuditKey,
  members: string,
  index: RecordIndex,
  instance: string,
  seq: number,
  previousMac: string,
): SealedRecord {
  const text = `{"instance":${JSON.stringify(instance)},"seq":${seq}${members === "" ? "" : `,${members}`}}`;
  const mac = macOfText(key, previousMac, text);
  return {
    instance,
    seq,
    time: index.time,
    tenant: index.tenant,
    requestId: index.requestId,
    model: index.model,
    status: index.status,
    line: `${text.slice(0, -1)},"mac":"${mac}"}`,
    mac,
  };
}

/** The `mac` at the end of a record line, or undefined when the line has none. */
export function macOf(line: string): string | undefined {
  return macSuffix.exec(line)?.[1];
}

/** One instance's chain as far as verification got. */
export interface ChainReport {
  instance: string;
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** The newest checkpoint's sequence number (undefined: none was written). */
  checkpointSeq: number | undefined;
  /** Records after the newest checkpoint: their removal could not be told from a crash. */
  unanchored: number;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  chains: ChainReport[];
  /** What is wrong, one line each, at most `maxProblems` (default 100). */
  problems: string[];
}

interface ChainState {
  report: ChainReport;
  previousMac: string;
}

interface CheckpointIndex {
  /** Chain heads by sequence number. */
  heads: Map<number, string>;
  newest: number;
  /** The newest retention point: records up to it were deleted on purpose. */
  retained: Checkpoint | undefined;
}

/**
 * Checks each instance's chain in `lines` (every instance's records in its own order, as
 * sources give them) against `checkpoints`: every MAC, consecutive sequence numbers from 1 or
 * from a retention point, and that each checkpointed head is present, so a removed, reordered
 * or edited record, the newest checkpointed one included, is reported. Memory grows with the
 * number of instances and checkpoints, not records.
 */
export async function verifyRecords(
  lines: AsyncIterable<string>,
  checkpoints: AsyncIterable<Checkpoint>,
  key: AuditKey,
  maxProblems = 100,
): Promise<VerifyReport> {
  key = keyObjectOf(key);
  const problems: string[] = [];
  let problemCount = 0;
  const problem = (text: string) => {
    problemCount += 1;
    if (problems.length < maxProblems) problems.push(text);
  };
  const indexes = new Map<string, CheckpointIndex>();
  for await (const checkpoint of checkpoints) {
    if (!isSignedCheckpoint(key, checkpoint)) {
      problem(
        typeof checkpoint?.instance === "string"
          ? `${checkpoint.instance}: a checkpoint at ${String(checkpoint.seq)} is not signed with this key`
          : "a checkpoint cannot be read",
      );
      continue;
    }
    let index = indexes.get(checkpoint.instance);
    if (!index) {
      index = { heads: new Map(), newest: 0, retained: undefined };
      indexes.set(checkpoint.instance, index);
    }
    if (checkpoint.reason === "retention") {
      if (!index.retained || checkpoint.seq > index.retained.seq) index.retained = checkpoint;
      continue;
    }
    index.heads.set(checkpoint.seq, checkpoint.mac);
    index.newest = Math.max(index.newest, checkpoint.seq);
  }

  const chains = new Map<string, ChainState>();
  let records = 0;
  let checked = 0;
  let altered = 0;
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber += 1;
    if (line.trim() === "") continue;
    records += 1;
    const mac = macOf(line);
    let parsed: { instance?: unknown; seq?: unknown } | undefined;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const instance = parsed?.instance;
    const seq = parsed?.seq;
    if (!mac || typeof instance !== "string" || !Number.isSafeInteger(seq)) {
      problem(`record ${lineNumber}: not a sealed audit record`);
      continue;
    }
    const index = indexes.get(instance);
    let chain = chains.get(instance);
    // Records retention should have deleted (a crash between its checkpoint and the
    // deletion, healed at the next rotation): their chain start is gone, so they prove nothing.
    if (!chain && index?.retained && (seq as number) <= index.retained.seq) {
      problem(
        `${instance}: record ${seq} is past retention (at ${index.retained.seq}) yet still there`,
      );
      continue;
    }
    if (!chain) {
      const retained = index?.retained;
      const startsAfter = retained && (seq as number) > 1 ? retained : undefined;
      chain = {
        report: {
          instance,
          records: 0,
          firstSeq: seq as number,
          lastSeq: (startsAfter?.seq ?? 0) as number,
          checkpointSeq: index && index.newest > 0 ? index.newest : undefined,
          unanchored: 0,
        },
        previousMac: startsAfter?.mac ?? genesisMac(key, instance),
      };
      chains.set(instance, chain);
    }
    const { report } = chain;
    const expected = report.lastSeq + 1;
    if (seq !== expected) {
      problem(
        (seq as number) > expected
          ? `${instance}: records ${expected}..${(seq as number) - 1} are missing`
          : `${instance}: record ${seq} is out of order (after ${report.lastSeq})`,
      );
    }
    const text = `${line.slice(0, -(mac.length + 10))}}`;
    const computed = macOfText(key, chain.previousMac, text);
    if (seq === expected) {
      checked += 1;
      if (!equalHex(computed, mac)) {
        altered += 1;
        problem(`${instance}: record ${seq} was altered (its MAC does not match)`);
      }
    }
    const head = index?.heads.get(seq as number);
    if (head !== undefined && !equalHex(head, mac)) {
      problem(`${instance}: record ${seq} differs from its checkpoint`);
    }
    report.records += 1;
    report.lastSeq = Math.max(report.lastSeq, seq as number);
    chain.previousMac = mac;
  }

  for (const [instance, index] of indexes) {
    const chain = chains.get(instance);
    if (!chain) {
      // Retention may have deleted every record of an instance: that is no loss.
      const from = (index.retained?.seq ?? 0) + 1;
      if (index.newest >= from)
        problem(`${instance}: records ${from}..${index.newest} are missing`);
      continue;
    }
    const { report } = chain;
    if (report.lastSeq < index.newest && (index.retained?.seq ?? 0) < index.newest) {
      problem(
        `${instance}: the newest records ${report.lastSeq + 1}..${index.newest} are missing (checkpointed)`,
      );
    }
  }
  const reports = [...chains.values()].map(({ report }) => {
    report.unanchored = Math.max(0, report.lastSeq - (report.checkpointSeq ?? 0));
    return report;
  });
  if (problemCount > problems.length) {
    problems.push(`... and ${problemCount - problems.length} more`);
  }
  if (checked > 1 && altered === checked) {
    problems.unshift("no record matches this key: is it the key the log was written with?");
  }
  return { ok: problemCount === 0, records, chains: reports, problems };
}

const hex64 = /^[0-9a-f]{64}$/;

/** Constant-time equality of two MACs; anything not 64 hex digits is unequal. */
function equalHex(left: string, right: string): boolean {
  return (
    hex64.test(left) && hex64.test(right) && timingSafeEqual(Buffer.from(left), Buffer.from(right))
  );
}
