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
  /**
   * Whether the text around a candidate shows it is something else (an IPv4 address right after
   * "version" is a version number): `text.slice(start, end)` is the candidate.
   */
  excluded?(text: string, start: number, end: number): boolean;
  /** The check a candidate must pass; `region` is the default region for national phone numbers. */
  valid?(match: string, region: string): boolean;
}

// Word edges that also treat "-", "." and "_" inside tokens as part of them, so that a digit
// run inside a longer identifier (an order number, a version) is not a candidate.
const before = String.raw`(?<![\w.+-])`;
const after = String.raw`(?![\w-]|\.\w)`;

const ipv6Group = "[0-9A-Fa-f]{1,4}";
// Dates in digits (2024-11-30, 30.11.2024, 11/30/2024) look like phone numbers to a pattern,
// and so do a date and the hour after it (2024-03-15 10:30, 15.03.2024 10:30): a candidate that
// starts with a date of a four-digit year, a month and a day, then a space, is one.
const looksLikeDate = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/;
const month = "(?:0?[1-9]|1[0-2])";
const day = "(?:0?[1-9]|[12]\\d|3[01])";
const year = "(?:19|20)\\d\\d";
const startsWithDate = new RegExp(
  `^(?:${year}([-.])${month}\\1${day}|${day}([-.])${month}\\2${year}|${month}([-.])${day}\\3${year}) `,
);

// A four-part version is an IPv4 address to a pattern: one right after "v" or a version word
// ("version 1.2.3.4", "build: 1.2.3.4"), or with a pre-release tag after it ("1.2.3.4-beta"), is
// a version.
const versionBefore = /\b(?:v|ver|versions?|release|build|rev|revision)\.?:?\s{0,2}$/i;
const preReleaseAfter = /^-[A-Za-z]/;

// "user@host:path" (an SSH remote, git@github.com:org/repo.git) and "scheme://user@host" (a URL's
// user name) name a login on a host, not a mailbox.
const sshPathAfter = /^:[\w/~]/;

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
    excluded: (text, start, end) =>
      sshPathAfter.test(text.slice(end, end + 2)) ||
      text.slice(Math.max(0, start - 3), start) === "://",
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
    // An IPv4 address may have its port after it (10.0.0.5:5432). An IPv6 one has a ":" in
    // its first five characters: looking for it first spares the alternatives at most words.
    entity: "IP_ADDRESS",
    pattern: new RegExp(
      `${before}(?:\\d{1,3}(?:\\.\\d{1,3}){3}(?=:\\d{1,5}(?![\\w:.])|(?![\\w:.]))|(?=[0-9A-Fa-f]{0,4}:)(?:(?:${ipv6Group}:){7}${ipv6Group}|(?:${ipv6Group}:){1,6}(?::${ipv6Group}){1,6}|::(?:${ipv6Group}:){0,5}${ipv6Group}|(?:${ipv6Group}:){1,7}:)(?![\\w:.]))`,
      "g",
    ),
    excluded: (text, start, end) =>
      !text.slice(start, end).includes(":") &&
      (versionBefore.test(text.slice(Math.max(0, start - 16), start)) ||
        preReleaseAfter.test(text.slice(end, end + 2))),
    valid: (match) => match.includes(":") || isIpv4(match),
  },
  {
    // International numbers with their "+", or national ones with separators, in three groups
    // or more, or in two after a trunk prefix 0 (an unbroken run of digits is an order number
    // or an id as often as a phone number); a North American number may have its trunk prefix
    // 1 before it (1-800-275-2273).
    entity: "PHONE_NUMBER",
    pattern: new RegExp(
      `${before}(?:\\+\\d[\\d ().-]{6,18}\\d|1[ .-](?:\\(\\d{3}\\)|\\d{3})[ .-]?\\d{3}[ .-]?\\d{4}|\\(?\\d{2,4}\\)?[ .-]\\d{2,4}(?:[ .-]\\d{2,5}){1,3}|\\(?0\\d{1,4}\\)?[ .-]\\d{4,8})${after}`,
      "g",
    ),
    valid: (match, region) => {
      const digits = match.replace(/\D/g, "").length;
      return (
        digits >= 7 &&
        digits <= 15 &&
        !looksLikeDate.test(match) &&
        !startsWithDate.test(match) &&
        isPhoneNumber(match, region)
      );
    },
  },
];
