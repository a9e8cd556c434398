// pnpm bench: the gateway (as apps/server ships it, metrics and logs on) against the same mock
// upstream reached directly and through a bare undici pass-through, in interleaved rounds, for
// JSON answers and for streamed ones (about 15 events each); and streams from Anthropic and
// Gemini mocks translated for the same OpenAI requests, against those from the OpenAI mock; and
// a route that balances two targets against a route of one; guardrails on, both ways. Then, side
// by side (both driven at once, so the machine's changing speed hits both alike), the gateway
// against itself with the audit log on (file sink, content off), with the status page on, and
// against a second copy of itself (the control: what the method reads when nothing differs).
import autocannon from "autocannon";
import {
  cleanUp,
  cpuSeconds,
  median,
  startGateway,
  startScript,
  temporaryFile,
  writeGatewayConfig,
} from "./processes.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const sideBySideRounds = Number(process.env.BENCH_SIDE_BY_SIDE_ROUNDS ?? 5);
const durationSeconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = 50;

function drive(url, stream, connectionCount = connections) {
  return autocannon({
    url: `${url}/v1/chat/completions`,
    method: "POST",
    connections: connectionCount,
    duration: durationSeconds,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-4o-mini",
      stream,
      messages: [{ role: "user", content: "Say hello to the benchmark, briefly, in a few words." }],
    }),
  });
}

const upstream = await startScript(["bench/upstream.js"]);
const passthrough = await startScript(["bench/passthrough.js", upstream.url]);
const writeConfig = (name, extra) => writeGatewayConfig(name, upstream.url, extra);

// As apps/server ships: metrics and access logs on.
const gateway = await startGateway(writeConfig("default", []));
// The same with the request context in AsyncLocalStorage, to show what that option costs.
const gatewayWithAsyncContext = await startGateway(
  writeConfig("als", ["gateway: { asyncContext: true }"]),
);
// The response cache on: every request is the same, so after the warm-up every one is a hit.
const gatewayWithCache = await startGateway(writeConfig("cache", ["cache: { store: memory }"]));
// Guardrails on both ways: PII masked in requests and answers, a word list on the output.
const gatewayWithGuardrails = await startGateway(
  writeConfig("guardrails", [
    "guardrails:",
    "  secret: bench-guardrails-secret-0123",
    "  default:",
    "    pii: { output: redact }",
    "    rules: [{ name: words, words: [forbidden, classified], action: block, on: output }]",
  ]),
);
// The audit log on: one sealed record per request, appended to rotated files.
const gatewayWithAudit = await startGateway(
  writeConfig("audit", [
    "audit:",
    "  key: bench-audit-key-0123456789abcdef0123",
    `  file: { path: "${temporaryFile("audit")}/requests.jsonl", maxBytes: 50000000, maxFiles: 2 }`,
  ]),
);
// The status page on: every request counted in memory for it.
const gatewayWithStatus = await startGateway(
  writeConfig("status", [
    "admin:",
    "  bearerToken: bench-admin-key-0123456789",
    "  statusPage: {}",
  ]),
);
// The control of the side-by-side runs: a second gateway just like the first.
const gatewayTwin = await startGateway(writeConfig("twin", []));
// A route that balances two providers (both the same mock), to show what balancing costs.
const gatewayTwoTargets = await startGateway(
  writeGatewayConfig("two-targets", upstream.url, [], "openai-compatible", 2),
);
// An Anthropic upstream, translated for the same OpenAI requests.
const anthropicUpstream = await startScript(["bench/anthropic-upstream.js"]);
const gatewayToAnthropic = await startGateway(
  writeGatewayConfig("anthropic", anthropicUpstream.url, [], "anthropic"),
);
// A Gemini upstream, translated likewise.
const geminiUpstream = await startScript(["bench/gemini-upstream.js"]);
const gatewayToGemini = await startGateway(
  writeGatewayConfig("gemini", geminiUpstream.url, [], "gemini"),
);

const targets = {
  direct: upstream,
  passthrough,
  gateway,
  "gateway+als": gatewayWithAsyncContext,
  "gateway+cache": gatewayWithCache,
  "gateway+guardrails": gatewayWithGuardrails,
  "gateway+audit": gatewayWithAudit,
  "gateway+status": gatewayWithStatus,
  "gateway (twin)": gatewayTwin,
  "gateway*2 targets": gatewayTwoTargets,
  "gateway>anthropic": gatewayToAnthropic,
  "gateway>gemini": gatewayToGemini,
};

/** Interleaved rounds over `names`; prints each round, then the medians. */
async function measure(title, names, stream) {
  const roundRatios = [];
  const results = Object.fromEntries(names.map((name) => [name, []]));
  console.log(`\n${title}: ${rounds} rounds of ${durationSeconds}s, ${connections} connections`);
  for (const name of names) await drive(targets[name].url, stream); // warm-up
  for (let round = 1; round <= rounds; round++) {
    for (const name of names) {
      const target = targets[name];
      const cpuBefore = cpuSeconds(target.child.pid);
      const result = await drive(target.url, stream);
      const cpu = cpuSeconds(target.child.pid) - cpuBefore;
      const requests = result.requests.total;
      results[name].push({
        rps: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        cpuMsPerRequest: (cpu * 1000) / Math.max(requests, 1),
        errors: result.errors + result.non2xx,
      });
      console.log(`round ${round} ${name}: ${result.requests.average.toFixed(0)} req/s`);
    }
    const last = (name) => results[name].at(-1).rps;
    roundRatios.push(last("gateway") / last("passthrough"));
  }
  console.log("\ntarget              req/s   p50 ms   p99 ms   CPU ms/req   errors");
  const summary = {};
  for (const [name, rows] of Object.entries(results)) {
    summary[name] = {
      rps: median(rows.map((row) => row.rps)),
      p50: median(rows.map((row) => row.p50)),
      p99: median(rows.map((row) => row.p99)),
      cpu: median(rows.map((row) => row.cpuMsPerRequest)),
      errors: rows.reduce((sum, row) => sum + row.errors, 0),
      roundRps: rows.map((row) => row.rps),
    };
    const { rps, p50, p99, cpu, errors } = summary[name];
    console.log(
      `${name.padEnd(18)} ${rps.toFixed(0).padStart(6)} ${p50.toFixed(1).padStart(8)} ${p99.toFixed(1).padStart(8)} ${cpu.toFixed(3).padStart(12)} ${String(errors).padStart(8)}`,
    );
  }
  // Neighbouring runs share the machine's mood, so each round's own ratio is steadier.
  console.log(
    `per-round gateway / pass-through ratios: ${roundRatios.map((value) => value.toFixed(2)).join(" ")}; median ${median(roundRatios).toFixed(2)}`,
  );
  return summary;
}

const json = await measure(
  "JSON chat",
  [
    "direct",
    "passthrough",
    "gateway",
    "gateway+als",
    "gateway+cache",
    "gateway*2 targets",
    "gateway+guardrails",
  ],
  false,
);
const streamed = await measure(
  "Streaming chat",
  ["direct", "passthrough", "gateway", "gateway>anthropic", "gateway>gemini", "gateway+guardrails"],
  true,
);

/**
 * Each of `others` against `base`, both driven at once by half the connections each, in
 * rounds: what one costs more than the other shows as fewer requests/s, whatever the machine's
 * speed in that round. Prints each round's ratio; gives the medians by name.
 */
async function sideBySide(title, base, others, stream) {
  const half = connections / 2;
  console.log(
    `\n${title}, side by side: ${sideBySideRounds} rounds of ${durationSeconds}s, ${half} connections each`,
  );
  const medians = {};
  for (const other of others) {
    const pair = [targets[base], targets[other]];
    await Promise.all(pair.map((target) => drive(target.url, stream, half))); // warm-up
    const ratios = [];
    let errors = 0;
    for (let round = 1; round <= sideBySideRounds; round++) {
      const results = await Promise.all(pair.map((target) => drive(target.url, stream, half)));
      const [withoutIt, withIt] = results;
      ratios.push(withIt.requests.average / withoutIt.requests.average);
      for (const result of results) errors += result.errors + result.non2xx;
    }
    medians[other] = median(ratios);
    console.log(
      `${other} / ${base}: ${ratios.map((ratio) => ratio.toFixed(3)).join(" ")}; median ${medians[other].toFixed(3)}; errors ${errors}`,
    );
  }
  return medians;
}

const features = ["gateway (twin)", "gateway+audit", "gateway+status"];
const jsonSideBySide = await sideBySide("JSON chat", "gateway", features, false);
const streamedSideBySide = await sideBySide("Streaming chat", "gateway", features, true);

console.log("\nsummary");
const ratioLine = (label, summary, target) => {
  const ratio = summary.gateway.rps / summary.passthrough.rps;
  const cpu = summary.gateway.cpu / summary.passthrough.cpu;
  console.log(
    `${label} gateway / pass-through throughput: ${ratio.toFixed(2)} (target >= ${target}); CPU per request ${cpu.toFixed(2)}x`,
  );
};
ratioLine("JSON     ", json, 0.9);
ratioLine("streaming", streamed, 0.85);
const alsCost = json["gateway+als"].cpu - json.gateway.cpu;
console.log(
  `AsyncLocalStorage (asyncContext: true) costs ${(alsCost * 1000).toFixed(1)} us of CPU per request`,
);
const balancedRatio = json["gateway*2 targets"].rps / json.gateway.rps;
console.log(`a route of two targets / of one: ${balancedRatio.toFixed(2)} (target >= 0.95)`);
const hitRatio = json["gateway+cache"].rps / json.gateway.rps;
console.log(`cache hits / misses (upstream calls) throughput: ${hitRatio.toFixed(2)}`);
const anthropicRatio = streamed["gateway>anthropic"].rps / streamed.gateway.rps;
console.log(
  `streams from an Anthropic upstream, translated / from an OpenAI upstream: ${anthropicRatio.toFixed(2)} (target >= 0.8)`,
);

const geminiRatio = streamed["gateway>gemini"].rps / streamed.gateway.rps;
console.log(
  `streams from a Gemini upstream, translated / from an OpenAI upstream: ${geminiRatio.toFixed(2)}`,
);

for (const [label, summary] of [
  ["JSON", json],
  ["streams", streamed],
]) {
  const guarded = summary["gateway+guardrails"];
  console.log(
    `${label} with guardrails (PII both ways, output words) / without: ${(guarded.rps / summary.gateway.rps).toFixed(2)}; / pass-through: ${(guarded.rps / summary.passthrough.rps).toFixed(2)}`,
  );
}

for (const [label, medians] of [
  ["JSON", jsonSideBySide],
  ["streams", streamedSideBySide],
]) {
  const control = medians["gateway (twin)"];
  for (const [name, feature, target] of [
    ["gateway+audit", "the audit log (file)", "; target within 5%"],
    ["gateway+status", "the status page", ""],
  ]) {
    // (with / pass-through) against (without / pass-through) is with / without: measured
    // side by side, without the pass-through.
    console.log(
      `${label} with ${feature} / without: ${((medians[name] - 1) * 100).toFixed(1)}% (side by side${target}; the control read ${((control - 1) * 100).toFixed(1)}%)`,
    );
  }
}

for (const target of [...Object.values(targets), anthropicUpstream, geminiUpstream]) {
  target.child.kill("SIGTERM");
}
cleanUp();
