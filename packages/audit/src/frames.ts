import { hash } from "node:crypto";

/*
 * How a threaded log hands entries to its worker: one frame per entry. A frame is three
 * little-endian uint32, then the bytes they count: the entry's values as JSON (`entryValues`),
 * then the request body and the response body to hash (UTF-8 for text). A body's count is its
 * length plus one, 0 when there is none; the JSON's is its length.
 */

const headerBytes = 12;
/** The longest body a frame holds (its count must fit a uint32 with the one added). */
export const maxFrameBody = 2 ** 32 - 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** @internal A body to hash: text (as UTF-8), bytes, or none. */
export type FrameBody = string | Uint8Array | undefined;

/** @internal The most bytes a body takes in a frame (text at 3 bytes a UTF-16 unit). */
export const maxBytesOf = (body: FrameBody) =>
  body === undefined ? 0 : typeof body === "string" ? body.length * 3 : body.byteLength;

const bytesOf = (body: FrameBody) =>
  body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;

/** @internal The most bytes a frame of these takes, and the exact count (which costs a scan). */
export function frameBytes(
  json: string,
  request: FrameBody,
  response: FrameBody,
  exact = false,
): number {
  return exact
    ? headerBytes + Buffer.byteLength(json) + bytesOf(request) + bytesOf(response)
    : headerBytes + json.length * 3 + maxBytesOf(request) + maxBytesOf(response);
}

/**
 * @internal Writes one frame into `buffer` at `at`, which must have room for it (see
 * `frameBytes`); returns where it ends.
 */
export function writeFrame(
  buffer: Uint8Array,
  at: number,
  json: string,
  request: FrameBody,
  response: FrameBody,
): number {
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let end = at + headerBytes;
  const write = (body: FrameBody) => {
    if (body === undefined) return 0;
    const start = end;
    if (typeof body === "string") end += encoder.encodeInto(body, buffer.subarray(end)).written;
    else {
      buffer.set(body, end);
      end += body.byteLength;
    }
    return end - start;
  };
  view.setUint32(at, write(json), true);
  view.setUint32(at + 4, request === undefined ? 0 : write(request) + 1, true);
  view.setUint32(at + 8, response === undefined ? 0 : write(response) + 1, true);
  return end;
}

/**
 * @internal Each frame's entry values (JSON text, as written) and the hex sha256 of each body
 * it holds.
 */
export function readFrames(
  records: Uint8Array,
  each: (
    json: string,
    requestSha256: string | undefined,
    responseSha256: string | undefined,
  ) => void,
): void {
  const view = new DataView(records.buffer, records.byteOffset, records.byteLength);
  let at = 0;
  /** The next `length` bytes. */
  const take = (length: number) => {
    at += length;
    return records.subarray(at - length, at);
  };
  const digest = (count: number) =>
    count > 0 ? hash("sha256", take(count - 1), "hex") : undefined;
  while (at < records.byteLength) {
    const jsonBytes = view.getUint32(at, true);
    const request = view.getUint32(at + 4, true);
    const response = view.getUint32(at + 8, true);
    at += headerBytes;
    const json = decoder.decode(take(jsonBytes));
    const requestSha256 = digest(request);
    each(json, requestSha256, digest(response));
  }
}
