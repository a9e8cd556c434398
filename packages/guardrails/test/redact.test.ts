import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  createUnmasker,
  placeholderFor,
  redactChatMessages,
  redactText,
  unmaskText,
} from "../src/index.js";

const key = "tenant-a-redaction-key-0123456789";

describe("redactText", () => {
  it("masks each value with a placeholder keyed by tenant: the same in every turn, another under another key", () => {
    const first = redactText("Write to jane@example.com or call +1 650 253 0000.", { key });
    expect(first.text).toMatch(
      /^Write to <EMAIL_ADDRESS_[0-9a-f]{8}> or call <PHONE_NUMBER_[0-9a-f]{8}>\.$/,
    );
    const second = redactText("Again: jane@example.com", { key });
    const placeholder = placeholderFor("EMAIL_ADDRESS", "jane@example.com", key);
    expect(first.text).toContain(placeholder);
    expect(second.text).toBe(`Again: ${placeholder}`);
    const other = redactText("Again: jane@example.com", {
      key: "tenant-b-redaction-key-0123456789",
    });
    expect(other.text).not.toBe(second.text);
    expect(first.originals.get(placeholder)).toBe("jane@example.com");
  });

  it("blocks or allows an entity by its action, and never masks those", () => {
    const redaction = redactText("Card 4111 1111 1111 1111, mail jane@example.com, ip 8.8.8.8", {
      key,
      actions: { CREDIT_CARD: "block", IP_ADDRESS: "allow" },
    });
    expect(redaction.blocked).toEqual(["CREDIT_CARD"]);
    expect(redaction.text).toContain("4111 1111 1111 1111");
    expect(redaction.text).toContain("8.8.8.8");
    expect(redaction.text).not.toContain("jane@example.com");
    expect(redaction.findings.map((finding) => finding.entity)).toEqual([
      "CREDIT_CARD",
      "EMAIL_ADDRESS",
      "IP_ADDRESS",
    ]);
  });

  it("refuses a key shorter than 16 bytes", () => {
    expect(() => redactText("x", { key: "short" })).toThrow(/16 bytes/);
  });
});

describe("unmasking", () => {
  const { text, originals } = redactText("Mail jane@example.com and bob@example.org", { key });

  it("restores the originals in a whole answer", () => {
    expect(unmaskText(`Sent to ${text.slice(5)}`, originals)).toBe(
      "Sent to jane@example.com and bob@example.org",
    );
    expect(unmaskText("<EMAIL_ADDRESS_00000000> stays", originals)).toBe(
      "<EMAIL_ADDRESS_00000000> stays",
    );
  });

  it("restores placeholders split across stream pieces, at any cut", () => {
    const answer = `I wrote to ${text.slice(5)}. <Done> <A_b`;
    const expected = unmaskText(answer, originals);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: answer.length - 1 }), { maxLength: 12 }),
        (cuts) => {
          const points = [0, ...cuts.toSorted((a, b) => a - b), answer.length];
          const unmasker = createUnmasker(originals);
          let out = "";
          for (let index = 1; index < points.length; index++) {
            out += unmasker.push(answer.slice(points[index - 1], points[index]));
          }
          out += unmasker.end();
          expect(out).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("holds back no more than a placeholder's length", () => {
    const unmasker = createUnmasker(originals);
    expect(unmasker.push("plain text with no angle")).toBe("plain text with no angle");
    expect(unmasker.push(" then <EMAIL_ADD")).toBe(" then ");
    expect(unmasker.push("RESS but not one")).toBe("<EMAIL_ADDRESS but not one");
  });
});

describe("redactChatMessages", () => {
  it("redacts string content, text parts and tool arguments, and counts each entity", () => {
    const { messages, counts, originals } = redactChatMessages(
      [
        { role: "system", content: "Support agent for jane@example.com" },
        {
          role: "user",
          content: [
            { type: "text", text: "My card is 4111 1111 1111 1111" },
            { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "c1",
              type: "function",
              function: { name: "mail", arguments: '{"to":"jane@example.com"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "Sent to jane@example.com" },
      ],
      { key },
    );
    const mail = placeholderFor("EMAIL_ADDRESS", "jane@example.com", key);
    const [system, user, assistant, tool] = messages as unknown as [
      { content: string },
      { content: { text?: string }[] },
      { tool_calls: { function: { arguments: string } }[] },
      { content: string },
    ];
    expect(system.content).toBe(`Support agent for ${mail}`);
    expect(user.content[0]?.text).toMatch(/<CREDIT_CARD_[0-9a-f]{8}>$/);
    expect(user.content[1]).toEqual({
      type: "image_url",
      image_url: { url: "https://example.com/a.png" },
    });
    expect(JSON.parse(assistant.tool_calls[0]?.function.arguments ?? "")).toEqual({ to: mail });
    expect(tool.content).toBe(`Sent to ${mail}`);
    expect(counts).toEqual({ EMAIL_ADDRESS: 3, CREDIT_CARD: 1 });
    expect(originals.get(mail)).toBe("jane@example.com");
  });
});

describe("the README's example", () => {
  it("does what it says", () => {
    const { text, originals, blocked } = redactText("Call +1 650 253 0000", {
      key,
      actions: { CREDIT_CARD: "block" },
    });
    expect(text).toMatch(/^Call <PHONE_NUMBER_[0-9a-f]{8}>$/);
    expect(blocked).toEqual([]);
    const { counts } = redactChatMessages([{ role: "user", content: "I am jane@example.com" }], {
      key,
    });
    expect(counts).toEqual({ EMAIL_ADDRESS: 1 });
    const unmasker = createUnmasker(originals);
    const [placeholder = ""] = originals.keys();
    const answer =
      unmasker.push(`Calling ${placeholder.slice(0, 9)}`) +
      unmasker.push(`${placeholder.slice(9)} now`) +
      unmasker.end();
    expect(answer).toBe("Calling +1 650 253 0000 now");
  });
});
