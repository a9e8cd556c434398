import { describe, expect, it } from "vitest";
import { createSessions } from "./session.js";

describe("admin sessions", () => {
  const sessions = createSessions("an-admin-key-0123456789", 3_600_000);

  it("accepts its own cookie until it expires, and nothing else", () => {
    const now = Date.UTC(2026, 11, 1);
    const value = sessions.issue(now);
    expect(sessions.isValid(value, now + 3_599_000)).toBe(true);
    expect(sessions.isValid(value, now + 3_600_000)).toBe(false);
    const [expiry, signature] = value.split(".");
    // A later expiry with the old signature, a changed signature, junk, nothing.
    expect(sessions.isValid(`${Number(expiry) + 3600}.${signature}`, now)).toBe(false);
    expect(
      sessions.isValid(`${expiry}.${signature?.replace(/^./, "A")}A`.slice(0, value.length), now),
    ).toBe(false);
    expect(sessions.isValid("1.x", now)).toBe(false);
    expect(sessions.isValid(undefined, now)).toBe(false);
    // Another admin key's sessions are not this one's.
    expect(createSessions("another-admin-key-012345", 3_600_000).isValid(value, now)).toBe(false);
  });

  it("knows the admin key, compared whole", () => {
    expect(sessions.isAdminToken("an-admin-key-0123456789")).toBe(true);
    expect(sessions.isAdminToken("an-admin-key-012345678")).toBe(false);
    expect(sessions.isAdminToken("")).toBe(false);
  });
});
