import { hash } from "node:crypto";
import type { AigwError, TokenUsage } from "@aigw/provider";
import type { CacheStatus } from "./cache-step.js";
import type { RequestCost } from "./cost.js";
import type { Exchange } from "./exchange.js";
import type { FinishedAttempt, FinishedRequest, GuardrailVerdict } from "./types.js";

/** Hex sha256 of a body: text as UTF-8. */
export const sha256 = (body: Uint8Array | string) => hash("sha256", body, "hex");

/**
 * The `FinishedRequest` that `onFinish` hooks get. Its digests are getters, hashing a body when
 * first read: a hook that hashes the bodies elsewhere (the audit log, on its worker) spares the
 * serving thread. A class rather than an object literal: V8 builds a literal that holds a
 * getter about fifty times slower (measured: 0.7 µs against 16 ns for thirty fields).
 */
export class FinishedExchange implements FinishedRequest {
  readonly requestId: string;
  readonly traceId: string;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly timeToFirstTokenMs: number | undefined;
  readonly method: string;
  readonly path: string;
  readonly endpoint: string;
  readonly protocol: string;
  readonly tenant: string;
  readonly keyId: string | undefined;
  readonly clientAddress: string | undefined;
  readonly model: string | undefined;
  readonly route: string | undefined;
  readonly provider: string | undefined;
  readonly responseModel: string | undefined;
  readonly status: number;
  readonly error: AigwError | undefined;
  readonly stream: boolean;
  readonly attempts: readonly FinishedAttempt[];
  readonly usage: TokenUsage | undefined;
  readonly cost: RequestCost | undefined;
  readonly cache: CacheStatus | undefined;
  readonly verdicts: readonly GuardrailVerdict[];
  readonly requestBody: Uint8Array | string | undefined;
  readonly responseBody: Uint8Array | string | undefined;
  #requestSha256: string | undefined;
  #responseSha256: string | undefined;

  constructor(exchange: Exchange) {
    const { context, outcome } = exchange;
    const durationMs = performance.now() - context.startedAt;
    this.requestId = context.requestId;
    this.traceId = context.traceId;
    this.startedAt = Date.now() - durationMs;
    this.durationMs = durationMs;
    this.timeToFirstTokenMs = outcome.firstEventMs;
    this.method = context.method;
    this.path = exchange.pathname;
    this.endpoint = exchange.endpointLabel;
    this.protocol = exchange.protocol.name;
    this.tenant = context.tenant;
    this.keyId = exchange.tenant.keyId;
    this.clientAddress = exchange.clientAddress;
    this.model = context.model;
    this.route = context.route;
    this.provider = outcome.providerName;
    this.responseModel = outcome.responseModel;
    this.status = outcome.status;
    this.error = outcome.error;
    this.stream = outcome.stream;
    this.attempts = outcome.attemptLog.map(({ target, status, ms, route }) => ({
      target,
      route,
      status,
      durationMs: ms,
    }));
    this.usage = outcome.usage;
    this.cost = outcome.cost;
    this.cache = outcome.cache;
    this.verdicts = context.verdicts;
    this.requestBody = exchange.requestBody;
    this.#requestSha256 = exchange.requestSha256;
    const streamed = exchange.streamBody?.result();
    exchange.streamBody = undefined;
    this.responseBody = streamed ? streamed.text : exchange.responseBody;
    this.#responseSha256 = streamed?.sha256;
  }

  get requestSha256(): string | undefined {
    if (this.#requestSha256 === undefined && this.requestBody !== undefined) {
      this.#requestSha256 = sha256(this.requestBody);
    }
    return this.#requestSha256;
  }

  get responseSha256(): string | undefined {
    if (this.#responseSha256 === undefined && this.responseBody !== undefined) {
      this.#responseSha256 = sha256(this.responseBody);
    }
    return this.#responseSha256;
  }
}
