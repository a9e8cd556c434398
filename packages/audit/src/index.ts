export {
  type AuditKey,
  type ChainReport,
  genesisMac,
  macOf,
  sealRecord,
  type VerifyReport,
  verifyRecords,
} from "./chain.js";
export { createFileSink, createFileSource, type FileSinkOptions } from "./file.js";
export {
  type AuditLog,
  type AuditLogger,
  type AuditLogOptions,
  type AuditLogStats,
  createAuditLog,
} from "./log.js";
export type {
  AuditAttempt,
  AuditContent,
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuditSink,
  AuditSource,
  AuditTextPiece,
  AuditUsage,
  AuditVerdict,
  Checkpoint,
  SealedRecord,
} from "./types.js";
