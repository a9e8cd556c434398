export {
  type AuditKey,
  type ChainReport,
  genesisMac,
  macOf,
  sealRecord,
  signCheckpoint,
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
export {
  createThreadedAuditLog,
  type ThreadedAuditLogOptions,
  type ThreadedSink,
} from "./threaded.js";
export type {
  AuditAttempt,
  AuditBodies,
  AuditContent,
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuditSink,
  AuditSource,
  AuditTextPiece,
  AuditUsage,
  AuditVerdict,
  ChainHead,
  Checkpoint,
  FileHead,
  SealedRecord,
  SinkReport,
} from "./types.js";
