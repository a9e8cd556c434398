import type { AuditContent, AuditEntry, AuditLog, AuditTextPiece } from "@aigw/audit";
import { shown } from "./errors.js";
import { isoTime } from "./iso-time.js";
import type { TextPiece } from "./protocols/protocol.js";
import { requestSlot } from "./request-slot.js";
import { dispatched } from "./stream-body.js";
import type { FinishedRequest, GatewayHooks, RequestContext } from "./types.js";

export interface AuditHooksOptions {
  /**
   * Whether prompt and completion text is recorded (redacted by the log, capped): for every
   * request, or decided per request from its context (tenant, route, model). Default false.
   */
  content?: boolean | ((context: RequestContext) => boolean);
  /** Endpoints not recorded (operations, not use). Default: "health", "metrics", "targets". */
  skipEndpoints?: readonly string[];
}

/** Text pieces up to a cap, merged where one continues the last (a stream's deltas). */
class Capture {
  readonly pieces: AuditTextPiece[] = [];
  private chars = 0;
  truncated = false;

  constructor(private readonly maxChars: number) {}

  add(pieces: readonly TextPiece[]): void {
    for (const piece of pieces) {
      const room = this.maxChars - this.chars;
      if (room <= 0 || this.pieces.length >= maxPieces) {
        this.truncated ||= piece.text !== "" || this.pieces.length >= maxPieces;
        return;
      }
      const text = piece.text.length > room ? piece.text.slice(0, room) : piece.text;
      if (text.length < piece.text.length) this.truncated = true;
      this.chars += text.length;
      const last = this.pieces.at(-1);
      if (last && last.role === piece.role && last.kind === piece.kind && !piece.name) {
        last.text += text;
      } else {
        const name = piece.name && capped(piece.name);
        this.pieces.push({ role: piece.role, kind: piece.kind, text, ...(name ? { name } : {}) });
      }
    }
  }
}

/** Client-chosen strings (a model name, a path, a tool's name) kept to a length that says enough. */
const maxNameLength = 256;
/** Pieces per side of a record, however many empty or named ones come. */
const maxPieces = 1_000;

const capped = (text: string | undefined) => text && shown(text, maxNameLength);

const decoder = new TextDecoder();

/**
 * Gateway hooks that append one record per request to `log` when the request is over: its
 * outcome (`onFinish`), the sha256 of the body the client sent and of the answer it got (a
 * stream's: of the data of each event an SSE client dispatches, each followed by a newline, as
 * `FinishedRequest.responseBody` gives it), and the prompt and completion text when `content`
 * says so: up to the log's `contentCharsWanted` each way, which the log cuts to its
 * `maxContentChars` and masks. List them first among the gateway's hooks, so that they take
 * the prompt as the client sent it, before another hook's `beforeRequest` changes it.
 * @throws TypeError for a log without a `contentCharsWanted` (not one of @aigw/audit).
 */
export function createAuditHooks(log: AuditLog, options: AuditHooksOptions = {}): GatewayHooks {
  // The log cuts content to its cap without splitting a value: it wants more to see one whole.
  const maxChars = log.contentCharsWanted;
  if (!Number.isSafeInteger(maxChars) || maxChars < 1) {
    throw new TypeError("createAuditHooks needs a log of @aigw/audit (with contentCharsWanted)");
  }
  const skipped = new Set(options.skipEndpoints ?? ["health", "metrics", "targets"]);
  const wantsContent = typeof options.content === "function" ? options.content : () => true;
  const prompts = requestSlot<Capture>("audit prompt");
  /** A stream's completion text; false once it could not be taken. */
  const completions = requestSlot<Capture | false>("audit completion");

  // Only when content may be recorded: a beforeRequest hook costs the gateway its byte-for-byte
  // forwarding of the client's JSON, and an onEventSent hook a call for every event.
  const captureContent: Pick<GatewayHooks, "beforeRequest" | "onEventSent"> = options.content
    ? {
        // The audit never fails a request: content it cannot take is left out, and said so.
        beforeRequest(call, context) {
          try {
            if (!wantsContent(context)) return;
            const capture = new Capture(maxChars);
            capture.add(context.protocol.requestText(call.endpoint, call.body));
            prompts.set(context, capture);
          } catch (error) {
            contentFailed(context, error);
          }
        },
        onEventSent(event, context) {
          if (!context.endpoint || !prompts.get(context) || !dispatched(event)) return;
          let completion = completions.get(context);
          if (completion === false) return;
          if (completion === undefined) {
            completion = new Capture(maxChars);
            completions.set(context, completion);
          }
          try {
            completion.add(context.protocol.eventText(context.endpoint, event));
          } catch (error) {
            completions.set(context, false);
            contentFailed(context, error);
          }
        },
      }
    : {};

  return {
    ...captureContent,
    onFinishBodies: true,
    onFinish(request, context) {
      if (skipped.has(request.endpoint)) return;
      const prompt = prompts.get(context);
      let content: AuditContent | undefined;
      if (prompt) {
        let response: Capture | undefined;
        try {
          response = request.stream
            ? completions.get(context) || undefined
            : answerCapture(request, context, maxChars);
        } catch (error) {
          contentFailed(context, error);
        }
        content = {
          request: prompt.pieces,
          response: response?.pieces,
          truncated: prompt.truncated || response?.truncated ? true : undefined,
        };
      }
      // The bodies are hashed by the log (off this thread, when it can); the gateway hashed
      // those it did not keep (a long stream's request or answer).
      const { requestBody, responseBody } = request;
      log.append(
        entryOf(
          request,
          content,
          requestBody === undefined ? request.requestSha256 : undefined,
          responseBody === undefined ? request.responseSha256 : undefined,
        ),
        requestBody === undefined && responseBody === undefined
          ? undefined
          : { request: requestBody, response: responseBody },
      );
    },
  };
}

function contentFailed(context: RequestContext, error: unknown) {
  context.logger?.warn(
    { requestId: context.requestId, err: error },
    "audit: content left out of the record",
  );
}

function answerCapture(
  request: FinishedRequest,
  context: RequestContext,
  maxChars: number,
): Capture | undefined {
  const body = request.responseBody;
  if (body === undefined || request.status >= 400 || !context.endpoint) return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(typeof body === "string" ? body : decoder.decode(body));
  } catch {
    return undefined;
  }
  const capture = new Capture(maxChars);
  capture.add(context.protocol.answerText(context.endpoint, answer));
  return capture;
}

function entryOf(
  request: FinishedRequest,
  content: AuditContent | undefined,
  requestSha256: string | undefined,
  responseSha256: string | undefined,
): AuditEntry {
  const { usage, cost, error } = request;
  return {
    time: isoTime(request.startedAt),
    requestId: request.requestId,
    traceId: request.traceId,
    tenant: request.tenant,
    keyId: request.keyId,
    clientAddress: request.clientAddress,
    protocol: request.protocol,
    method: request.method,
    endpoint: shown(request.path, maxNameLength),
    model: capped(request.model),
    route: request.route,
    attempts:
      request.attempts.length > 0
        ? request.attempts.map(({ target, route, status, durationMs }) => ({
            target,
            route,
            status,
            durationMs: Math.round(durationMs),
          }))
        : undefined,
    provider: request.provider,
    servedModel: capped(request.responseModel),
    status: request.status,
    errorType: error?.type ?? (request.status === 499 ? "client_closed" : undefined),
    errorCode: error?.code ?? undefined,
    stream: request.stream || undefined,
    usage: usage && {
      inputTokens: usage.inputTokens,
      cachedTokens: usage.cacheReadTokens || undefined,
      cacheWriteTokens:
        (usage.cacheWriteTokens &&
          usage.cacheWriteTokens.fiveMinutes + usage.cacheWriteTokens.oneHour) ||
        undefined,
      outputTokens: usage.outputTokens,
      reasoningTokens: usage.reasoningTokens || undefined,
      estimated: usage.estimated || undefined,
    },
    costUsd: cost && (cost.nanoUsd === undefined ? null : cost.nanoUsd / 1e9),
    costEstimated: cost?.estimated || undefined,
    durationMs: Math.round(request.durationMs),
    timeToFirstTokenMs:
      request.timeToFirstTokenMs === undefined ? undefined : Math.round(request.timeToFirstTokenMs),
    cache: request.cache,
    guardrails:
      request.verdicts.length > 0 ? request.verdicts.map((verdict) => ({ ...verdict })) : undefined,
    requestSha256,
    responseSha256,
    content,
  };
}
