import { createHmac, timingSafeEqual } from "node:crypto";
import type { Analyzer, Finding } from "@aigw/guardrails";
import { AigwError, type Endpoint, firstHeader, isObject } from "@aigw/provider";
import type { TextPiece } from "../protocols/protocol.js";
import { requestSlot } from "../request-slot.js";
import type {
  GatewayHooks,
  GuardrailVerdict,
  HookResponse,
  RequestContext,
  UpstreamCall,
} from "../types.js";
import {
  applyMatches,
  createMatcher,
  jsonEscaped,
  type Match,
  type Matcher,
  ruleExpression,
} from "./matcher.js";
import { OutputStreamFilter } from "./output-stream.js";
import {
  type ContentRule,
  type CustomCheck,
  type GuardrailPolicy,
  layerPolicies,
} from "./policy.js";

export interface GuardrailOptions {
  /**
   * The secret each tenant's placeholder key is derived from (HMAC-SHA256 of the tenant id):
   * the same value gets the same placeholder in every turn and on every instance sharing the
   * secret, and different ones in different tenants. At least 16 bytes.
   */
  secret: string | Uint8Array;
  /** The policy of every request. */
  policy?: GuardrailPolicy;
  /** Policies by tenant id, laid over `policy` field by field. */
  tenants?: Record<string, GuardrailPolicy>;
  /** Policies by route name (a configured model or pattern), laid over the tenant's. */
  routes?: Record<string, GuardrailPolicy>;
}

/** The header a custom check sends with its own calls through the gateway. */
export const guardrailCheckHeader = "x-aigw-guardrail-check";
/** Text a custom check of a stream's output reads at most. */
const maxCheckedStreamChars = 1024 * 1024;
/** How long a custom check's token lasts: this window and the next. */
const checkWindowMs = 10 * 60_000;
/** Tenants whose placeholder keys are kept derived. */
const maxTenantKeys = 10_000;

interface CompiledPolicy {
  policy: GuardrailPolicy;
  expressions: Map<ContentRule, RegExp | undefined>;
  inputChecks: CustomCheck[];
  outputChecks: CustomCheck[];
  readsOutput: boolean;
}

/** One request's guardrail state. */
interface Guard {
  compiled: CompiledPolicy;
  key: Uint8Array;
  /** Placeholders of the request's masked values, for its answer. */
  originals: Map<string, string>;
  /** Made by a custom check: custom checks do not check it again. */
  byCheck: boolean;
  output: Matcher | undefined;
  stream: OutputStreamFilter | undefined;
  /** A stream's text, for output checks run at its end. */
  streamText: string;
}

const applies = (on: string | undefined, fallback: string, phase: string) =>
  (on ?? fallback) === "both" || (on ?? fallback) === phase;

function compile(policy: GuardrailPolicy): CompiledPolicy {
  const expressions = new Map<ContentRule, RegExp | undefined>();
  for (const rule of policy.rules ?? []) expressions.set(rule, ruleExpression(rule));
  const checks = policy.checks ?? [];
  const inputChecks = checks.filter((check) => applies(check.on, "input", "input"));
  const outputChecks = checks.filter((check) => applies(check.on, "input", "output"));
  const readsOutput =
    (policy.rules ?? []).some((rule) => applies(rule.on, "both", "output")) ||
    policy.pii?.output !== undefined ||
    outputChecks.length > 0;
  return { policy, expressions, inputChecks, outputChecks, readsOutput };
}

function contentFiltered(message: string, code: "content_filter" | "pii_detected"): AigwError {
  return new AigwError(message, { status: 400, type: "invalid_request_error", code, param: null });
}

function record(
  context: RequestContext,
  phase: "input" | "output",
  rule: string,
  action: GuardrailVerdict["action"],
  entity?: string,
) {
  let verdict = context.verdicts.find(
    (each) => each.rule === rule && each.phase === phase && each.action === action,
  );
  if (!verdict) {
    verdict = { rule, phase, action, matches: 0 };
    context.verdicts.push(verdict);
  }
  verdict.matches++;
  if (entity) {
    verdict.entities ??= {};
    verdict.entities[entity] = (verdict.entities[entity] ?? 0) + 1;
  }
}

/** Counts matches as verdicts; redactions in text that is not edited (thinking) as flags. */
function recordMatches(
  context: RequestContext,
  phase: "input" | "output",
  matches: readonly Match[],
  edited = true,
) {
  for (const match of matches) {
    if (match.rule === "unmask") continue;
    const action = match.action === "redact" && !edited ? "flag" : match.action;
    record(context, phase, match.rule, action, match.entity);
  }
}

const maxJsonDepth = 64;

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** JSON text with every string, and every number, edited as text; undefined when too deep. */
function editJsonValues(text: string, edit: (value: string) => string): string | undefined {
  const walk = (value: unknown, depth: number): unknown => {
    if (depth > maxJsonDepth) throw new RangeError("too deep");
    if (typeof value === "string") return edit(value);
    if (typeof value === "number") {
      const edited = edit(String(value));
      return edited === String(value) ? value : edited;
    }
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1));
    if (isObject(value)) {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, walk(item, depth + 1)]),
      );
    }
    return value;
  };
  try {
    return JSON.stringify(walk(JSON.parse(text), 0));
  } catch {
    return undefined;
  }
}

/**
 * A piece's text with its redacting matches applied. Thinking is never edited (providers sign
 * it); a tool call's arguments stay JSON: a match outside a string (a card written as a number)
 * makes its values edited one by one, the number becoming a string.
 */
function redactPiece(piece: TextPiece, matches: readonly Match[], matcher: Matcher) {
  if (piece.kind === "reasoning") return undefined;
  if (piece.kind !== "tool_call") return applyMatches(piece.text, matches);
  const edited = applyMatches(piece.text, matches, jsonEscaped);
  if (edited === piece.text || isJson(edited) || !isJson(piece.text)) return edited;
  return editJsonValues(piece.text, (value) => applyMatches(value, matcher.find(value))) ?? edited;
}

/** Names and counts of what blocked, never the text: "US_SSN (2)", "rule 'secrets'". */
function describeBlock(matches: readonly Match[]): { message: string; pii: boolean } {
  const entities = new Map<string, number>();
  const rules = new Set<string>();
  for (const match of matches) {
    if (match.action !== "block") continue;
    if (match.entity) entities.set(match.entity, (entities.get(match.entity) ?? 0) + 1);
    else rules.add(match.rule);
  }
  if (rules.size > 0) {
    return {
      message: `The request was blocked by the content filter: rule ${[...rules].map((rule) => `'${rule}'`).join(", ")}.`,
      pii: false,
    };
  }
  const listed = [...entities].map(([entity, count]) => `${entity} (${count})`).join(", ");
  return {
    message: `The request contains personal data this gateway refuses: ${listed}.`,
    pii: true,
  };
}

/**
 * Guardrails as gateway hooks: PII masking and blocking, word and pattern rules, a prompt
 * size cap and custom checks on each request's text (every message, system prompt, tool call
 * and result, prompt and embeddings input, in the client's protocol), and output rules on its
 * answer, JSON or streamed, with the request's placeholders restored. Blocked input is a 400
 * with code `content_filter` or `pii_detected`; blocked output is withheld and the answer ends
 * as the protocol ends filtered answers, with status 200. Verdicts go to `context.verdicts`.
 * @throws TypeError for a secret under 16 bytes or a rule pattern that is no regular expression.
 */
export function createGuardrails(options: GuardrailOptions): GatewayHooks {
  const secret = typeof options.secret === "string" ? Buffer.from(options.secret) : options.secret;
  if (secret.length < 16) throw new TypeError("guardrails secret must be at least 16 bytes");
  const policies = new Map<string, CompiledPolicy | undefined>();
  // Compile everything now: a bad pattern fails at start, not on a request.
  for (const policy of [
    options.policy,
    ...Object.values(options.tenants ?? {}),
    ...Object.values(options.routes ?? {}),
  ]) {
    if (policy) compile(policy);
  }
  const tenantKeys = new Map<string, Uint8Array>();
  const guards = requestSlot<Guard>("guardrails");

  function policyOf(context: RequestContext): CompiledPolicy | undefined {
    const tenant = options.tenants?.[context.tenant] ? context.tenant : "";
    const route =
      context.route !== undefined && options.routes?.[context.route] ? context.route : "";
    const cacheKey = `${tenant}\u0000${route}`;
    if (policies.has(cacheKey)) return policies.get(cacheKey);
    const layered = layerPolicies(
      options.policy,
      tenant ? options.tenants?.[tenant] : undefined,
      route ? options.routes?.[route] : undefined,
    );
    const compiled = layered ? compile(layered) : undefined;
    policies.set(cacheKey, compiled);
    return compiled;
  }

  function keyOf(tenant: string): Uint8Array {
    let key = tenantKeys.get(tenant);
    if (!key) {
      if (tenantKeys.size >= maxTenantKeys) tenantKeys.clear();
      key = createHmac("sha256", secret).update(`aigw placeholders\u0000${tenant}`).digest();
      tenantKeys.set(tenant, key);
    }
    return key;
  }

  /**
   * What a custom check's own calls carry: a keyed hash of the time window, so that every
   * instance sharing the secret knows it and a copy of it works for 10 to 20 minutes only.
   */
  function checkToken(window: number): string {
    return createHmac("sha256", secret).update(`aigw check\u0000${window}`).digest("base64url");
  }

  function isCheckToken(value: string | undefined): boolean {
    if (!value) return false;
    const given = Buffer.from(value);
    const window = Math.floor(Date.now() / checkWindowMs);
    return [window, window - 1].some((each) => {
      const expected = Buffer.from(checkToken(each));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  }

  /** Runs checks on `text`; the names of those that found it breaks their rule, to block. */
  async function runChecks(
    checks: CustomCheck[],
    guard: Guard,
    text: string,
    phase: "input" | "output",
    context: RequestContext,
    canBlock: boolean,
  ): Promise<string[]> {
    const blocking: string[] = [];
    // A check's own call is not checked by checks: theirs would call again, and again.
    if (guard.byCheck) return blocking;
    await Promise.all(
      checks.map(async (check) => {
        let failed: boolean;
        const timeout = AbortSignal.timeout(check.timeoutMs ?? 10_000);
        try {
          failed = await Promise.race([
            check.check({
              text,
              phase,
              context,
              headers: {
                [guardrailCheckHeader]: checkToken(Math.floor(Date.now() / checkWindowMs)),
              },
              signal: AbortSignal.any([timeout, context.signal]),
            }),
            new Promise<never>((_, reject) =>
              timeout.addEventListener("abort", () => reject(timeout.reason), { once: true }),
            ),
          ]);
        } catch (error) {
          context.logger?.warn(
            { requestId: context.requestId, rule: check.name, err: error },
            "guardrail check failed",
          );
          failed = check.onError === "block";
        }
        if (!failed) return;
        const blocks = check.action === "block" && canBlock;
        record(context, phase, check.name, blocks ? "block" : "flag");
        if (blocks) blocking.push(check.name);
      }),
    );
    return blocking;
  }

  /** An analyzer's findings in each piece of the request's text (one call for them all). */
  async function analyze(
    call: UpstreamCall,
    context: RequestContext,
    analyzer: Analyzer,
    onError: "allow" | "block" | undefined,
  ): Promise<Finding[][]> {
    const pieces = context.protocol.requestText(call.endpoint, call.body);
    const starts: number[] = [];
    let text = "";
    for (const piece of pieces) {
      starts.push(text.length);
      text += `${piece.text}\n`;
    }
    const perPiece: Finding[][] = pieces.map(() => []);
    let findings: Finding[];
    try {
      findings = await analyzer(text, { signal: context.signal });
    } catch (error) {
      context.logger?.warn({ requestId: context.requestId, err: error }, "PII analyzer failed");
      if (onError !== "block") return perPiece;
      record(context, "input", "pii", "block");
      throw contentFiltered(
        "The request could not be checked for personal data, and this gateway refuses it unchecked.",
        "pii_detected",
      );
    }
    for (const finding of findings) {
      // The piece it starts in; one running past its piece's end is cut there.
      let at = starts.length - 1;
      while (at > 0 && (starts[at] as number) > finding.start) at--;
      const start = starts[at] as number;
      const length = pieces[at]?.text.length ?? 0;
      if (finding.start - start >= length) continue;
      perPiece[at]?.push({
        entity: finding.entity,
        start: finding.start - start,
        end: Math.min(finding.end - start, length),
      });
    }
    return perPiece;
  }

  async function checkInput(call: UpstreamCall, context: RequestContext, guard: Guard) {
    const { policy, inputChecks, expressions } = guard.compiled;
    const { protocol } = context;
    if (policy.maxPromptChars !== undefined) {
      let chars = 0;
      for (const piece of protocol.requestText(call.endpoint, call.body))
        chars += piece.text.length;
      if (chars > policy.maxPromptChars) {
        record(context, "input", "max_prompt_chars", "block");
        throw contentFiltered(
          `The request was blocked by the content filter: rule 'max_prompt_chars' (its text is ${chars} characters, at most ${policy.maxPromptChars} are accepted).`,
          "content_filter",
        );
      }
    }
    const matcher = createMatcher({ phase: "input", policy, expressions, key: guard.key });
    const analyzer = policy.pii?.analyzer;
    const analyzed = analyzer
      ? await analyze(call, context, analyzer, policy.pii?.analyzerOnError)
      : [];
    const blocking: Match[] = [];
    let index = 0;
    protocol.editRequestText(call.endpoint, call.body, (piece) => {
      const matches = matcher.find(piece.text, analyzed[index++]);
      if (matches.length === 0) return undefined;
      const edits = piece.kind !== "reasoning";
      recordMatches(context, "input", matches, edits);
      for (const match of matches) {
        if (match.action === "block") blocking.push(match);
        else if (edits && match.entity && match.replacement) {
          guard.originals.set(match.replacement, piece.text.slice(match.start, match.end));
        }
      }
      return redactPiece(piece, matches, matcher);
    });
    if (blocking.length > 0) {
      const { message, pii } = describeBlock(blocking);
      throw contentFiltered(message, pii ? "pii_detected" : "content_filter");
    }
    if (inputChecks.length === 0) return;
    const text = protocol
      .requestText(call.endpoint, call.body)
      .map((piece) => piece.text)
      .join("\n");
    const blocked = await runChecks(inputChecks, guard, text, "input", context, true);
    if (blocked.length > 0) {
      throw contentFiltered(
        `The request was blocked by the content filter: rule ${blocked.map((name) => `'${name}'`).join(", ")}.`,
        "content_filter",
      );
    }
  }

  async function checkAnswer(response: HookResponse, context: RequestContext, guard: Guard) {
    const endpoint = context.endpoint as Endpoint;
    // Vectors and images carry no text to judge: they are not parsed.
    if (endpoint === "embeddings" || endpoint === "images/generations") return;
    const { protocol } = context;
    let answer: unknown;
    try {
      answer = JSON.parse(Buffer.from(response.body as Uint8Array | string).toString("utf8"));
    } catch {
      return;
    }
    if (!isObject(answer)) return;
    let withheld = false;
    let edited = false;
    if (guard.output) {
      const matcher = guard.output;
      protocol.editAnswerText(endpoint, answer, (piece) => {
        const matches = matcher.find(piece.text);
        if (matches.length === 0) return undefined;
        recordMatches(context, "output", matches, piece.kind !== "reasoning");
        if (matches.some((match) => match.action === "block")) withheld = true;
        const text = redactPiece(piece, matches, matcher);
        if (text !== undefined && text !== piece.text) edited = true;
        return text;
      });
    }
    const { outputChecks } = guard.compiled;
    if (!withheld && outputChecks.length > 0) {
      const text = protocol
        .answerText(endpoint, answer)
        .map((piece) => piece.text)
        .join("\n");
      withheld = (await runChecks(outputChecks, guard, text, "output", context, true)).length > 0;
    }
    if (withheld) protocol.withholdAnswer(endpoint, answer);
    if (withheld || edited) response.body = JSON.stringify(answer);
  }

  return {
    onRequest(request, context) {
      const header = firstHeader(request.headers[guardrailCheckHeader]);
      if (header) context.state[guardrailCheckHeader] = header;
    },
    async beforeRequest(call, context) {
      // Policies by route: the route is known only from here on.
      const compiled = policyOf(context);
      if (!compiled) return;
      const guard: Guard = {
        compiled,
        key: keyOf(context.tenant),
        originals: new Map(),
        byCheck: isCheckToken(context.state[guardrailCheckHeader] as string | undefined),
        output: undefined,
        stream: undefined,
        streamText: "",
      };
      guards.set(context, guard);
      await checkInput(call, context, guard);
      const { policy, expressions, readsOutput } = compiled;
      const unmasks = policy.pii?.unmask !== false && guard.originals.size > 0;
      if (readsOutput || unmasks) {
        guard.output = createMatcher({
          phase: "output",
          policy,
          expressions,
          key: guard.key,
          originals: policy.pii?.unmask === false ? undefined : guard.originals,
        });
      }
    },
    onChunk(event, context) {
      const guard = guards.get(context);
      if (!guard?.output) return undefined;
      if (
        guard.compiled.outputChecks.length > 0 &&
        guard.streamText.length < maxCheckedStreamChars
      ) {
        for (const piece of context.protocol.eventText(context.endpoint as Endpoint, event)) {
          guard.streamText += piece.text;
        }
      }
      guard.stream ??= new OutputStreamFilter(
        context.protocol,
        context.endpoint as Endpoint,
        guard.output,
        guard.compiled.policy.holdBackChars ?? 128,
        (matches, unedited) => {
          for (const match of matches)
            recordMatches(context, "output", [match], !unedited.has(match));
        },
      );
      return guard.stream.push(event);
    },
    async afterResponse(response, context) {
      const guard = guards.get(context);
      if (!guard?.output || response.status !== 200) return;
      if (!response.stream) return checkAnswer(response, context, guard);
      const { outputChecks } = guard.compiled;
      // The stream went out: its checks can only flag it.
      if (outputChecks.length > 0) {
        await runChecks(outputChecks, guard, guard.streamText, "output", context, false);
      }
    },
  };
}
