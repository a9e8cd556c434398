export { type Detector, detectors, type Entity, entities } from "./entities.js";
export { type ChatMessage, redactChatMessages } from "./messages.js";
export {
  type Analyzer,
  createPresidioAnalyzer,
  type PresidioAnalyzerOptions,
} from "./presidio.js";
export {
  createUnmasker,
  type PiiAction,
  placeholderFor,
  placeholderPattern,
  type Redaction,
  type RedactOptions,
  redactText,
  type Unmasker,
  unmaskText,
} from "./redact.js";
export {
  type Finding,
  maxEntityLength,
  type ScanOptions,
  scanText,
  withoutOverlaps,
} from "./scan.js";
export { isCardNumber, isIban, isIpv4, isPhoneNumber, isSsn, passesLuhn } from "./validators.js";
