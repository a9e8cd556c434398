// The mock OpenAI upstream in its own process, so it does not share an event loop with what
// is measured. Prints its base URL on the first line of stdout.
import { startMockUpstream } from "@aigw/testing";

const upstream = await startMockUpstream();
process.stdout.write(`${upstream.url}\n`);
process.on("SIGTERM", () => upstream.close().then(() => process.exit(0)));
