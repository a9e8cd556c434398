import { describe, expect, it } from "vitest";
import { appendJsonMembers, impreciseNumbers, setJsonFields } from "./json-text.js";

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

describe("appendJsonMembers", () => {
  const added = { stream_options: { include_usage: true } };

  it("adds members before the closing brace and leaves every other byte as it was", () => {
    const text = '{"seed":9007199254740993,"messages":[{"content":"}"}]} \n';
    const edited = appendJsonMembers(text, added) as string;
    expect(edited).toBe(
      '{"seed":9007199254740993,"messages":[{"content":"}"}],"stream_options":{"include_usage":true}} \n',
    );
    expect(appendJsonMembers(" { \n} ", added)).toBe(
      ' { \n"stream_options":{"include_usage":true}} ',
    );
    expect(appendJsonMembers(text, { skipped: undefined })).toBe(text);
  });

  it("edits bytes as bytes, without a byte order mark", () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"é"}')]);
    const edited = appendJsonMembers(bytes, added) as Uint8Array;
    expect(Buffer.isBuffer(edited)).toBe(true);
    expect(JSON.parse(Buffer.from(edited).toString("utf8"))).toEqual({ a: "é", ...added });
    expect(appendJsonMembers(Buffer.from("{}"), added)?.toString()).toBe(
      '{"stream_options":{"include_usage":true}}',
    );
  });

  it("says undefined for a text without a closing brace", () => {
    expect(appendJsonMembers("[1]", added)).toBeUndefined();
    expect(
      appendJsonMembers(Buffer.from([0xef, 0xbb, 0xbf, 0x7d]).subarray(0, 3), added),
    ).toBeUndefined();
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
