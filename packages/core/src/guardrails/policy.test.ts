import { describe, expect, it } from "vitest";
import { layerPolicies } from "./policy.js";

describe("layerPolicies", () => {
  it("merges pii field by field, adds rules by name, and replaces the other fields", () => {
    const analyzer = async () => [];
    const layered = layerPolicies(
      {
        pii: { actions: { US_SSN: "block" }, output: "redact" },
        rules: [
          { name: "codenames", words: ["bluebird"], action: "block" },
          { name: "tickets", patterns: ["T-\\d+"], action: "redact" },
        ],
        maxPromptChars: 100,
      },
      undefined,
      {
        pii: { actions: { EMAIL_ADDRESS: "allow" }, analyzer },
        rules: [{ name: "tickets", patterns: ["T-\\d+"], action: "flag" }],
        maxPromptChars: 50,
      },
    );
    expect(layered).toEqual({
      pii: { actions: { US_SSN: "block", EMAIL_ADDRESS: "allow" }, output: "redact", analyzer },
      rules: [
        { name: "codenames", words: ["bluebird"], action: "block" },
        { name: "tickets", patterns: ["T-\\d+"], action: "flag" },
      ],
      maxPromptChars: 50,
    });
    expect(layerPolicies(undefined, undefined)).toBeUndefined();
  });
});
