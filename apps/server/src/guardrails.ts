import type { GatewayHooks } from "@aigw/core";
import type { GuardrailPolicy } from "@aigw/core/guardrails";
import { z } from "zod";

/** Adds an issue naming the regular expression engine's complaint, for a pattern it refuses. */
function checkRegExp(source: string, context: z.RefinementCtx) {
  try {
    new RegExp(source, "giu");
  } catch (error) {
    context.addIssue({
      code: "custom",
      message: `not a valid regular expression: ${error instanceof Error ? error.message : error}`,
    });
  }
}

const phase = z.enum(["input", "output", "both"]);

const ruleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-zA-Z0-9_.:-]{1,64}$/, "letters, digits and _ . : - (a metric label)")
      .describe("Names the rule in refusals, logs and metrics."),
    on: phase.default("both").describe("Where it applies: the request, the answer, or both."),
    action: z
      .enum(["block", "redact", "flag"])
      .describe("block: refuse or withhold; redact: replace the match; flag: log and count only."),
    words: z
      .array(z.string().min(1))
      .optional()
      .describe("Words or phrases, matched whole and ignoring case."),
    patterns: z
      .array(z.string().min(1).superRefine(checkRegExp))
      .optional()
      .describe(
        'Regular expressions (JavaScript syntax, flags "giu": any case unless caseSensitive).',
      ),
    caseSensitive: z.boolean().default(false).describe("Match words and patterns with case."),
    replacement: z.string().default("[REDACTED]").describe("What a redacted match becomes."),
  })
  .describe("A rule: give words or patterns, or both.");

const entityAction = z.enum(["mask", "block", "flag", "allow"]);
const entityName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,39}$/, "an entity name in capitals, as Presidio names them");

const policySchema = z
  .strictObject({
    pii: z
      .strictObject({
        entities: z
          .array(entityName)
          .optional()
          .describe(
            "The entities looked for (EMAIL_ADDRESS, PHONE_NUMBER, ...). Default: every built-in one of @aigw/guardrails.",
          ),
        actions: z
          .record(entityName, entityAction)
          .optional()
          .describe("Action per entity on requests: mask, block (400 pii_detected), flag, allow."),
        defaultAction: entityAction.default("mask").describe("Action of entities not listed."),
        phoneRegion: z
          .string()
          .regex(/^[A-Z]{2}$/, "an ISO 3166 region code")
          .optional()
          .describe("Region of phone numbers written without a country code. Default US."),
        unmask: z
          .boolean()
          .default(true)
          .describe("Restore masked values in the answer (the request's own placeholders only)."),
        output: z
          .enum(["block", "redact", "flag"])
          .optional()
          .describe(
            "PII in answers: withhold the answer, mask it, or count it. Default: not scanned.",
          ),
        presidio: z
          .strictObject({
            url: z.url().describe("The Presidio analyzer's base URL; POST /analyze is called."),
            language: z.string().min(2).default("en").describe("The requests' language."),
            entities: z
              .array(entityName)
              .optional()
              .describe("Entities asked for (PERSON, LOCATION, ...). Default: all it knows."),
            scoreThreshold: z.number().min(0).max(1).default(0.5).describe("Least confidence."),
            timeoutMs: z
              .number()
              .int()
              .positive()
              .default(5_000)
              .describe("Longest wait for its answer, in ms."),
            onError: z
              .enum(["allow", "block"])
              .default("allow")
              .describe("A failed call: let the request through (logged) or refuse it."),
          })
          .optional()
          .describe(
            "Names, places and other entities found by a Presidio analyzer, requests only.",
          ),
      })
      .optional()
      .describe("PII detection and masking."),
    rules: z.array(ruleSchema).optional().describe("Word and pattern lists."),
    maxPromptChars: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Most characters of text a request may carry; past it, 400 content_filter."),
    holdBackChars: z
      .number()
      .int()
      .positive()
      .max(4096)
      .optional()
      .describe("Characters of a stream held back for output rules. Default 128."),
  })
  .describe("A guardrail policy.");

type PolicySettings = z.output<typeof policySchema>;

function policyOf(
  settings: PolicySettings | undefined,
  createPresidioAnalyzer: typeof import("@aigw/guardrails").createPresidioAnalyzer,
): GuardrailPolicy | undefined {
  if (!settings) return undefined;
  const { pii, ...rest } = settings;
  if (!pii) return rest;
  const { presidio, ...detection } = pii;
  return {
    ...rest,
    pii: presidio
      ? {
          ...detection,
          analyzer: createPresidioAnalyzer(presidio),
          analyzerOnError: presidio.onError,
        }
      : detection,
  };
}

/** Every policy of the section, with its path under `guardrails`. */
function policiesIn(settings: GuardrailSettings): [string, PolicySettings | undefined][] {
  const named = (section: "tenants" | "routes") =>
    Object.entries(settings[section] ?? {}).map(([name, policy]): [string, PolicySettings] => [
      `${section}.${name}`,
      policy,
    ]);
  return [["default", settings.default], ...named("tenants"), ...named("routes")];
}

/** What is wrong in the section that its schema cannot say, or undefined. */
export function guardrailsProblem(settings: GuardrailSettings): string | undefined {
  for (const [path, policy] of policiesIn(settings)) {
    for (const [index, rule] of (policy?.rules ?? []).entries()) {
      if ((rule.words?.length ?? 0) + (rule.patterns?.length ?? 0) === 0) {
        return `guardrails.${path}.rules.${index}: needs words or patterns`;
      }
    }
  }
  return undefined;
}

/**
 * The first entity name nothing finds, as a message: a misspelt `US_SNN: block` would let
 * SSNs through masked instead of refused. With a Presidio analyzer anywhere, names are open.
 * Loads the detectors' list, so it is asked only where guardrails are configured.
 */
export async function unknownEntityName(settings: GuardrailSettings): Promise<string | undefined> {
  const policies = policiesIn(settings);
  if (policies.some(([, policy]) => policy?.pii?.presidio)) return undefined;
  const unknown = await firstUnknownEntity(
    policies.flatMap(([path, policy]) => [
      ...Object.keys(policy?.pii?.actions ?? {}).map(
        (name) => [`guardrails.${path}.pii.actions.${name}`, name] as const,
      ),
      ...(policy?.pii?.entities ?? []).map(
        (name, index) => [`guardrails.${path}.pii.entities.${index}`, name] as const,
      ),
    ]),
  );
  return unknown && `${unknown} (others need pii.presidio)`;
}

/**
 * The first of `named` (a config field and the entity name it gives) that no built-in
 * detector finds, as a message naming the field and the built-in names. Loads the detectors'
 * list only when some name is given.
 */
export async function firstUnknownEntity(
  named: readonly (readonly [field: string, name: string])[],
): Promise<string | undefined> {
  if (named.length === 0) return undefined;
  const { entities: builtIn } = await import("@aigw/guardrails");
  const known = new Set<string>(builtIn);
  const unknown = named.find(([, name]) => !known.has(name));
  return (
    unknown && `${unknown[0]}: unknown entity '${unknown[1]}'; built-in: ${builtIn.join(", ")}`
  );
}

/**
 * The guardrail hooks of the config's `guardrails` section. The detectors are loaded here, so
 * that a server without guardrails never loads them.
 */
export async function createServerGuardrails(settings: GuardrailSettings): Promise<GatewayHooks> {
  const [{ createGuardrails }, { createPresidioAnalyzer }] = await Promise.all([
    import("@aigw/core/guardrails"),
    import("@aigw/guardrails"),
  ]);
  const policiesOf = (policies: Record<string, PolicySettings> | undefined) =>
    policies &&
    Object.fromEntries(
      Object.entries(policies).map(([name, policy]) => [
        name,
        policyOf(policy, createPresidioAnalyzer) as GuardrailPolicy,
      ]),
    );
  return createGuardrails({
    secret: settings.secret,
    policy: policyOf(settings.default, createPresidioAnalyzer),
    tenants: policiesOf(settings.tenants),
    routes: policiesOf(settings.routes),
  });
}

export const guardrailsSchema = z
  .strictObject({
    secret: z
      .string()
      .min(16, "must be at least 16 characters")
      .describe(
        "Secret the placeholder keys derive from (one per tenant), 16 characters or more; the same on every instance; give it from the environment (GUARDRAILS_SECRET).",
      ),
    default: policySchema.optional().describe("The policy of every request."),
    tenants: z
      .record(z.string().min(1), policySchema)
      .optional()
      .describe("Policies by tenant id, laid over the default field by field."),
    routes: z
      .record(z.string().min(1), policySchema)
      .optional()
      .describe("Policies by route (a name under models), laid over the tenant's."),
  })
  .optional()
  .describe("Guardrails: PII masking, word and pattern rules, prompt size; off unless present.");

export type GuardrailSettings = NonNullable<z.output<typeof guardrailsSchema>>;
