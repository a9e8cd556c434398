import { randomFillSync } from "node:crypto";
import { firstHeader } from "@aigw/provider";
import type { HeaderValue } from "./types.js";

/** The W3C trace context of one request, as the gateway continues it. */
export interface TraceContext {
  traceId: string;
  /** The caller's span: from `traceparent`, or `x-span-id`. */
  parentSpanId: string | undefined;
  /** The gateway's own span, the parent of its upstream calls. */
  spanId: string;
  flags: string;
  tracestate: string | undefined;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const traceIdPattern = /^[0-9a-f]{32}$/;
const spanIdPattern = /^[0-9a-f]{16}$/;
const zeros = /^0+$/;

// Ids are cut from one block of random bytes, refilled when used up: one call into the
// random source per 256 requests instead of one per id.
const randomPool = Buffer.allocUnsafe(6144);
let randomOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const hex = randomPool.toString("hex", randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

/** New random ids: 32 hex digits for a trace, 16 for a span; all zeros are invalid ids. */
function newTraceId(): string {
  const id = randomHex(16);
  return zeros.test(id) ? newTraceId() : id;
}

function newSpanId(): string {
  const id = randomHex(8);
  return zeros.test(id) ? newSpanId() : id;
}

// W3C Trace Context, section 3.3: list members, their keys and values, and the size limits.
const tracestateMember =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const maxTracestateMembers = 32;
const maxTracestateLength = 512;
const longTracestateMember = 128;

/**
 * The `tracestate` to pass on: undefined when any member is malformed or there are more than
 * 32; otherwise cut to 512 characters the way the standard says (members over 128 characters
 * go first, then members from the end).
 */
export function readTracestate(header: HeaderValue): string | undefined {
  const value = Array.isArray(header) ? header.join(",") : header;
  if (!value || value.length > 8192) return undefined;
  let members = value
    .split(",")
    .map((member) => member.trim())
    .filter((member) => member !== "");
  if (members.length > maxTracestateMembers) return undefined;
  if (!members.every((member) => tracestateMember.test(member))) return undefined;
  const length = () => members.join(",").length;
  if (length() > maxTracestateLength) {
    members = members.filter((member) => member.length <= longTracestateMember);
    while (members.length > 0 && length() > maxTracestateLength) members.pop();
  }
  return members.length > 0 ? members.join(",") : undefined;
}

function validId(value: string | undefined, pattern: RegExp): string | undefined {
  const lower = value?.trim().toLowerCase();
  return lower && pattern.test(lower) && !zeros.test(lower) ? lower : undefined;
}

/**
 * A valid `traceparent` is continued; an invalid one is replaced. Without one, `x-trace-id`
 * and `x-span-id` are used when they are valid ids, and new ids otherwise.
 */
export function readTraceContext(headers: Record<string, HeaderValue>): TraceContext {
  const parsed = traceparentPattern.exec(
    firstHeader(headers.traceparent)?.trim().toLowerCase() ?? "",
  );
  const [, version, traceId, parentSpanId, flags, rest] = parsed ?? [];
  const valid =
    parsed &&
    version !== "ff" &&
    !(version === "00" && rest) &&
    !zeros.test(traceId ?? "") &&
    !zeros.test(parentSpanId ?? "");
  if (valid && traceId && parentSpanId && flags) {
    return {
      traceId,
      parentSpanId,
      spanId: newSpanId(),
      flags,
      tracestate: readTracestate(headers.tracestate),
    };
  }
  return {
    traceId: validId(firstHeader(headers["x-trace-id"]), traceIdPattern) ?? newTraceId(),
    parentSpanId: validId(firstHeader(headers["x-span-id"]), spanIdPattern),
    spanId: newSpanId(),
    flags: "01",
    tracestate: undefined,
  };
}

export function formatTraceparent(traceId: string, spanId: string, flags: string): string {
  return `00-${traceId}-${spanId}-${flags}`;
}
