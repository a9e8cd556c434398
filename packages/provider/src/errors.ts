const errorMarker = Symbol.for("aigw.error");

/** The body every error is sent in, whatever produced it: OpenAI's error shape. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface AigwErrorOptions {
  status: number;
  type: string;
  code?: string | null;
  param?: string | null;
  /** Whether sending the same request again (now or after `retryAfterMs`) may succeed. */
  isRetryable?: boolean;
  /** The wait the upstream asked for (retry-after-ms / retry-after), in milliseconds. */
  retryAfterMs?: number;
  /** Headers the client should receive with this error (Retry-After, x-should-retry, ...). */
  headers?: Record<string, string>;
  /** The upstream's own request id, when the error came from an upstream response. */
  upstreamRequestId?: string;
  /** The HTTP status the upstream answered with, when the error is its answer. */
  upstreamStatus?: number;
  cause?: unknown;
}

/**
 * The one error type of aigw. Recognise it with `AigwError.isInstance(value)`, not
 * `instanceof`: two installed copies of this package would each have their own class.
 */
export class AigwError extends Error {
  readonly [errorMarker] = true;
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly isRetryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly headers: Record<string, string>;
  readonly upstreamRequestId: string | undefined;
  readonly upstreamStatus: number | undefined;

  constructor(message: string, options: AigwErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "AigwError";
    this.status = options.status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.isRetryable = options.isRetryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.headers = options.headers ?? {};
    this.upstreamRequestId = options.upstreamRequestId;
    this.upstreamStatus = options.upstreamStatus;
  }

  static isInstance(value: unknown): value is AigwError {
    return (
      typeof value === "object" &&
      value !== null &&
      (value as Record<symbol, unknown>)[errorMarker] === true
    );
  }

  toBody(): ErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}
