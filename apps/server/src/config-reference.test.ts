import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configSchema } from "./config.js";
import { configJsonSchema, configReference } from "./config-reference.js";

const reference = new URL("../CONFIG.md", import.meta.url);
const jsonSchema = new URL("../config.schema.json", import.meta.url);
const update = process.env.UPDATE_CONFIG_REFERENCE === "1";

/** Every key path of the schema's objects, as the reference writes them. */
function keyPaths(schema: ReturnType<typeof configJsonSchema>, path = ""): string[] {
  const found: string[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const childPath = path ? `${path}.${key}` : key;
    found.push(childPath);
    for (const option of [child, ...(child.anyOf ?? [])]) {
      if (option.properties) found.push(...keyPaths(option, childPath));
    }
  }
  return found;
}

describe("the configuration reference", () => {
  it("CONFIG.md and config.schema.json are what the schema generates", () => {
    const markdown = configReference();
    const json = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
    if (update) {
      writeFileSync(reference, markdown);
      writeFileSync(jsonSchema, json);
    }
    expect(readFileSync(reference, "utf8")).toBe(markdown);
    expect(readFileSync(jsonSchema, "utf8")).toBe(json);
  });

  it("describes every key, and names every top-level section", () => {
    const markdown = configReference();
    for (const section of Object.keys(configSchema.shape)) {
      expect(markdown).toContain(`## ${section}\n`);
    }
    for (const path of keyPaths(configJsonSchema())) {
      expect(markdown, path).toContain(`\`${path}\``);
    }
    const undescribed = markdown
      .split("\n")
      .filter((line) => line.startsWith("| `") && line.endsWith("|  |"));
    expect(undescribed).toEqual([]);
  });
});
