import { hash } from "node:crypto";
import { types } from "node:util";
import type { RecordIndex } from "./chain.js";
import type { AuditBodies, AuditContent, AuditEntry } from "./types.js";

/** The fields of `AuditEntry`, in the order a record holds them (at most 31: see entryValues). */
const entryFields = [
  "time",
  "requestId",
  "traceId",
  "tenant",
  "keyId",
  "clientAddress",
  "protocol",
  "method",
  "endpoint",
  "model",
  "route",
  "attempts",
  "provider",
  "servedModel",
  "status",
  "errorType",
  "errorCode",
  "stream",
  "usage",
  "costUsd",
  "costEstimated",
  "durationMs",
  "timeToFirstTokenMs",
  "cache",
  "guardrails",
  "requestSha256",
  "responseSha256",
  "content",
] as const satisfies readonly (keyof AuditEntry)[];

// Every field of AuditEntry is listed: a field added there and not here fails to compile. One
// added here must be added to entryValues too, at the same place: the tests check the order.
const everyField: Exclude<keyof AuditEntry, (typeof entryFields)[number]> extends never
  ? true
  : never = true;
void everyField;

/**
 * @internal An entry as a JSON-ready array: a bit mask of the fields it has (bit i: field i
 * is not undefined, so a null stays null), then every field's value in `entryFields` order.
 * JSON.stringify writes such an array with less work than the object it stands for (no keys
 * to write, no undefined properties to look up and skip): the request thread does this per
 * record. Keys that are not `AuditEntry` fields are left out.
 */
export function entryValues(entry: AuditEntry): unknown[] {
  // Written out rather than mapped over entryFields: one property read each, no keyed lookups.
  const values: unknown[] = [
    0,
    entry.time,
    entry.requestId,
    entry.traceId,
    entry.tenant,
    entry.keyId,
    entry.clientAddress,
    entry.protocol,
    entry.method,
    entry.endpoint,
    entry.model,
    entry.route,
    entry.attempts,
    entry.provider,
    entry.servedModel,
    entry.status,
    entry.errorType,
    entry.errorCode,
    entry.stream,
    entry.usage,
    entry.costUsd,
    entry.costEstimated,
    entry.durationMs,
    entry.timeToFirstTokenMs,
    entry.cache,
    entry.guardrails,
    entry.requestSha256,
    entry.responseSha256,
    entry.content,
  ];
  let present = 0;
  for (let index = 1; index < values.length; index++) {
    if (values[index] !== undefined) present |= 1 << (index - 1);
  }
  values[0] = present;
  return values;
}

/** Where fields are in `entryValues` form. */
const indexOf = Object.fromEntries(entryFields.map((name, index) => [name, index + 1])) as Record<
  (typeof entryFields)[number],
  number
>;
const digestIndex = {
  requestSha256: indexOf.requestSha256,
  responseSha256: indexOf.responseSha256,
};

/** Sets `field` of an entry in `entryValues` form to the hex sha256 of `body` (text as UTF-8). */
function setDigest(
  values: unknown[],
  field: keyof typeof digestIndex,
  body: string | Uint8Array,
): void {
  const index = digestIndex[field];
  values[index] = hash("sha256", body, "hex");
  values[0] = (values[0] as number) | (1 << (index - 1));
}

/** @internal Throws a TypeError unless each body is text, bytes or absent. */
export function checkBodies(bodies: AuditBodies | undefined): void {
  for (const body of [bodies?.request, bodies?.response]) {
    if (body !== undefined && typeof body !== "string" && !types.isUint8Array(body)) {
      throw new TypeError("audit bodies must be strings or Uint8Arrays");
    }
  }
}

/**
 * @internal `values` (`entryValues` form) with the digests of the bodies given.
 * @throws TypeError for a body that is neither text nor bytes.
 */
export function withDigests(values: unknown[], bodies: AuditBodies | undefined): unknown[] {
  checkBodies(bodies);
  if (bodies?.request !== undefined) setDigest(values, "requestSha256", bodies.request);
  if (bodies?.response !== undefined) setDigest(values, "responseSha256", bodies.response);
  return values;
}

/** Each field's member prefix in record text: `"time":`. */
const memberNames = entryFields.map((name) => `${JSON.stringify(name)}:`);
const contentIndex = entryFields.indexOf("content") + 1;
const quote = 0x22;
const backslash = 0x5c;

/**
 * @internal An entry on its way to be sealed: its fields as record text, the ones sinks index
 * apart, and its content (prompts and completions) apart, to be redacted.
 */
export interface EntryDraft extends RecordIndex {
  /** Every field present but content, as JSON object members in record order: `"time":…,…`. */
  members: string;
  content: AuditContent | undefined;
}

/**
 * The text of each element of a JSON array, as JSON.stringify writes one (no white space).
 * @throws TypeError for text that is not such an array.
 */
function elementsOf(json: string): string[] {
  if (json.charCodeAt(0) !== 0x5b) throw new TypeError("entry values must be a JSON array");
  const elements: string[] = [];
  let depth = 0;
  let start = 1;
  for (let at = 1; at < json.length; at++) {
    const code = json.charCodeAt(at);
    if (code === quote) {
      // To the closing quote, past escaped characters.
      at++;
      while (at < json.length && json.charCodeAt(at) !== quote) {
        at += json.charCodeAt(at) === backslash ? 2 : 1;
      }
    } else if (code === 0x5b || code === 0x7b) {
      depth++;
    } else if (code === 0x5d || code === 0x7d) {
      if (depth === 0) {
        if (at !== json.length - 1) break;
        elements.push(json.slice(start, at));
        return elements;
      }
      depth--;
    } else if (code === 0x2c && depth === 0) {
      elements.push(json.slice(start, at));
      start = at + 1;
    }
  }
  throw new TypeError("entry values must be a JSON array");
}

/**
 * The value of an element's text: a string without escapes is its text between the quotes.
 * @throws TypeError for text that is not JSON, without quoting it (it may be a prompt).
 */
function elementValue(text: string): unknown {
  if (text.charCodeAt(0) === quote && !text.includes("\\")) return text.slice(1, -1);
  try {
    return JSON.parse(text);
  } catch {
    throw new TypeError("entry values hold text that is not JSON");
  }
}

/**
 * @internal The draft of an entry given as the JSON text of its `entryValues`: the record's
 * text is spliced from it, not parsed and written again. Digests given (hex) take the place
 * of the entry's own.
 * @throws TypeError for text that is not such an array.
 */
export function draftOf(
  valuesJson: string,
  requestSha256?: string,
  responseSha256?: string,
): EntryDraft {
  const elements = elementsOf(valuesJson);
  if (elements.length !== entryFields.length + 1) {
    throw new TypeError(`entry values must be ${entryFields.length + 1} JSON values`);
  }
  if (requestSha256 !== undefined) elements[digestIndex.requestSha256] = `"${requestSha256}"`;
  if (responseSha256 !== undefined) elements[digestIndex.responseSha256] = `"${responseSha256}"`;
  const present =
    Number(elements[0]) |
    (requestSha256 === undefined ? 0 : 1 << (digestIndex.requestSha256 - 1)) |
    (responseSha256 === undefined ? 0 : 1 << (digestIndex.responseSha256 - 1));
  const has = (index: number) => (present & (1 << (index - 1))) !== 0;
  const value = (index: number) =>
    has(index) ? elementValue(elements[index] as string) : undefined;
  // Joined, not added up: one flat string, where adding makes a tree of pieces that hashing
  // and writing would have to walk.
  const members: string[] = [];
  // Content is the last field: draftMembers adds it after the rest.
  for (let index = 1; index < contentIndex; index++) {
    if (has(index)) members.push(`${memberNames[index - 1]}${elements[index]}`);
  }
  return {
    members: members.join(","),
    content: value(contentIndex) as AuditContent | undefined,
    time: value(indexOf.time) as string,
    tenant: value(indexOf.tenant) as string,
    requestId: value(indexOf.requestId) as string,
    model: value(indexOf.model) as string | undefined,
    status: value(indexOf.status) as number,
  };
}

/** @internal The draft's fields as JSON object members, with `content` in place of its own. */
export function draftMembers(draft: EntryDraft, content = draft.content): string {
  if (content === undefined) return draft.members;
  const member = `${memberNames[contentIndex - 1]}${JSON.stringify(content)}`;
  return draft.members === "" ? member : `${draft.members},${member}`;
}
