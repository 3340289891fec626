// sagewatch's dashboard: every number on a page comes from a call to the public REST API, made with
// the token the user signs in with (kept in sessionStorage for the browser session, never in a URL).
// The page state (page, model, time range, choices) lives in the address, so a URL can be shared.

const TOKEN_KEY = "sagewatch-token";
const RANGES = { "24h": 24, "7d": 24 * 7, "30d": 24 * 30 };
const SVG = "http://www.w3.org/2000/svg";
const main = document.getElementById("main");
const session = { role: null };
let flash = "";  // what the last change did, said once on the page drawn after it

// -- small helpers ------------------------------------------------------------------------------------

/** An element with attributes and children (strings become text: nothing is parsed as HTML). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const enc = encodeURIComponent;
const fmt = (value, digits = 3) =>
  value === null || value === undefined || Number.isNaN(value)
    ? "–"
    : Number.isInteger(value)
      ? value.toLocaleString("en")
      : Number(value).toLocaleString("en", { maximumSignificantDigits: Math.max(digits, Math.ceil(Math.log10(Math.abs(value) || 1)) + 1) });
const when = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "never");
const canChange = () => session.role === "writer" || session.role === "admin";
const readOnlyNote = "a reader token can look, not change";
const NOT_ACCEPTED = "That token was not accepted (unknown or revoked): enter another.";

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** One call of the REST API with the session's token; a 401 shows the sign-in page. A query the API
 * runs in Athena (202 with a Location) is polled until it answers its rows. */
async function api(method, path, body) {
  const { response, parsed } = await send(method, path, body);
  const poll = response.headers.get("Location");
  if (response.status === 202 && poll && parsed && parsed.query_id) {
    return waitForQuery(new URL(poll, response.url).href, parsed.query_id);
  }
  return parsed;
}

async function send(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (response.status === 401) {  // from any call, a button's too: back to signing in, saying why
    sessionStorage.removeItem(TOKEN_KEY);
    drawing += 1;  // whatever was being drawn is abandoned
    signIn(NOT_ACCEPTED);
    throw new ApiError(401, parsed);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return { response, parsed };
}

const QUERY_WAIT_MS = 15 * 60 * 1000;  // as the Python client: a query may run in Athena this long

/** GET a running query's poll URL (its Location, relative to the call that answered 202) until it
 * answers 200 with its rows: every 0.5 s, growing to 5 s, for at most QUERY_WAIT_MS. */
async function waitForQuery(url, queryId) {
  const deadline = Date.now() + QUERY_WAIT_MS;
  let pause = 500;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 1.5, 5000);
    const { response, parsed } = await send("GET", url);
    if (response.status !== 202) return parsed;
    const next = response.headers.get("Location");
    if (next) url = new URL(next, response.url).href;
  }
  throw new ApiError(408, { message: `query ${queryId} still running after 15 minutes: reload the page later` });
}

// -- the address: page, id and parameters ---------------------------------------------------------------

function route() {
  const [path, query] = (location.hash.replace(/^#/, "") || "/models").split("?");
  const decode = (part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;  // a malformed escape is kept as typed: the page then says the id is unknown
    }
  };
  const parts = path.split("/").filter(Boolean).map(decode);
  return { page: parts[0] || "models", id: parts[1] || null, params: new URLSearchParams(query || "") };
}

function go(page, id, params) {
  const query = params.toString();
  location.hash = `#/${page}${id ? "/" + enc(id) : ""}${query ? "?" + query : ""}`;
}

function withParam(name, value) {
  const { page, id, params } = route();
  if (value === null || value === "") params.delete(name);
  else params.set(name, value);
  go(page, id, params);
}

/** The chosen time range: [start, end) and the interval its series are rolled up by. */
function timeRange(params) {
  const day = (name) => {
    const value = new Date(params.get(name));
    if (Number.isNaN(value.getTime())) throw new Error(`${name}: ${JSON.stringify(params.get(name))} is not a day (YYYY-MM-DD)`);
    return value;
  };
  // a "to" day is included whole
  const end = params.get("to") ? new Date(day("to").getTime() + 24 * 3600e3) : new Date();
  const hours = RANGES[params.get("range")] || 24;
  const start = params.get("from") ? day("from") : new Date(end - hours * 3600e3);
  if (start >= end) throw new Error("the range's from day is after its to day: choose the days again");
  const span = (end - start) / 3600e3;
  return { start, end, interval: span <= 24 * 7 ? "hour" : "day" };
}

function timeFilter(range) {
  return [
    { property: "inference_timestamp", comparator: "gte", value: range.start.toISOString() },
    { property: "inference_timestamp", comparator: "lt", value: range.end.toISOString() },
  ];
}

function rangePicker() {
  const { params } = route();
  const current = params.get("from") || params.get("to") ? "custom" : RANGES[params.get("range")] ? params.get("range") : "24h";
  const box = document.getElementById("range");
  box.replaceChildren(
    h("span", { class: "visually-hidden" }, "Time range"),
    ...Object.keys(RANGES).map((name) =>
      h(
        "button",
        {
          "aria-pressed": String(current === name),
          onclick: () => {
            const next = route().params;
            next.delete("from");
            next.delete("to");
            next.set("range", name);
            go(route().page, route().id, next);
          },
        },
        `last ${name}`,
      ),
    ),
    h("label", {}, "from ", h("input", { type: "date", "aria-label": "from", value: params.get("from") || "", onchange: (e) => withParam("from", e.target.value) })),
    h("label", {}, "to ", h("input", { type: "date", "aria-label": "to", value: params.get("to") || "", onchange: (e) => withParam("to", e.target.value) })),
  );
}

// -- charts (SVG, labelled, with units) -----------------------------------------------------------------

/**
 * A line chart of {time, value} points; thresholds are dashed lines, alerts red marks on the x axis.
 * Each point is a circle of class "point" with its value in a <title>.
 */
function lineChart({ title, unit, series, thresholds = [], alerts = [], range }) {
  const width = 600, height = 230, left = 56, right = 12, top = 28, bottom = 34;
  const all = series.flatMap((line) => line.points);
  const values = all.map((p) => p.value).concat(thresholds.map((t) => t.value)).filter((v) => v !== null);
  let low = Math.min(...values, 0), high = values.length ? Math.max(...values) : 1;
  if (high <= low) high = low + 1;
  const t0 = range.start.getTime(), t1 = range.end.getTime();
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, width: "100%" });
  svg.append(s("text", { x: left, y: 16, class: "title" }, title));
  if (!all.some((p) => p.value !== null)) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "no data in this range"));
  }
  svg.append(s("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
  svg.append(s("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }));
  for (const v of [low, (low + high) / 2, high]) {
    svg.append(s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
  svg.append(s("text", { x: 12, y: top + (height - top - bottom) / 2, transform: `rotate(-90 12 ${top + (height - top - bottom) / 2})`, "text-anchor": "middle" }, unit));
  svg.append(s("text", { x: left, y: height - 8 }, when(range.start.toISOString())));
  svg.append(s("text", { x: width - right, y: height - 8, "text-anchor": "end" }, `${when(range.end.toISOString())} (time, UTC)`));
  const colours = ["#2457c5", "#c05621", "#2f855a", "#6b46c1"];
  series.forEach((line, index) => {
    const colour = colours[index % colours.length];
    const points = line.points.filter((p) => p.value !== null);
    if (points.length > 1) {
      svg.append(s("polyline", { class: "series", stroke: colour, points: points.map((p) => `${x(p.time)},${y(p.value)}`).join(" ") }));
    }
    for (const p of line.points) {
      if (p.value === null) continue;
      svg.append(s("circle", { class: "point", cx: x(p.time), cy: y(p.value), r: 3, fill: colour, "data-series": line.name || "" },
        s("title", {}, `${line.name ? line.name + ": " : ""}${fmt(p.value, 4)} ${unit} at ${when(new Date(p.time).toISOString())}`)));
    }
  });
  for (const t of thresholds) {
    svg.append(s("line", { class: "threshold", x1: left, x2: width - right, y1: y(t.value), y2: y(t.value) },
      s("title", {}, `threshold ${t.value} (${t.label})`)));
    svg.append(s("text", { x: width - right - 4, y: y(t.value) - 4, "text-anchor": "end" }, `${t.label}: ${t.value}`));
  }
  for (const a of alerts) {
    if (a.time < t0 || a.time > t1) continue;
    svg.append(s("path", { class: "alert-mark", d: `M${x(a.time)},${height - bottom} l5,9 l-10,0 z` },
      s("title", {}, a.label)));
  }
  const figure = h("figure", { class: "panel chart", "data-metric": title });
  figure.append(svg);
  if (series.length > 1) {
    figure.append(h("div", { class: "legend" }, series.map((line, i) =>
      h("span", {}, s("svg", { width: 12, height: 12, "aria-hidden": "true" }, s("rect", { width: 12, height: 12, fill: colours[i % colours.length] })), ` ${line.name || "(none)"}`))));
  }
  return figure;
}

/** A sparkline of values (no axes): the drift of one attribute over the last windows. */
function sparkline(values, label) {
  const width = 120, height = 26;
  const known = values.filter((v) => v !== null);
  const high = Math.max(...known, 1e-9), low = Math.min(...known, 0);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label, class: "spark" });
  const points = values.map((v, i) => (v === null ? null : `${i * step},${height - 2 - ((v - low) / (high - low || 1)) * (height - 4)}`)).filter(Boolean);
  if (points.length) svg.append(s("polyline", { class: "series", stroke: "#2457c5", points: points.join(" ") }));
  return svg;
}

/** Overlaid bars of two distributions (shares of their rows), reference grey and window blue. */
function histogram(title, buckets, unit) {
  const width = 600, height = 240, left = 56, bottom = 60, top = 28;
  const high = Math.max(...buckets.flatMap((b) => [b.reference, b.window]), 1e-9);
  const band = (width - left - 12) / Math.max(buckets.length, 1);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": title });
  svg.append(s("text", { x: left, y: 16, class: "title" }, title));
  svg.append(s("text", { x: 12, y: 120, transform: "rotate(-90 12 120)", "text-anchor": "middle" }, unit));
  const y = (v) => top + (1 - v / high) * (height - top - bottom);
  buckets.forEach((b, i) => {
    const x0 = left + i * band;
    svg.append(s("rect", { class: "bar-reference", x: x0 + 2, width: band / 2 - 2, y: y(b.reference), height: y(0) - y(b.reference) },
      s("title", {}, `reference ${b.label}: ${(b.reference * 100).toFixed(1)}% (${b.referenceCount} rows)`)));
    svg.append(s("rect", { class: "bar-window", x: x0 + band / 2, width: band / 2 - 2, y: y(b.window), height: y(0) - y(b.window) },
      s("title", {}, `window ${b.label}: ${(b.window * 100).toFixed(1)}% (${b.windowCount} rows)`)));
    svg.append(s("text", { x: x0 + band / 2, y: height - bottom + 14, "text-anchor": "end", transform: `rotate(-35 ${x0 + band / 2} ${height - bottom + 14})` }, b.label));
  });
  svg.append(s("line", { x1: left, x2: width - 12, y1: y(0), y2: y(0), class: "axis" }));
  return h("figure", { class: "panel histogram", "data-attribute": title.split(":")[0] }, svg,
    h("div", { class: "legend" }, h("span", {}, "grey: reference"), h("span", {}, "blue: the chosen window")));
}

// -- pages ------------------------------------------------------------------------------------------------

async function modelsPage(params, view) {
  const archived = params.get("archived") === "shown";
  const models = (await api("GET", `/api/v3/models?page_size=500&include_archived=${archived}`)).data;
  const since = new Date(Date.now() - 24 * 3600e3).toISOString();
  const cards = await Promise.all(models.map(async (model) => {
    const base = `/api/v3/models/${enc(model.id)}`;
    const [status, recent, open] = await Promise.all([
      api("GET", `${base}/inferences/status`),
      api("POST", `${base}/inferences/query`, {
        select: [{ function: "count" }],
        filter: [{ property: "inference_timestamp", comparator: "gte", value: since }],
      }),
      api("GET", `/api/v3/alerts?model_id=${enc(model.id)}&status=new&page_size=500`),
    ]);
    const critical = open.data.filter((a) => a.severity === "critical").length;
    const warning = open.data.length - critical;
    const latest = status.inferences.latest_timestamp;
    const stale = !latest || Date.now() - new Date(latest) > 24 * 3600e3;
    const health = critical ? "red" : warning || stale ? "amber" : "green";
    const why = critical ? `${critical} critical alert(s) open` : warning ? `${warning} warning(s) open` : stale ? "no inference in 24 h" : "no open alert, data fresh";
    return { model, status, count24h: recent.query_result[0].count, critical, warning, latest, health, why };
  }));
  const search = (params.get("q") || "").toLowerCase();
  const sort = params.get("sort") || "name";
  const shown = cards
    .filter((c) => !search || `${c.model.display_name} ${c.model.partner_model_id}`.toLowerCase().includes(search))
    .sort((a, b) =>
      sort === "alerts" ? b.critical * 1000 + b.warning - (a.critical * 1000 + a.warning)
        : sort === "latest" ? String(b.latest || "").localeCompare(String(a.latest || ""))
          : String(a.model.display_name).localeCompare(String(b.model.display_name)));
  view.replaceChildren(
    h("h1", {}, "Models"),
    h("div", { class: "toolbar" },
      h("label", {}, "Search ", h("input", { type: "search", value: params.get("q") || "", onchange: (e) => withParam("q", e.target.value) })),
      h("label", {}, "Sort by ", h("select", { onchange: (e) => withParam("sort", e.target.value) },
        ["name", "latest", "alerts"].map((k) => h("option", { value: k, selected: k === sort }, { name: "name", latest: "latest inference", alerts: "open alerts" }[k])))),
      h("label", {}, h("input", { type: "checkbox", checked: archived, onchange: (e) => withParam("archived", e.target.checked ? "shown" : null) }), " archived models too")),
    shown.length ? h("div", { class: "cards" }, shown.map(modelCard)) : h("p", { class: "muted" }, models.length ? "No model matches." : "No model registered yet."),
  );
}

function modelCard(card) {
  const { model, status } = card;
  return h("article", { class: "card", "data-model-id": model.id, "data-health": card.health },
    h("h2", {}, h("a", { href: `#/model/${enc(model.id)}` }, model.display_name || model.partner_model_id)),
    h("div", { class: "muted" }, `${model.partner_model_id} · ${model.output_type.toLowerCase()} · ${model.archived ? "archived" : "active"}`),
    h("dl", {},
      h("dt", {}, "health"), h("dd", { class: `health ${card.health}`, title: card.why }, `${card.health} (${card.why})`),
      h("dt", {}, "latest inference"), h("dd", { class: "latest" }, when(card.latest)),
      h("dt", {}, "inferences, 24 h"), h("dd", { class: "inferences-24h" }, fmt(card.count24h)),
      h("dt", {}, "labelled"), h("dd", { class: "labelled" }, status.labelled_ratio === null ? "–" : `${(status.labelled_ratio * 100).toFixed(1)}%`),
      h("dt", {}, "rejected rows"), h("dd", { class: "rejected" }, fmt(status.inferences.rejected + status.ground_truth.rejected)),
      h("dt", {}, "open alerts"), h("dd", { class: "open-alerts" }, `${card.critical} critical, ${card.warning} warning`),
    ));
}

function seriesQuery(metric, range, extraGroup = []) {
  const query = metric.query;
  return {
    ...query,
    select: [...query.select, { function: "roundTimestamp", alias: "time", parameters: { property: "inference_timestamp", time_interval: range.interval } }, ...extraGroup.map((p) => ({ property: p }))],
    group_by: [{ alias: "time" }, ...extraGroup.map((p) => ({ property: p }))],
    order_by: [{ alias: "time" }],
    filter: [...(query.filter || []), ...timeFilter(range)],
  };
}

function valueKey(row) {
  return Object.keys(row).find((k) => !["time", "labelled_count", "variant"].includes(k));
}

async function modelPage(id, params, view) {
  const base = `/api/v3/models/${enc(id)}`;
  const range = timeRange(params);
  const [model, status, metricPage, rulePage, alertPage] = await Promise.all([
    api("GET", base),
    api("GET", `${base}/inferences/status`),
    api("GET", `${base}/metrics?page_size=500`),
    api("GET", `${base}/alert_rules?page_size=500`),
    api("GET", `/api/v3/alerts?model_id=${enc(id)}&page_size=500`),
  ]);
  const metrics = metricPage.metrics;
  const chosenIds = (params.get("metrics") || "").split(",").filter(Boolean);
  const chosen = params.has("metrics")
    ? metrics.filter((m) => chosenIds.includes(m.id))
    : metrics.filter((m) => m.name === "Inference Count" || m.type === "model_performance_metric" || !m.is_default).slice(0, 4);
  const counts = metrics.filter((m) => m.type !== "model_data_drift_metric");
  view.replaceChildren(
    h("h1", {}, model.display_name || model.partner_model_id, model.archived ? " (archived: it takes no more data)" : ""),
    h("p", { class: "muted" },
      `${model.partner_model_id} · ${fmt(status.inferences.ingested)} inferences ingested · ${status.labelled_ratio === null ? "no labels" : (status.labelled_ratio * 100).toFixed(1) + "% labelled"} · latest ${when(status.inferences.latest_timestamp)} · `,
      h("a", { href: `#/rules?model=${enc(id)}` }, "rules"), " · ", h("a", { href: `#/variants?model=${enc(id)}` }, "variants"), " · ",
      h("a", { href: `#/alerts?model=${enc(id)}` }, "alerts"), " · ",
      h("a", { href: `#/ingestion?model=${enc(id)}` }, "ingestion")),
    h("details", { class: "panel", open: params.has("metrics") }, h("summary", {}, `Metrics shown (${chosen.length} of ${metrics.length})`),
      h("div", { class: "toolbar" }, [...metrics].sort((a, b) => a.name.localeCompare(b.name)).map((m) => h("label", {},
        h("input", { type: "checkbox", value: m.id, checked: chosen.includes(m), onchange: () => {
          const ids = [...document.querySelectorAll("details input:checked")].map((e) => e.value);
          withParam("metrics", ids.join(",") || "none");
        } }), ` ${m.name}`)))),
  );
  const charts = h("section", { class: "charts", "aria-label": "Metrics over time" });
  view.append(h("h2", {}, `Metrics by ${range.interval}`), charts);
  const drift = h("section", { "aria-label": "Drift" }, h("p", { class: "muted" }, "Loading drift…"));
  view.append(h("h2", {}, "Drift from the reference (PSI)"), drift);
  await Promise.all([
    ...chosen.map((metric) => {
      const slot = h("div", { class: "slot" });
      charts.append(slot);
      return metricChart(metric, range, rulePage.data, alertPage.data).then(
        (chart) => slot.replaceWith(chart),
        (error) => slot.replaceWith(h("p", { class: "error" }, `${metric.name}: ${error.message}`)),
      );
    }),
    variantChart(id, counts, status, range).then((chart) => chart && charts.append(chart)),
    driftTable(model, metricPage.metrics, rulePage.data, range, params, alertPage.data).then((table) => drift.replaceChildren(...table)),
  ]);
}

/** A drift metric's query over the range, one value per window (data_drift's rollup). */
function driftSeriesQuery(metric, range) {
  const target = metric.query.target || { source: "inference" };
  return { ...metric.query, target: { ...target, filter: [...(target.filter || []), ...timeFilter(range)] }, rollup: range.interval };
}

async function metricChart(metric, range, rules, alerts) {
  const drift = metric.type === "model_data_drift_metric";
  const rows = (await api("POST", metric.endpoint, drift ? driftSeriesQuery(metric, range) : seriesQuery(metric, range))).query_result;
  const key = drift ? (metric.query.aggregate ? "aggregate" : metric.attribute) : rows.length ? valueKey(rows[0]) : metric.name;
  // p-values span hundreds of orders of magnitude: drawn as -log10 p (higher = more drift), thresholds too
  const pValues = drift && metric.query.metric === "DriftTest";
  const scale = (v) => (v === null || v === undefined ? null : pValues ? -Math.log10(Math.max(v, 1e-300)) : v);
  const points = rows.map((r) => ({ time: new Date(drift ? r.rollup : r.time).getTime(), value: scale(r[key]) }));
  const ruled = rules.filter((r) => r.metric_id === metric.id);
  const thresholds = ruled.map((r) => ({ value: scale(r.threshold), label: r.name }));
  const marks = alerts.filter((a) => a.metric_id === metric.id && a.window_start)
    .map((a) => ({ time: new Date(a.window_start).getTime(), label: `${a.severity}: ${a.rule_name}, ${fmt(a.metric_value, 4)} at ${when(a.window_start)}` }));
  const unit = pValues ? "-log10 p" : drift ? (metric.query.metric || "PSI") : metric.name.includes("Count") ? "inferences" : metric.name.toLowerCase();
  return lineChart({ title: metric.name, unit, series: [{ name: "", points }], thresholds, alerts: marks, range });
}

async function variantChart(id, metrics, status, range) {
  const variants = Object.keys(status.by_variant || {});
  if (variants.length < 2) return null;
  const count = metrics.find((m) => m.name === "Inference Count");
  const rows = (await api("POST", count.endpoint, seriesQuery(count, range, ["variant"]))).query_result;
  const series = variants.map((v) => ({ name: v, points: rows.filter((r) => r.variant === v).map((r) => ({ time: new Date(r.time).getTime(), value: r.count })) }));
  return lineChart({ title: "Inference Count by variant", unit: "inferences", series, range });
}

async function driftTable(model, allMetrics, rules, range, params, driftAlerts = []) {
  const inputs = model.attributes.filter((a) => a.stage === "PIPELINE_INPUT").map((a) => a.name);
  const reference = await api("GET", `/api/v3/models/${enc(model.id)}/reference_data`);
  if (!reference.ingested) {
    return [h("p", { class: "muted" }, "No drift to show: the model has no reference data yet (upload it: docs/ingestion.md).")];
  }
  const drift = `/api/v3/models/${enc(model.id)}/inferences/query/data_drift`;
  const body = { properties: inputs, metric: "PSI", base: { source: "reference" }, target: { source: "inference", filter: timeFilter(range) } };
  let latest, windows;
  try {
    [latest, windows] = await Promise.all([
      api("POST", drift, body),
      api("POST", drift, { ...body, rollup: range.interval }),
    ]);
  } catch (error) {
    return [h("p", { class: "muted" }, `No drift to show: ${error.message}`)];
  }
  const values = latest.query_result[0] || {};
  const psiMetrics = allMetrics.filter((m) => m.type === "model_data_drift_metric");
  // inputs a new model-level drift alert (Input Drift) names
  const namedBy = new Set(driftAlerts.filter((a) => a.status === "new").flatMap((a) => Object.keys((a.details || {}).drifted || {})));
  const order = inputs.filter((a) => values[a] !== undefined).sort((a, b) => (values[b] ?? -1) - (values[a] ?? -1));
  const chosen = params.get("attr");
  const rows = order.map((name) => {
    const metricIds = psiMetrics.filter((m) => m.attribute === name).map((m) => m.id);
    const ruled = rules.filter((r) => metricIds.includes(r.metric_id));
    const alerting = ruled.some((r) => (r.alert_counts || {}).new > 0) || namedBy.has(name);
    const state = alerting ? "alerting" : !ruled.length ? "no rule" : "ok";
    return h("tr", { "data-attribute": name },
      h("th", { scope: "row" }, h("button", { onclick: () => withParam("attr", name), "aria-pressed": String(chosen === name) }, name)),
      h("td", { class: "number psi" }, fmt(values[name], 3)),
      h("td", {}, sparkline(windows.query_result.map((w) => w[name] ?? null), `PSI of ${name} by ${range.interval}`)),
      h("td", { class: `state-${state === "alerting" ? "alerting" : state === "ok" ? "ok" : "none"}` },
        state === "no rule" ? "no rule" : !ruled.length ? "alerting (Input Drift)" : `${state} (${ruled.map((r) => `${r.bound === "upper" ? ">" : "<"} ${fmt(r.threshold, 3)}`).join(", ")})`));
  });
  const table = h("table", { class: "drift" },
    h("thead", {}, h("tr", {}, h("th", {}, "attribute"), h("th", { class: "number" }, "PSI (window)"), h("th", {}, `by ${range.interval}`), h("th", {}, "rule"))),
    h("tbody", {}, rows));
  const parts = [table];
  if (chosen && inputs.includes(chosen)) parts.push(await distribution(model, chosen, range));
  return parts;
}

async function distribution(model, name, range) {
  const attribute = model.attributes.find((a) => a.name === name);
  const path = `/api/v3/models/${enc(model.id)}/inferences/query`;
  let reference, window;
  if (attribute.categorical || attribute.value_type === "STRING" || attribute.value_type === "BOOLEAN") {
    const grouped = (source, filter) => api("POST", path, { from: source, select: [{ function: "count" }, { property: name }], group_by: [{ property: name }], filter });
    [reference, window] = await Promise.all([grouped("reference", []), grouped("inference", timeFilter(range))]);
    const labels = [...new Set([...reference.query_result, ...window.query_result].map((r) => String(r[name])))];
    const total = (rows) => rows.reduce((sum, r) => sum + r.count, 0) || 1;
    const rt = total(reference.query_result), wt = total(window.query_result);
    const find = (rows, label) => (rows.find((r) => String(r[name]) === label) || { count: 0 }).count;
    return histogram(`${name}: reference and window`, labels.map((label) => ({
      label, referenceCount: find(reference.query_result, label), windowCount: find(window.query_result, label),
      reference: find(reference.query_result, label) / rt, window: find(window.query_result, label) / wt,
    })), "share of rows");
  }
  // bins over both sides' values, so none piles into an end bin
  const spread = (source, filter) => api("POST", path, { from: source, filter, select: [{ function: "min", parameters: { property: name } }, { function: "max", parameters: { property: name } }] });
  const sides = (await Promise.all([spread("reference", []), spread("inference", timeFilter(range))])).map((r) => r.query_result[0] || {});
  const lows = sides.map((b) => b.min).filter((v) => v !== null && v !== undefined);
  const highs = sides.map((b) => b.max).filter((v) => v !== null && v !== undefined);
  const bounds = { min: Math.min(...lows), max: Math.max(...highs) };
  if (!lows.length || !highs.length || bounds.min === bounds.max) {
    return h("p", { class: "muted" }, `${name}: no spread of values to bin over.`);
  }
  const binned = (source, filter) => api("POST", path, { from: source, filter, select: [{ function: "distribution", parameters: { property: name, num_bins: 20, lower: bounds.min, upper: bounds.max } }] });
  [reference, window] = await Promise.all([binned("reference", []), binned("inference", timeFilter(range))]);
  // the API's bins are those holding rows; the chart draws all 20, empty ones too
  const width = (bounds.max - bounds.min) / 20;
  const counts = (answer) => {
    const found = new Array(20).fill(0);
    for (const bin of (answer.query_result[0] || { distribution: [] }).distribution) {
      if (bin.lower === null) continue;  // rows without a value
      found[Math.min(19, Math.max(0, Math.round((bin.lower - bounds.min) / width)))] += bin.count;
    }
    return found;
  };
  const r = counts(reference), w = counts(window);
  const rt = r.reduce((sum, c) => sum + c, 0) || 1, wt = w.reduce((sum, c) => sum + c, 0) || 1;
  return histogram(`${name}: reference and window (20 bins from ${fmt(bounds.min)} to ${fmt(bounds.max)})`, r.map((count, i) => ({
    label: fmt(bounds.min + i * width, 3), referenceCount: count, windowCount: w[i], reference: count / rt, window: w[i] / wt,
  })), "share of rows");
}

async function alertsPage(params, view) {
  const range = timeRange(params);
  const query = new URLSearchParams({ page_size: "500", start_time: range.start.toISOString(), end_time: range.end.toISOString() });
  if (params.get("model")) query.set("model_id", params.get("model"));
  if (params.get("status")) query.set("status", params.get("status"));
  const [alerts, models] = await Promise.all([api("GET", `/api/v3/alerts?${query}`), api("GET", "/api/v3/models?page_size=500&include_archived=true")]);
  const names = Object.fromEntries(models.data.map((m) => [m.id, m.display_name || m.partner_model_id]));
  const severity = params.get("severity");
  const shown = alerts.data.filter((a) => !severity || a.severity === severity);
  const select = (name, options, label) => h("label", {}, `${label} `, h("select", { onchange: (e) => withParam(name, e.target.value) },
    h("option", { value: "" }, "any"), options.map(([value, text]) => h("option", { value, selected: params.get(name) === value }, text))));
  const change = async (alert, status) => {
    try {
      await api("PATCH", `/api/v3/alerts/${enc(alert.id)}`, { status });
      await render();
    } catch (error) {
      view.prepend(h("p", { class: "error", role: "alert" }, error.message));
    }
  };
  view.replaceChildren(
    h("h1", {}, "Alerts"),
    h("p", { class: "muted" }, `Raised from ${when(range.start.toISOString())} to ${when(range.end.toISOString())}.`),
    h("div", { class: "toolbar" },
      select("model", models.data.map((m) => [m.id, names[m.id]]), "Model"),
      select("severity", [["critical", "critical"], ["warning", "warning"]], "Severity"),
      select("status", [["new", "new"], ["acknowledged", "acknowledged"], ["resolved", "resolved"]], "Status")),
    shown.length ? h("table", { class: "alerts" },
      h("thead", {}, h("tr", {}, ["raised", "model", "rule", "severity", "status", "window", "value", "threshold", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, shown.map((a) => h("tr", { "data-alert-id": a.id },
        h("td", {}, when(a.timestamp)),
        h("td", {}, names[a.model_id] || a.model_id),
        h("td", { title: a.message }, a.rule_name, (a.details || {}).drifted ? h("span", { class: "drifted" }, `: ${Object.keys(a.details.drifted).join(", ")}`) : ""),
        h("td", {}, a.severity),
        h("td", { class: "status" }, a.status),
        h("td", {}, a.batch_id ? `batch ${a.batch_id}` : `${when(a.window_start)} to ${when(a.window_end)}${a.windows > 1 ? ` (an incident of ${a.windows} windows, to ${when(a.incident_end)})` : ""}`),
        h("td", { class: "number" }, fmt(a.metric_value, 4)),
        h("td", { class: "number" }, `${a.bound === "upper" ? ">" : "<"} ${fmt(a.threshold, 4)}`),
        h("td", {},
          h("a", { href: `#/model/${enc(a.model_id)}?from=${(a.window_start || a.timestamp).slice(0, 10)}&metrics=${enc(a.metric_id)}` }, "chart"), " ",
          h("button", { disabled: !canChange() || a.status !== "new", title: canChange() ? null : readOnlyNote, onclick: () => change(a, "acknowledged") }, "Acknowledge"), " ",
          h("button", { disabled: !canChange() || a.status === "resolved", title: canChange() ? null : readOnlyNote, onclick: () => change(a, "resolved") }, "Resolve"))))))
    : h("p", { class: "muted" }, "No alert matches."),
  );
}

async function modelChoice(params) {
  const models = (await api("GET", "/api/v3/models?page_size=500&include_archived=true")).data;
  const asked = models.find((m) => m.id === params.get("model"));
  const model = asked || models.find((m) => !m.archived) || models[0];
  const id = model && model.id;
  if (params.get("model") && !asked) throw new Error(`no model with id ${params.get("model")}`);
  const picker = h("label", {}, "Model ", h("select", { onchange: (e) => withParam("model", e.target.value) },
    models.map((m) => h("option", { value: m.id, selected: m.id === id }, `${m.display_name || m.partner_model_id}${m.archived ? " (archived)" : ""}`))));
  return { id, picker, empty: !models.length, archived: Boolean(model && model.archived) };
}

async function rulesPage(params, view) {
  const { id, picker, empty, archived } = await modelChoice(params);
  if (empty) return view.replaceChildren(h("h1", {}, "Rules"), h("p", { class: "muted" }, "No model registered yet."));
  const editable = canChange() && !archived;
  const why = archived ? "an archived model's rules cannot change" : readOnlyNote;
  const base = `/api/v3/models/${enc(id)}`;
  const [rules, metrics] = await Promise.all([api("GET", `${base}/alert_rules?page_size=500`), api("GET", `${base}/metrics?page_size=500`)]);
  const byId = Object.fromEntries(metrics.metrics.map((m) => [m.id, m]));
  const message = h("p", { role: "status" }, flash);
  flash = "";
  /** The input's number, or null with a message saying what is wrong (an empty box is not 0). */
  const number = (input, what) => {
    const text = input.value.trim();
    if (text === "" || !Number.isFinite(Number(text))) {
      message.className = "error";
      message.textContent = `${what}: a number is needed${text ? `, not ${JSON.stringify(text)}` : ""}`;
      input.focus();
      return null;
    }
    return Number(text);
  };
  const save = async (rule, changes) => {
    try {
      await api("PATCH", `${base}/alert_rules/${enc(rule.id)}`, changes);
      flash = `Saved: ${rule.name}.`;
      await render();
    } catch (error) {
      message.className = "error";
      message.textContent = error.message;
    }
  };
  const rows = rules.data.map((rule) => {
    const threshold = h("input", { type: "number", step: "any", value: rule.threshold, "aria-label": `threshold of ${rule.name}`, disabled: !editable });
    const severity = h("select", { "aria-label": `severity of ${rule.name}`, disabled: !editable },
      ["warning", "critical"].map((v) => h("option", { value: v, selected: rule.severity === v }, v)));
    return h("tr", { "data-rule-id": rule.id },
      h("td", {}, rule.name),
      h("td", {}, (byId[rule.metric_id] || {}).name || rule.metric_name || rule.metric_id),
      h("td", {}, rule.bound === "upper" ? "above" : "below"),
      h("td", {}, threshold),
      h("td", {}, severity),
      h("td", { class: "number" }, fmt(rule.last_value, 4)),
      h("td", {}, h("label", {}, h("input", { type: "checkbox", checked: rule.enabled, disabled: !editable, onchange: (e) => save(rule, { enabled: e.target.checked }) }), " enabled")),
      h("td", {}, h("button", { disabled: !editable, title: editable ? null : why, onclick: () => {
        const value = number(threshold, `the threshold of ${rule.name}`);
        if (value !== null) save(rule, { threshold: value, severity: severity.value });
      } }, "Save")));
  });
  const metric = h("select", { "aria-label": "metric" }, metrics.metrics.map((m) => h("option", { value: m.id }, m.name)));
  const bound = h("select", { "aria-label": "bound" }, h("option", { value: "upper" }, "above"), h("option", { value: "lower" }, "below"));
  const threshold = h("input", { type: "number", step: "any", "aria-label": "threshold", required: true });
  const severity = h("select", { "aria-label": "severity" }, h("option", { value: "warning" }, "warning"), h("option", { value: "critical" }, "critical"));
  const create = async () => {
    const value = number(threshold, "the new rule's threshold");
    if (value === null) return;
    try {
      const made = await api("POST", `${base}/alert_rules`, { metric_id: metric.value, bound: bound.value, threshold: value, severity: severity.value });
      flash = `Created: ${made.name}.`;
      await render();
    } catch (error) {
      message.className = "error";
      message.textContent = error.message;
    }
  };
  view.replaceChildren(
    h("h1", {}, "Rules"),
    h("div", { class: "toolbar" }, picker),
    message,
    rows.length ? h("table", { class: "rules" },
      h("thead", {}, h("tr", {}, ["rule", "metric", "alerts when", "threshold", "severity", "last value", "", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)) : h("p", { class: "muted" }, "No rule yet."),
    h("h2", {}, "Create a rule from a metric"),
    h("fieldset", { disabled: !editable, title: editable ? null : why }, h("legend", {}, "new rule"),
      h("div", { class: "toolbar" }, metric, bound, threshold, severity, h("button", { class: "primary", onclick: create }, "Create"))),
  );
}

async function variantsPage(params, view) {
  const { id, picker, empty, archived } = await modelChoice(params);
  if (empty) return view.replaceChildren(h("h1", {}, "Variants"), h("p", { class: "muted" }, "No model registered yet."));
  const base = `/api/v3/models/${enc(id)}/variants`;
  const variants = (await api("GET", base)).data;
  const editable = canChange() && !archived;
  const message = h("p", { role: "status" }, flash);
  flash = "";
  const setRole = async (variant, role) => {
    try {
      await api("PUT", `${base}/${enc(variant)}`, { role });
      flash = `${variant} is now ${role}.`;
      await render();
    } catch (error) {
      message.className = "error";
      message.textContent = error.message;
    }
  };
  const parts = [h("h1", {}, "Variants"), h("div", { class: "toolbar" }, picker), message];
  if (!variants.length) {
    parts.push(h("p", { class: "muted" }, "No variant seen yet: variants come from SageMaker Data Capture (the production variant in the key) and Deepchecks versions."));
    return view.replaceChildren(...parts);
  }
  parts.push(h("table", { class: "variants" },
    h("thead", {}, h("tr", {}, ["variant", "role", "inferences", "share", "first inference", "latest inference"].map((t) => h("th", {}, t)))),
    h("tbody", {}, variants.map((v) => h("tr", { "data-variant": v.variant },
      h("td", {}, v.variant),
      h("td", {}, h("select", { "aria-label": `role of ${v.variant}`, disabled: !editable, title: editable ? null : readOnlyNote, onchange: (e) => setRole(v.variant, e.target.value) },
        h("option", { value: "", selected: !v.role, disabled: true }, "none"),
        ["champion", "challenger", "shadow"].map((r) => h("option", { value: r, selected: v.role === r }, r)))),
      h("td", { class: "number" }, fmt(v.inferences)),
      h("td", { class: "number share" }, v.share === null ? "–" : `${(v.share * 100).toFixed(1)}%`),
      h("td", {}, when(v.first_inference)),
      h("td", {}, when(v.latest_inference)))))));
  parts.push(await endpointPanel(id));
  const champion = params.get("champion") || (variants.find((v) => v.role === "champion") || {}).variant;
  const others = variants.filter((v) => v.variant !== champion);
  const challenger = params.get("challenger") || (others.find((v) => v.role === "challenger") || others[0] || {}).variant;
  const choose = (name, value, label) => h("label", {}, `${label} `, h("select", { onchange: (e) => withParam(name, e.target.value) },
    variants.map((v) => h("option", { value: v.variant, selected: v.variant === value }, v.variant))));
  parts.push(h("h2", {}, "Is the challenger better?"), h("div", { class: "toolbar" }, choose("champion", champion, "Champion"), choose("challenger", challenger, "Challenger")));
  if (!champion || !challenger || champion === challenger) {
    parts.push(h("p", { class: "muted" }, "Choose two variants (give one the role champion)."));
    return view.replaceChildren(...parts);
  }
  const range = timeRange(params);
  const answer = await api("POST", `${base}/compare`, { champion, challenger, start_time: range.start.toISOString(), end_time: range.end.toISOString() });
  parts.push(
    h("p", {}, `${answer.champion} (${fmt(answer.champion_labelled)} labelled) against ${answer.challenger} (${fmt(answer.challenger_labelled)} labelled)`,
      answer.paired ? `, paired on ${fmt(answer.pairs)} requests both answered` : ", different requests (an A/B split)"),
    h("table", { class: "comparison" },
      h("thead", {}, h("tr", {}, ["metric", answer.champion, answer.challenger, "difference", "95% interval", "test", "p"].map((t) => h("th", {}, t)))),
      h("tbody", {}, answer.metrics.map((m) => h("tr", { "data-metric": m.metric },
        h("td", {}, `${m.metric}${m.higher_is_better ? "" : " (lower is better)"}`),
        h("td", { class: "number" }, fmt(m.champion, 4)), h("td", { class: "number" }, fmt(m.challenger, 4)),
        h("td", { class: "number" }, fmt(m.difference, 3)),
        h("td", { class: "number" }, `[${m.interval.map((v) => fmt(v, 3)).join(", ")}]`),
        h("td", {}, m.test || "–"), h("td", { class: "number" }, fmt(m.p_value, 3)))))),
    h("p", { class: "verdict", "data-verdict": answer.verdict }, h("strong", {}, answer.verdict), ` (${answer.reason})`),
  );
  view.replaceChildren(...parts);
}

/** The IT side, variant by variant: the endpoint's state and each variant's last hour (CloudWatch). */
async function endpointPanel(id) {
  let health;
  try {
    health = await api("GET", `/api/v3/models/${enc(id)}/endpoint`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    return h("p", { class: "muted endpoint" }, `Endpoint: ${error.message}`);
  }
  return h("section", { class: "endpoint", "aria-label": "Endpoint" },
    h("h2", {}, `Endpoint ${health.endpoint}: ${health.status}`),
    h("table", { class: "endpoint-health" },
      h("thead", {}, h("tr", {}, ["variant", "instances", "calls, last hour", "4xx rate", "5xx rate", "model latency (ms)", "overhead (ms)"].map((t) => h("th", {}, t)))),
      h("tbody", {}, health.variants.map((v) => h("tr", { "data-variant": v.variant },
        h("td", {}, `${v.variant}${v.shadow ? " (shadow)" : ""}`),
        h("td", { class: "number" }, `${fmt(v.instances)} of ${fmt(v.desired_instances)}`),
        h("td", { class: "number calls" }, fmt(v.invocations)),
        h("td", { class: "number" }, v.error_4xx_rate === null ? "–" : `${(v.error_4xx_rate * 100).toFixed(2)}%`),
        h("td", { class: "number" }, v.error_5xx_rate === null ? "–" : `${(v.error_5xx_rate * 100).toFixed(2)}%`),
        h("td", { class: "number" }, fmt(v.model_latency_ms, 3)),
        h("td", { class: "number" }, fmt(v.overhead_latency_ms, 3)))))));
}

async function ingestionPage(params, view) {
  const { id, picker, empty } = await modelChoice(params);
  const unrouted = await api("GET", "/api/v3/ingestion/unrouted");
  const parts = [h("h1", {}, "Ingestion")];
  if (!empty) {
    const base = `/api/v3/models/${enc(id)}`;
    const [status, rejected] = await Promise.all([api("GET", `${base}/inferences/status`), api("GET", `${base}/inferences/rejected?page_size=100`)]);
    const sources = [["all", { inferences: status.inferences, ground_truth: status.ground_truth }], ...Object.entries(status.by_variant || {})];
    parts.push(
      h("div", { class: "toolbar" }, picker),
      h("h2", {}, "Counts by source"),
      h("table", { class: "counts" },
        h("thead", {}, h("tr", {}, ["variant", "inferences", "rejected", "files", "latest inference", "ground truth", "rejected", "latest label"].map((t) => h("th", {}, t)))),
        h("tbody", {}, sources.map(([name, c]) => h("tr", { "data-variant": name },
          h("td", {}, name),
          h("td", { class: "number" }, fmt(c.inferences.ingested)), h("td", { class: "number" }, fmt(c.inferences.rejected)),
          h("td", { class: "number" }, fmt(c.inferences.files)), h("td", {}, when(c.inferences.latest_timestamp)),
          // labels (Model Monitor files, PATCH) name no variant: they are counted for the model only
          ...(name === "all"
            ? [h("td", { class: "number" }, fmt(c.ground_truth.ingested)), h("td", { class: "number" }, fmt(c.ground_truth.rejected)), h("td", {}, when(c.ground_truth.latest_timestamp))]
            : [h("td", { colspan: 3, class: "muted" }, "counted for the model")]))))),
      h("h2", {}, `Rejected rows (${fmt(rejected.total_count)}, newest day first)`),
      rejected.data.length ? h("table", { class: "rejected" },
        h("thead", {}, h("tr", {}, ["source", "line or row", "inference", "reason"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rejected.data.map((r) => h("tr", {},
          h("td", {}, r.source), h("td", { class: "number" }, r.line ?? r.row ?? "–"),
          h("td", {}, r.partner_inference_id || r.event_id || "–"), h("td", {}, r.reason))))) : h("p", { class: "muted" }, "No rejected row."),
    );
  }
  parts.push(
    h("h2", {}, `Files no model claims (${unrouted.data.length})`),
    unrouted.data.length ? h("table", { class: "unrouted" },
      h("thead", {}, h("tr", {}, ["file", "kind", "reason", "seen"].map((t) => h("th", {}, t)))),
      h("tbody", {}, unrouted.data.map((f) => h("tr", {}, h("td", {}, f.source), h("td", {}, f.kind), h("td", {}, f.reason), h("td", {}, when(f.seen_at)))))) : h("p", { class: "muted" }, "None."),
  );
  view.replaceChildren(...parts);
}

// -- signing in, and drawing the current page ------------------------------------------------------------

function signIn(message) {
  document.getElementById("who").replaceChildren();
  const input = h("input", { type: "password", id: "token", autocomplete: "off", placeholder: "sw_…", "aria-describedby": "token-help" });
  const form = h("form", { class: "signin panel", onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    render();
  } },
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "muted" }, "Kept for this browser session only. `sagewatch token create --role reader` makes one that can look but not change."),
    h("button", { class: "primary", type: "submit" }, "Sign in"));
  main.replaceChildren(form);
  input.focus();
}

let drawing = 0;

async function render() {
  const mine = ++drawing;
  const { page, id, params } = route();
  document.querySelectorAll("nav a").forEach((a) => a.toggleAttribute("aria-current", a.dataset.page === page || (page === "model" && a.dataset.page === "models")));
  const current = page === "model" ? id : params.get("model");  // the pages of one model keep it
  for (const name of ["rules", "variants", "ingestion", "alerts"]) {
    document.querySelector(`nav a[data-page="${name}"]`).setAttribute("href", current ? `#/${name}?model=${enc(current)}` : `#/${name}`);
  }
  document.querySelectorAll("nav a[aria-current]").forEach((a) => a.setAttribute("aria-current", "page"));
  if (!sessionStorage.getItem(TOKEN_KEY)) return signIn();
  const view = h("div", { class: "view" }, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(view);
  try {
    const me = await api("GET", "/api/v3/users/me");
    session.role = me.roles[0];
    document.getElementById("who").replaceChildren(
      h("span", {}, `${me.username} (${session.role})`),
      h("button", { onclick: () => { sessionStorage.removeItem(TOKEN_KEY); signIn(); } }, "Sign out"));
    if (page === "model" || page === "alerts" || page === "variants") rangePicker();
    else document.getElementById("range").replaceChildren();
    // Each drawing has its own view: a slower, older one (the address changed meanwhile) writes into
    // a view no longer shown, and does not mark the page ready.
    const pages = { models: modelsPage, alerts: alertsPage, rules: rulesPage, variants: variantsPage, ingestion: ingestionPage };
    if (page === "model" && id) await modelPage(id, params, view);
    else await (pages[page] || modelsPage)(params, view);
    if (mine === drawing) main.setAttribute("data-ready", "true");
  } catch (error) {
    if (mine !== drawing) return;
    if (error instanceof ApiError && error.status === 401) return;  // api() has shown the sign-in page
    view.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, error.message));
    main.setAttribute("data-ready", "true");  // drawn: as an error
  }
}

/** What identifies the focused control across a redraw: its label, or its text. */
function focusKey() {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  return element.getAttribute("aria-label") || (element.tagName === "BUTTON" || element.tagName === "A" ? element.textContent : null);
}

function restoreFocus(key) {
  if (!key) return;
  const found = [...document.querySelectorAll("button, a, input, select")].find(
    (e) => e.getAttribute("aria-label") === key || ((e.tagName === "BUTTON" || e.tagName === "A") && e.textContent === key),
  );
  if (found) found.focus();
}

window.addEventListener("hashchange", async () => {
  const key = focusKey();
  main.removeAttribute("data-ready");
  await render();
  restoreFocus(key);
});
render();
