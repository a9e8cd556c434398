import { describe, expect, it } from "vitest";
import { impreciseNumbers, setJsonFields } from "./json-text.js";

describe("setJsonFields", () => {
  const body =
    '{"model":"fast","seed":9007199254740993,"messages":[{"role":"user","content":"a,}\\"{"}],"x":1.10}';

  it("replaces a field and keeps every other byte's meaning, numbers included", () => {
    const edited = setJsonFields(body, { model: "gpt-4o-mini" }) as string;
    expect(edited).toBe(body.replace('"fast"', '"gpt-4o-mini"'));
    expect(edited).toContain("9007199254740993");
    expect(edited).toContain("1.10");
  });

  it("adds fields at the end, and removes fields wherever they are", () => {
    const added = setJsonFields(body, { stream_options: { include_usage: true } }) as string;
    expect(JSON.parse(added).stream_options).toEqual({ include_usage: true });
    expect(added.startsWith(body.slice(0, -1))).toBe(true);
    for (const name of ["model", "messages", "x"]) {
      const removed = setJsonFields(body, { [name]: undefined }) as string;
      const parsed = JSON.parse(removed);
      expect(parsed[name]).toBeUndefined();
      expect(Object.keys(parsed)).toHaveLength(3);
      expect(removed).toContain("9007199254740993");
    }
    const rest = setJsonFields(body, { model: undefined, x: undefined }) as string;
    expect(rest).toBe('{"seed":9007199254740993,"messages":[{"role":"user","content":"a,}\\"{"}]}');
    expect(JSON.parse(setJsonFields(" { } ", { a: 1 }) as string)).toEqual({ a: 1 });
  });

  it("reads escaped keys and sets every copy of a repeated one", () => {
    const repeated = '{"mod\\u0065l":"a","model":"b"}';
    expect(JSON.parse(setJsonFields(repeated, { model: "c" }) as string)).toEqual({ model: "c" });
  });

  it("tells escaped quotes from the ones that end a string, after any run of backslashes", () => {
    const text = JSON.stringify({ a: "x\\", b: 'y\\"}', c: '\\\\"', d: 1 });
    const edited = setJsonFields(text, { d: 2 }) as string;
    expect(JSON.parse(edited)).toEqual({ ...JSON.parse(text), d: 2 });
    expect(setJsonFields('{"a":"x\\"}', { b: 1 })).toBeUndefined();
  });

  it("says undefined for what is not a JSON object", () => {
    for (const text of ["[]", "1", '{"a":', '{"a" 1}', "", '{"a":1,}']) {
      expect(setJsonFields(text, { a: 2 }), text).toBeUndefined();
    }
  });
});

describe("impreciseNumbers", () => {
  it("finds the literals a double cannot hold, in order", () => {
    expect(
      impreciseNumbers(
        '{"a":9007199254740993,"b":2,"c":0.12345678901234567,"d":1e300,"e":-12345678901234567890}',
      ),
    ).toEqual(["9007199254740993", "0.12345678901234567", "-12345678901234567890"]);
  });
});
