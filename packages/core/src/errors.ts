import { AigwError } from "@aigw/provider";

/** A client-supplied value as it may appear in a message or log: cut to `max` characters. */
export function shown(value: string, max = 200): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

export function invalidRequest(message: string, param: string | null = null, code?: string) {
  return new AigwError(message, {
    status: 400,
    type: "invalid_request_error",
    param,
    code: code ?? null,
  });
}

export function modelNotFound(model: string) {
  return new AigwError(`The model '${model}' does not exist or is not configured.`, {
    status: 404,
    type: "invalid_request_error",
    param: "model",
    code: "model_not_found",
  });
}

export function routeNotFound(method: string, path: string) {
  return new AigwError(`Unknown request URL: ${shown(method, 20)} ${shown(path)}.`, {
    status: 404,
    type: "invalid_request_error",
    code: "unknown_url",
  });
}

export function methodNotAllowed(method: string, path: string, allowed: string) {
  return new AigwError(`${shown(method, 20)} is not allowed on ${shown(path)}; use ${allowed}.`, {
    status: 405,
    type: "invalid_request_error",
    code: "method_not_allowed",
    headers: { allow: allowed },
  });
}

// The rest of such a body is not read: the connection closes after the answer.
export function requestTooLarge(limitBytes: number) {
  return new AigwError(`The request body exceeds the limit of ${limitBytes} bytes.`, {
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
    headers: { connection: "close" },
  });
}

export function requestTimeout() {
  return new AigwError("The request body did not arrive in time.", {
    status: 408,
    type: "invalid_request_error",
    code: "request_timeout",
    headers: { connection: "close" },
  });
}

export function unsupportedMediaType(message: string, code = "unsupported_media_type") {
  return new AigwError(message, { status: 415, type: "invalid_request_error", code });
}

export function hostNotAllowed() {
  return new AigwError("Requests for this host name are not accepted here.", {
    status: 403,
    type: "permission_error",
    code: "host_not_allowed",
  });
}

export function unavailable() {
  return new AigwError("The gateway is shutting down; retry on another instance.", {
    status: 503,
    type: "server_error",
    code: "unavailable",
    isRetryable: true,
  });
}

export function internalError(cause?: unknown) {
  return new AigwError("The gateway failed to process the request.", {
    status: 500,
    type: "server_error",
    code: "internal_error",
    cause,
  });
}

/** Anything thrown becomes an AigwError; what is not one already is a 500 with no details. */
export function toAigwError(error: unknown): AigwError {
  return AigwError.isInstance(error) ? error : internalError(error);
}

export function invalidApiKey(message: string) {
  return new AigwError(message, {
    status: 401,
    type: "authentication_error",
    code: "invalid_api_key",
  });
}

export function modelNotAllowed(model: string) {
  return new AigwError(`This API key may not use the model '${model}'.`, {
    status: 403,
    type: "permission_error",
    param: "model",
    code: "model_not_allowed",
  });
}
