// postdoc's dashboard. Every string from the study (hypotheses, notes, diffs, logs, transcripts)
// is untrusted: it enters the document only as text (textContent, attribute values), never as
// markup. `el` and `svg` are the only ways this file builds elements.
"use strict";

const LABEL_COLORS = {
  keep: "#1e8e3e", discard: "#8a94a6", crash: "#c5221f", preflight_crash: "#d93025",
  invalid_proposal: "#a50e0e", illegal_edit: "#b31412", size_blocked: "#e37400",
  train_overrun: "#f29900", eval_overrun: "#fbbc04", gate_miss: "#e8710a",
  contaminated: "#6d1a36", harness_abort: "#9334e6",
};
const STATUS_COLORS = { running: "#1a73e8", proposed: "#8ab4f8", waiting: "#fa7b17" };
// Above this many trials the lineage tree is drawn in bulk rather than node by node.
const LARGE_TREE = 2000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    // Through the CSSOM: the content security policy refuses style attributes.
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

// Replaces what `parent` shows (absent children, null or false, are skipped).
function show(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

function append(parent, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// In a report written by `postdoc report`, the answers are in the file and nothing can change.
const REPORT = (() => {
  const data = document.getElementById("postdoc-report");
  return data ? JSON.parse(data.textContent) : null;
})();

async function api(path, options) {
  if (REPORT) {
    if (options && options.body !== undefined) throw new Error("a report is read-only: `postdoc serve` opens the live dashboard");
    const answer = REPORT.answers[path];
    if (answer === undefined) throw new Error("this report does not carry that page in full; `postdoc show` prints any trial");
    return answer;
  }
  const init = Object.assign({ headers: {} }, options || {});
  if (init.body !== undefined) {
    init.method = init.method || "POST";
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// ---- formatting ----

function num(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (digits !== undefined) return Number(x).toFixed(digits);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return Number(x).toExponential(3);
  return String(Number(x.toPrecision(4)));
}
function signed(x) { return x === null || x === undefined ? "–" : (x >= 0 ? "+" : "") + num(x); }
function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}
function bytes(b) {
  if (b === null || b === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function when(ms) { return ms ? new Date(ms).toLocaleString() : "–"; }
function colorOf(node) {
  if (node.label) return LABEL_COLORS[node.label] || "#555";
  return STATUS_COLORS[node.status] || "#555";
}
function labelTag(label, status) {
  const text = label || status || "–";
  return el("span", { class: "label", style: `background:${label ? LABEL_COLORS[label] || "#555" : STATUS_COLORS[status] || "#555"}` }, text);
}
function trialLink(n) { return el("a", { href: `#/trial/${n}` }, `#${n}`); }
function better(objective, a, b) { return objective.direction === "minimize" ? a < b : a > b; }

// ---- charts ----

const tip = el("div", { class: "tip" });
function showTip(event, text) {
  tip.textContent = text;
  tip.style.display = "block";
  tip.style.left = `${event.clientX + 12}px`;
  tip.style.top = `${event.clientY + 12}px`;
}
function hideTip() { tip.style.display = "none"; }

function scale(lo, hi, a, b) {
  if (!(hi > lo)) hi = lo + 1;
  return (x) => a + ((x - lo) / (hi - lo)) * (b - a);
}
// Smallest and largest, without spreading a long array into arguments.
function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}
function ticks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
  const err = (hi - lo) / n / step;
  const s = step * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
  const out = [];
  for (let t = Math.ceil(lo / s) * s; t <= hi + s * 1e-9; t += s) out.push(Number(t.toPrecision(12)));
  return out;
}

// A chart of lines (step or straight) and dots; every point may carry a tooltip and a click.
function chart({ title, xlabel, ylabel, lines, dots, width, height, step }) {
  const W = width || 560, H = height || 300, L = 56, R = 12, T = 24, B = 36;
  const xs = [], ys = [];
  for (const l of lines || []) for (const p of l.points) { xs.push(p[0]); ys.push(p[1]); }
  for (const d of dots || []) { xs.push(d.x); ys.push(d.y); }
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": title });
  root.append(svg("text", { x: L, y: 14, style: "font-weight:600;fill:#1d2330" }, title));
  if (!xs.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "nothing to show yet"));
    return root;
  }
  let [x0, x1] = extent(xs);
  let [y0, y1] = extent(ys);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 = y0 + Math.abs(y0 || 1) * 0.05; y0 = y0 - Math.abs(y0 || 1) * 0.05; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const sx = scale(x0, x1, L, W - R), sy = scale(y0, y1, H - B, T);
  for (const t of ticks(y0, y1, 5)) {
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: "grid" }));
    root.append(svg("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, num(t)));
  }
  for (const t of ticks(x0, x1, 6)) {
    root.append(svg("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, num(t)));
  }
  root.append(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, xlabel || ""));
  root.append(svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle" }, ylabel || ""));
  for (const l of lines || []) {
    if (!l.points.length) continue;
    let d = "";
    l.points.forEach((p, i) => {
      const X = sx(p[0]).toFixed(1), Y = sy(p[1]).toFixed(1);
      if (i === 0) d += `M${X},${Y}`;
      else d += step ? `H${X}V${Y}` : `L${X},${Y}`;
    });
    root.append(svg("path", { d, fill: "none", stroke: l.color || "#1a73e8", "stroke-width": l.width || 2 }));
  }
  for (const p of dots || []) {
    const c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: p.r || 3.5, fill: p.color || "#555", class: "node",
      onmousemove: (e) => showTip(e, p.tip || ""), onmouseleave: hideTip,
      onclick: p.href ? () => { hideTip(); location.hash = p.href; } : undefined });
    root.append(c);
  }
  const legend = (lines || []).filter((l) => l.name);
  legend.forEach((l, i) => {
    root.append(svg("rect", { x: W - R - 150, y: T + 4 + i * 15, width: 10, height: 10, fill: l.color || "#1a73e8" }));
    root.append(svg("text", { x: W - R - 136, y: T + 13 + i * 15 }, l.name));
  });
  return root;
}

// ---- pages ----

const state = { objective: null, compare: new Set(JSON.parse(sessionStorage.getItem("compare") || "[]")) };
function saveCompare() { sessionStorage.setItem("compare", JSON.stringify([...state.compare])); }

function card(k, v, s) { return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v), s ? el("div", { class: "s" }, s) : null); }

function labelBar(labels) {
  const total = Object.values(labels).reduce((a, b) => a + b, 0);
  if (!total) return el("p", { class: "muted" }, "No candidate has finished yet.");
  const entries = Object.entries(labels).sort((a, b) => b[1] - a[1]);
  return el("div", {},
    el("div", { class: "bar" }, entries.map(([l, n]) => el("span", { style: `width:${(100 * n) / total}%;background:${LABEL_COLORS[l] || "#555"}`, title: `${l}: ${n}` }))),
    el("div", { class: "legend" }, entries.map(([l, n]) => el("span", {}, el("i", { style: `background:${LABEL_COLORS[l] || "#555"}` }), `${l} ${n}`))));
}

function budget(spent, limit, fmt) { return limit ? `${fmt(spent)} of ${fmt(limit)}` : fmt(spent); }

async function overview(main) {
  const o = await api("/api/overview");
  state.objective = o.objective;
  const s = o.summary, metric = o.objective.metric;
  const base = s.baseline, best = s.best;
  const cards = [];
  cards.push(card("baseline", base && base.score !== null ? `${num(base.score)} ± ${num(s.noise.sigma)}` : base ? (base.label || base.status) : "not run yet",
    base ? `${metric}, ${base.runs} seed(s), trial #${base.number}` : ""));
  if (best && best.specialist !== "baseline") {
    const gain = base && base.score !== null && best.score !== null ? best.score - base.score : null;
    cards.push(card("best", num(best.score), `${signed(gain)} vs baseline · trial #${best.number} by ${best.specialist}`));
  } else {
    cards.push(card("best", base && base.label === "keep" ? "the baseline" : "–", "nothing has beaten the baseline yet"));
  }
  cards.push(card("trials", `${s.trials} of ${s.max_trials}`, `${s.running.length} running, ${s.queued} queued, ${s.waiting.length} waiting`));
  cards.push(card("compute", budget(s.compute_seconds, s.compute_budget, seconds), "training and evaluation, all runs"));
  cards.push(card("wall clock", budget(s.active_seconds, s.wall_clock_budget, seconds), "time the study has been driven"));
  const dollars = Object.values(s.model_spend || {}).reduce((a, x) => a + x.dollars, 0);
  cards.push(card("model spend", s.dollar_budget ? `$${dollars.toFixed(4)} of $${s.dollar_budget}` : `$${dollars.toFixed(4)}`,
    Object.entries(s.model_spend || {}).map(([n, x]) => `${n}: ${x.input_tokens} in, ${x.output_tokens} out`).join(" · ") || "no agent has spent anything"));

  const points = o.progress;
  const bestLine = points.filter((p) => p.best !== null);
  const dotsAt = (x) => points.filter((p) => p.score !== null).map((p) => ({ x: x(p), y: p.score, href: `#/trial/${p.trial}`,
    color: LABEL_COLORS[p.label] || "#555", r: p.label === "keep" ? 4.5 : 3, tip: `#${p.trial}: ${num(p.score)} (${p.label || "unfinished"})` }));
  const progressChart = (against, x) => chart({ title: `best ${metric} so far, against ${against}`, xlabel: against, ylabel: metric, step: true,
    lines: [{ name: "best kept", color: "#1e8e3e", points: bestLine.map((p) => [x(p), p.best]) }], dots: dotsAt(x) });
  const byTrials = progressChart("candidate trials", (p) => p.trials);
  const byCompute = progressChart("compute seconds", (p) => p.compute_seconds);

  show(main, 
    el("h1", {}, `Study ${o.study}`, " ", el("span", { class: "muted" }, `${o.objective.direction} ${metric}`)),
    el("div", { class: "cards" }, cards),
    el("div", { class: "panel" }, el("h2", {}, "Trials by label"), labelBar(s.labels)),
    el("div", { class: "charts" }, el("div", { class: "panel" }, byTrials), el("div", { class: "panel" }, byCompute)),
    keptPanel(o.kept, s.noise),
    REPORT && REPORT.best_diff ? el("div", { class: "panel" }, el("h2", {}, "The best recipe's change against the start"), diffView(REPORT.best_diff)) : null,
    failurePanel(o.failures, s.labels),
    s.running.length ? el("div", { class: "panel" }, el("h2", {}, "Running"), trialTable(s.running)) : null,
    s.waiting.length ? el("div", { class: "panel" }, el("h2", {}, "Waiting for your approval"), waitingList(s.waiting)) : null,
    el("div", { class: "panel" }, el("h2", {}, "Latest trials"), trialTable(o.latest)),
  );
}

function keptPanel(kept, noise) {
  const changes = (kept || []).filter((k) => k.specialist !== "baseline");
  if (!changes.length) return null;
  return el("div", { class: "panel" }, el("h2", {}, "What worked"),
    el("p", { class: "muted" }, `Each change beat the best before it by more than the noise (the study's runs spread by ${num(noise.sigma)} between seeds).`),
    el("table", {}, el("tr", {}, ["trial", "specialist", "score", "spread of its runs", "change vs parent", "hypothesis", "papers"].map((h) => el("th", {}, h))),
      changes.map((k) => el("tr", { class: "click", onclick: () => { location.hash = `#/trial/${k.number}`; } },
        el("td", {}, trialLink(k.number)), el("td", {}, k.specialist), el("td", { class: "num" }, `${num(k.score)} (${k.runs} runs)`),
        el("td", { class: "num" }, num(k.spread)), el("td", { class: "num" }, signed(k.delta)), el("td", { class: "hyp" }, k.hypothesis),
        el("td", {}, (k.papers || []).map((p) => el("div", { title: p.id }, p.title || p.id)))))));
}

function failurePanel(failures, labels) {
  const entries = Object.entries(failures || {});
  if (!entries.length) return null;
  return el("div", { class: "panel" }, el("h2", {}, "Failures, with the latest examples"),
    entries.map(([label, examples]) => el("div", {},
      el("div", { class: "row" }, labelTag(label), `${labels[label] || examples.length} trial(s)`),
      el("table", {}, examples.map((e) => el("tr", {}, el("td", {}, trialLink(e.number)), el("td", {}, e.specialist),
        el("td", { class: "hyp" }, e.reason || ""), el("td", { class: "muted" }, e.hypothesis)))))));
}

function trialTable(trials) {
  return el("table", {},
    el("tr", {}, el("th", {}, "trial"), el("th", {}, "specialist"), el("th", {}, "label"), el("th", { class: "num" }, "score"), el("th", {}, "hypothesis")),
    trials.map((t) => el("tr", { class: "click", onclick: () => { location.hash = `#/trial/${t.number}`; } },
      el("td", {}, trialLink(t.number)), el("td", {}, t.specialist), el("td", {}, labelTag(t.label, t.status)),
      el("td", { class: "num" }, num(t.score)), el("td", { class: "hyp" }, t.hypothesis))));
}

function waitingList(waiting) {
  return el("div", {}, waiting.map((w) => {
    const note = el("input", { type: "text", placeholder: "a note for the specialists (optional when rejecting)", "aria-label": `note for trial ${w.number}` });
    const status = el("span", { class: "muted" });
    const act = async (what) => {
      status.textContent = "…";
      try {
        await api(`/api/trials/${w.number}/${what}`, { body: what === "reject" ? { note: note.value } : {} });
        status.textContent = what === "approve" ? "approved: it runs at the next free slot" : "rejected";
        refresh();
      } catch (e) { status.textContent = e.message; status.className = "error"; }
    };
    return el("div", { class: "panel", "data-waiting": w.number },
      el("div", { class: "row" }, trialLink(w.number), el("b", {}, w.specialist), el("span", { class: "hyp" }, w.hypothesis)),
      w.patch ? diffView(w.patch) : null,
      REPORT ? null : el("div", { class: "row" }, note),
      REPORT ? null :
      el("div", { class: "row" },
        el("button", { class: "primary", onclick: () => act("approve") }, "Approve"),
        el("button", { class: "danger", onclick: () => act("reject") }, "Reject"), status));
  }));
}

// The tree comes as columns (a long study's is one small answer); the page works on nodes. A
// long study's tree has no hypotheses: a node's tip names it and a click opens it.
function treeNodes(c) {
  return c.number.map((number, i) => ({
    number, parent: c.parent[i], specialist: c.specialists[c.specialist[i]], status: c.status[i], label: c.label[i],
    score: c.score[i], hypothesis: c.hypothesis ? c.hypothesis[i] : null,
  }));
}

async function tree(main) {
  const t = await api("/api/trials");
  const objective = t.objective;
  const nodes = treeNodes(t.tree);
  const onPath = new Set(t.path_to_best || []);
  const scored = nodes.filter((n) => n.score !== null);
  const W = 1100, H = 520, L = 60, R = 16, T = 24, B = 60;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "lineage tree" });
  if (!nodes.length) { show(main, el("h1", {}, "Lineage"), el("p", { class: "muted" }, "No trial yet.")); return; }
  const n0 = nodes[0].number, n1 = Math.max(nodes[nodes.length - 1].number, n0 + 1);
  let [y0, y1] = extent(scored.map((n) => n.score));
  if (!scored.length) { y0 = 0; y1 = 1; }
  if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
  // Better is up, whichever the direction.
  const top = T, bottom = H - B - 30;
  const sx = scale(n0, n1, L, W - R);
  const sy = objective.direction === "minimize" ? scale(y0, y1, top, bottom) : scale(y0, y1, bottom, top);
  const failY = H - B - 6; // trials with no score sit on a band below the scored ones
  const pos = new Map(nodes.map((n) => [n.number, [sx(n.number), n.score === null ? failY : sy(n.score)]]));
  for (const t2 of ticks(y0, y1, 6)) {
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(t2), y2: sy(t2), class: "grid" }));
    root.append(svg("text", { x: L - 6, y: sy(t2) + 4, "text-anchor": "end" }, num(t2)));
  }
  root.append(svg("text", { x: L - 6, y: failY + 4, "text-anchor": "end" }, "no score"));
  root.append(svg("text", { x: (L + W) / 2, y: H - 8, "text-anchor": "middle" },
    `trial number; higher is better ${objective.metric}${objective.direction === "minimize" ? " (lower values)" : ""}`));
  for (const t2 of ticks(n0, n1, 10)) root.append(svg("text", { x: sx(t2), y: H - B + 20, "text-anchor": "middle" }, String(t2)));
  const edges = svg("g", {}), dots = svg("g", {});
  const tipText = (n) => `#${n.number} ${n.specialist}: ${n.label || n.status}${n.score !== null ? " · " + num(n.score) : ""}${n.hypothesis === null ? "" : "\n" + n.hypothesis}`;
  const open = (n) => { hideTip(); location.hash = `#/trial/${n.number}`; };
  // A node and an edge each are elements while a study is small; a large one is drawn as one
  // path per colour (edges only on the path to the best), and the pointer finds the nearest trial.
  const large = nodes.length > LARGE_TREE;
  const byColor = new Map(), plain = [];
  for (const n of nodes) {
    if (n.parent === null || !pos.has(n.parent)) continue;
    const [x1, yA] = pos.get(n.parent), [x2, yB] = pos.get(n.number);
    const best = onPath.has(n.number) && onPath.has(n.parent);
    if (best) edges.append(svg("line", { x1, y1: yA, x2, y2: yB, class: "edge best" }));
    else if (!large) plain.push(svg("line", { x1, y1: yA, x2, y2: yB, class: "edge" }));
  }
  edges.prepend(...plain);
  for (const n of nodes) {
    const [x, y] = pos.get(n.number);
    const best = n.number === t.best;
    if (large && !best && n.label !== "keep") {
      const c = colorOf(n);
      byColor.set(c, (byColor.get(c) || "") + `M${x.toFixed(1)},${y.toFixed(1)}h1.6v1.6h-1.6z`);
      continue;
    }
    dots.append(svg("circle", { cx: x, cy: y, r: best ? 7 : n.label === "keep" ? 5.5 : 4, fill: colorOf(n), class: best ? "node best" : "node",
      "data-trial": n.number, onmousemove: (e) => { e.stopPropagation(); showTip(e, tipText(n)); }, onmouseleave: hideTip,
      onclick: (e) => { e.stopPropagation(); open(n); } }));
  }
  for (const [c, d] of byColor) dots.prepend(svg("path", { d, fill: c, stroke: c, "stroke-width": 1.5 }));
  if (large) {
    const nearest = (e) => {
      const box = root.getBoundingClientRect();
      const X = ((e.clientX - box.left) / box.width) * W, Y = ((e.clientY - box.top) / box.height) * H;
      let best = null, d2 = 100;
      for (const n of nodes) {
        const [x, y] = pos.get(n.number);
        const d = (x - X) ** 2 + (y - Y) ** 2;
        if (d < d2) { d2 = d; best = n; }
      }
      return best;
    };
    root.addEventListener("mousemove", (e) => { const n = nearest(e); if (n) showTip(e, tipText(n)); else hideTip(); });
    root.addEventListener("mouseleave", hideTip);
    root.addEventListener("click", (e) => { const n = nearest(e); if (n) open(n); });
  }
  root.append(edges, dots);
  const counts = {};
  for (const n of nodes) { const k = n.label || n.status; counts[k] = (counts[k] || 0) + 1; }
  show(main, 
    el("h1", {}, "Lineage", " ", el("span", { class: "muted" }, `${nodes.length} trials; the path to the best is drawn thick`)),
    el("div", { class: "panel" }, root,
      el("div", { class: "legend" }, Object.entries(counts).map(([k, c]) => el("span", {}, el("i", { style: `background:${LABEL_COLORS[k] || STATUS_COLORS[k] || "#555"}` }), `${k} ${c}`)))),
    t.best !== null ? el("div", { class: "panel" }, el("h2", {}, "Path to the best"), el("div", { class: "row" }, (t.path_to_best || []).map((n, i) => [i ? "→" : null, trialLink(n)]))) : null,
  );
}

function diffView(patch) {
  const pre = el("pre", { class: "diff" });
  for (const line of patch.split("\n")) {
    const cls = line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") ? "file"
      : line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : null;
    pre.append(el("span", { class: cls }, line), "\n");
  }
  return pre;
}

function metricCharts(metrics, runsLabel) {
  const byName = {};
  for (const m of metrics) {
    const key = m.name;
    (byName[key] = byName[key] || {});
    const run = runsLabel ? runsLabel(m) : `run ${m.run_idx}`;
    (byName[key][run] = byName[key][run] || []).push([m.step !== null ? m.step : m.at_ms, m.value]);
  }
  const palette = ["#1a73e8", "#e8710a", "#1e8e3e", "#9334e6", "#c5221f", "#00897b", "#5f6368"];
  return Object.entries(byName).map(([name, runs]) => el("div", { class: "panel" }, chart({ title: name, xlabel: "step", ylabel: name,
    lines: Object.entries(runs).map(([r, pts], i) => ({ name: r, color: palette[i % palette.length], points: pts.sort((a, b) => a[0] - b[0]) })) })));
}

function knobTable(knobs, parentKnobs) {
  if (!knobs) return null;
  return el("table", {}, el("tr", {}, el("th", {}, "knob"), el("th", {}, "value"), el("th", {}, "parent")),
    Object.entries(knobs).map(([k, v]) => {
      const p = parentKnobs ? parentKnobs[k] : undefined;
      const changed = p !== undefined && JSON.stringify(p) !== JSON.stringify(v);
      return el("tr", {}, el("td", {}, k), el("td", { style: changed ? "font-weight:600" : null }, JSON.stringify(v)), el("td", { class: "muted" }, p === undefined ? "–" : JSON.stringify(p)));
    }));
}

function transcriptView(tr) {
  if (!tr) return null;
  const entries = tr.entries || [];
  return el("div", { class: "panel transcript" }, el("h2", {}, "Agent transcript"),
    el("p", { class: "muted" }, `${tr.spend ? tr.spend.input_tokens : 0} tokens in, ${tr.spend ? tr.spend.output_tokens : 0} out, $${tr.spend ? tr.spend.dollars.toFixed(4) : "0"}`),
    entries.map((e) => el("div", { class: `entry ${e.kind}${e.is_error ? " err" : ""}` },
      el("div", { class: "who" }, e.kind.replace("_", " "), e.tool ? ` · ${e.tool}` : ""), el("pre", { class: "wrap" }, e.text))));
}

async function trialPage(main, number) {
  const d = await api(`/api/trials/${number}`);
  const t = d.trial;
  const inCompare = state.compare.has(t.number);
  const toggle = el("button", { onclick: () => {
    if (state.compare.has(t.number)) state.compare.delete(t.number); else state.compare.add(t.number);
    saveCompare(); route();
  } }, inCompare ? "Remove from compare" : "Add to compare");
  const facts = el("table", {},
    row("specialist", t.specialist),
    row("built on", t.parent !== null ? trialLink(t.parent) : "–"),
    t.retry_of !== null ? row("retry of", [trialLink(t.retry_of), " (lost to an infrastructure fault)"]) : null,
    row("label", [labelTag(t.label, t.status), " ", t.reason || ""]),
    row("score", t.score !== null ? `${num(t.score)} over ${t.runs} run(s)` : "–"),
    row("expected change", signed(t.expected_delta)),
    row("measured change", d.measured_delta !== null ? `${signed(d.measured_delta)} against trial #${t.parent} (${num(d.parent_score)})` : "–"),
    Object.keys(t.scores || {}).length ? row("metrics", Object.entries(t.scores).map(([k, v]) => `${k} ${num(v)}`).join(", ")) : null,
    row("cost", `train ${seconds(t.train_seconds)}, eval ${seconds(t.eval_seconds)}, peak memory ${bytes(t.peak_rss_bytes)}, artifact ${bytes(t.artifact_bytes)}`),
    row("commit", t.commit || "–"),
    row("times", `proposed ${when(t.created_ms)}, started ${when(t.started_ms)}, finished ${when(t.finished_ms)}`));
  show(main, 
    el("h1", {}, `Trial #${t.number}`, " ", labelTag(t.label, t.status), " ", toggle),
    el("div", { class: "panel" }, el("div", { class: "hyp" }, t.hypothesis), facts),
    d.knobs ? el("div", { class: "panel" }, el("h2", {}, "Knobs"), knobTable(d.knobs, d.parent_knobs)) : null,
    t.patch ? el("div", { class: "panel" }, el("h2", {}, "Diff"), diffView(t.patch)) : null,
    d.metrics.length ? el("div", { class: "charts" }, metricCharts(d.metrics)) : null,
    el("div", { class: "panel" }, el("h2", {}, "Runs"), d.runs.length ? d.runs.map((r) => el("div", {},
      el("div", { class: "row" }, el("b", {}, `run ${r.idx}`), `${r.purpose}, seed ${r.seed}`, `score ${num(r.score)}`,
        `train ${seconds(r.train_seconds)}`, `eval ${seconds(r.eval_seconds)}`, r.timed_out ? "timed out" : `exit ${r.exit_code !== null ? r.exit_code : "signal " + r.signal}`),
      r.log_tail ? el("pre", {}, r.log_tail) : null, r.eval_log_tail ? el("pre", {}, r.eval_log_tail) : null)) : el("p", { class: "muted" }, "No run yet.")),
    t.log_excerpt ? el("div", { class: "panel" }, el("h2", {}, "Log excerpt"), el("pre", {}, t.log_excerpt)) : null,
    (d.cites || []).length ? el("div", { class: "panel" }, el("h2", {}, "Papers it cites"), el("table", {},
      el("tr", {}, ["card", "technique", "part", "paper", "claimed effect"].map((h) => el("th", {}, h))),
      d.cites.map((c) => el("tr", {}, el("td", {}, String(c.card.id)), el("td", {}, c.card.technique), el("td", {}, c.card.part),
        el("td", {}, `${c.title} [${c.card.paper}]`), el("td", { class: "hyp" }, c.card.effect || "–"))))) : null,
    (d.data || []).length ? el("div", { class: "panel" }, el("h2", {}, "Data"), el("table", {},
      el("tr", {}, ["run", "role", "file", "version"].map((h) => el("th", {}, h))),
      d.data.map((u) => el("tr", {}, el("td", {}, u.run_idx === null ? "–" : `run ${u.run_idx}`), el("td", {}, u.role),
        el("td", {}, el("code", {}, u.path)), el("td", {}, el("code", { title: u.version }, u.version.slice(0, 12))))))) : null,
    transcriptView(d.transcript),
    el("div", { class: "panel" }, el("h2", {}, "Events"), el("table", {}, d.events.map((e) => el("tr", {}, el("td", {}, when(e.at_ms)), el("td", {}, e.kind),
      el("td", {}, el("code", {}, e.payload === null ? "" : JSON.stringify(e.payload).slice(0, 300))))))),
  );
}

function row(k, v) { return el("tr", {}, el("th", {}, k), el("td", {}, v)); }

async function specialistsPage(main) {
  const d = await api("/api/specialists");
  show(main, el("h1", {}, "Specialists"), el("div", { class: "panel" }, el("table", {},
    el("tr", {}, ["specialist", "trials", "keeps", "running", "wasted", "waste by label", "compute", "improvement", "per trial"].map((h, i) => el("th", { class: i && i !== 5 ? "num" : null }, h))),
    d.specialists.map((s) => {
      const wasted = Object.values(s.waste).reduce((a, b) => a + b, 0);
      return el("tr", { "data-specialist": s.name }, el("td", {}, s.name), el("td", { class: "num" }, s.trials), el("td", { class: "num" }, s.keeps),
        el("td", { class: "num" }, s.running), el("td", { class: "num" }, wasted),
        el("td", {}, Object.entries(s.waste).map(([l, n]) => [labelTag(l), ` ${n} `])),
        el("td", { class: "num" }, seconds(s.compute_seconds)), el("td", { class: "num" }, signed(s.improvement)), el("td", { class: "num" }, signed(s.improvement_per_trial)));
    }))),
    el("p", { class: "muted" }, "Improvement: how far each specialist's keeps moved the best (positive is better, whichever the direction)."));
}

async function comparePage(main, list) {
  const numbers = list ? list.split(",").map(Number).filter((n) => Number.isInteger(n) && n >= 0) : [...state.compare].sort((a, b) => a - b);
  if (numbers.length < 2) {
    show(main, el("h1", {}, "Compare"), el("p", { class: "muted" }, "Add two or more trials from their pages (\u201cAdd to compare\u201d), or open #/compare/3,7."));
    return;
  }
  const trials = await Promise.all(numbers.map((n) => api(`/api/trials/${n}`)));
  const knobNames = [...new Set(trials.flatMap((d) => Object.keys(d.knobs || {})))].sort();
  const knobRows = knobNames.map((k) => {
    const values = trials.map((d) => (d.knobs && k in d.knobs ? JSON.stringify(d.knobs[k]) : "–"));
    const differ = new Set(values).size > 1;
    return el("tr", {}, el("th", {}, k), values.map((v) => el("td", { style: differ ? "font-weight:600" : null }, v)));
  });
  const head = el("tr", {}, el("th", {}, ""), trials.map((d) => el("th", {}, trialLink(d.trial.number), " ", d.trial.specialist)));
  const palette = ["#1a73e8", "#e8710a", "#1e8e3e", "#9334e6", "#c5221f", "#00897b"];
  const names = [...new Set(trials.flatMap((d) => d.metrics.map((m) => m.name)))];
  const curves = names.map((name) => el("div", { class: "panel" }, chart({ title: name, xlabel: "step", ylabel: name,
    lines: trials.map((d, i) => ({ name: `#${d.trial.number}`, color: palette[i % palette.length],
      points: d.metrics.filter((m) => m.name === name && m.run_idx === 0).map((m) => [m.step !== null ? m.step : m.at_ms, m.value]).sort((a, b) => a[0] - b[0]) })) })));
  show(main, 
    el("h1", {}, "Compare ", numbers.map((n) => [trialLink(n), " "])),
    el("div", { class: "panel" }, el("table", {}, head,
      el("tr", {}, el("th", {}, "label"), trials.map((d) => el("td", {}, labelTag(d.trial.label, d.trial.status)))),
      el("tr", {}, el("th", {}, "score"), trials.map((d) => el("td", {}, num(d.trial.score)))),
      el("tr", {}, el("th", {}, "hypothesis"), trials.map((d) => el("td", { class: "hyp" }, d.trial.hypothesis))),
      knobRows)),
    names.length ? el("div", { class: "charts" }, curves) : null,
    el("div", { class: "compare", style: `grid-template-columns:repeat(${trials.length},minmax(0,1fr))` },
      trials.map((d) => el("div", { class: "panel" }, el("h2", {}, `Diff of #${d.trial.number}`), d.trial.patch ? diffView(d.trial.patch) : el("p", { class: "muted" }, "no change")))),
    el("button", { onclick: () => { state.compare.clear(); saveCompare(); route(); } }, "Clear the comparison"),
  );
}

async function oversight(main) {
  const d = await api("/api/notes");
  const text = el("textarea", { rows: 3, placeholder: "What every specialist should know from now on", "aria-label": "note" });
  const status = el("span", { class: "muted" });
  const send = async () => {
    try { await api("/api/notes", { body: { text: text.value } }); text.value = ""; status.textContent = "noted"; refresh(); }
    catch (e) { status.textContent = e.message; status.className = "error"; }
  };
  show(main, 
    el("h1", {}, "Oversight"),
    el("h2", {}, "Waiting for your approval"),
    d.waiting.length ? waitingList(d.waiting) : el("p", { class: "muted" }, "Nothing waits. Start a study with `postdoc run --approve expensive` (or `each`) to approve proposals before they run."),
    el("h2", {}, "Notes to the specialists"),
    REPORT ? null : el("div", { class: "panel" }, text, el("div", { class: "row" }, el("button", { class: "primary", onclick: send }, "Add the note"), status)),
    el("div", { class: "panel" }, d.notes.length ? el("table", {}, d.notes.slice().reverse().map((n) => el("tr", {}, el("td", {}, n.trial !== null ? trialLink(n.trial) : "study"), el("td", { class: "hyp" }, n.text))))
      : el("p", { class: "muted" }, "No note yet.")),
  );
}

async function papersPage(main) {
  const d = await api("/api/papers");
  const cardRow = (c) => el("div", { class: "card" },
    el("div", {}, el("b", {}, `card ${c.id}: ${c.technique}`), " ", el("span", { class: "muted" }, `${c.part}, from the ${c.section}`)),
    c.effect ? el("div", {}, "effect: ", el("span", { class: "hyp" }, c.effect)) : null,
    c.setting ? el("div", { class: "muted" }, "setting: ", c.setting) : null,
    Object.entries(c.evidence || {}).map(([field, e]) => el("div", { class: "muted" }, `${field} rests on (${e.section}): `, el("q", {}, e.sentence))));
  show(main,
    el("h1", {}, "Papers", " ", el("span", { class: "muted" }, `${d.total} in the library`)),
    d.papers.length ? d.papers.map((p) => el("div", { class: "panel", "data-paper": p.id },
      el("h2", {}, p.title || p.id),
      el("div", { class: "muted" }, [p.id, p.year, p.venue, p.authors.join(", ")].filter((x) => x).join(" · ")),
      el("div", {},
        [p.citation_count != null ? `cited ${p.citation_count} times` : null,
          `${p.references} references and ${p.cited_by} citing papers in the library`].filter((x) => x).join(" · "),
        p.cited_in_trials.length ? [" · cited by trials ", p.cited_in_trials.map((t, i) => [i ? ", " : null, trialLink(t)])] : null),
      p.abstract ? el("details", {}, el("summary", {}, "abstract"), el("p", { class: "hyp" }, p.abstract)) : null,
      p.datasets.length ? el("div", {}, "datasets: ", p.datasets.map(([name, how], i) => [i ? ", " : null, el("code", {}, `hub:${name}`), ` (${how})`])) : null,
      p.cards.map(cardRow)))
      : el("p", { class: "muted" }, "No paper yet: `postdoc papers add FILE_OR_ID` or `postdoc papers crawl --seed ID` fills the library."));
}

async function dataPage(main) {
  const d = await api("/api/data");
  show(main,
    el("h1", {}, "Data"),
    el("p", { class: "muted" }, "Every dataset version the study used: its protected evaluation data, and the examples each run trained on, named by the hash of their rows."),
    d.versions.length ? el("div", { class: "panel" }, el("table", {},
      el("tr", {}, ["version", "role", "rows", "shape", "source", "licence", "made from", "used"].map((h) => el("th", {}, h))),
      d.versions.map((v) => {
        const me = v.lineage[0] || {};
        const made = v.lineage.slice(1).map((p, i) => `${(v.lineage[i].transform || {}).op || "?"} of ${p.version.slice(0, 12)}`).join(", ");
        return el("tr", {}, el("td", {}, el("code", { title: v.version }, v.version.slice(0, 12))), el("td", {}, v.roles.join(", ")),
          el("td", { class: "num" }, me.rows !== undefined ? me.rows : "–"), el("td", {}, me.shape || "–"), el("td", {}, me.source || "–"),
          el("td", {}, me.licence || "–"), el("td", {}, made || "–"),
          el("td", {}, v.runs.filter((r) => r.trial !== null).slice(0, 8).map((r, i) => [i ? ", " : null, trialLink(r.trial)]), v.uses > 8 ? " …" : null));
      })))
      : el("p", { class: "muted" }, "No dataset version recorded yet."));
}

// ---- routing and live updates ----

let rendering = null, again = false;
async function route() {
  if (rendering) { again = true; return rendering; }
  const main = document.getElementById("main");
  const [, page, arg] = (location.hash || "#/").match(/^#\/?([^/]*)\/?(.*)$/) || [];
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === `#/${page || ""}`));
  const scrollY = window.scrollY;
  rendering = (async () => {
    try {
      if (!page) await overview(main);
      else if (page === "tree") await tree(main);
      else if (page === "trial") await trialPage(main, Number(arg));
      else if (page === "specialists") await specialistsPage(main);
      else if (page === "compare") await comparePage(main, arg);
      else if (page === "oversight") await oversight(main);
      else if (page === "papers") await papersPage(main);
      else if (page === "data") await dataPage(main);
      else show(main, el("p", { class: "error" }, "No such page."));
      window.scrollTo(0, scrollY);
    } catch (e) {
      show(main, el("p", { class: "error" }, `Could not load this page: ${e.message}`));
    }
  })();
  await rendering;
  rendering = null;
  if (again) { again = false; return route(); }
}

function refresh() { route(); header(); }

async function header() {
  try {
    const o = await api("/api/notes");
    document.getElementById("study-name").textContent = o.study;
    document.title = `postdoc: ${o.study}`;
    document.getElementById("waiting-count").textContent = o.waiting.length ? `(${o.waiting.length})` : "";
  } catch (_) { /* the page shows the error */ }
}

function live() {
  const badge = document.getElementById("live");
  if (REPORT) {
    badge.textContent = `report of ${when(REPORT.generated_ms)}`;
    return;
  }
  const source = new EventSource("/api/stream");
  let first = true;
  source.addEventListener("open", () => { badge.textContent = "live"; badge.className = "live on"; });
  source.addEventListener("error", () => { badge.textContent = "reconnecting"; badge.className = "live off"; });
  source.addEventListener("change", () => {
    if (first) { first = false; return; } // the page was just drawn
    // Do not redraw under a researcher who is typing a note.
    const a = document.activeElement;
    if (a && (a.tagName === "TEXTAREA" || a.tagName === "INPUT") && a.value) return;
    refresh();
  });
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.body.append(tip);
  refresh();
  live();
});
