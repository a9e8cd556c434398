// The status page: reads GET /admin/api/status and its live stream /admin/api/events (the
// login's cookie authenticates both), and draws them. Every string from requests (model
// names, tenants, error types) goes into the page as text: nothing here writes HTML.
import type { RecentRequest, SeriesReport, StatusSnapshot, WindowSummary } from "@aigw/core/status";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";

interface TargetState {
  id: string;
  provider: string;
  status: string;
  cooldown_until: string | null;
  trips: number;
  in_flight: number;
}

interface TenantLimits {
  tenant: string;
  rate_limits: {
    requests_per_second: number | null;
    burst: number | null;
    tokens_per_minute: number | null;
  } | null;
  quota: { limit: number; used: number; reserved: number } | null;
  budget: { limit: number | null; spent: number; reserved: number } | null;
  unavailable?: boolean;
}

interface RouteBudget {
  route: string;
  budget: { limit: number | null; spent: number; reserved: number; period_end: number } | null;
}

type Status = StatusSnapshot & {
  target_states: TargetState[];
  tenant_limits: TenantLimits[];
  route_budgets: RouteBudget[];
};

type Child = Node | string | number | null | undefined | false;

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag: string, attributes: Record<string, string> = {}, ...children: Child[]) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "object" ? child : String(child));
  }
  return element;
}

const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
const significant = new Intl.NumberFormat("en", { maximumSignificantDigits: 3 });
const count = (value: number) => integer.format(value);
const percent = (value: number | null) =>
  value === null ? "–" : `${decimal.format(value * 100)}%`;
const ms = (value: number | null) =>
  value === null ? "–" : value >= 1000 ? `${decimal.format(value / 1000)} s` : `${count(value)} ms`;
const usd = (value: number | null) =>
  value === null ? "unknown" : `$${value < 1 ? significant.format(value) : decimal.format(value)}`;
const time = (iso: string) => new Date(iso).toLocaleTimeString();

const root = el("main", { id: "app" });
let windowName: "last_hour" | "last_day" = "last_hour";
let latest: Status | undefined;
/** "live", or why the numbers are not updating. */
let liveState = "live";
let selectedRequest: string | undefined;
let events: EventSource | undefined;
const charts = new Map<string, uPlot>();

function card(testId: string, label: string, value: string, detail?: string) {
  return el(
    "section",
    { class: "card", "data-testid": testId },
    el("h3", {}, label),
    el("p", { class: "value" }, value),
    detail ? el("p", { class: "detail" }, detail) : null,
  );
}

function table<Row>(
  testId: string,
  columns: [string, (row: Row) => Child][],
  rows: Row[],
  onClick?: (row: Row) => void,
  selected?: (row: Row) => boolean,
) {
  const body = el("tbody");
  for (const row of rows) {
    const tr = el(
      "tr",
      {},
      ...columns.map(([, cell]) => {
        const td = el("td", {}, cell(row));
        // Long names are cut short on screen; the whole text is a hover away.
        td.title = td.textContent ?? "";
        return td;
      }),
    );
    if (onClick) {
      tr.classList.add("clickable");
      tr.tabIndex = 0;
      tr.addEventListener("click", () => onClick(row));
      tr.addEventListener("keydown", (event) => {
        if (event.key === "Enter") onClick(row);
      });
    }
    if (selected?.(row)) tr.classList.add("selected");
    body.append(tr);
  }
  if (rows.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: String(columns.length) }, "Nothing yet.")));
  }
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { "data-testid": testId },
      el("thead", {}, el("tr", {}, ...columns.map(([name]) => el("th", {}, name)))),
      body,
    ),
  );
}

function panel(title: string, ...children: Child[]) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

function cards(status: Status) {
  const window: WindowSummary = status[windowName];
  const rateLimited = window.rate_limited;
  return el(
    "div",
    { class: "cards" },
    card("rps", "Requests / s (last 10 s)", decimal.format(status.now.requests_per_second)),
    card(
      "requests",
      "Requests",
      count(window.requests),
      `${count(window.client_closed)} closed by the client`,
    ),
    card("error-rate", "Error rate", percent(window.error_rate), `${count(window.errors)} errors`),
    card(
      "rate-limited",
      "Rate limited (429)",
      `${count(rateLimited.gateway)} gateway · ${count(rateLimited.upstream)} upstream`,
      "the gateway's own limits · upstream attempts",
    ),
    card(
      "latency",
      "Latency p50 / p95",
      `${ms(window.latency_ms.p50)} / ${ms(window.latency_ms.p95)}`,
    ),
    card(
      "ttft",
      "First token p50 / p95",
      `${ms(window.time_to_first_token_ms.p50)} / ${ms(window.time_to_first_token_ms.p95)}`,
    ),
    card(
      "tokens",
      "Tokens in / out",
      `${count(window.tokens.input)} / ${count(window.tokens.output)}`,
      `${count(window.tokens.cached)} cached input`,
    ),
    card(
      "cache",
      "Cache hit ratio",
      percent(window.cache.hit_ratio),
      `${count(window.cache.hits)} of ${count(window.cache.lookups)} lookups`,
    ),
    card(
      "fallbacks",
      "Fallbacks / retries",
      `${count(window.fallbacks)} / ${count(window.retries)}`,
    ),
    card(
      "spend",
      "Spend today / month",
      `${usd(status.spend.today_usd)} / ${usd(status.spend.month_usd)}`,
      `${usd(window.cost_usd)} in this window${window.unpriced_requests ? `, ${count(window.unpriced_requests)} unpriced` : ""}`,
    ),
  );
}

function chartPanel(status: Status) {
  const points = windowName === "last_hour" ? status.per_minute : status.per_hour;
  const times = points.map((point) => point.time);
  const specs: { id: string; title: string; series: [string, string, number[]][] }[] = [
    {
      id: "traffic",
      title: "Requests and errors",
      series: [
        ["requests", "#2563eb", points.map((point) => point.requests)],
        ["errors", "#dc2626", points.map((point) => point.errors)],
        ["429 upstream", "#d97706", points.map((point) => point.upstream_429)],
      ],
    },
    {
      id: "latency",
      title: "Latency (ms)",
      series: [
        ["p50", "#059669", points.map((point) => point.latency_p50_ms ?? Number.NaN)],
        ["p95", "#7c3aed", points.map((point) => point.latency_p95_ms ?? Number.NaN)],
        ["first token p50", "#0891b2", points.map((point) => point.ttft_p50_ms ?? Number.NaN)],
      ],
    },
  ];
  const container = el("div", { class: "charts" });
  for (const spec of specs) {
    const holder = el(
      "div",
      { class: "chart", "data-testid": `chart-${spec.id}` },
      el("h3", {}, spec.title),
    );
    container.append(holder);
    // Before this instance started there is nothing to draw, not zero.
    const started = Date.parse(status.started_at) / 1000;
    const slotSeconds = windowName === "last_hour" ? 60 : 3600;
    const data: uPlot.AlignedData = [
      times,
      ...spec.series.map(([, , values]) =>
        values.map((value, index) =>
          Number.isNaN(value) || (times[index] ?? 0) + slotSeconds <= started ? null : value,
        ),
      ),
    ];
    const width = () => Math.max(240, Math.min(holder.clientWidth || 600, 900) - 16);
    // Drawn once the panel is in the page, so its width is known.
    requestAnimationFrame(() => {
      charts.get(spec.id)?.destroy();
      const chart = new uPlot(
        {
          width: width(),
          height: 200,
          // Points as well as lines: a minute with traffic between quiet ones is still seen.
          series: [
            {},
            ...spec.series.map(([label, stroke]) => ({
              label,
              stroke,
              width: 2,
              spanGaps: true,
              points: { show: true, size: 5 },
            })),
          ],
          axes: [{}, { size: 50 }],
          legend: { live: false },
        },
        data,
        holder,
      );
      charts.set(spec.id, chart);
    });
  }
  return panel("Over time", container);
}

function summaryColumns<Row extends SeriesReport>(name: string): [string, (row: Row) => Child][] {
  return [
    [name, (row) => row.name],
    ["Requests", (row) => count(row[windowName].requests)],
    [
      "Errors",
      (row) => `${count(row[windowName].errors)} (${percent(row[windowName].error_rate)})`,
    ],
    [
      "p50 / p95",
      (row) => `${ms(row[windowName].latency_ms.p50)} / ${ms(row[windowName].latency_ms.p95)}`,
    ],
    [
      "First token p50 / p95",
      (row) =>
        `${ms(row[windowName].time_to_first_token_ms.p50)} / ${ms(row[windowName].time_to_first_token_ms.p95)}`,
    ],
    [
      "Tokens in / out",
      (row) => `${count(row[windowName].tokens.input)} / ${count(row[windowName].tokens.output)}`,
    ],
    ["Spend today / month", (row) => `${usd(row.spend.today_usd)} / ${usd(row.spend.month_usd)}`],
  ];
}

function errorsPanel(status: Status) {
  const rows = Object.entries(status[windowName].errors_by_type).sort((a, b) => b[1] - a[1]);
  return panel(
    "Errors by type",
    table<[string, number]>(
      "errors",
      [
        ["Where and type", ([kind]) => kind],
        ["Count", ([, n]) => count(n)],
      ],
      rows,
    ),
  );
}

function targetsPanel(status: Status) {
  const traffic = new Map(status.targets.map((target) => [target.name, target]));
  const rows = status.target_states.map((state) => ({ state, traffic: traffic.get(state.id) }));
  const span = windowName === "last_hour" ? "hour" : "day";
  const why = (report: SeriesReport | undefined) =>
    Object.entries(report?.[windowName].errors_by_type ?? {})
      .map(([kind, n]) => `${kind} ×${n}`)
      .join(", ") || "–";
  return panel(
    "Providers and targets",
    table<(typeof rows)[number]>(
      "targets",
      [
        ["Target", ({ state }) => state.id],
        [
          "State",
          ({ state }) =>
            el(
              "span",
              { class: `state state-${state.status}` },
              state.status === "closed"
                ? "healthy"
                : state.status === "open"
                  ? `cooling until ${state.cooldown_until ? time(state.cooldown_until) : "?"}`
                  : "probing",
            ),
        ],
        ["Trips", ({ state }) => count(state.trips)],
        ["In flight", ({ state }) => count(state.in_flight)],
        [`Attempts (${span})`, ({ traffic }) => count(traffic?.[windowName].requests ?? 0)],
        [`Error rate (${span})`, ({ traffic }) => percent(traffic?.[windowName].error_rate ?? 0)],
        [
          `p50 / p95 (${span})`,
          ({ traffic }) =>
            `${ms(traffic?.[windowName].latency_ms.p50 ?? null)} / ${ms(traffic?.[windowName].latency_ms.p95 ?? null)}`,
        ],
        ["Recent errors", ({ traffic }) => why(traffic)],
      ],
      rows,
    ),
    table("providers", summaryColumns("Provider"), status.providers),
  );
}

function bar(used: number, limit: number | null, text: string) {
  const share = limit ? Math.min(1, used / limit) : 0;
  const meter = el("meter", {
    min: "0",
    max: "1",
    value: String(share),
    high: "0.8",
    optimum: "0",
  });
  return el("span", { class: "limit" }, meter, ` ${text}`);
}

/**
 * A tenant's use of one limit as a bar and "used of limit": what `read` gives as used, held
 * by requests in flight, the limit and the two as text; "none" when it has no such limit.
 */
function usageBar(
  entry: TenantLimits | undefined,
  read: (entry: TenantLimits) => [number, number, number | null, string, string] | null,
) {
  if (entry?.unavailable) return "unavailable";
  const usage = entry && read(entry);
  if (!usage) return "none";
  const [used, held, limit, usedText, limitText] = usage;
  return bar(used + held, limit, `${usedText} of ${limitText}`);
}

function tenantsPanel(status: Status) {
  const limits = new Map(status.tenant_limits.map((entry) => [entry.tenant, entry]));
  const names = new Set([...status.tenants.map((tenant) => tenant.name), ...limits.keys()]);
  const traffic = new Map(status.tenants.map((tenant) => [tenant.name, tenant]));
  const rows = [...names].map((name) => ({
    name,
    report: traffic.get(name),
    limits: limits.get(name),
  }));
  rows.sort(
    (a, b) =>
      (b.report?.spend.month_usd ?? 0) - (a.report?.spend.month_usd ?? 0) ||
      (b.report?.[windowName].requests ?? 0) - (a.report?.[windowName].requests ?? 0),
  );
  return panel(
    "Tenants",
    table<(typeof rows)[number]>(
      "tenants",
      [
        ["Tenant", (row) => row.name],
        ["Requests", (row) => count(row.report?.[windowName].requests ?? 0)],
        [
          "Tokens",
          (row) =>
            count(
              (row.report?.[windowName].tokens.input ?? 0) +
                (row.report?.[windowName].tokens.output ?? 0),
            ),
        ],
        [
          "Spend today / month",
          (row) =>
            `${usd(row.report?.spend.today_usd ?? 0)} / ${usd(row.report?.spend.month_usd ?? 0)}`,
        ],
        [
          "Rate limits",
          ({ limits: entry }) => {
            const rates = entry?.rate_limits;
            const parts = [
              rates?.requests_per_second
                ? `${significant.format(rates.requests_per_second)} req/s`
                : "",
              rates?.tokens_per_minute ? `${count(rates.tokens_per_minute)} tokens/min` : "",
            ].filter(Boolean);
            return parts.join(" · ") || "none";
          },
        ],
        [
          "Token quota",
          ({ limits: entry }) =>
            usageBar(
              entry,
              ({ quota }) =>
                quota && [
                  quota.used,
                  quota.reserved,
                  quota.limit,
                  count(quota.used),
                  count(quota.limit),
                ],
            ),
        ],
        [
          "Budget",
          ({ limits: entry }) =>
            usageBar(
              entry,
              ({ budget }) =>
                budget && [
                  budget.spent,
                  budget.reserved,
                  budget.limit,
                  usd(budget.spent),
                  usd(budget.limit),
                ],
            ),
        ],
      ],
      rows,
    ),
  );
}

function requestDetail(request: RecentRequest) {
  const detail = el(
    "div",
    { class: "detail-panel", "data-testid": "request-detail" },
    el("h3", {}, "Request ", el("code", {}, request.id)),
    el(
      "p",
      {},
      `${request.tenant} · ${request.model ?? "–"} · status ${request.status}${request.error_type ? ` (${request.error_type})` : ""}`,
    ),
    request.guardrails.length > 0
      ? el("p", {}, `Guardrails: ${request.guardrails.join(", ")}`)
      : null,
    table<RecentRequest["attempts"][number]>(
      "attempts",
      [
        ["#", (attempt) => String(request.attempts.indexOf(attempt) + 1)],
        ["Target", (attempt) => attempt.target],
        ["Fallback route", (attempt) => attempt.route ?? "–"],
        ["Status", (attempt) => String(attempt.status)],
        ["Duration", (attempt) => ms(attempt.duration_ms)],
      ],
      request.attempts,
    ),
  );
  return detail;
}

function recentPanel(status: Status) {
  const selected = status.recent.find((request) => request.id === selectedRequest);
  return panel(
    "Recent requests",
    table<RecentRequest>(
      "recent",
      [
        ["Time", (request) => time(request.time)],
        ["Id", (request) => request.id.slice(0, 8)],
        ["Tenant", (request) => request.tenant],
        ["Model", (request) => request.model ?? "–"],
        ["Target", (request) => request.target ?? "–"],
        [
          "Status",
          (request) =>
            el("span", { class: request.status >= 400 ? "bad" : "good" }, String(request.status)),
        ],
        [
          "Tokens",
          (request) =>
            request.input_tokens === null
              ? "–"
              : `${count(request.input_tokens)} / ${count(request.output_tokens ?? 0)}`,
        ],
        ["Cost", (request) => (request.cost_usd === null ? "–" : usd(request.cost_usd))],
        ["Duration", (request) => ms(request.duration_ms)],
        ["Cache", (request) => request.cache ?? "–"],
        ["Guardrails", (request) => request.guardrails.join(", ") || "–"],
      ],
      status.recent,
      (request) => {
        selectedRequest = selectedRequest === request.id ? undefined : request.id;
        render();
        if (selectedRequest) {
          document.querySelector('[data-testid="request-detail"]')?.scrollIntoView({
            block: "nearest",
          });
        }
      },
      (request) => request.id === selectedRequest,
    ),
    selected ? requestDetail(selected) : null,
  );
}

function header() {
  const toggle = (name: typeof windowName, label: string) => {
    const button = el(
      "button",
      { type: "button", "aria-pressed": String(windowName === name) },
      label,
    );
    button.addEventListener("click", () => {
      windowName = name;
      render();
    });
    return button;
  };
  const logout = el("button", { type: "button", class: "quiet" }, "Log out");
  logout.addEventListener("click", async () => {
    await fetch("/admin/logout", { method: "POST" });
    events?.close();
    showLogin();
  });
  return el(
    "header",
    {},
    el("h1", {}, "aigw status"),
    el(
      "p",
      { class: "since", "data-testid": "since" },
      latest
        ? `This instance since ${new Date(latest.started_at).toLocaleString()} · updated ${time(latest.generated_at)}`
        : "",
    ),
    el("p", { class: liveState === "live" ? "live" : "bad", "data-testid": "live" }, liveState),
    el(
      "div",
      { class: "toolbar" },
      toggle("last_hour", "Last hour"),
      toggle("last_day", "Last day"),
      logout,
    ),
  );
}

/** Where each table was scrolled sideways, so an update does not throw the reader back. */
function tableScrolls() {
  const scrolls = new Map<string, number>();
  for (const wrap of root.querySelectorAll<HTMLElement>(".table-wrap")) {
    const id = wrap.firstElementChild?.getAttribute("data-testid");
    if (id && wrap.scrollLeft > 0) scrolls.set(id, wrap.scrollLeft);
  }
  return scrolls;
}

function render() {
  if (!latest) return;
  const scrolls = tableScrolls();
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
  root.replaceChildren(
    header(),
    cards(latest),
    chartPanel(latest),
    targetsPanel(latest),
    errorsPanel(latest),
    panel(
      "Models",
      table("models", summaryColumns("Model"), latest.models),
      latest.route_budgets.length > 0
        ? table<RouteBudget>(
            "route-budgets",
            [
              ["Route with a budget", (row) => row.route],
              [
                "Budget",
                ({ budget }) =>
                  budget
                    ? bar(
                        budget.spent + budget.reserved,
                        budget.limit,
                        `${usd(budget.spent)} of ${usd(budget.limit)}`,
                      )
                    : "unavailable",
              ],
              [
                "Resets",
                ({ budget }) =>
                  budget ? new Date(budget.period_end * 1000).toLocaleString() : "–",
              ],
            ],
            latest.route_budgets,
          )
        : null,
    ),
    tenantsPanel(latest),
    recentPanel(latest),
  );
  for (const [id, left] of scrolls) {
    const wrap = root.querySelector(`[data-testid="${id}"]`)?.parentElement;
    if (wrap) wrap.scrollLeft = left;
  }
}

function showLogin(message?: string) {
  const input = el("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: "",
    "aria-label": "Admin key",
  }) as HTMLInputElement;
  const form = el(
    "form",
    { class: "login", "data-testid": "login" },
    el("h1", {}, "aigw status"),
    el("label", {}, "Admin key", input),
    el("button", { type: "submit" }, "Log in"),
    message ? el("p", { class: "bad", role: "alert" }, message) : null,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/admin/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: input.value }),
    });
    if (response.ok) start();
    else showLogin("That key was refused.");
  });
  root.replaceChildren(form);
  input.focus();
}

async function start() {
  const response = await fetch("/admin/api/status");
  if (response.status === 401) {
    showLogin();
    return;
  }
  latest = (await response.json()) as Status;
  render();
  events?.close();
  events = new EventSource("/admin/api/events");
  events.addEventListener("status", (event) => {
    latest = JSON.parse((event as MessageEvent<string>).data) as Status;
    liveState = "live";
    render();
  });
  events.addEventListener("error", async () => {
    // The login expired or the key changed: back to the form rather than retrying forever.
    const check = await fetch("/admin/api/status").catch(() => undefined);
    if (events?.readyState === EventSource.OPEN) return; // back already
    if (check?.status === 401) {
      events?.close();
      showLogin("Your login expired.");
      return;
    }
    // The browser retries by itself unless the server refused the stream (too many pages).
    liveState =
      events?.readyState === EventSource.CLOSED
        ? "live updates stopped: reload the page"
        : "reconnecting…";
    render();
  });
}

let resizeTimer: ReturnType<typeof setTimeout> | undefined;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(render, 150);
});

document.body.append(root);
start();
