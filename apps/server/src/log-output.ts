import { writeSync } from "node:fs";

const bufferBytes = 64 * 1024;
// Room for a line of this many UTF-16 units in the worst case of 3 UTF-8 bytes each.
const maxBufferedLineLength = bufferBytes / 3;
const eagainPause = new Int32Array(new SharedArrayBuffer(4));

/**
 * A pino destination that copies each JSON line into one 64 KiB buffer and writes the buffer
 * to a file descriptor when it fills, every `flushIntervalMs`, and on `flush()`.
 *
 * Measured under load: sonic-boom's `minLength` mode measures its whole pending string on
 * every line, and a worker thread wakes up for nearly every line; this costs one copy per
 * line and one write per ~150 lines. The price: lines still in the buffer are lost if the
 * process is killed outright (SIGKILL, out of memory); exits, signals and crashes flush.
 */
export class BufferedLogOutput {
  private readonly buffer = Buffer.allocUnsafe(bufferBytes);
  private used = 0;
  private failed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly fd: number,
    flushIntervalMs = 1000,
  ) {
    this.timer = setInterval(() => this.flush(), flushIntervalMs).unref();
  }

  write(line: string): void {
    if (line.length > maxBufferedLineLength) {
      this.flush();
      this.writeAll(Buffer.from(line));
      return;
    }
    if (this.used + line.length * 3 > bufferBytes) this.flush();
    this.used += this.buffer.write(line, this.used);
  }

  /** Writes what is buffered; pino's `logger.flush(callback)` lands here. */
  flush(callback?: (error?: Error) => void): void {
    const used = this.used;
    this.used = 0;
    if (used > 0) this.writeAll(this.buffer, used);
    callback?.();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private writeAll(bytes: Buffer, length = bytes.length): void {
    if (this.failed) return;
    let offset = 0;
    while (offset < length) {
      try {
        offset += writeSync(this.fd, bytes, offset, length - offset);
      } catch (error) {
        // A non-blocking pipe whose reader is behind: wait a moment, as pino's own writer does.
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") {
          Atomics.wait(eagainPause, 0, 0, 10);
          continue;
        }
        // Logging must never take requests down with it: report once and stop writing.
        this.failed = true;
        process.stderr.write(`aigw: cannot write logs: ${(error as Error).message}\n`);
        return;
      }
    }
  }
}
