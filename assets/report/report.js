// Builds the report page from the JSON in #report-data: the sortable runs table (rows in
// the order given, a sweep's in point order; the sweep's params first), one Vega-Lite
// chart per curve (runs overlaid, legend toggles runs, x against epochs, batches or samples
// seen), and one collapsible section per run with its pictures as thumbnails.
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
  const GOAL_TEXT = { min: "lower is better", max: "higher is better" };

  document.getElementById("meta").textContent =
    `${data.runs.length} run${data.runs.length === 1 ? "" : "s"}, generated ${data.generated.slice(0, 19).replace("T", " ")}`;

  // The table: one row per run; columns run, the leading params (a sweep's grid), status,
  // duration, attempts, seed, the other params, metrics.
  const others = [...new Set(data.runs.flatMap((r) => Object.keys(r.params)))].filter((k) => !data.leading.includes(k)).sort();
  const retried = data.runs.some((r) => r.attempts.length > 1);
  const columns = [
    { name: "run", text: true, get: (r) => r.label },
    ...data.leading.map((p) => ({ name: p, param: true, lead: true, get: (r) => r.params[p] })),
    { name: "status", text: true, get: (r) => r.status, cls: (r) => "status-" + r.status },
    { name: "duration", get: (r) => r.duration_s, show: duration },
    ...(retried ? [{ name: "attempts", get: (r) => Math.max(1, r.attempts.length) }] : []),
    { name: "seed", get: (r) => r.seed },
    ...others.map((p) => ({ name: p, param: true, get: (r) => r.params[p] })),
    ...data.columns.map((c, i) => ({ name: c.name, metric: c, get: (r) => r.values[i], show: fmt })),
  ];
  const table = document.getElementById("runs-table");
  let order = data.runs.map((_, i) => i);
  let sorted = { col: -1, dir: 1 };
  const head = el("tr", {});
  columns.forEach((c, ci) => {
    const classes = [c.text ? "text" : "", c.lead ? "param" : ""].join(" ").trim();
    const title = c.metric ? GOAL_TEXT[c.metric.goal] || "not ranked (no goal)" : c.lead ? "a param of the sweep" : "";
    // Headings may wrap after an underscore too (valid_<wbr>loss), not only at spaces.
    const th = el("th", { class: classes, title }, ...c.name.split("_").flatMap((part, k) => (k ? ["_", el("wbr", {}), part] : [part])));
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

  // The charts: one Vega-Lite spec per curve, against the chosen x axis where the curve has it.
  const AXES = { epoch: "epoch", batch: "batch", samples: "samples seen", step: "step" };
  const charts = document.getElementById("charts");
  const runNames = data.runs.map((r) => r.label);
  // The axis to start with: `#x=samples` (or batch) in the page's address, else epochs.
  let axis = (location.hash.match(/\bx=(epoch|batch|samples)\b/) || [])[1] || "epoch";
  // An axis fitted to the data: from the smallest to the largest value, with no rounding
  // past them; a single value gets a band around it, so that its ticks differ.
  function fitted(values, pad) {
    const finite = values.filter((v) => v != null && Number.isFinite(v));
    const [lo, hi] = [Math.min(...finite), Math.max(...finite)];
    if (!finite.length) return undefined;
    return hi > lo ? [lo, hi] : [lo - pad(lo), hi + pad(hi)];
  }
  function spec(c) {
    const field = c.axes.includes(axis) ? axis : c.axes[0];
    const whole = field === "step" || field === "batch" || field === "samples";
    const points = c.values.filter((v) => v[field] != null);
    const xs = fitted(points.map((v) => v[field]), () => 0.5);
    const ys = fitted(points.map((v) => v.y), (y) => Math.max(Math.abs(y) * 0.05, 0.05));
    const x = { field, type: "quantitative", title: AXES[field], scale: { domain: xs, nice: false, zero: false }, axis: whole ? { tickMinStep: 1, format: "~s" } : {} };
    const y = { field: "y", type: "quantitative", title: c.y_label, scale: { domain: ys, zero: false, nice: false } };
    const color = { field: "run", type: "nominal", title: "run", scale: { domain: runNames }, legend: { orient: "right", labelLimit: 260 } };
    const opacity = { condition: { param: "shown", value: 1 }, value: 0.08 };
    return {
      title: c.title,
      width: 400,
      height: 240,
      data: { values: points },
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
              { field, type: "quantitative", title: AXES[field], format: whole ? "d" : ".4~g" },
              { field: "y", type: "quantitative", title: c.y_label, format: ".5~g" },
            ],
          },
        },
      ],
    };
  }
  const divs = data.charts.map((c, i) => {
    const div = el("div", { class: "chart", id: "chart-" + i, "data-title": c.title });
    charts.append(div);
    return div;
  });
  function draw() {
    data.charts.forEach((c, i) => {
      const div = divs[i];
      div.dataset.axis = c.axes.includes(axis) ? axis : c.axes[0];
      vegaEmbed(div, spec(c), { mode: "vega-lite", renderer: "svg", actions: false }).catch((e) => div.append(el("pre", { class: "error" }, "chart failed: " + e)));
    });
  }
  const switchable = ["epoch", "batch", "samples"].filter((a) => data.charts.some((c) => c.axes.includes(a)));
  if (switchable.length > 1) {
    const sw = document.getElementById("axis-switch");
    sw.append("x axis: ");
    for (const a of switchable) {
      const input = el("input", { type: "radio", name: "x-axis", value: a, id: "x-" + a });
      input.checked = a === axis;
      input.addEventListener("change", () => {
        axis = a;
        history.replaceState(null, "", "#x=" + a);
        draw();
      });
      sw.append(el("label", { for: "x-" + a }, input, " " + AXES[a]));
    }
  }
  draw();
  if (!data.charts.length) charts.append(el("p", { class: "hint" }, "These runs logged no curves."));

  // Each run: what it was, how it ended, what it drew; the first few open, the rest closed.
  const OPEN = 3;
  const viewer = document.getElementById("viewer");
  viewer.addEventListener("click", () => viewer.classList.remove("open"));
  document.addEventListener("keydown", (e) => e.key === "Escape" && viewer.classList.remove("open"));
  const details = document.getElementById("run-details");
  data.runs.forEach((r, i) => {
    const div = el("details", { class: "run", id: "run-" + r.id });
    div.open = i < OPEN;
    div.append(el("summary", {}, r.label, " ", el("span", { class: "status-" + r.status }, "(" + r.status + ")")));
    div.append(el("div", { class: "meta" }, `${r.folder} | seed ${r.seed} | started ${r.started.slice(0, 19).replace("T", " ")} | ${duration(r.duration_s)}${r.sweep ? " | " + r.sweep : ""}`));
    const facts = el("table", { class: "facts" });
    for (const [k, v] of r.provenance) facts.append(el("tr", {}, el("td", {}, k), el("td", {}, v)));
    if (r.attempts.length > 1) {
      r.attempts.forEach((a, n) => {
        const how = `${a.status}${a.signal ? " (" + a.signal + ")" : ""} after ${duration(a.duration_s)}, started ${a.started.slice(0, 19).replace("T", " ")} on ${a.host}${a.slurm_job_id ? ", Slurm job " + a.slurm_job_id : ""}`;
        facts.append(el("tr", {}, el("td", {}, "attempt " + (n + 1)), el("td", {}, how)));
      });
    }
    div.append(facts);
    const params = Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join("  ");
    if (params) div.append(el("p", { class: "params" }, params));
    if (r.error) div.append(el("pre", { class: "error" }, r.error));
    if (r.damaged_lines) div.append(el("p", { class: "hint" }, `${r.damaged_lines} damaged metrics.jsonl line(s) skipped`));
    const pics = el("div", { class: "pictures" });
    r.images.forEach((im) => {
      const img = el("img", { class: "thumb", src: im.data_uri, alt: im.name, title: "full size: click" });
      img.addEventListener("click", () => {
        viewer.querySelector("img").src = im.data_uri;
        viewer.querySelector(".caption").textContent = `${r.label}: ${im.name}`;
        viewer.classList.add("open");
      });
      pics.append(el("figure", {}, img, el("figcaption", {}, im.name)));
    });
    if (r.images.length) div.append(pics);
    details.append(div);
  });
})();
