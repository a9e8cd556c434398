import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { draftMembers, draftOf, entryValues, withDigests } from "../src/entry.js";
import { type AuditEntry, createAuditLog } from "../src/index.js";
import type { AuditSink, SealedRecord } from "../src/types.js";

const key = "an audit key of at least 32 bytes!";

/** An entry with every field set, each to a value of its own. */
const full: Required<AuditEntry> = {
  time: "2026-12-01T10:00:00.000Z",
  requestId: "request-1",
  traceId: "4985bf41c6d202fcea02411ba6921e4e",
  tenant: "acme",
  keyId: "k-1a2b",
  clientAddress: "127.0.0.1",
  protocol: "openai",
  method: "POST",
  endpoint: "/v1/chat/completions",
  model: "gpt-4o-mini",
  route: "gpt-*",
  attempts: [{ target: "mock/gpt-4o-mini", status: 200, durationMs: 5 }],
  provider: "mock",
  servedModel: "gpt-4o-mini-2024-07-18",
  status: 200,
  errorType: "upstream_error",
  errorCode: "overloaded",
  stream: true,
  usage: { inputTokens: 12, outputTokens: 30, reasoningTokens: 4 },
  costUsd: 0.00000975,
  costEstimated: false,
  durationMs: 93,
  timeToFirstTokenMs: 41,
  cache: "MISS",
  guardrails: [{ rule: "pii", phase: "input", action: "redact", matches: 1 }],
  requestSha256: "a".repeat(64),
  responseSha256: "b".repeat(64),
  content: { request: [{ role: "user", kind: "text", text: "Grüße 👋 \ud800" }] },
};

/** What the worker reads (the values as JSON text, through UTF-8 and back), as a draft. */
const draftOfHandedOver = (entry: AuditEntry, requestSha256?: string, responseSha256?: string) =>
  draftOf(
    new TextDecoder().decode(new TextEncoder().encode(JSON.stringify(entryValues(entry)))),
    requestSha256,
    responseSha256,
  );
/** The entry's text in the record the worker seals. */
const textOf = (entry: AuditEntry) => `{${draftMembers(draftOfHandedOver(entry))}}`;
const handedOver = (entry: AuditEntry): AuditEntry => JSON.parse(textOf(entry));

describe("an entry handed to the audit worker as its values", () => {
  it("comes back with every field, in record order, as JSON of the object writes it", () => {
    expect(textOf(full)).toBe(JSON.stringify(full));
    const draft = draftOfHandedOver(full);
    expect(draft).toMatchObject({
      time: full.time,
      tenant: full.tenant,
      requestId: full.requestId,
      model: full.model,
      status: full.status,
      content: full.content,
    });
    // Strings with escapes, nested quotes and brackets, and values of every JSON kind.
    const awkward = {
      ...full,
      tenant: 'a "quoted", [bracketed] {braced} \\ tenant\n',
      requestId: "ends in a backslash \\",
      model: "\u2028 ✓ \ud83d\udc4b",
      endpoint: "/v1/x?a=[1,2]&b={}",
      attempts: [
        { target: 'm/"x"', status: 500, durationMs: 0 },
        { target: "", status: 200, durationMs: 1e21 },
      ],
      usage: { inputTokens: 0, outputTokens: -0, estimated: true },
      costUsd: 1.5e-300,
      guardrails: [],
    };
    expect(textOf(awkward)).toBe(JSON.stringify(awkward));
    expect(draftOfHandedOver(awkward)).toMatchObject({
      tenant: awkward.tenant,
      requestId: awkward.requestId,
      model: awkward.model,
    });
  });

  it("takes digests given in place of the entry's own", () => {
    const draft = draftOfHandedOver(
      { ...full, requestSha256: undefined },
      "c".repeat(64),
      "d".repeat(64),
    );
    const back = JSON.parse(`{${draftMembers(draft)}}`);
    expect(back.requestSha256).toBe("c".repeat(64));
    expect(back.responseSha256).toBe("d".repeat(64));
    expect(Object.keys(back)).toEqual(Object.keys(full));
    expect(() => draftOf("[1,2]")).toThrow(TypeError);
    expect(() => draftOf('{"time":"x"}')).toThrow(TypeError);
    expect(() => draftOf('[0,"unterminated')).toThrow(TypeError);
    const handedOver = JSON.stringify(entryValues(full));
    expect(() => draftOf(`${handedOver}[]`)).toThrow(TypeError);
    // An element that is not JSON fails without its text in the message (it may be a prompt).
    const broken = handedOver.replace('"acme"', "secret-prompt");
    expect(() => draftOf(broken)).toThrow("entry values hold text that is not JSON");
  });

  it("keeps a null apart from a field left out, and leaves out what is undefined", () => {
    const priceUnknown = { ...full, costUsd: null, keyId: undefined, content: undefined };
    const back = handedOver(priceUnknown);
    expect(back.costUsd).toBeNull();
    expect("keyId" in back).toBe(false);
    expect("content" in back).toBe(false);
    const bare = {
      time: full.time,
      requestId: "r",
      tenant: "t",
      endpoint: "/",
      status: 0,
      durationMs: 0,
    };
    expect(JSON.stringify(handedOver(bare))).toBe(JSON.stringify(bare));
  });

  it("takes AuditEntry fields only, in record order, whatever order they came in", () => {
    const forged = {
      mac: "forged",
      seq: 1,
      instance: "elsewhere",
      status: 200,
      requestId: "request-1",
      time: full.time,
      tenant: "acme",
      endpoint: "/v1/chat/completions",
      durationMs: 3,
    } as unknown as AuditEntry;
    expect(textOf(forged)).toBe(
      '{"time":"2026-12-01T10:00:00.000Z","requestId":"request-1","tenant":"acme","endpoint":"/v1/chat/completions","status":200,"durationMs":3}',
    );
  });

  it("takes the hashes of bodies given, text as UTF-8, in place of the entry's own", () => {
    const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
    const text = '{"messages":[{"content":"Grüße 👋"}]}';
    const bytes = new TextEncoder().encode("an answer");
    const unhashed = { ...full, requestSha256: undefined, responseSha256: "c".repeat(64) };
    const values = withDigests(entryValues(unhashed), { request: text, response: bytes });
    const back = JSON.parse(`{${draftMembers(draftOf(JSON.stringify(values)))}}`);
    expect(back.requestSha256).toBe(sha256(Buffer.from(text, "utf8")));
    expect(back.responseSha256).toBe(sha256(bytes));
    expect(Object.keys(back)).toEqual(Object.keys(full));
  });
});

describe("the records of the audit log", () => {
  it("hold the entry's AuditEntry fields only, in record order", async () => {
    const records: SealedRecord[] = [];
    const sink: AuditSink = {
      write: async (batch) => {
        records.push(...batch);
        return undefined;
      },
      checkpoint: async () => {},
      close: async () => {},
    };
    const log = createAuditLog({ key, instance: "gw-1", sink });
    const entry = {
      status: 200,
      seq: 99,
      mac: "0".repeat(64),
      time: full.time,
      requestId: "request-1",
      tenant: "acme",
      endpoint: "/v1/chat/completions",
      durationMs: 3,
    } as unknown as AuditEntry;
    log.append(entry);
    await log.close();
    expect(records).toHaveLength(1);
    const line = records[0]?.line ?? "";
    expect(line).toMatch(
      /^\{"instance":"gw-1","seq":1,"time":"2026-12-01T10:00:00.000Z","requestId":"request-1","tenant":"acme","endpoint":"\/v1\/chat\/completions","status":200,"durationMs":3,"mac":"[0-9a-f]{64}"\}$/,
    );
  });

  it("counts an entry it cannot read as lost, without throwing", async () => {
    const lost: string[] = [];
    const log = createAuditLog({
      key,
      sink: { write: async () => undefined, checkpoint: async () => {}, close: async () => {} },
      logger: { info: () => {}, error: (_object, message) => lost.push(message ?? "") },
    });
    const unreadable = {
      ...full,
      get tenant(): string {
        throw new Error("no tenant");
      },
    };
    const notPieces = { ...full, content: { request: [null] } } as unknown as AuditEntry;
    expect(() => log.append(unreadable)).not.toThrow();
    expect(() => log.append(notPieces)).not.toThrow();
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 2, written: 0, lost: 2 });
    expect(lost).toEqual([
      "audit record lost: its entry could not be read",
      "audit record lost: its entry could not be read",
    ]);
  });
});
