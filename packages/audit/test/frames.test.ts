import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { draftMembers, draftOf, entryValues } from "../src/entry.js";
import { frameBytes, readFrames, writeFrame } from "../src/frames.js";
import type { AuditEntry } from "../src/types.js";

const sha256 = (body: string | Uint8Array) => createHash("sha256").update(body).digest("hex");
const entry = (requestId: string): AuditEntry => ({
  time: "2026-12-01T10:00:00.000Z",
  requestId,
  tenant: "acme",
  endpoint: "/v1/chat/completions",
  status: 200,
  durationMs: 3,
});

describe("the frames a threaded log hands to its worker", () => {
  it("carry each entry and the bodies to hash, whatever they hold", () => {
    const bytes = new Uint8Array([0, 1, 2, 3, 255, 10, 13]);
    const frames = [
      {
        json: JSON.stringify(entryValues(entry("text"))),
        request: "Grüße 👋 \ud800",
        response: "",
      },
      { json: JSON.stringify(entryValues(entry("bytes"))), response: bytes.subarray(2, 6) },
      { json: JSON.stringify(entryValues(entry("none"))) },
    ];
    const most = frames.reduce((sum, f) => sum + frameBytes(f.json, f.request, f.response), 0);
    const exact = frames.reduce(
      (sum, f) => sum + frameBytes(f.json, f.request, f.response, true),
      0,
    );
    expect(exact).toBeLessThan(most);
    // An offset into a larger buffer, and exactly the room the frames need.
    const buffer = new Uint8Array(exact + 5).subarray(5);
    let at = 0;
    for (const f of frames) at = writeFrame(buffer, at, f.json, f.request, f.response);
    expect(at).toBe(exact);

    const read: AuditEntry[] = [];
    readFrames(buffer, (json, requestSha256, responseSha256) =>
      read.push(JSON.parse(`{${draftMembers(draftOf(json, requestSha256, responseSha256))}}`)),
    );
    expect(read.map((each) => each.requestId)).toEqual(["text", "bytes", "none"]);
    expect(read[0]?.requestSha256).toBe(sha256(Buffer.from("Grüße 👋 \ufffd")));
    expect(read[0]?.responseSha256).toBe(sha256(""));
    expect(read[1]?.requestSha256).toBeUndefined();
    expect(read[1]?.responseSha256).toBe(sha256(bytes.subarray(2, 6)));
    expect(read[2]).toEqual(entry("none"));
  });
});
