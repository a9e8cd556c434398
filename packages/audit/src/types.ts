/** Token counts of a request, as the upstream reported them (or estimated, when it did not). */
export interface AuditUsage {
  inputTokens: number;
  /** Input tokens read from the provider's prompt cache. */
  cachedTokens?: number | undefined;
  /** Input tokens written to the provider's prompt cache. */
  cacheWriteTokens?: number | undefined;
  outputTokens: number;
  reasoningTokens?: number | undefined;
  /** Counted by the gateway, not reported by the upstream (a stream cut off, say). */
  estimated?: boolean | undefined;
}

/** One attempt at an upstream. */
export interface AuditAttempt {
  /** "provider/model" */
  target: string;
  /** The fallback route it was made for, when not the route asked for. */
  route?: string | undefined;
  status: number;
  durationMs: number;
}

/** A guardrail's decision: the rule, what it did and how many matches, never the text. */
export interface AuditVerdict {
  rule: string;
  phase: "input" | "output";
  action: "block" | "redact" | "flag";
  matches: number;
  /** Matches by PII entity (Presidio names: EMAIL_ADDRESS, ...). */
  entities?: Record<string, number> | undefined;
}

/**
 * What one request did, as `AuditLog.append` takes it. Times: `time` is when the request
 * arrived (ISO 8601, UTC); durations are whole milliseconds. A record holds these fields in
 * this order; optional ones are left out when undefined, and keys not listed here are not
 * recorded.
 */
export interface AuditEntry {
  time: string;
  requestId: string;
  traceId?: string | undefined;
  tenant: string;
  /** A digest prefix of the key the client presented; never the key. */
  keyId?: string | undefined;
  clientAddress?: string | undefined;
  /** The client's wire format ("openai", "anthropic") and the path it called. */
  protocol?: string | undefined;
  method?: string | undefined;
  endpoint: string;
  /** The model asked for, and the route it matched. */
  model?: string | undefined;
  route?: string | undefined;
  attempts?: AuditAttempt[] | undefined;
  provider?: string | undefined;
  /** The model the answer names. */
  servedModel?: string | undefined;
  /** The status the client got; 499 when it went away first. */
  status: number;
  errorType?: string | undefined;
  errorCode?: string | undefined;
  stream?: boolean | undefined;
  usage?: AuditUsage | undefined;
  /** USD; null when the model that answered has no price. */
  costUsd?: number | null | undefined;
  costEstimated?: boolean | undefined;
  durationMs: number;
  timeToFirstTokenMs?: number | undefined;
  /** "HIT", "MISS", "BYPASS", ... when a response cache took part. */
  cache?: string | undefined;
  guardrails?: AuditVerdict[] | undefined;
  /** Hex sha256 of the request body as it arrived, and of the answer as the client got it. */
  requestSha256?: string | undefined;
  responseSha256?: string | undefined;
  /** Prompt and completion text, only when content is recorded: redacted and size-capped. */
  content?: AuditContent | undefined;
}

/**
 * The bodies whose hex sha256 become a record's `requestSha256` and `responseSha256` (text
 * hashed as UTF-8), in place of the entry's own: the threaded log hashes them on its worker,
 * so that the thread serving requests only copies their bytes.
 */
export interface AuditBodies {
  request?: string | Uint8Array | undefined;
  response?: string | Uint8Array | undefined;
}

/** A piece of prompt or completion text (the gateway's `TextPiece`). */
export interface AuditTextPiece {
  role: "system" | "user" | "assistant" | "tool";
  kind: "text" | "reasoning" | "tool_call" | "tool_result";
  text: string;
  /** The function a tool call names. */
  name?: string | undefined;
}

export interface AuditContent {
  request?: AuditTextPiece[] | undefined;
  response?: AuditTextPiece[] | undefined;
  /** Some text was cut at the size cap. */
  truncated?: boolean | undefined;
  /** PII entities masked, by entity. */
  redacted?: Record<string, number> | undefined;
}

/**
 * A record as stored: the entry, the instance that wrote it and its place in that instance's
 * chain. `mac` is hex HMAC-SHA256 under the audit key of the previous record's `mac` (or the
 * instance's genesis) and this record's JSON text without `mac`.
 */
export interface AuditRecord extends AuditEntry {
  instance: string;
  seq: number;
  mac: string;
}

/** A sealed record as sinks receive it: its exact JSON line and the fields sinks index. */
export interface SealedRecord {
  instance: string;
  seq: number;
  time: string;
  tenant: string;
  requestId: string;
  model: string | undefined;
  status: number;
  /** The record's MAC, also the last property of `line`. */
  mac: string;
  /** The JSON text, `"mac"` its last property: verify recomputes the chain from this text. */
  line: string;
}

/** A record's place in its instance's chain. */
export interface ChainHead {
  instance: string;
  seq: number;
  mac: string;
}

/** The newest record of an instance in a rotated file. */
export interface FileHead extends ChainHead {
  /** The file's name, without its directory. */
  file: string;
  /** When the file was closed (ISO 8601, UTC): the rotation checkpoint's `time`. Default: when signed. */
  time?: string | undefined;
}

/**
 * A chain head stored apart from the records, so that removing the newest records shows.
 * "retention": records up to `seq` were deleted on purpose; the chain goes on from `mac`.
 * `sig` is hex HMAC-SHA256 under the audit key (see `signCheckpoint`): a checkpoint cannot be
 * made up without the key.
 */
export interface Checkpoint extends ChainHead {
  time: string;
  reason: "interval" | "rotation" | "shutdown" | "retention";
  /** The file a rotation closed or a retention deleted (name without directory), when one did. */
  file?: string | undefined;
  sig: string;
}

/** What a write did besides storing records, for the log to checkpoint. */
export interface SinkReport {
  /** Files closed by rotation: the newest record of each instance in each. */
  rotated?: FileHead[] | undefined;
  /**
   * Files retention deletes next: the signed rotation checkpoints that name them. The log
   * signs a retention checkpoint for each one signed with its key, and for nothing else, so
   * that retention vouches only for where a file ended when it was closed.
   */
  retained?: Checkpoint[] | undefined;
}

/** Where sealed records go. Records arrive in chain order, one write at a time. */
export interface AuditSink {
  /**
   * Stores records in order, each once. Resolves when they are stored (on disk by the next
   * `checkpoint` at the latest: the file sink syncs then), or kept to be delivered later (a
   * spool); rejects only when they could be neither (the log reports them as lost).
   */
  write(records: readonly SealedRecord[]): Promise<SinkReport | undefined>;
  /**
   * Stores a signed chain head apart from the records, once the records it covers are durable.
   */
  checkpoint(checkpoint: Checkpoint): Promise<void>;
  /**
   * The log gives a sink that reads checkpoints back a test of their signature, once, before
   * its first write: the file sink believes only signed rotation checkpoints when it counts
   * and deletes rotated files (without it, retention deletes nothing).
   */
  setCheckpointVerifier?(isSigned: (checkpoint: Checkpoint) => boolean): void;
  /** Delivers what it holds and releases its files or connections. */
  close(): Promise<void>;
}

/** Filters for reading records back; times are inclusive bounds on `time`. */
export interface AuditQuery {
  tenant?: string | undefined;
  model?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

/** Stored records, read back for verify, tail and query. */
export interface AuditSource {
  /** Record lines matching the query (all of them without one), each instance's in chain order. */
  records(query?: AuditQuery): AsyncIterable<string>;
  /** The newest `count` record lines, oldest first. */
  tail(count: number): Promise<string[]>;
  checkpoints(): AsyncIterable<Checkpoint>;
  /**
   * What the store holds that the chain cannot vouch for (PostgreSQL: rows whose indexed
   * columns differ from their sealed line), one sentence each, for verify.
   */
  inconsistencies?(): AsyncIterable<string>;
  close(): Promise<void>;
}
