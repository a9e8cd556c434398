import type { HeaderValue } from "./types.js";

/**
 * The host name of a `Host` header or an allowed entry: lower case, without the port, the
 * brackets of an IPv6 address or a final dot. Undefined when it is not a host, or a host and
 * a port ("[::1]x", "a:b:c" without brackets, "name:port:more").
 */
function hostName(value: string): string | undefined {
  const host = value.trim().toLowerCase();
  let name: string;
  let rest: string;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    if (close === -1) return undefined;
    name = host.slice(1, close);
    rest = host.slice(close + 1);
  } else {
    const colon = host.indexOf(":");
    name = colon === -1 ? host : host.slice(0, colon);
    rest = colon === -1 ? "" : host.slice(colon);
  }
  if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
  if (name.endsWith(".")) name = name.slice(0, -1);
  return name === "" ? undefined : name;
}

/**
 * Checks the `Host` header against allowed names ("localhost", "::1", "[::1]",
 * "gw.example.com", with or without a port, which is ignored); a name starting with "." allows
 * the domain and its subdomains. A request without a `Host` header, or with one that is not a
 * host and port, is refused. Throws a TypeError for an entry that is not a host name.
 */
export function createHostCheck(allowed: readonly string[]): (host: HeaderValue) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of allowed) {
    // A bare IPv6 address has colons of its own: it gets the brackets a Host header has.
    const bare = !entry.startsWith("[") && (entry.match(/:/g)?.length ?? 0) > 1;
    const name = hostName(bare ? `[${entry}]` : entry);
    if (name === undefined) throw new TypeError(`allowedHosts: '${entry}' is not a host name`);
    if (name.startsWith(".")) suffixes.push(name);
    else exact.add(name);
  }
  return (host) => {
    if (typeof host !== "string") return false;
    const name = hostName(host);
    if (name === undefined) return false;
    return (
      exact.has(name) ||
      suffixes.some((suffix) => name.endsWith(suffix) || name === suffix.slice(1))
    );
  };
}
