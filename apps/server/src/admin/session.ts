import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const sessionCookie = "aigw_admin";

/**
 * Logins to the status page as signed cookies: `<expiry seconds>.<HMAC-SHA256>` under a key
 * derived from the admin token, so they hold across instances that share the token and end
 * when it changes. Nothing is kept in memory per login.
 */
export function createSessions(adminToken: string, lifetimeMs: number) {
  const key = createHmac("sha256", adminToken).update("aigw admin session").digest();
  const expectedToken = createHash("sha256").update(adminToken).digest();
  const sign = (expiry: string) => createHmac("sha256", key).update(expiry).digest("base64url");

  return {
    /** Whether `presented` is the admin token (compared in constant time). */
    isAdminToken(presented: string): boolean {
      return timingSafeEqual(createHash("sha256").update(presented).digest(), expectedToken);
    },
    /** A new session's cookie value, valid for the lifetime from `now`. */
    issue(now = Date.now()): string {
      const expiry = String(Math.floor((now + lifetimeMs) / 1000));
      return `${expiry}.${sign(expiry)}`;
    },
    /** Whether a cookie value is a session this token signed that has not expired. */
    isValid(value: string | undefined, now = Date.now()): boolean {
      const match = value === undefined ? null : /^(\d{1,12})\.([\w-]{43})$/.exec(value);
      if (!match) return false;
      const [, expiry = "", signature = ""] = match;
      const expected = Buffer.from(sign(expiry));
      const given = Buffer.from(signature);
      return timingSafeEqual(expected, given) && Number(expiry) * 1000 > now;
    },
    maxAgeSeconds: Math.floor(lifetimeMs / 1000),
  };
}

export type Sessions = ReturnType<typeof createSessions>;
