import type { Analyzer, PiiAction } from "@aigw/guardrails";
import type { RequestContext } from "../types.js";

/** Where a rule applies: the request's text, the answer's, or both. */
export type GuardrailPhase = "input" | "output" | "both";

/** A word or pattern list. */
export interface ContentRule {
  /** Names the rule in refusals, logs and metrics (keep the set small: it is a metric label). */
  name: string;
  /** Default "both". */
  on?: GuardrailPhase;
  /**
   * "block": refuse the request (400 `content_filter`) or withhold the answer; "redact": replace
   * each match with `replacement`; "flag": log and count only.
   */
  action: "block" | "redact" | "flag";
  /** Words or phrases, matched whole (not inside longer words), ignoring case. */
  words?: string[];
  /** Regular expressions in JavaScript syntax, matched with flags "gu" (and "i" unless `caseSensitive`). */
  patterns?: string[];
  /** Whether `words` and `patterns` match case-sensitively. Default false. */
  caseSensitive?: boolean;
  /** What a redacted match becomes. Default "[REDACTED]". */
  replacement?: string;
}

/** What a PII entity found becomes: masked, refused (400 `pii_detected`), flagged, or let through. */
export type PiiEntityAction = PiiAction | "flag";

/** PII detection with @aigw/guardrails' detectors. */
export interface PiiPolicy {
  /** The entities looked for. Default: every built-in one. */
  entities?: string[];
  /** Action per entity on the request's text; entities not listed take `defaultAction`. */
  actions?: Record<string, PiiEntityAction>;
  /** Default "mask". */
  defaultAction?: PiiEntityAction;
  /** Region of phone numbers written without a country code (ISO 3166, default "US"). */
  phoneRegion?: string;
  /**
   * Whether masked values are restored in the answer (the request's own placeholders only,
   * streams included). Default true.
   */
  unmask?: boolean;
  /**
   * PII in answers: "redact" masks it with placeholders, "block" withholds the answer, "flag"
   * counts it. Default: answers are not scanned for PII.
   */
  output?: "block" | "redact" | "flag";
  /**
   * Finds more entities in the request's text, such as names and places, which need
   * named-entity recognition (`createPresidioAnalyzer` of @aigw/guardrails); its findings take
   * the same actions. It reads requests only: a stream's text cannot wait for a service.
   */
  analyzer?: Analyzer;
  /** What a failed analyzer means: "allow" (default, logged) or "block" (400 `pii_detected`). */
  analyzerOnError?: "allow" | "block";
}

/** A check the gateway awaits, such as a moderation model. */
export interface CustomCheck {
  name: string;
  /** Default "input". On a stream's output it runs once the stream ended, and can only flag. */
  on?: GuardrailPhase;
  /** "block" refuses the request (400 `content_filter`) or withholds a JSON answer. */
  action: "block" | "flag";
  /**
   * True when `text` breaks the rule. A check that calls a model through this gateway sends
   * `headers` with that call, so the call is not checked by this rule again.
   */
  check(input: {
    text: string;
    phase: "input" | "output";
    context: RequestContext;
    headers: Record<string, string>;
    signal: AbortSignal;
  }): boolean | Promise<boolean>;
  /** Longest wait for the check, in milliseconds (10,000). */
  timeoutMs?: number;
  /** What a failed or late check means: "allow" (default, logged) or "block". */
  onError?: "allow" | "block";
}

/** The guardrails of a request. Every field is optional; an empty policy checks nothing. */
export interface GuardrailPolicy {
  pii?: PiiPolicy;
  rules?: ContentRule[];
  checks?: CustomCheck[];
  /** Most characters of text a request may carry (every message, prompt and input). */
  maxPromptChars?: number;
  /**
   * Characters of a stream's text held back so that a match split across events is caught
   * (128, at most 4,096; at least the longest word, placeholder or PII value looked for).
   * Text goes out in steps of this much, so time to the first token grows by at most twice it.
   */
  holdBackChars?: number;
}

/** Rules or checks of `later` added to `earlier`'s, replacing those of the same name. */
function byName<Named extends { name: string }>(
  earlier: Named[] | undefined,
  later: Named[] | undefined,
): Named[] | undefined {
  if (!earlier || !later) return later ?? earlier;
  const names = new Set(later.map((each) => each.name));
  return [...earlier.filter((each) => !names.has(each.name)), ...later];
}

/**
 * Policies laid over one another, later ones winning: `pii` field by field (its `actions`
 * entity by entity), `rules` and `checks` added, one of the same name replacing the earlier
 * one, and the other fields replaced.
 */
export function layerPolicies(
  ...policies: (GuardrailPolicy | undefined)[]
): GuardrailPolicy | undefined {
  let layered: GuardrailPolicy | undefined;
  for (const policy of policies) {
    if (!policy) continue;
    if (!layered) {
      layered = policy;
      continue;
    }
    const { pii: earlierPii, rules, checks } = layered;
    layered = { ...layered, ...policy };
    if (earlierPii && policy.pii) {
      layered.pii = {
        ...earlierPii,
        ...policy.pii,
        actions: { ...earlierPii.actions, ...policy.pii.actions },
      };
    }
    const layeredRules = byName(rules, policy.rules);
    if (layeredRules) layered.rules = layeredRules;
    const layeredChecks = byName(checks, policy.checks);
    if (layeredChecks) layered.checks = layeredChecks;
  }
  return layered;
}
