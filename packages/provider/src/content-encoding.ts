import { promisify } from "node:util";
import {
  brotliDecompress,
  constants,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzip,
  inflate,
  type ZlibOptions,
} from "node:zlib";

type Decode = (bytes: Uint8Array, options: ZlibOptions) => Promise<Buffer>;

const decoders: Record<string, { whole: Decode; stream: () => NodeJS.ReadWriteStream }> = {
  gzip: { whole: promisify(gunzip), stream: createGunzip },
  "x-gzip": { whole: promisify(gunzip), stream: createGunzip },
  deflate: { whole: promisify(inflate), stream: createInflate },
  br: { whole: promisify(brotliDecompress) as Decode, stream: createBrotliDecompress },
};
/** More codings than this on one body are refused: nobody layers them deeper. */
const maxCodings = 2;
const noCodings: readonly string[] = Object.freeze([]);

/**
 * The content codings of a `Content-Encoding` header, in the order to undo them (the last
 * applied first), without `identity`. `{ unsupported }` names the first coding that is neither
 * gzip, deflate nor br, or says there are more than two.
 */
export function contentCodings(
  header: string | string[] | undefined,
): readonly string[] | { unsupported: string } {
  const value = Array.isArray(header) ? header.join(",") : header;
  if (!value) return noCodings;
  const codings = value
    .toLowerCase()
    .split(",")
    .map((coding) => coding.trim())
    .filter((coding) => coding !== "" && coding !== "identity");
  const unknown = codings.find((coding) => !Object.hasOwn(decoders, coding));
  if (unknown !== undefined) return { unsupported: unknown };
  if (codings.length > maxCodings) return { unsupported: codings.join(", ") };
  return codings.reverse();
}

/**
 * Undoes `codings` on a whole body, producing at most `maxBytes`. Rejects with Node's
 * `ERR_BUFFER_TOO_LARGE` past it, or with zlib's error for data that is not what it says.
 * With `partial`, a body cut short (the start of a longer one) decodes as far as it goes.
 */
export async function decodeBody(
  bytes: Uint8Array,
  codings: readonly string[],
  maxBytes: number,
  partial = false,
): Promise<Buffer> {
  let decoded = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flush = partial ? { finishFlush: constants.Z_SYNC_FLUSH } : {};
  for (const coding of codings) {
    const { whole } = decoders[coding] as (typeof decoders)[string];
    const brotli = coding === "br";
    decoded = await whole(decoded, {
      maxOutputLength: maxBytes,
      ...(partial && brotli ? { finishFlush: constants.BROTLI_OPERATION_FLUSH } : flush),
    } as ZlibOptions);
  }
  return decoded;
}

/**
 * Undoes `codings` on a body read chunk by chunk, as its chunks come: a compressed stream still
 * reaches the reader event by event. Closing the result closes `chunks`.
 */
export function decodeChunks<T extends AsyncIterable<Buffer> & { destroy(error?: Error): void }>(
  chunks: T,
  codings: readonly string[],
): AsyncIterable<Buffer> & { destroy(error?: Error): void } {
  const streams = codings.map((coding) => (decoders[coding] as (typeof decoders)[string]).stream());
  for (let index = 0; index + 1 < streams.length; index++) {
    (streams[index] as NodeJS.ReadWriteStream).pipe(streams[index + 1] as NodeJS.WritableStream);
  }
  const first = streams[0] as NodeJS.ReadWriteStream & { destroy(error?: Error): void };
  const last = streams.at(-1) as NodeJS.ReadWriteStream & { destroy(error?: Error): void };
  let pumping = false;
  const pump = async () => {
    try {
      for await (const chunk of chunks) {
        if (!first.write(chunk)) await new Promise((drained) => first.once("drain", drained));
      }
      first.end();
    } catch (error) {
      last.destroy(error as Error);
    }
  };
  return {
    destroy(error) {
      chunks.destroy(error);
      for (const stream of streams) (stream as typeof first).destroy(error);
    },
    [Symbol.asyncIterator]() {
      if (!pumping) {
        pumping = true;
        void pump();
      }
      return (last as unknown as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    },
  };
}
