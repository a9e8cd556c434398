import { z } from "zod";
import { configSchema } from "./config.js";

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  minItems?: number;
}

/**
 * The config file's JSON Schema (draft 2020-12) as it is written: keys with defaults are not
 * required. For editors: `# yaml-language-server: $schema=<path>/config.schema.json`.
 */
export function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, { io: "input" }) as JsonSchema;
}

const code = (value: unknown) => `\`${typeof value === "string" ? value : JSON.stringify(value)}\``;

function typeOf(schema: JsonSchema): string {
  if (schema.const !== undefined) return code(schema.const);
  if (schema.enum) return schema.enum.map(code).join(" | ");
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return [...new Set(union.map(typeOf))].join(" or ");
  if (schema.type === "array") return `list of ${schema.items ? typeOf(schema.items) : "values"}`;
  if (schema.type === "object" && typeof schema.additionalProperties === "object") {
    return schema.properties ? "object" : `map of ${typeOf(schema.additionalProperties)}`;
  }
  const bounds = [
    schema.exclusiveMinimum !== undefined ? `> ${schema.exclusiveMinimum}` : undefined,
    schema.minimum !== undefined ? `≥ ${schema.minimum}` : undefined,
    schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER
      ? `≤ ${schema.maximum}`
      : undefined,
  ].filter(Boolean);
  const type = Array.isArray(schema.type) ? schema.type.join(" or ") : (schema.type ?? "any");
  return bounds.length > 0 ? `${type} (${bounds.join(", ")})` : type;
}

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** One row per key under `schema`, depth first; maps and provider types get their own rows. */
function rows(schema: JsonSchema, path: string, out: string[]): void {
  const variants = schema.oneOf?.filter((variant) => variant.properties?.type);
  if (variants && variants.length > 0) {
    for (const variant of variants) {
      const type = variant.properties?.type as JsonSchema;
      const names = (type.enum ?? [type.const]).map(code).join(" or ");
      out.push(`| **with \`type\` ${names}** | | | ${cell(type.description ?? "")} |`);
      rows(variant, path, out);
    }
    return;
  }
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const childPath = path ? `${path}.${key}` : key;
    const required = schema.required?.includes(key) ? " (required)" : "";
    const fallback = child.default === undefined ? "" : code(child.default);
    out.push(
      `| ${code(childPath)}${required} | ${cell(typeOf(child))} | ${cell(fallback)} | ${cell(child.description ?? "")} |`,
    );
    const objects = [child, ...(child.anyOf ?? [])].filter((option) => option.properties);
    for (const option of objects) rows(option, childPath, out);
    if (typeof child.additionalProperties === "object" && !child.properties) {
      rows(child.additionalProperties, `${childPath}.<name>`, out);
    }
    if (child.type === "array" && child.items?.properties) rows(child.items, `${childPath}[]`, out);
  }
}

/** The config reference in Markdown: every key with its type, default and meaning. */
export function configReference(): string {
  const schema = configJsonSchema();
  const sections: string[] = [];
  for (const [section, child] of Object.entries(schema.properties ?? {})) {
    const table = ["| key | type | default | |", "| --- | --- | --- | --- |"];
    rows({ properties: { [section]: child }, required: schema.required ?? [] }, "", table);
    sections.push(`## ${section}\n\n${child.description ?? ""}\n\n${table.join("\n")}\n`);
  }
  return [
    "# Configuration reference",
    "",
    "Every key of the config file (YAML or JSON), generated from the schema in",
    "[`src/config.ts`](src/config.ts); `pnpm test` fails when this file and the schema disagree",
    "(`UPDATE_CONFIG_REFERENCE=1 pnpm vitest run apps/server/src/config-reference.test.ts`",
    "rewrites it). Durations are in milliseconds unless a key says otherwise. Keys not listed",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config file's own syntax
    "are errors. `${NAME}` in any string is replaced by the environment variable NAME.",
    "[`config.schema.json`](config.schema.json) is the same as a JSON Schema, for editors:",
    "`# yaml-language-server: $schema=./config.schema.json` at the top of a YAML file.",
    "",
    ...sections,
  ].join("\n");
}
