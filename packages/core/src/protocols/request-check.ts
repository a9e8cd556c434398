import { z } from "zod";
import { maxModelLength } from "../body.js";
import { invalidRequest, shown } from "../errors.js";

/**
 * Request validation shared by the protocols: schema parts both use, and `checkRequest`, which
 * turns the first problem a schema finds into the protocol's 400.
 *
 * Schemas here are loose: they name what must hold of the fields they know and let everything
 * else through (unknown fields, unknown content types, vendor extras). They only check; the
 * body the client sent is what goes on, never the schema's output.
 */

/** How a protocol words a request error. */
export interface RequestErrorStyle {
  /** A field's path as the protocol writes it. */
  path(path: readonly PropertyKey[]): string;
  /** The message for a required field that is missing. */
  missing(path: string): string;
  /**
   * The message for a field that is there but wrong: `expected` says what it should be ("a
   * number from 0 to 2"), `received` what it is (a number or a quoted string, cut to 100
   * characters; "an array", "an object").
   */
  invalid(path: string, expected: string, received: string): string;
}

const typeNames: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
  array: "an array",
  object: "an object",
};

function listed(values: readonly unknown[]): string {
  const quoted = values.map((value) => (typeof value === "string" ? `'${value}'` : String(value)));
  return quoted.length === 1 ? (quoted[0] as string) : `one of ${quoted.join(", ")}`;
}

function bound(
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  below: boolean,
): string {
  if (!below && inclusive && Number(limit) === 1 && (origin === "array" || origin === "string")) {
    return `a non-empty ${origin}`;
  }
  const relation = below
    ? inclusive
      ? "of at most"
      : "less than"
    : inclusive
      ? "of at least"
      : "greater than";
  if (origin === "array") return `an array ${relation} ${limit} items`;
  if (origin === "string") return `a string ${relation} ${limit} characters`;
  return `${origin === "int" ? "an integer" : "a number"} ${relation} ${limit}`;
}

/**
 * What a field should be, in words, for an issue its schema has no message of its own for.
 * Passed to the parse that names a problem, so no global zod configuration is needed or changed.
 */
const expectation: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return typeNames[issue.expected] ?? `a value of type ${issue.expected}`;
    case "too_small":
      return bound(issue.origin, issue.minimum, issue.inclusive, false);
    case "too_big":
      return bound(issue.origin, issue.maximum, issue.inclusive, true);
    case "invalid_value":
      return listed(issue.values);
    case "invalid_union":
      // A discriminated union that knows no option for the value ("role": "robot").
      return Array.isArray(issue.options) ? listed(issue.options) : "a valid value";
    default:
      return "a valid value";
  }
};

/** The value at `path` in `body`, or undefined when it is not there. */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function described(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(shown(value, 100));
  if (typeof value === "object" && value !== null) return "an object";
  return String(value);
}

/**
 * The issue to report, with its path: for a failed union, the one from the option that got
 * furthest into the value (a content array whose third part has a bad URL, rather than "not a
 * string"), or the union's own when every option failed at the value itself. Ties go to the
 * earlier option.
 */
function innermost(issue: z.core.$ZodIssue): { issue: z.core.$ZodIssue; path: PropertyKey[] } {
  let furthest: { issue: z.core.$ZodIssue; path: PropertyKey[] } | undefined;
  if (issue.code === "invalid_union") {
    for (const [first] of issue.errors) {
      const candidate = first && innermost(first);
      if (candidate && candidate.path.length > (furthest?.path.length ?? 0)) furthest = candidate;
    }
  }
  return furthest
    ? { issue: furthest.issue, path: [...issue.path, ...furthest.path] }
    : { issue, path: issue.path };
}

/**
 * Checks `body` against `schema`; the body itself is neither changed nor replaced.
 * @throws AigwError 400 `invalid_request_error` for the first problem found, its `param` the
 * field's path in the protocol's `style` and its `code` `missing_required_parameter`,
 * `invalid_type` (a wrong JSON type) or `invalid_value` (a value out of range or not allowed).
 */
export function checkRequest(
  schema: z.ZodType,
  body: Record<string, unknown>,
  style: RequestErrorStyle,
): void {
  // One parse: a compiled schema tries its generated code first, and only a body that fails it
  // goes through the interpreted parse, which names the problem. (validate() and then a parse
  // would run both twice on a bad body, and again at each level of nested lists.)
  const result = schema.safeParse(body, { error: expectation });
  if (result.success) return;
  const [first] = result.error.issues;
  if (!first) return;
  const { issue, path } = innermost(first);
  const param = style.path(path);
  const value = valueAt(body, path);
  if (value === undefined) {
    throw invalidRequest(style.missing(param), param, "missing_required_parameter");
  }
  // A union no option of which takes the value has the wrong shape; an unknown tag ("role":
  // "robot") is a wrong value.
  const unknownTag = "discriminator" in issue && typeof value === "string";
  const wrongType =
    issue.code === "invalid_type" || (issue.code === "invalid_union" && !unknownTag);
  const code = wrongType ? "invalid_type" : "invalid_value";
  throw invalidRequest(style.invalid(param, issue.message, described(value)), param, code);
}

/** A number within `min`..`max`, both included. */
export function numberBetween(min: number, max: number) {
  const error = `a number from ${min} to ${max}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

/** A whole number of at least `min`; how large is the upstream's to judge. */
export function integerFrom(min: number) {
  const error = `an integer of at least ${min}`;
  return z.number({ error }).min(min, { error }).refine(Number.isInteger, { error });
}

/** The requested model: a non-empty string of at most `maxModelLength` characters. */
export const modelName = z
  .string({ error: "a non-empty string" })
  .min(1, { error: "a non-empty string" })
  .max(maxModelLength, { error: `a string of at most ${maxModelLength} characters` });

/** `stream`, when given: a boolean. */
export const streamFlag = z.boolean().optional();

const mediaUrlPattern = /^(?:https?:\/\/[^\s/?#]|data:)/i;

/** A URL a model may be given media at: http(s) with a host, or a `data:` URL. */
export const mediaUrl = z
  .string()
  .refine((url) => mediaUrlPattern.test(url), { error: "an http(s) or data: URL" });

/**
 * An array whose items must each satisfy `item`. Unlike `z.array`, which reports every item
 * that fails, it reports only the first: a body of 100,000 bad messages costs one issue. Items
 * are parsed through zod's compiled fast path; only a failing one is parsed again to name it.
 */
export function listOf(item: z.ZodType) {
  const compiledItem = z.compile(item);
  return z.array(z.unknown()).check((payload) => {
    const items = payload.value;
    for (let index = 0; index < items.length; index++) {
      const result = compiledItem.safeParse(items[index], { error: expectation });
      if (result.success) continue;
      for (const issue of result.error.issues) {
        const raw = { ...issue, path: [index, ...issue.path], input: items[index] };
        payload.issues.push(raw as z.core.$ZodRawIssue);
      }
      return;
    }
  });
}

type TaggedOption = z.ZodObject<Record<string, z.ZodType>>;

/**
 * An object with a string `tag` field ("type"): one whose tag one of `known` has as a literal
 * must match that option; one with any other tag passes as it is, so types the gateway does
 * not know yet (a future content part) are never refused.
 */
export function taggedObject(tag: string, known: readonly [TaggedOption, ...TaggedOption[]]) {
  const knownTags = new Set(
    known.flatMap((option) => [...((option.shape[tag] as z.ZodLiteral).values ?? [])]),
  );
  const other = z
    .looseObject({ [tag]: z.string() })
    .refine((value) => !knownTags.has(value[tag] as string), { abort: true });
  // Known tags first, the common case, which then costs one parse. An unknown tag fails there
  // at `tag` and passes as `other`; a known one fails `other` at the object itself, so the
  // known option's issue, deeper, is the one reported (see `innermost`).
  const byTag = z.discriminatedUnion(tag, [...known], {
    error: (issue) => (issue.code === "invalid_union" ? "a string" : undefined),
  });
  return z.union([byTag, other], { error: `an object with a string '${tag}'` });
}
