import { Histogram, Registry, type RegistryContentType } from "prom-client";
import { describe, expect, it } from "vitest";
import { LabelledHistogram } from "./histogram.js";

const buckets = [0.01, 0.1, 1, 10];
const observations: [Record<"provider" | "model", string>, number][] = [
  [{ provider: "openai", model: "gpt-4o" }, 0.005],
  [{ provider: "openai", model: "gpt-4o" }, 0.1],
  [{ provider: "openai", model: "gpt-4o" }, 2.5],
  [{ provider: "anthropic", model: 'say "hi"\n\\' }, 0.5],
  [{ provider: "openai", model: "gpt-4o" }, 99],
  [{ provider: "anthropic", model: 'say "hi"\n\\' }, 0.01],
];

function pair() {
  const ours = new Registry<RegistryContentType>();
  const theirs = new Registry<RegistryContentType>();
  const labelNames = ["provider", "model"] as const;
  const histogram = new LabelledHistogram({
    name: "latency_seconds",
    help: "Latency.",
    labelNames,
    buckets,
    registry: ours,
  });
  const reference = new Histogram({
    name: "latency_seconds",
    help: "Latency.",
    labelNames,
    buckets,
    registers: [theirs],
  });
  return { ours, theirs, histogram, reference };
}

describe("LabelledHistogram", () => {
  it("is exposed exactly as prom-client's Histogram with the same observations", async () => {
    const { ours, theirs, histogram, reference } = pair();
    for (const [labels, value] of observations) {
      histogram.observe(labels, value);
      reference.observe(labels, value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // prom-client writes `exemplar: null` where no exemplar was recorded; there are none here.
    const withoutExemplars = (json: unknown) =>
      JSON.parse(JSON.stringify(json, (key, value) => (key === "exemplar" ? undefined : value)));
    expect(await ours.getMetricsAsJSON()).toEqual(
      withoutExemplars(await theirs.getMetricsAsJSON()),
    );
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("keeps series apart whose label values join alike", async () => {
    const { ours, histogram } = pair();
    histogram.observe({ provider: "a", model: "bc" }, 1);
    histogram.observe({ provider: "ab", model: "c" }, 1);
    const text = await ours.metrics();
    expect(text).toContain('latency_seconds_count{provider="a",model="bc"} 1');
    expect(text).toContain('latency_seconds_count{provider="ab",model="c"} 1');
  });

  it("starts over on reset, refuses values that are not finite, and names itself once", async () => {
    const { ours, histogram } = pair();
    histogram.observe({ provider: "openai", model: "m" }, 1);
    ours.resetMetrics();
    expect(await ours.metrics()).toBe(
      "# HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n",
    );
    expect(() => histogram.observe({ provider: "openai", model: "m" }, Number.NaN)).toThrow(
      TypeError,
    );
    expect(
      () =>
        new LabelledHistogram({
          name: "latency_seconds",
          help: "Again.",
          labelNames: [],
          buckets,
          registry: ours,
        }),
    ).toThrow(/already been registered/);
  });
});
