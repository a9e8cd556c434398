import { describe, expect, it } from "vitest";
import { genesisMac, sealRecord, sealRecordText } from "../src/chain.js";
import type { AuditEntry } from "../src/index.js";

const key = "an audit key of at least 32 bytes!";

describe("sealing an entry given as its JSON text", () => {
  it("gives what sealing the entry parsed from that text, sent as UTF-8, gives", () => {
    const entries = [
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
        "10": "an integer-like key",
      },
      {
        time: "2026-12-01T10:00:01.000Z",
        requestId: "request-2 \u{1F44B} Grüße \ud800",
        tenant: "globex",
        endpoint: "/v1/messages",
        model: undefined,
        status: 502,
        durationMs: 12.5,
        errorType: "upstream_error",
        costUsd: 1e-21,
      },
      {},
    ] as unknown as AuditEntry[];
    let previous = genesisMac(key, "gw-1");
    for (const [index, entry] of entries.entries()) {
      // What the request thread hands over, and what the worker reads of it.
      const received = new TextDecoder().decode(new TextEncoder().encode(JSON.stringify(entry)));
      const parsed = JSON.parse(received) as AuditEntry;
      const sealed = sealRecord(key, parsed, "gw-1", index + 1, previous);
      const fromText = sealRecordText(key, received, "gw-1", index + 1, previous);
      expect(fromText.line).toBe(sealed.line);
      expect(fromText.mac).toBe(sealed.mac);
      const fields = ["instance", "seq", "time", "tenant", "requestId", "model", "status"] as const;
      for (const field of fields) expect(fromText[field]).toEqual(sealed[field]);
      previous = fromText.mac;
    }
    expect(sealRecordText(key, "{}", "gw-1", 3, "0").line).toMatch(
      /^\{"instance":"gw-1","seq":3,"mac":"[0-9a-f]{64}"\}$/,
    );
  });
});
