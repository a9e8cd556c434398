import { type Finding, placeholderFor, placeholderPattern, scanText } from "@aigw/guardrails";
import type { ContentRule, GuardrailPolicy, PiiEntityAction } from "./policy.js";

/** One match of a rule in a text. */
export interface Match {
  start: number;
  end: number;
  rule: string;
  action: "block" | "redact" | "flag";
  /** What a redacted match becomes. */
  replacement?: string;
  /** The PII entity, for PII matches. */
  entity?: string;
}

export interface Matcher {
  /**
   * Every rule's matches in a text, in order; none overlapping but blocking ones. `found`: PII
   * an analyzer found in it, which takes the PII actions too.
   */
  find(text: string, found?: readonly Finding[]): Match[];
  /**
   * The fewest characters a stream must hold back so that no match is cut short: the longest
   * word, placeholder (51) or PII value looked for (64, an IBAN with spaces).
   */
  readonly holdBack: number;
}

/** The longest placeholder of @aigw/guardrails: "<", 40 characters of entity, "_", 8 hex digits, ">". */
const longestPlaceholder = 51;
/** Enough for every PII value but the longest emails and keys. */
const longestPiiValue = 64;

const word = String.raw`[\p{L}\p{N}_]`;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * A rule's words and patterns as one expression.
 * @throws TypeError naming the rule for a pattern that is not a valid regular expression.
 */
export function ruleExpression(rule: ContentRule): RegExp | undefined {
  const sources: string[] = [];
  const words = (rule.words ?? []).filter((each) => each !== "");
  if (words.length > 0) {
    const alternatives = [...words].sort((a, b) => b.length - a.length).map(escapeRegExp);
    sources.push(`(?<!${word})(?:${alternatives.join("|")})(?!${word})`);
  }
  sources.push(...(rule.patterns ?? []).map((pattern) => `(?:${pattern})`));
  if (sources.length === 0) return undefined;
  try {
    return new RegExp(sources.join("|"), rule.caseSensitive ? "gu" : "giu");
  } catch (error) {
    throw new TypeError(
      `guardrail rule '${rule.name}': ${error instanceof Error ? error.message : error}`,
    );
  }
}

export interface MatcherSettings {
  phase: "input" | "output";
  policy: GuardrailPolicy;
  /** The rules' expressions, compiled once per policy. */
  expressions: Map<ContentRule, RegExp | undefined>;
  /** The tenant's placeholder key. */
  key: Uint8Array;
  /** Placeholders to restore, on output. */
  originals?: ReadonlyMap<string, string> | undefined;
}

/** What a PII entity becomes in `phase`, or undefined when it is not looked at there. */
function piiAction(
  policy: GuardrailPolicy,
  phase: "input" | "output",
  entity: string,
): "block" | "redact" | "flag" | undefined {
  const { pii } = policy;
  if (!pii) return undefined;
  if (phase === "output") return pii.output;
  const action: PiiEntityAction = pii.actions?.[entity] ?? pii.defaultAction ?? "mask";
  if (action === "allow") return undefined;
  return action === "mask" ? "redact" : action;
}

export function createMatcher(settings: MatcherSettings): Matcher {
  const { phase, policy, key, originals } = settings;
  const rules = (policy.rules ?? []).filter((rule) => {
    const on = rule.on ?? "both";
    return on === "both" || on === phase;
  });
  const pii = policy.pii;
  const scansPii = pii !== undefined && (phase === "input" || pii.output !== undefined);
  const scanOptions = {
    ...(pii?.entities ? { entities: pii.entities } : {}),
    ...(pii?.phoneRegion ? { phoneRegion: pii.phoneRegion } : {}),
  };
  let holdBack = Math.max(
    0,
    ...rules.flatMap((rule) => (rule.words ?? []).map((each) => each.length)),
  );
  if (originals && originals.size > 0) holdBack = Math.max(holdBack, longestPlaceholder);
  if (scansPii) holdBack = Math.max(holdBack, longestPiiValue);
  const find = (text: string, analyzed: readonly Finding[] = []): Match[] => {
    const found: (Match & { rank: number })[] = [];
    if (originals && originals.size > 0) {
      for (const hit of text.matchAll(placeholderPattern)) {
        const original = originals.get(hit[0]);
        if (original === undefined) continue;
        const end = hit.index + hit[0].length;
        found.push({
          start: hit.index,
          end,
          rule: "unmask",
          action: "redact",
          replacement: original,
          rank: 0,
        });
      }
    }
    rules.forEach((rule, rank) => {
      const expression = settings.expressions.get(rule);
      if (!expression) return;
      for (const hit of text.matchAll(expression)) {
        if (hit[0] === "") continue;
        found.push({
          start: hit.index,
          end: hit.index + hit[0].length,
          rule: rule.name,
          action: rule.action,
          replacement: rule.replacement ?? "[REDACTED]",
          rank: rank + 1,
        });
      }
    });
    if (scansPii) {
      const findings = scanText(text, scanOptions);
      for (const finding of analyzed.length > 0 ? [...findings, ...analyzed] : findings) {
        const action = piiAction(policy, phase, finding.entity);
        if (!action) continue;
        const match: Match & { rank: number } = {
          start: finding.start,
          end: finding.end,
          rule: "pii",
          action,
          entity: finding.entity,
          rank: rules.length + 1,
        };
        if (action === "redact") {
          match.replacement = placeholderFor(
            finding.entity,
            text.slice(finding.start, finding.end),
            key,
          );
        }
        found.push(match);
      }
    }
    if (found.length < 2) return found;
    found.sort((a, b) => a.start - b.start || a.rank - b.rank || b.end - a.end);
    const kept: Match[] = [];
    let reached = 0;
    for (const match of found) {
      // A block counts wherever it lies; other matches give way to what came first.
      if (match.start >= reached || match.action === "block") {
        kept.push(match);
        reached = Math.max(reached, match.end);
      }
    }
    return kept;
  };
  return { find, holdBack };
}

/** `text` with each redacting match replaced; `shape` shapes replacements (JSON strings). */
export function applyMatches(
  text: string,
  matches: readonly Match[],
  shape?: (replacement: string) => string,
): string {
  let out = "";
  let from = 0;
  for (const match of matches) {
    if (match.action !== "redact" || match.start < from) continue;
    const replacement = match.replacement ?? "";
    out += text.slice(from, match.start) + (shape ? shape(replacement) : replacement);
    from = match.end;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** A replacement as it goes inside a JSON string (tool-call arguments are JSON text). */
export const jsonEscaped = (replacement: string): string =>
  JSON.stringify(replacement).slice(1, -1);
