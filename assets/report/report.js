// Builds the report page from the JSON in #report-data: the sortable runs table, one
// Vega-Lite chart per curve (runs overlaid, legend toggles runs), and each run's details.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  };
  const fmt = (v) => (v == null || Number.isNaN(v) ? "-" : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? v.toFixed(4) : v.toExponential(3));
  const duration = (s) => (s == null ? "-" : s < 60 ? s.toFixed(1) + "s" : Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s");

  document.getElementById("meta").textContent =
    `${data.runs.length} run${data.runs.length === 1 ? "" : "s"}, generated ${data.generated.slice(0, 19).replace("T", " ")}`;

  // The table: one row per run; columns run, status, duration, differing params, other params, metrics.
  const others = [...new Set(data.runs.flatMap((r) => Object.keys(r.params)))].filter((k) => !data.differing.includes(k)).sort();
  const columns = [
    { name: "run", text: true, get: (r) => r.label },
    { name: "status", text: true, get: (r) => r.status, cls: (r) => "status-" + r.status },
    { name: "duration", get: (r) => r.duration_s, show: duration },
    { name: "seed", get: (r) => r.seed },
    ...data.differing.concat(others).map((p) => ({ name: p, param: true, get: (r) => r.params[p] })),
    ...data.columns.map((c, i) => ({ name: c.name, metric: c, get: (r) => r.values[i], show: fmt })),
  ];
  const table = document.getElementById("runs-table");
  let order = data.runs.map((_, i) => i);
  let sorted = { col: -1, dir: 1 };
  const head = el("tr", {});
  columns.forEach((c, ci) => {
    const th = el("th", { class: c.text ? "text" : "", title: c.metric ? (c.metric.lower_is_better ? "lower is better" : "higher is better") : "" }, c.name);
    th.addEventListener("click", () => sortBy(ci));
    head.append(th);
  });
  table.append(el("thead", {}, head));
  const body = el("tbody", {});
  table.append(body);
  // Sort key: numbers (and strings that are numbers, like param values) as numbers.
  const key = (v) => {
    if (typeof v === "number") return v;
    const n = Number(v);
    return v != null && v !== "" && !Number.isNaN(n) ? n : String(v ?? "");
  };
  function fill() {
    body.replaceChildren(
      ...order.map((i) => {
        const r = data.runs[i];
        return el(
          "tr",
          { "data-run": r.id },
          ...columns.map((c) => {
            const v = c.get(r);
            const best = c.metric && c.metric.best === i;
            const classes = [c.text || (c.param && typeof key(v) === "string") ? "text" : "", best ? "best" : "", c.cls ? c.cls(r) : ""].join(" ").trim();
            return el("td", { class: classes }, c.show ? c.show(v) : v ?? "-");
          })
        );
      })
    );
    [...head.children].forEach((th, ci) => {
      th.classList.toggle("sorted-asc", sorted.col === ci && sorted.dir > 0);
      th.classList.toggle("sorted-desc", sorted.col === ci && sorted.dir < 0);
    });
  }
  function sortBy(ci) {
    sorted = { col: ci, dir: sorted.col === ci ? -sorted.dir : 1 };
    const c = columns[ci];
    order.sort((a, b) => {
      const [x, y] = [key(c.get(data.runs[a])), key(c.get(data.runs[b]))];
      if (x === y) return 0;
      if (x === "" || x == null) return 1;
      if (y === "" || y == null) return -1;
      return (x < y ? -1 : 1) * sorted.dir;
    });
    fill();
  }
  fill();

  // The charts: one Vega-Lite spec per curve.
  const charts = document.getElementById("charts");
  const runNames = data.runs.map((r) => r.label);
  data.charts.forEach((c, i) => {
    const div = el("div", { class: "chart", id: "chart-" + i });
    charts.append(div);
    const x = { field: "x", type: "quantitative", title: c.x_label, axis: c.integer_x ? { tickMinStep: 1, format: "d" } : {} };
    const y = { field: "y", type: "quantitative", title: c.y_label, scale: { zero: false } };
    const color = { field: "run", type: "nominal", title: "run", scale: { domain: runNames }, legend: { orient: "right", labelLimit: 260 } };
    const opacity = { condition: { param: "shown", value: 1 }, value: 0.08 };
    const spec = {
      title: c.title,
      width: 460,
      height: 260,
      data: { values: c.values },
      encoding: { x, y, color },
      layer: [
        { mark: { type: "line", strokeWidth: 2 }, encoding: { opacity } },
        {
          mark: { type: "point", filled: true, size: 40 },
          params: [{ name: "shown", select: { type: "point", fields: ["run"] }, bind: "legend" }],
          encoding: {
            opacity,
            tooltip: [
              { field: "run", type: "nominal" },
              { field: "x", type: "quantitative", title: c.x_label, format: c.integer_x ? "d" : ".4~g" },
              { field: "y", type: "quantitative", title: c.y_label, format: ".5~g" },
            ],
          },
        },
      ],
    };
    vegaEmbed(div, spec, { mode: "vega-lite", renderer: "svg", actions: false }).catch((e) => div.append(el("pre", { class: "error" }, "chart failed: " + e)));
  });
  if (!data.charts.length) charts.append(el("p", { class: "hint" }, "These runs logged no curves."));

  // Each run: what it was, how it ended, what it drew.
  const details = document.getElementById("run-details");
  data.runs.forEach((r) => {
    const div = el("div", { class: "run", id: "run-" + r.id });
    div.append(el("h3", {}, r.label, " ", el("span", { class: "status-" + r.status }, "(" + r.status + ")")));
    div.append(el("div", { class: "meta" }, `${r.folder} | ${r.script} | seed ${r.seed} | started ${r.started.slice(0, 19).replace("T", " ")} | ${duration(r.duration_s)}${r.sweep ? " | " + r.sweep : ""}`));
    const params = Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join("  ");
    if (params) div.append(el("p", { class: "params" }, params));
    if (r.error) div.append(el("pre", { class: "error" }, r.error));
    if (r.damaged_lines) div.append(el("p", { class: "hint" }, `${r.damaged_lines} damaged metrics.jsonl line(s) skipped`));
    const pics = el("div", { class: "pictures" });
    r.images.forEach((im) => pics.append(el("figure", {}, el("img", { src: im.data_uri, alt: im.name }), el("figcaption", {}, im.name))));
    if (r.images.length) div.append(pics);
    details.append(div);
  });
})();
