/**
 * The UTF-8 text of a JSON body, without a byte order mark (which JSON.parse and the edits
 * here would refuse). Bytes are read in place, not copied first.
 */
export function jsonText(json: Uint8Array | string): string {
  if (typeof json === "string") return json;
  const bytes = Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  return bytes.toString("utf8", bom ? 3 : 0);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** The index just past the string that starts at `start` (an opening quote). */
function stringEnd(text: string, start: number): number {
  let quote = text.indexOf('"', start + 1);
  while (quote !== -1) {
    // A quote after an odd number of backslashes is escaped; the opening quote stops the count.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    quote = text.indexOf('"', quote + 1);
  }
  return -1;
}

/** The index just past the value that starts at `start`, or -1 when the text ends first. */
function valueEnd(text: string, start: number): number {
  const first = text.charCodeAt(start);
  if (first === QUOTE) return stringEnd(text, start);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let index = start;
    while (index < text.length) {
      const code = text.charCodeAt(index);
      if (code === COMMA || code === CLOSE_BRACE || code === CLOSE_BRACKET || isSpace(code)) break;
      index++;
    }
    return index;
  }
  let depth = 0;
  for (let index = start; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === QUOTE) {
      index = stringEnd(text, index) - 1;
      if (index < 0) return -1;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth++;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return index + 1;
    }
  }
  return -1;
}

interface Member {
  name: string;
  /** From the member's first character (its key) to just past its value. */
  start: number;
  valueStart: number;
  end: number;
}

/** The top-level members of a JSON object's text, or undefined when it is not one. */
function members(text: string): { list: Member[]; close: number } | undefined {
  let index = 0;
  const skip = () => {
    while (index < text.length && isSpace(text.charCodeAt(index))) index++;
  };
  skip();
  if (text.charCodeAt(index) !== OPEN_BRACE) return undefined;
  index++;
  const list: Member[] = [];
  skip();
  if (text.charCodeAt(index) === CLOSE_BRACE) return { list, close: index };
  for (;;) {
    skip();
    const start = index;
    if (text.charCodeAt(index) !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, index);
    if (keyEnd < 0) return undefined;
    const key = text.slice(index, keyEnd);
    const name = key.includes("\\") ? (JSON.parse(key) as string) : key.slice(1, -1);
    index = keyEnd;
    skip();
    if (text.charCodeAt(index) !== COLON) return undefined;
    index++;
    skip();
    const valueStart = index;
    const end = valueEnd(text, index);
    if (end < 0 || end === valueStart) return undefined;
    list.push({ name, start, valueStart, end });
    index = end;
    skip();
    const code = text.charCodeAt(index);
    if (code === CLOSE_BRACE) return { list, close: index };
    if (code !== COMMA) return undefined;
    index++;
  }
}

/**
 * Sets top-level fields of a JSON object's text, leaving the rest as it was written: numbers
 * JSON.parse would round (a 20-digit `seed`), key order and unknown fields. `fields` maps a
 * name to its new value (serialised with JSON.stringify; every occurrence of a repeated key
 * gets it), or to undefined to remove the field; new fields go at the end. The white space
 * between members may change. Returns undefined when the text is not a JSON object.
 */
export function setJsonFields(
  text: string,
  fields: Readonly<Record<string, unknown>>,
): string | undefined {
  const found = members(text);
  if (!found) return undefined;
  const { list, close } = found;
  const pieces: string[] = [];
  const placed = new Set<string>();
  for (const member of list) {
    if (!Object.hasOwn(fields, member.name)) {
      pieces.push(text.slice(member.start, member.end));
      continue;
    }
    placed.add(member.name);
    const value = fields[member.name];
    if (value !== undefined) {
      pieces.push(text.slice(member.start, member.valueStart) + JSON.stringify(value));
    }
  }
  for (const [name, value] of Object.entries(fields)) {
    if (!placed.has(name) && value !== undefined) {
      pieces.push(`${JSON.stringify(name)}:${JSON.stringify(value)}`);
    }
  }
  const first = list[0];
  const last = list.at(-1);
  const head = first ? text.slice(0, first.start) : text.slice(0, close);
  const tail = last ? text.slice(last.end) : text.slice(close);
  return head + pieces.join(",") + tail;
}

/**
 * Adds members at the end of a JSON object's text without reading the rest of it: the caller
 * knows (from the parsed object) that the object has none of them. Bytes stay bytes, so a large
 * body is neither decoded nor encoded again; a byte order mark is dropped. `fields` maps a name
 * to its value (serialised with JSON.stringify; undefined values are skipped). Returns undefined
 * when the text does not end with an object's closing brace.
 */
export function appendJsonMembers(
  json: Uint8Array | string,
  fields: Readonly<Record<string, unknown>>,
): Uint8Array | string | undefined {
  const members = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`)
    .join(",");
  if (typeof json === "string") {
    const close = json.lastIndexOf("}");
    if (close === -1) return undefined;
    if (members === "") return json;
    const separator = isEmptyBefore(close, (index) => json.charCodeAt(index)) ? "" : ",";
    return `${json.slice(0, close)}${separator}${members}${json.slice(close)}`;
  }
  const bytes = Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const close = bytes.lastIndexOf(CLOSE_BRACE);
  if (close < start) return undefined;
  if (members === "") return bytes.subarray(start);
  const separator = isEmptyBefore(close, (index) => bytes[index] ?? 0) ? "" : ",";
  return Buffer.concat([
    bytes.subarray(start, close),
    Buffer.from(separator + members),
    bytes.subarray(close),
  ]);
}

/** Whether the last character before `close` that is not white space opens the object. */
function isEmptyBefore(close: number, codeAt: (index: number) => number): boolean {
  let index = close - 1;
  while (index >= 0 && isSpace(codeAt(index))) index--;
  return codeAt(index) === OPEN_BRACE;
}

const numberToken = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/**
 * The number literals of a JSON text that a double cannot hold exactly (more than 15
 * significant digits), in the order written: what a parsed body loses, for a cache key to
 * tell such bodies apart. Digits inside strings count too, which can only make keys finer.
 */
export function impreciseNumbers(text: string): string[] {
  const found: string[] = [];
  for (const [token] of text.matchAll(numberToken)) {
    // Sixteen significant digits need at least sixteen characters.
    if (token.length <= 15) continue;
    const mantissa = token.replace(/^-/, "").split(/[eE]/)[0] as string;
    const digits = mantissa.replace(".", "").replace(/^0+/, "");
    if (digits.length > 15) found.push(token);
  }
  return found;
}
