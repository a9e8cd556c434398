import { AigwError } from "@aigw/provider";

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
  return new AigwError(`Unknown request URL: ${method} ${path}.`, {
    status: 404,
    type: "invalid_request_error",
    code: "unknown_url",
  });
}

export function methodNotAllowed(method: string, path: string, allowed: string) {
  return new AigwError(`${method} is not allowed on ${path}; use ${allowed}.`, {
    status: 405,
    type: "invalid_request_error",
    code: "method_not_allowed",
    headers: { allow: allowed },
  });
}

export function requestTooLarge(limitBytes: number) {
  return new AigwError(`The request body exceeds the limit of ${limitBytes} bytes.`, {
    status: 413,
    type: "invalid_request_error",
    code: "request_too_large",
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
