/**
 * Finds the gateway's own credentials in text an upstream sent back, in the forms an upstream
 * (or a proxy before it) can echo them: verbatim, in another letter case, cut into pieces with
 * separators between them, percent-encoded, base64 (standard or URL-safe, at any alignment) or
 * hex. A copy of any 16 consecutive letters and digits of a secret counts as the secret.
 */
export interface SecretScrubber {
  /** Whether `text` holds one of the secrets in any of the forms above. */
  reveals(text: string): boolean;
  /** `text` with verbatim copies of the secrets (any letter case) replaced by "[redacted]". */
  redact(text: string): string;
}

const REDACTED = "[redacted]";
/** Letters and digits of a secret that identify it; shorter secrets must appear whole. */
const WINDOW = 16;
/** Secrets shorter than this are too likely to occur by chance to be looked for. */
const MIN_SECRET_LENGTH = 8;
const base64Run = /[A-Za-z0-9+/_-]{16,}/g;
const hexRun = /[0-9a-fA-F]{16,}/g;
const percentEscape = /%[0-9a-fA-F]{2}/g;

function alphanumeric(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]/g, "");
}

function percentDecoded(text: string): string {
  return text.replace(percentEscape, (sequence) =>
    String.fromCharCode(Number.parseInt(sequence.slice(1), 16)),
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The text as it reads after undoing each encoding an echo may have gone through. */
function decodedViews(text: string): string[] {
  const views = [text];
  if (text.includes("%")) views.push(percentDecoded(text));
  for (const [run] of text.matchAll(base64Run)) {
    for (let shift = 0; shift < 4; shift++) {
      views.push(Buffer.from(run.slice(shift), "base64").toString("latin1"));
    }
  }
  for (const [run] of text.matchAll(hexRun)) {
    for (let shift = 0; shift < 2; shift++) {
      const digits = run.slice(shift);
      views.push(
        Buffer.from(digits.slice(0, digits.length - (digits.length % 2)), "hex").toString("latin1"),
      );
    }
  }
  return views;
}

/**
 * A scrubber for the given secrets (API keys, credential header values). Empty and very short
 * values are ignored; with no secret left, nothing is ever found.
 */
export function createSecretScrubber(secrets: readonly (string | undefined)[]): SecretScrubber {
  const kept = [...new Set(secrets.filter((secret): secret is string => Boolean(secret)))]
    .map((secret) => secret.trim())
    .filter((secret) => secret.length >= MIN_SECRET_LENGTH);
  const whole = new Set<string>();
  const windows = new Set<string>();
  for (const secret of kept) {
    const letters = alphanumeric(secret);
    if (letters.length < MIN_SECRET_LENGTH) continue;
    if (letters.length <= WINDOW) whole.add(letters);
    else
      for (let start = 0; start + WINDOW <= letters.length; start++) {
        windows.add(letters.slice(start, start + WINDOW));
      }
  }
  const verbatim =
    kept.length === 0
      ? undefined
      : new RegExp(
          kept
            .sort((left, right) => right.length - left.length)
            .map(escapeRegExp)
            .join("|"),
          "gi",
        );

  function lettersReveal(letters: string): boolean {
    for (const secret of whole) if (letters.includes(secret)) return true;
    if (windows.size === 0) return false;
    for (let start = 0; start + WINDOW <= letters.length; start++) {
      if (windows.has(letters.slice(start, start + WINDOW))) return true;
    }
    return false;
  }

  return {
    reveals(text) {
      if (whole.size === 0 && windows.size === 0) return false;
      return decodedViews(text).some((view) => lettersReveal(alphanumeric(view)));
    },
    redact(text) {
      return verbatim ? text.replace(verbatim, REDACTED) : text;
    },
  };
}
