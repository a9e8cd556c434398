import { createHmac } from "node:crypto";
import { type Finding, type ScanOptions, scanText } from "./scan.js";

/** What an entity's findings become. */
export type PiiAction = "mask" | "block" | "allow";

export interface RedactOptions extends ScanOptions {
  /**
   * The key of the placeholders' keyed hash (HMAC-SHA256): the same value gets the same
   * placeholder under one key, in every turn and on every instance, with nothing stored. Use
   * one key per tenant, so that placeholders say nothing across tenants. At least 16 bytes.
   */
  key: string | Uint8Array;
  /** Each entity's action; an entity not listed is masked. Default: mask every one. */
  actions?: Readonly<Record<string, PiiAction>>;
}

export interface Redaction {
  /** The text with each masked value replaced by its placeholder. */
  text: string;
  /** Every finding, whatever its action. */
  findings: Finding[];
  /** Entities whose action is "block" that were found (empty: nothing blocks). */
  blocked: string[];
  /** Each placeholder -> the value it replaced, to unmask an answer (`createUnmasker`). */
  originals: Map<string, string>;
}

/** `<ENTITY_xxxxxxxx>`: the entity and 8 hex digits of the keyed hash of its value. */
export const placeholderPattern = /<[A-Z][A-Z0-9_]{0,39}_[0-9a-f]{8}>/g;
/** The longest placeholder `placeholderPattern` matches. */
const maxPlaceholderLength = 51;

/** The placeholder of `value` as an `entity`, under `key`. */
export function placeholderFor(entity: string, value: string, key: string | Uint8Array): string {
  const digest = createHmac("sha256", key).update(`${entity}\u0000${value}`).digest("hex");
  return `<${entity}_${digest.slice(0, 8)}>`;
}

/**
 * Finds the entities in `text` (`scanText`) and masks those whose action is "mask" with
 * their placeholders.
 * @throws TypeError for a key shorter than 16 bytes.
 */
export function redactText(text: string, options: RedactOptions): Redaction {
  const keyLength =
    typeof options.key === "string" ? Buffer.byteLength(options.key) : options.key.length;
  if (keyLength < 16) throw new TypeError("redaction key must be at least 16 bytes");
  const findings = scanText(text, options);
  const originals = new Map<string, string>();
  const blocked = new Set<string>();
  let redacted = "";
  let from = 0;
  for (const finding of findings) {
    const action = options.actions?.[finding.entity] ?? "mask";
    if (action === "block") blocked.add(finding.entity);
    if (action !== "mask") continue;
    const value = text.slice(finding.start, finding.end);
    const placeholder = placeholderFor(finding.entity, value, options.key);
    originals.set(placeholder, value);
    redacted += text.slice(from, finding.start) + placeholder;
    from = finding.end;
  }
  return { text: redacted + text.slice(from), findings, blocked: [...blocked], originals };
}

/** `text` with each placeholder of `originals` restored. */
export function unmaskText(text: string, originals: ReadonlyMap<string, string>): string {
  if (originals.size === 0) return text;
  return text.replace(
    placeholderPattern,
    (placeholder) => originals.get(placeholder) ?? placeholder,
  );
}

export interface Unmasker {
  /** The text that can go out now; a tail that may be the start of a placeholder is held. */
  push(text: string): string;
  /** What was held, at the stream's end. */
  end(): string;
}

// A tail that could still grow into a placeholder: "<", then entity letters, "_", hex digits.
const partialPlaceholder = /<(?:[A-Z][A-Z0-9_]{0,39}(?:_[0-9a-f]{0,8})?)?$/;

/**
 * Restores placeholders in a stream of text pieces, even one split across pieces: a tail that
 * may be the start of a placeholder (at most 51 characters) is held until the next piece.
 */
export function createUnmasker(originals: ReadonlyMap<string, string>): Unmasker {
  let held = "";
  return {
    push(text) {
      const whole = held + text;
      const tail = partialPlaceholder.exec(whole.slice(-maxPlaceholderLength));
      const cut = tail ? whole.length - tail[0].length : whole.length;
      held = whole.slice(cut);
      return unmaskText(whole.slice(0, cut), originals);
    },
    end() {
      const rest = unmaskText(held, originals);
      held = "";
      return rest;
    },
  };
}
