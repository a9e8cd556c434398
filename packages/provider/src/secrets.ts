/**
 * Finds the gateway's own credentials in text an upstream sent back, in the forms an upstream
 * (or a proxy before it) can echo them: verbatim, in another letter case, cut into pieces with
 * separators between them, percent-encoded, base64 (standard or URL-safe, at any alignment) or
 * hex. A copy of any 16 consecutive letters and digits of a secret, or of its encodings,
 * counts as the secret.
 */
export interface SecretScrubber {
  /** Whether `text` holds one of the secrets in any of the forms above. */
  reveals(text: string): boolean;
  /**
   * Whether `content` holds a verbatim copy of a secret: a cheap search, for what is passed on
   * whole (successful answers and their events), where a full `reveals` would cost too much.
   */
  copiedIn(content: string | Uint8Array): boolean;
  /** `text` with verbatim copies of the secrets (any letter case) replaced by "[redacted]". */
  redact(text: string): string;
}

/** What a secret is replaced by. */
export const REDACTED = "[redacted]";
/** Letters and digits of a secret that identify it; shorter secrets must appear whole. */
const WINDOW = 16;
/** Secrets shorter than this are too likely to occur by chance to be looked for. */
const MIN_SECRET_LENGTH = 8;
const HASH_BASE = 31;
const percentEscape = /%[0-9a-fA-F]{2}/g;
const notAlphanumeric = /[^a-z0-9]/g;

/** Lower-case letters and digits only: what survives case changes and separators. */
function alphanumeric(text: string): string {
  return text.toLowerCase().replace(notAlphanumeric, "");
}

function percentDecoded(text: string): string {
  return text.replace(percentEscape, (sequence) =>
    String.fromCharCode(Number.parseInt(sequence.slice(1), 16)),
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** BASE^(WINDOW-1) modulo 2^32, to take a window's first character out of its hash. */
const leadingPower = (() => {
  let power = 1;
  for (let index = 1; index < WINDOW; index++) power = Math.imul(power, HASH_BASE);
  return power;
})();

/**
 * The hash of each WINDOW-long run of `letters`, by where it starts: a rolling hash, so each
 * position costs a few integer operations. Hashes are kept to 30 bits (small integers).
 */
function windowHashes(letters: string): Int32Array {
  const count = Math.max(0, letters.length - WINDOW + 1);
  const hashes = new Int32Array(count);
  if (count === 0) return hashes;
  let hash = 0;
  for (let index = 0; index < WINDOW; index++) {
    hash = (Math.imul(hash, HASH_BASE) + letters.charCodeAt(index)) | 0;
  }
  hashes[0] = hash & 0x3fffffff;
  for (let index = WINDOW; index < letters.length; index++) {
    const leaving = Math.imul(letters.charCodeAt(index - WINDOW), leadingPower);
    hash = (Math.imul(hash - leaving, HASH_BASE) + letters.charCodeAt(index)) | 0;
    hashes[index - WINDOW + 1] = hash & 0x3fffffff;
  }
  return hashes;
}

/**
 * The forms of a secret as letters and digits: itself, its hex, and its base64 at the three
 * byte alignments it can have inside a longer encoded text (the characters shared with its
 * neighbours are left out). URL-safe base64 differs only in characters that are not kept.
 */
function forms(secret: string): string[] {
  const bytes = Buffer.from(secret);
  const encoded = [0, 1, 2].map((offset) => {
    const text = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    return text.slice(4, -4);
  });
  return [secret, bytes.toString("hex"), ...encoded].map(alphanumeric);
}

/**
 * A scrubber for the given secrets (API keys, credential header values). Empty and very short
 * values are ignored; with no secret left, nothing is ever found.
 */
export function createSecretScrubber(secrets: readonly (string | undefined)[]): SecretScrubber {
  const kept = [...new Set(secrets.filter((secret): secret is string => Boolean(secret)))]
    .map((secret) => secret.trim())
    .filter((secret) => secret.length >= MIN_SECRET_LENGTH);
  const whole: string[] = [];
  const windows = new Set<string>();
  const knownHashes = new Set<number>();
  // One byte per low 16 bits of a known hash: most positions are ruled out by one array read.
  const hashFilter = new Uint8Array(1 << 16);
  for (const secret of kept) {
    for (const letters of forms(secret)) {
      if (letters.length < MIN_SECRET_LENGTH) continue;
      if (letters.length < WINDOW) {
        whole.push(letters);
        continue;
      }
      windowHashes(letters).forEach((hash, start) => {
        knownHashes.add(hash);
        hashFilter[hash & 0xffff] = 1;
        windows.add(letters.slice(start, start + WINDOW));
      });
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

  // Encoded once: Buffer#includes would encode a string needle again on every call.
  const keptBytes = kept.map((secret) => Buffer.from(secret));
  /** The last WINDOW letters seen, to take each one out of the rolling hash in turn. */
  const recent = new Int32Array(WINDOW);

  /**
   * Rolls the hash over the text's letters and digits, lower-cased on the fly, without making
   * the normalised text unless a window's hash is one of a secret's (then it is compared).
   */
  function lettersReveal(text: string): boolean {
    if (whole.length > 0) {
      const letters = alphanumeric(text);
      for (const secret of whole) if (letters.includes(secret)) return true;
    }
    if (knownHashes.size === 0) return false;
    let hash = 0;
    let count = 0;
    let letters: string | undefined;
    for (let index = 0; index < text.length; index++) {
      let code = text.charCodeAt(index);
      if (code >= 65 && code <= 90) code += 32;
      else if (!((code >= 97 && code <= 122) || (code >= 48 && code <= 57))) continue;
      const slot = count % WINDOW;
      if (count >= WINDOW) {
        const leaving = Math.imul(recent[slot] as number, leadingPower);
        hash = (Math.imul(hash - leaving, HASH_BASE) + code) | 0;
      } else {
        hash = (Math.imul(hash, HASH_BASE) + code) | 0;
      }
      recent[slot] = code;
      count++;
      if (
        count >= WINDOW &&
        hashFilter[hash & 0xffff] === 1 &&
        knownHashes.has(hash & 0x3fffffff)
      ) {
        letters ??= alphanumeric(text);
        if (windows.has(letters.slice(count - WINDOW, count))) return true;
      }
    }
    return false;
  }

  return {
    copiedIn(content) {
      if (typeof content === "string") return kept.some((secret) => content.includes(secret));
      const bytes = Buffer.isBuffer(content)
        ? content
        : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
      return keptBytes.some((secret) => bytes.includes(secret));
    },
    reveals(text) {
      if (kept.length === 0) return false;
      return lettersReveal(text) || (text.includes("%") && lettersReveal(percentDecoded(text)));
    },
    redact(text) {
      return verbatim ? text.replace(verbatim, REDACTED) : text;
    },
  };
}

/** A successful answer, with verbatim copies of the provider's credentials redacted. */
export function screenBody(bytes: Buffer, secrets: SecretScrubber): Buffer {
  return secrets.copiedIn(bytes) ? Buffer.from(secrets.redact(bytes.toString("utf8"))) : bytes;
}
