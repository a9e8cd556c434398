import {
  entities,
  maxEntityLength,
  type RedactOptions,
  redactText,
  scanText,
} from "@aigw/guardrails";
import type { AuditContent, AuditTextPiece } from "./types.js";

const defaultMaxContentChars = 32_768;
/** What a record can do with a value: "block" has nothing to refuse there, and would keep it. */
const recordActions = new Set(["mask", "allow"]);

export interface ContentSettings {
  maxContentChars: number;
  contentCharsWanted: number;
}

/**
 * @internal A log's content settings: `maxContentChars`, and `contentCharsWanted`, the cap and,
 * when content is redacted, `maxEntityLength` (16,500) more.
 * @throws TypeError for a `maxContentChars` that is not a positive integer, redaction entities
 * that are none or not built-in ones, or an action other than "mask" or "allow".
 */
export function contentSettingsOf(options: {
  maxContentChars?: number | undefined;
  redaction?: Omit<RedactOptions, "key"> | false | undefined;
}): ContentSettings {
  const { maxContentChars = defaultMaxContentChars, redaction } = options;
  if (!Number.isSafeInteger(maxContentChars) || maxContentChars < 1) {
    throw new TypeError("maxContentChars must be a positive integer");
  }
  if (redaction === false) return { maxContentChars, contentCharsWanted: maxContentChars };
  if (redaction?.entities?.length === 0) {
    // Content is stored redacted unless told otherwise, in so many words.
    throw new TypeError(
      "redaction.entities is empty: name the entities to mask, or set redaction to false",
    );
  }
  const known = new Set<string>(entities);
  const actions = Object.entries(redaction?.actions ?? {});
  const named = [...(redaction?.entities ?? []), ...actions.map(([name]) => name)];
  const unknown = named.find((name) => !known.has(name));
  if (unknown !== undefined) {
    throw new TypeError(`redaction: unknown entity '${unknown}'; built-in: ${entities.join(", ")}`);
  }
  const action = actions.find(([, value]) => !recordActions.has(value));
  if (action) {
    throw new TypeError(
      `redaction.actions.${action[0]}: '${String(action[1])}' is not "mask" or "allow"`,
    );
  }
  return { maxContentChars, contentCharsWanted: maxContentChars + maxEntityLength };
}

/**
 * Where to cut `text` to keep at most `at` characters: `at`, or the start of a value found
 * there that the cut would split, so that no part of it is kept unmasked.
 */
function cutBefore(text: string, at: number, redaction: RedactOptions): number {
  for (const finding of scanText(text, redaction)) {
    if (finding.start >= at) break;
    if (finding.end > at) return finding.start;
  }
  return at;
}

/**
 * @internal Content as a record keeps it: each side cut to `maxChars` characters of the text as
 * given (and marked `truncated`), then masked with `redaction` when it is given (`redacted`
 * counts the values found, by entity). The cut comes first, but never inside a value, and the
 * text it keeps is masked whole, whatever length the placeholders have.
 */
export function keptContent(
  content: AuditContent,
  maxChars: number,
  redaction: RedactOptions | undefined,
): AuditContent {
  const counts: Record<string, number> = {};
  let truncated = content.truncated;
  const kept = (pieces: AuditTextPiece[] | undefined) => {
    if (!pieces) return pieces;
    const out: AuditTextPiece[] = [];
    let room = maxChars;
    for (const piece of pieces) {
      const fits = piece.text.length <= room;
      let text = piece.text;
      if (fits) room -= text.length;
      else text = text.slice(0, redaction ? cutBefore(text, room, redaction) : room);
      if (fits || text !== "") {
        if (redaction) {
          const result = redactText(text, redaction);
          for (const finding of result.findings) {
            counts[finding.entity] = (counts[finding.entity] ?? 0) + 1;
          }
          text = result.text;
        }
        out.push({ ...piece, text });
      }
      if (!fits) {
        truncated = true;
        break;
      }
    }
    return out;
  };
  const request = kept(content.request);
  const response = kept(content.response);
  return {
    ...content,
    request,
    response,
    truncated: truncated || undefined,
    redacted: Object.keys(counts).length > 0 ? counts : undefined,
  };
}
