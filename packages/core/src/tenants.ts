import { createHash, timingSafeEqual } from "node:crypto";
import type { Limiter } from "@aigw/ratelimit";
import { invalidApiKey } from "./errors.js";
import type { GatewayRequest, HeaderValue, RequestContext } from "./types.js";

export interface TenantOptions {
  /** sha256 hex digests of the tenant's gateway keys; the keys themselves are never stored. */
  keyHashes?: string[];
  /** Configured model names or route patterns the tenant may use; every model when absent. */
  models?: string[];
  /** The tenant's own limits; otherwise the gateway's default limiter applies. */
  limiter?: Limiter;
}

/** Replaces key lookup: returns the tenant id, or undefined for a 401. May throw an AigwError. */
export type Authenticate = (
  request: GatewayRequest,
  context: RequestContext,
) => string | undefined | Promise<string | undefined>;

export interface Tenant {
  id: string;
  options: TenantOptions;
  /** The first 16 hex digits of the sha256 of the key it presented, when a key was checked. */
  keyId?: string;
}

/** The hex sha256 digest under which a gateway key is configured. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

// RFC 9110 section 11.1: the scheme name is case-insensitive.
const bearerScheme = /^bearer[ \t]+/i;

function presentedKey(headers: Record<string, HeaderValue>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === "string" && bearerScheme.test(authorization)) {
    return authorization.replace(bearerScheme, "").trim() || undefined;
  }
  const apiKey = headers["x-api-key"];
  return typeof apiKey === "string" && apiKey ? apiKey : undefined;
}

/**
 * A check that a request sends `token` as `Authorization: Bearer <token>`, compared in constant
 * time (for example to guard GET /metrics).
 */
export function bearerTokenCheck(token: string): (headers: Record<string, HeaderValue>) => boolean {
  const expected = createHash("sha256").update(token).digest();
  return (headers) => {
    const authorization = headers.authorization;
    if (typeof authorization !== "string" || !bearerScheme.test(authorization)) return false;
    const presented = authorization.replace(bearerScheme, "").trim();
    return timingSafeEqual(createHash("sha256").update(presented).digest(), expected);
  };
}

export interface TenantDirectory {
  /** True when no key is configured and no authenticate hook given: everyone is "anonymous". */
  readonly open: boolean;
  /** The tenant at once when the gateway runs open; a promise when a key must be checked. */
  identify(request: GatewayRequest, context: RequestContext): Tenant | Promise<Tenant>;
}

export function createTenantDirectory(
  tenants: Record<string, TenantOptions>,
  authenticate: Authenticate | undefined,
): TenantDirectory {
  const keys: { digest: Buffer; tenantId: string }[] = [];
  for (const [tenantId, options] of Object.entries(tenants)) {
    for (const hash of options.keyHashes ?? []) {
      if (!/^[0-9a-f]{64}$/i.test(hash)) {
        throw new TypeError(`tenants.${tenantId}.keyHashes: '${hash}' is not a sha256 hex digest`);
      }
      keys.push({ digest: Buffer.from(hash, "hex"), tenantId });
    }
  }
  const open = keys.length === 0 && !authenticate;
  const tenant = (id: string): Tenant => ({ id, options: tenants[id] ?? {} });
  const anonymous = tenant("anonymous");

  async function authenticated(
    request: GatewayRequest,
    context: RequestContext,
    hook: Authenticate,
  ): Promise<Tenant> {
    const id = await hook(request, context);
    if (!id) throw invalidApiKey("Invalid or missing API key.");
    return tenant(id);
  }

  function byKey(request: GatewayRequest): Tenant {
    const key = presentedKey(request.headers);
    if (!key) {
      throw invalidApiKey(
        "Missing API key: send it as 'Authorization: Bearer <key>' or in 'x-api-key'.",
      );
    }
    const digest = createHash("sha256").update(key).digest();
    // Every configured digest is compared, in constant time, whichever one matches.
    let match: string | undefined;
    for (const entry of keys) {
      if (timingSafeEqual(entry.digest, digest)) match = entry.tenantId;
    }
    if (!match) throw invalidApiKey("Incorrect API key provided.");
    return { ...tenant(match), keyId: digest.toString("hex", 0, 8) };
  }

  return {
    open,
    identify(request, context) {
      if (authenticate) return authenticated(request, context, authenticate);
      return open ? anonymous : byKey(request);
    },
  };
}

/** Whether a tenant may use a model: by its name or by the configured route it matched. */
export function mayUseModel(tenant: Tenant, model: string, routeName: string): boolean {
  const allowed = tenant.options.models;
  return !allowed || allowed.includes(model) || allowed.includes(routeName);
}
