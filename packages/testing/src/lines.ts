import { Writable } from "node:stream";

/** A stream that hands each chunk written to it (a logger's line) to `onLine` as text. */
export function collectLines(onLine: (line: string) => void): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      onLine(String(chunk));
      done();
    },
  });
}
