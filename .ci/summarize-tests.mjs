// Prints "N passed, N failed[, N skipped]" from vitest's JSON reports (the main run, and the
// runs on other Node versions), summed. When the run stopped before the tests (build,
// typecheck or lint failed), that counts as one failure.
import { existsSync, readFileSync } from "node:fs";

const [exitStatus, ...files] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files.filter((name) => existsSync(name))) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A file that failed to load has no tests to count, but it failed.
  failed += report.testResults.filter(
    (suite) => suite.status === "failed" && suite.assertionResults.length === 0,
  ).length;
}
if (exitStatus !== "0" && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
