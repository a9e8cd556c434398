import { hash } from "node:crypto";
import { types } from "node:util";
import type { AuditBodies, AuditEntry } from "./types.js";

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

const digestIndex = {
  requestSha256: entryFields.indexOf("requestSha256") + 1,
  responseSha256: entryFields.indexOf("responseSha256") + 1,
};

/**
 * @internal Sets `field` of an entry in `entryValues` form to the hex sha256 of `body` (text
 * hashed as UTF-8).
 */
export function setDigest(
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

/** @internal The entry `entryValues` stands for: its fields in record order, the absent left out. */
export function entryFromValues(values: readonly unknown[]): AuditEntry {
  const present = values[0] as number;
  const entry: Record<string, unknown> = {};
  for (let index = 0; index < entryFields.length; index++) {
    if (present & (1 << index)) entry[entryFields[index] as string] = values[index + 1];
  }
  return entry as unknown as AuditEntry;
}
