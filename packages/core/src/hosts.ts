import type { HeaderValue } from "./types.js";

/** The host name of a `Host` header: lower case, without port, brackets or a final dot. */
function hostName(host: string): string {
  const trimmed = host.trim().toLowerCase();
  const name = trimmed.startsWith("[")
    ? trimmed.slice(1, trimmed.indexOf("]") === -1 ? undefined : trimmed.indexOf("]"))
    : trimmed.replace(/:\d*$/, "");
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/**
 * Checks the `Host` header against allowed names ("localhost", "::1", "gw.example.com"); a
 * name starting with "." allows the domain and its subdomains. A request without a `Host`
 * header is refused.
 */
export function createHostCheck(allowed: readonly string[]): (host: HeaderValue) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of allowed) {
    if (entry.startsWith(".")) suffixes.push(hostName(entry));
    else exact.add(hostName(entry.includes(":") && !entry.startsWith("[") ? `[${entry}]` : entry));
  }
  // A client sends the same Host on every request: remember the last few answers.
  const verdicts = new Map<string, boolean>();
  return (host) => {
    if (typeof host !== "string" || host === "") return false;
    const known = verdicts.get(host);
    if (known !== undefined) return known;
    const name = hostName(host);
    const allowed =
      exact.has(name) ||
      suffixes.some((suffix) => name.endsWith(suffix) || name === suffix.slice(1));
    if (verdicts.size >= 64) verdicts.clear();
    if (host.length <= 256) verdicts.set(host, allowed);
    return allowed;
  };
}
