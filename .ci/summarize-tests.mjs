// Prints "N passed, N failed[, N skipped]" from vitest's JSON report. When the run stopped
// before the tests (build, typecheck or lint failed), that counts as one failure.
import { existsSync, readFileSync } from "node:fs";

const [file, exitStatus] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed = report.numPassedTests;
  failed = report.numFailedTests;
  skipped = report.numPendingTests + report.numTodoTests;
  // A file that failed to load has no tests to count, but it failed.
  failed += report.testResults.filter(
    (suite) => suite.status === "failed" && suite.assertionResults.length === 0,
  ).length;
} else if (exitStatus !== "0") {
  failed = 1;
}
if (exitStatus !== "0" && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
