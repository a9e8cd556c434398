// The mock Anthropic upstream in its own process, like bench/upstream.js for OpenAI. Prints its
// base URL (with /v1) on the first line of stdout.
import { startAnthropicMock } from "@aigw/testing";

const upstream = await startAnthropicMock({ recordRequests: false });
process.stdout.write(`${upstream.url}/v1\n`);
process.on("SIGTERM", () => upstream.close().then(() => process.exit(0)));
