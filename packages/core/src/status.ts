// A subpath of its own (`@aigw/core/status`): what an operator's status page reads, counted
// in memory from the gateway's onFinish hook.
export {
  createStatusRecorder,
  type RecentAttempt,
  type RecentRequest,
  type SeriesReport,
  type StatusPoint,
  type StatusRecorder,
  type StatusRecorderOptions,
  type StatusSnapshot,
  type WindowSummary,
} from "./status/recorder.js";
