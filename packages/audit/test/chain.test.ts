import { describe, expect, it } from "vitest";
import { genesisMac, sealRecord, sealRecordText } from "../src/chain.js";
import type { AuditEntry } from "../src/index.js";

const key = "an audit key of at least 32 bytes!";

describe("sealing an entry given as its JSON text", () => {
  it("gives the line, MAC and indexed fields that sealing the entry gives", () => {
    const entries: AuditEntry[] = [
      {
        time: "2026-12-01T10:00:00.000Z",
        requestId: "request-1",
        tenant: "acme",
        endpoint: "/v1/chat/completions",
        model: "gpt-4o-mini",
        status: 200,
        durationMs: 93,
        usage: { inputTokens: 12, outputTokens: 30 },
        costUsd: 0.00000975,
      },
      {
        time: "2026-12-01T10:00:01.000Z",
        requestId: "request-2 \u{1F44B} \ud800",
        tenant: "globex",
        endpoint: "/v1/messages",
        model: undefined,
        status: 502,
        durationMs: 12.5,
        errorType: "upstream_error",
        costUsd: null,
      },
    ];
    let previous = genesisMac(key, "gw-1");
    for (const [index, entry] of entries.entries()) {
      const sealed = sealRecord(key, entry, "gw-1", index + 1, previous);
      const fromText = sealRecordText(key, JSON.stringify(entry), "gw-1", index + 1, previous);
      expect(fromText.line).toBe(sealed.line);
      expect(fromText.mac).toBe(sealed.mac);
      const fields = ["instance", "seq", "time", "tenant", "requestId", "model", "status"] as const;
      for (const field of fields) expect(fromText[field]).toEqual(sealed[field]);
      // A sink that stores records as JSON gets every field, as from a record of sealRecord.
      expect(JSON.parse(JSON.stringify(fromText))).toEqual(JSON.parse(JSON.stringify(sealed)));
      previous = fromText.mac;
    }
  });
});
