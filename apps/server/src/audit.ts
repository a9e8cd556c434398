import { randomBytes } from "node:crypto";
import type { AuditSource, ThreadedSink } from "@aigw/audit";
import type { GatewayHooks, Logger } from "@aigw/core";
import { z } from "zod";
import { firstUnknownEntity } from "./guardrails.js";

const positive = (description: string) => z.number().int().positive().describe(description);
const timerMs = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1);

const fileSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .describe("The JSON Lines file records are appended to; one instance per file."),
    maxBytes: positive("Rotate once the file reaches this many bytes.").default(100 * 2 ** 20),
    daily: z.boolean().default(true).describe("Rotate when the UTC day changes."),
    maxFiles: positive("Rotated files kept; older ones are deleted.").default(30),
    checkpointPath: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Where chain checkpoints go, rotated and deleted with the records. Default: beside path, as <name>.checkpoints.jsonl.",
      ),
  })
  .describe("Write records to rotated JSON Lines files.");

const postgresSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL")
      .describe(
        "The database (postgres://user:password@host:5432/db); give it from the environment.",
      ),
    spoolPath: z
      .string()
      .min(1)
      .describe(
        "A local file holding records while PostgreSQL is unreachable; replayed once it is back.",
      ),
    maxSpoolBytes: positive(
      "Most bytes the spool holds; beyond it, records are reported lost.",
    ).default(2 ** 30),
    queryTimeoutMs: positive(
      "Longest wait for one statement, in ms, before its connection is dropped (records go to the spool after 1 s unconfirmed).",
    ).default(5_000),
  })
  .describe(
    "Write records to PostgreSQL (table aigw_audit_log, created by the package's migration).",
  );

export const auditSchema = z
  .strictObject({
    key: z
      .string()
      .min(32, "must be at least 32 characters")
      .refine((key) => key.trim().length >= 32, "must be at least 32 characters besides spaces")
      .describe(
        "The HMAC key of the records' chain, 32 characters or more; `aigw audit verify` needs the same. Give it from the environment (AIGW_AUDIT_KEY), one per store: checkpoints signed under a key are believed by every store that uses it.",
      ),
    instance: z
      .string()
      .regex(/^[a-zA-Z0-9_.:-]{1,100}$/, "letters, digits and _ . : -")
      .optional()
      .describe(
        "This instance's name in its records, to which each start adds a random suffix: a restart begins a new chain. Default: the host name.",
      ),
    file: fileSchema.optional(),
    postgres: postgresSchema.optional(),
    checkpointEvery: positive(
      "A chain checkpoint after this many records (and at rotation and shutdown).",
    ).default(1000),
    minCheckpointIntervalMs: timerMs
      .default(1000)
      .describe(
        "Milliseconds at least from the last checkpoint to the next interval one: one due sooner waits, then covers every record by then, so a busy instance leaves up to this long of records after its newest checkpoint. 0: as soon as one is due.",
      ),
    checkpointWithinMs: timerMs
      .default(10_000)
      .describe(
        "Milliseconds at most from a record to a checkpoint covering it, however quiet the instance: its newest records are never long unanchored.",
      ),
    maxQueued: positive(
      "Records waiting to be written at most; beyond it they are reported lost.",
    ).default(10_000),
    content: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe("Record prompts and completions of every request."),
        tenants: z
          .array(z.string().min(1))
          .default([])
          .describe("Tenants whose content is recorded."),
        routes: z
          .array(z.string().min(1))
          .default([])
          .describe("Routes (names under models) whose content is recorded."),
        maxChars: positive("Characters of prompt, and of completion, kept per record.").default(
          32_768,
        ),
        entities: z
          .array(z.string().regex(/^[A-Z][A-Z0-9_]{0,39}$/))
          .min(1)
          .optional()
          .describe(
            "The PII entities masked in content (Presidio names). Default: every built-in one.",
          ),
      })
      .prefault({})
      .describe(
        "Content is off unless enabled here, for all, or for some tenants or routes; always PII-redacted.",
      ),
  })
  .refine((audit) => audit.file || audit.postgres, {
    message: "give a place for the records: file or postgres",
  })
  .refine((audit) => !(audit.file && audit.postgres), {
    message: "give one place for the records, file or postgres, not both",
  })
  .optional()
  .describe("The audit log: one tamper-evident record per request; off unless present.");

export type AuditSettings = NonNullable<z.output<typeof auditSchema>>;

/** The sink the audit worker builds, as the config gives it. */
function sinkOf(settings: AuditSettings): ThreadedSink {
  if (settings.file) return { file: settings.file };
  const postgres = settings.postgres as NonNullable<AuditSettings["postgres"]>;
  return {
    postgres: {
      connectionString: postgres.url,
      spoolPath: postgres.spoolPath,
      maxSpoolBytes: postgres.maxSpoolBytes,
      queryTimeoutMs: postgres.queryTimeoutMs,
    },
  };
}

/** The audit log's gateway hooks and its close (flush, last checkpoint), from the config. */
export async function createServerAudit(
  settings: AuditSettings,
  logger: Logger,
): Promise<{ hooks: GatewayHooks; close(): Promise<void> }> {
  // The audit packages load only when a config turns the audit log on.
  const [{ createThreadedAuditLog }, { createAuditHooks }] = await Promise.all([
    import("@aigw/audit"),
    import("@aigw/core/audit"),
  ]);
  // Sealing and writing on a worker thread: requests pay only for building the entry.
  const log = createThreadedAuditLog({
    sink: sinkOf(settings),
    key: settings.key,
    instance: settings.instance && `${settings.instance}-${randomBytes(4).toString("hex")}`,
    checkpointEvery: settings.checkpointEvery,
    minCheckpointIntervalMs: settings.minCheckpointIntervalMs,
    checkpointWithinMs: settings.checkpointWithinMs,
    maxQueued: settings.maxQueued,
    redaction: { entities: settings.content.entities },
    maxContentChars: settings.content.maxChars,
    logger,
  });
  const { content } = settings;
  const tenants = new Set(content.tenants);
  const routes = new Set(content.routes);
  const hooks = createAuditHooks(log, {
    content:
      content.enabled ||
      ((tenants.size > 0 || routes.size > 0) &&
        ((context) =>
          tenants.has(context.tenant) ||
          (context.route !== undefined && routes.has(context.route)))),
  });
  return { hooks, close: () => log.close() };
}

/**
 * The first name in `content.entities` that the redactor does not know, as a message: a
 * misspelt `EMAIL` would store addresses unmasked.
 */
export function unknownAuditEntity(settings: AuditSettings): Promise<string | undefined> {
  return firstUnknownEntity(
    (settings.content.entities ?? []).map(
      (name, index) => [`audit.content.entities.${index}`, name] as const,
    ),
  );
}

/** Where `aigw audit` reads records back from. */
export async function auditSource(settings: AuditSettings): Promise<AuditSource> {
  if (settings.file) {
    const { createFileSource } = await import("@aigw/audit");
    return createFileSource(settings.file);
  }
  const { createPostgresSource } = await import("@aigw/audit/postgres");
  return createPostgresSource({
    connectionString: (settings.postgres as NonNullable<AuditSettings["postgres"]>).url,
  });
}
