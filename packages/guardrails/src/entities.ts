import { isCardNumber, isIban, isIpv4, isPhoneNumber, isSsn } from "./validators.js";

/**
 * The entities found by patterns and checksums, named as Presidio names them (EMAIL_ADDRESS,
 * PHONE_NUMBER, ...), with the secrets of the major API providers. Names, street addresses and
 * other entities that need named-entity recognition are not among them: an `Analyzer` (for
 * instance Presidio over HTTP) can add them.
 */
export type Entity =
  | "EMAIL_ADDRESS"
  | "PHONE_NUMBER"
  | "CREDIT_CARD"
  | "IBAN_CODE"
  | "US_SSN"
  | "IP_ADDRESS"
  | "OPENAI_API_KEY"
  | "ANTHROPIC_API_KEY"
  | "GOOGLE_API_KEY"
  | "AWS_ACCESS_KEY"
  | "GITHUB_TOKEN"
  | "SLACK_TOKEN"
  | "PRIVATE_KEY"
  | "JWT";

export const entities: readonly Entity[] = [
  "EMAIL_ADDRESS",
  "PHONE_NUMBER",
  "CREDIT_CARD",
  "IBAN_CODE",
  "US_SSN",
  "IP_ADDRESS",
  "OPENAI_API_KEY",
  "ANTHROPIC_API_KEY",
  "GOOGLE_API_KEY",
  "AWS_ACCESS_KEY",
  "GITHUB_TOKEN",
  "SLACK_TOKEN",
  "PRIVATE_KEY",
  "JWT",
];

export interface Detector {
  entity: Entity;
  /** Candidates (a global pattern). */
  pattern: RegExp;
  /**
   * The value also takes the run of these characters just before the match (1 to `max` of
   * them; a longer run is no value).
   */
  before?: { chars: RegExp; max: number };
  /** The check a candidate must pass; `region` is the default region for national phone numbers. */
  valid?(match: string, region: string): boolean;
}

// Word edges that also treat "-", "." and "_" inside tokens as part of them, so that a digit
// run inside a longer identifier (an order number, a version) is not a candidate.
const before = String.raw`(?<![\w.+-])`;
const after = String.raw`(?![\w-]|\.\w)`;

const ipv6Group = "[0-9A-Fa-f]{1,4}";
// Dates in digits (2024-11-30, 30.11.2024, 11/30/2024) look like phone numbers to a pattern.
const looksLikeDate = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/;

/**
 * Detectors in order of precedence: where two findings overlap, the earlier detector's wins
 * (a secret over the phone-like digits inside it).
 */
export const detectors: readonly Detector[] = [
  {
    entity: "PRIVATE_KEY",
    pattern:
      /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]{1,16384}?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g,
  },
  { entity: "JWT", pattern: /\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}/g },
  { entity: "ANTHROPIC_API_KEY", pattern: /\bsk-ant-[\w-]{20,}/g },
  { entity: "OPENAI_API_KEY", pattern: /\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[\w-]{20,}/g },
  { entity: "GOOGLE_API_KEY", pattern: /\bAIza[\w-]{35}(?![\w-])/g },
  { entity: "AWS_ACCESS_KEY", pattern: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g },
  { entity: "GITHUB_TOKEN", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})/g },
  { entity: "SLACK_TOKEN", pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  {
    // Matched from its "@", which the engine finds fast; the local part is read behind it.
    entity: "EMAIL_ADDRESS",
    pattern: /@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b/g,
    before: { chars: /[\w.%+-]/, max: 64 },
  },
  {
    entity: "IBAN_CODE",
    pattern: new RegExp(
      `${before}[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?${after}`,
      "g",
    ),
    valid: isIban,
  },
  {
    entity: "CREDIT_CARD",
    pattern: new RegExp(`${before}\\d{4}(?:[ -]?\\d{2,4}){2,4}(?:[ -]?\\d{1,3})?${after}`, "g"),
    valid: isCardNumber,
  },
  {
    entity: "US_SSN",
    pattern: new RegExp(`${before}\\d{3}-\\d{2}-\\d{4}${after}`, "g"),
    valid: isSsn,
  },
  {
    entity: "IP_ADDRESS",
    pattern: new RegExp(
      `${before}(?:\\d{1,3}(?:\\.\\d{1,3}){3}|(?:${ipv6Group}:){7}${ipv6Group}|(?:${ipv6Group}:){1,6}(?::${ipv6Group}){1,6}|::(?:${ipv6Group}:){0,5}${ipv6Group}|(?:${ipv6Group}:){1,7}:)(?![\\w:.])`,
      "g",
    ),
    valid: (match) => match.includes(":") || isIpv4(match),
  },
  {
    // International numbers with their "+", or national ones with separators, in three groups
    // or more, or in two after a trunk prefix 0 (an unbroken run of digits is an order number
    // or an id as often as a phone number).
    entity: "PHONE_NUMBER",
    pattern: new RegExp(
      `${before}(?:\\+\\d[\\d ().-]{6,18}\\d|\\(?\\d{2,4}\\)?[ .-]\\d{2,4}(?:[ .-]\\d{2,5}){1,3}|\\(?0\\d{1,4}\\)?[ .-]\\d{4,8})${after}`,
      "g",
    ),
    valid: (match, region) => {
      const digits = match.replace(/\D/g, "").length;
      return (
        digits >= 7 && digits <= 15 && !looksLikeDate.test(match) && isPhoneNumber(match, region)
      );
    },
  },
];
