import { describe, expect, it } from "vitest";
import { createSecretScrubber } from "./secrets.js";

const key = "sk-proj-Q7wXk2Lm9ZpR4tYv8NbC3dFg";
const scrubber = createSecretScrubber([key]);

describe("createSecretScrubber", () => {
  it.each([
    ["verbatim", `bad key ${key}`],
    ["upper case", key.toUpperCase()],
    ["lower case", `param: ${key.toLowerCase()}`],
    ["split with spaces", `${key.slice(0, 15)} ${key.slice(15)}`],
    ["split into quoted pieces", key.match(/.{1,5}/g)?.join('", "') ?? ""],
    ["a long fragment", key.slice(10, 30)],
    ["percent-encoded", encodeURIComponent(key).replace(/-/g, "%2D")],
    ["base64", Buffer.from(key).toString("base64")],
    ["base64 at another alignment", Buffer.from(`x:${key}`).toString("base64")],
    ["base64url", Buffer.from(`Bearer ${key}`).toString("base64url")],
    ["hex", Buffer.from(key).toString("hex")],
    ["hex, odd offset", `0${Buffer.from(key).toString("hex").toUpperCase()}`],
  ])("finds the key %s", (_form, text) => {
    expect(scrubber.reveals(text)).toBe(true);
  });

  it.each([
    "Incorrect API key provided: sk-proj-********************************dFg.",
    "Invalid value for 'temperature': expected a number between 0 and 2.",
    Buffer.from("some other secret value that is long").toString("base64"),
    "The model `gpt-4o-mini` does not exist or you do not have access to it.",
  ])("leaves text without the key alone: %s", (text) => {
    expect(scrubber.reveals(text)).toBe(false);
  });

  it("redacts verbatim copies in any letter case", () => {
    expect(scrubber.redact(`a ${key} b ${key.toUpperCase()} c`)).toBe(
      "a [redacted] b [redacted] c",
    );
  });

  it("looks for every secret given, and ignores empty and very short ones", () => {
    const many = createSecretScrubber([undefined, "", "abc", key, "other-credential-value"]);
    expect(many.reveals("OTHER_CREDENTIAL_VALUE")).toBe(true);
    expect(many.reveals("abc")).toBe(false);
    expect(createSecretScrubber([]).reveals(key)).toBe(false);
  });

  it("finds verbatim copies in text, in a Buffer and in a view of part of a larger buffer", () => {
    const credential = "clé-secrète-0123456789";
    const twoSecrets = createSecretScrubber([key, credential]);
    for (const secret of [key, credential]) {
      const text = `{"echo":"${secret}"}`;
      const length = Buffer.byteLength(text);
      const shared = Buffer.from(`padding ${text} padding`);
      const view = new Uint8Array(shared.buffer, shared.byteOffset + 8, length);
      const shortOfItsEnd = new Uint8Array(shared.buffer, shared.byteOffset + 8, length - 3);
      const besideIt = new Uint8Array(shared.buffer, shared.byteOffset + 8 + length, 8);
      expect(
        [text, Buffer.from(text), view, shortOfItsEnd, besideIt].map((content) =>
          twoSecrets.copiedIn(content),
        ),
      ).toEqual([true, true, true, false, false]);
    }
    expect(twoSecrets.copiedIn(Buffer.from(key.toUpperCase()))).toBe(false);
    expect(createSecretScrubber([]).copiedIn(key)).toBe(false);
  });
});
