import type { Logger } from "@aigw/core";
import type { Metrics } from "@aigw/metrics";
import { nanoToUsd } from "@aigw/pricing";
import type { BudgetThresholdEvent } from "@aigw/ratelimit";
import type { ServerConfig } from "./config.js";

/** Whose budget: a tenant's (or an open-mode client's), a user's, a route's or a target's. */
export type BudgetScope = "tenant" | "user" | "route" | "target";

export type BudgetAlert = (scope: BudgetScope, event: BudgetThresholdEvent) => void;

/** Attempts at the webhook per threshold, one second apart then two. */
const webhookAttempts = 3;

const isoTime = (milliseconds: number) => new Date(milliseconds).toISOString();

/**
 * What a soft budget threshold does, once per period across instances (the limiter reports it
 * to the instance whose settlement reached it): a warning in the log, a count in
 * `budget_threshold_reached_total`, and a POST to the webhook when one is configured. The
 * webhook's URL and headers may hold secrets: neither is ever logged.
 */
export function createBudgetAlert(
  webhook: ServerConfig["limits"]["budgetWebhook"],
  logger: Logger,
  metrics: Metrics | undefined,
): BudgetAlert {
  async function post(report: Record<string, unknown>) {
    if (!webhook) return;
    const body = JSON.stringify(report);
    for (let attempt = 1; attempt <= webhookAttempts; attempt++) {
      let failure: string;
      try {
        const response = await fetch(webhook.url, {
          method: "POST",
          headers: { ...webhook.headers, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(webhook.timeoutMs),
          redirect: "manual",
        });
        await response.body?.cancel();
        if (response.ok) return;
        failure = `status ${response.status}`;
        if (response.status < 500 && response.status !== 429) attempt = webhookAttempts;
      } catch (error) {
        failure = (error as Error).name === "TimeoutError" ? "timed out" : "unreachable";
      }
      if (attempt === webhookAttempts) {
        const { scope, key, threshold_usd } = report;
        logger.error(
          { webhook: "budget", failure, scope, key, threshold_usd },
          "budget webhook failed",
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, attempt * 1000).unref());
    }
  }

  return (scope, event) => {
    const report = {
      type: "budget.threshold_reached",
      scope,
      key: event.key,
      threshold_usd: nanoToUsd(event.threshold),
      spent_usd: nanoToUsd(event.spent),
      limit_usd: event.limit === undefined ? null : nanoToUsd(event.limit),
      period_start: isoTime(event.periodStart),
      period_end: isoTime(event.periodEnd),
    };
    logger.warn({ budget: report }, `${scope} budget passed ${report.threshold_usd} USD`);
    metrics?.budgetThresholdReached({ scope });
    post(report).catch(() => {});
  };
}
