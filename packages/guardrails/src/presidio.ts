import type { Finding } from "./scan.js";

/** Finds entities in a text somewhere else (a service, a model): what patterns cannot. */
export type Analyzer = (text: string, options: { signal?: AbortSignal }) => Promise<Finding[]>;

export interface PresidioAnalyzerOptions {
  /** The analyzer service's base URL ("http://presidio-analyzer:3000"); `/analyze` is added. */
  url: string;
  /** The text's language (default "en"). */
  language?: string;
  /** Entities asked for (default: every one the service knows, such as PERSON and LOCATION). */
  entities?: string[];
  /** Least confidence a finding needs, 0 to 1 (default 0.5). */
  scoreThreshold?: number;
  /** Longest wait for an answer, in milliseconds (default 5,000). */
  timeoutMs?: number;
  /** Longest answer read, in bytes (default 1 MiB). */
  maxResponseBytes?: number;
}

interface PresidioResult {
  entity_type?: unknown;
  start?: unknown;
  end?: unknown;
}

/** UTF-16 index of each code point offset (Presidio counts code points, as Python does). */
function codeUnitIndex(text: string): (codePoint: number) => number | undefined {
  const indexes: number[] = [];
  let index = 0;
  for (const character of text) {
    indexes.push(index);
    index += character.length;
  }
  indexes.push(index);
  return (codePoint) => indexes[codePoint];
}

/**
 * An `Analyzer` calling Microsoft Presidio's analyzer over HTTP (`POST /analyze`), for the
 * entities that need named-entity recognition (PERSON, LOCATION, NRP, ...). Offsets are turned
 * from code points into JavaScript string indexes.
 * @throws Error when the service fails, answers late (`timeoutMs`) or answers something else
 *   than a list of findings.
 */
export function createPresidioAnalyzer(options: PresidioAnalyzerOptions): Analyzer {
  const endpoint = new URL("analyze", options.url.endsWith("/") ? options.url : `${options.url}/`);
  const maxBytes = options.maxResponseBytes ?? 2 ** 20;
  return async (text, { signal } = {}) => {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 5_000);
    const response = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        text,
        language: options.language ?? "en",
        score_threshold: options.scoreThreshold ?? 0.5,
        ...(options.entities ? { entities: options.entities } : {}),
      }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`Presidio analyzer answered HTTP ${response.status}`);
    }
    const length = Number(response.headers.get("content-length") ?? 0);
    if (length > maxBytes) {
      await response.body?.cancel();
      throw new Error(`Presidio analyzer answered more than ${maxBytes} bytes`);
    }
    const body = await response.text();
    if (body.length > maxBytes)
      throw new Error(`Presidio analyzer answered more than ${maxBytes} bytes`);
    const results: unknown = JSON.parse(body);
    if (!Array.isArray(results)) throw new Error("Presidio analyzer answered no list of findings");
    const toIndex = codeUnitIndex(text);
    const findings: Finding[] = [];
    for (const result of results as PresidioResult[]) {
      const { entity_type: entity, start, end } = result ?? {};
      if (typeof entity !== "string" || typeof start !== "number" || typeof end !== "number") {
        continue;
      }
      const from = toIndex(start);
      const to = toIndex(end);
      if (from === undefined || to === undefined || to <= from) continue;
      findings.push({ entity, start: from, end: to });
    }
    return findings.sort((a, b) => a.start - b.start);
  };
}
