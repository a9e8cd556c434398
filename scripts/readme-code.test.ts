// Every TypeScript code block in the READMEs compiles against the built packages, and the
// blocks marked to run do run. A block may be preceded by a comment that GitHub hides:
//
//   <!-- readme-code: runs
//   declare const gateway: import("@aigw/core").Gateway;
//   -->
//
// Its first line holds flags ("runs"); the lines after it are a prelude, compiled (and run)
// before the block, for the names a short fragment uses without declaring them.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const folder = ".readme-code";

interface Block {
  readme: string;
  line: number;
  runs: boolean;
  file: string;
}

const readmes = [
  "README.md",
  ...["packages", "apps"].flatMap((parent) =>
    readdirSync(join(root, parent)).map((name) => join(parent, name, "README.md")),
  ),
].filter((path) => {
  try {
    readFileSync(join(root, path));
    return true;
  } catch {
    return false;
  }
});

const fence =
  /(?:<!-- readme-code:([^\n]*)\n([\s\S]*?)-->\n)?```(?:ts|typescript)\n([\s\S]*?)^```/gm;

/** Writes each block (with its prelude) into a folder beside its README, where imports resolve. */
function writeBlocks(): Block[] {
  const blocks: Block[] = [];
  for (const readme of readmes) {
    const text = readFileSync(join(root, readme), "utf8");
    const directory = join(root, dirname(readme), folder);
    rmSync(directory, { recursive: true, force: true });
    for (const match of text.matchAll(fence)) {
      const [, flags = "", prelude = "", code = ""] = match;
      const line = text.slice(0, (match.index ?? 0) + match[0].indexOf("```")).split("\n").length;
      const file = join(directory, `line-${line}.ts`);
      mkdirSync(directory, { recursive: true });
      writeFileSync(file, `// ${readme}, the block at line ${line}\n${prelude}${code}export {};\n`);
      blocks.push({ readme, line, runs: flags.split(/\s+/).includes("runs"), file });
    }
  }
  return blocks;
}

function run(file: string, args: string[], cwd: string) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(file, args, { cwd, timeout: 110_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

const blocks = writeBlocks();

describe("the READMEs' code", () => {
  it("finds every TypeScript block of every README", () => {
    expect(blocks.length).toBeGreaterThan(15);
    for (const readme of readmes) {
      const fences = readFileSync(join(root, readme), "utf8").match(/^```(ts|typescript)\b/gm);
      const found = blocks.filter((block) => block.readme === readme);
      expect(found.length, readme).toBe(fences?.length ?? 0);
    }
  });

  it("type-checks, every block", async () => {
    const config = join(root, folder, "tsconfig.json");
    mkdirSync(dirname(config), { recursive: true });
    writeFileSync(
      config,
      JSON.stringify({
        extends: "../tsconfig.base.json",
        compilerOptions: { noUnusedLocals: false },
        files: blocks.map((block) => relative(dirname(config), block.file)),
      }),
    );
    const tsc = join(root, "node_modules/.bin/tsc");
    const { code, output } = await run(tsc, ["-p", config, "--pretty", "false"], root);
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 120_000);

  const runnable = blocks.filter((block) => block.runs);
  it.each(runnable.map((block) => [`${block.readme}:${block.line}`, block] as const))(
    "runs %s",
    async (_name, block) => {
      const source = readFileSync(block.file, "utf8");
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      const script = block.file.replace(/\.ts$/, ".mjs");
      writeFileSync(script, outputText);
      const { code, output } = await run(process.execPath, [script], dirname(script));
      expect(output).not.toMatch(/Error/);
      expect(code).toBe(0);
    },
    60_000,
  );
});
