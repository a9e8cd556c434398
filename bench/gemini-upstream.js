// The mock Gemini upstream in its own process, like bench/upstream.js for OpenAI. Prints its
// base URL (with /v1beta) on the first line of stdout.
import { startGeminiMock } from "@aigw/testing";

const upstream = await startGeminiMock({ recordRequests: false });
process.stdout.write(`${upstream.baseURL}\n`);
process.on("SIGTERM", () => upstream.close().then(() => process.exit(0)));
