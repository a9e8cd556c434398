import shared from "../../tsup.config.ts";

// The `aigw` bin is a launcher in bin/ (linked by package managers before any build), so the
// entry cannot be derived from package.json: it is the CLI's source.
export default { ...shared, entry: ["src/cli.ts"] };
