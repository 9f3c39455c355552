// dgm explorer: lineage tree on a canvas, agent details, compare, progress, live refresh.
// Written for this project, no libraries: the page must work offline, and a
// canvas with batched paths draws 10,000+ agents in a few milliseconds where
// one SVG element per agent would not stay responsive.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const XUNIT = 16;   // world units between neighbouring leaves
  const YUNIT = 70;   // world units between tree levels
  const BUCKETS = 20; // score colour buckets (+1 for unscored)
  const POLL_MS = 3000;

  const state = {
    campaign: null, g: null, version: null, status: null, selected: -1, compare: -1,
    view: { kx: 1, ky: 1, tx: 0, ty: 0 }, dirty: false, hover: -1,
  };
  const explorer = window.dgmExplorer = {
    ready: false, firstRenderMs: null, lastDrawMs: null, nodeCount: 0, draws: 0, graphLoads: 0,
    screenPos: (id) => screenPosOf(id), select: (id) => selectById(id, false),
  };

  async function getJSON(url) {
    const resp = await fetch(url, { cache: "no-store" });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    return body;
  }
  // Agents write much of what is shown: control characters (a carriage return
  // that overprints, say) and the bidirectional overrides that make code read
  // backwards are shown as escapes, as the CLI does (dgm/safe_text.py).
  const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
  const shownEscape = (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u" + n.toString(16).padStart(4, "0");
  };
  const esc = (s) => String(s ?? "").replace(UNSAFE, shownEscape)
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const fmt = (s) => (s === null || s === undefined ? "–" : Number(s).toFixed(3));
  // A cost whose calls had no known price is "unpriced", never "$0.0000" (which reads as free).
  const money = (x, unpriced = 0) => {
    const figure = "$" + Number(x || 0).toFixed(4);
    return unpriced ? (Number(x || 0) ? figure + " + unpriced" : "unpriced") : figure;
  };
  // A campaign's spend split by role (llm_calls.purpose), in the CLI's words and order.
  const ROLE_NAMES = { task: "task runs", diagnose: "diagnosis", self_modify: "self-modification" };
  function spendByRole(byRole) {
    const order = ["task", "diagnose", "self_modify", ...Object.keys(byRole || {}).filter((p) => !(p in ROLE_NAMES)).sort()];
    const parts = order.filter((p) => byRole && byRole[p]).map((p) => `${esc(ROLE_NAMES[p] || p)} ${money(byRole[p].cost_usd, byRole[p].unpriced_calls)}`);
    return parts.length ? parts.join(" · ") : "no LLM calls yet";
  }
  // What later evaluations and replays of an agent (other campaigns) cost, apart from its own campaign's spend.
  function laterCost(cost) {
    const later = Object.entries(cost.elsewhere_by_kind || {});
    if (!later.length) return "";
    return "; later " + later.map(([k, v]) => `${esc(k)} ${money(v.cost_usd, v.unpriced_calls)}`).join(", ") + `; ${money(cost.total_usd, cost.unpriced_calls)} in all`;
  }

  // Same ramp as dgm.lineage.graph.score_rgb: red (0) -> amber (0.5) -> green (1).
  function scoreRGB(s) {
    if (s === null || s === undefined) return [140, 140, 140];
    s = Math.min(1, Math.max(0, s));
    if (s < 0.5) { const t = s / 0.5; return [214 + (240 - 214) * t, 39 + (173 - 39) * t, 40]; }
    const t = (s - 0.5) / 0.5; return [240 + (44 - 240) * t, 173 + (160 - 173) * t, 40 + 4 * t];
  }
  const rgb = (c) => `rgb(${c.map(Math.round).join(",")})`;
  const scoreColour = (s) => rgb(scoreRGB(s));
  const bucketColours = [...Array(BUCKETS + 1).keys()].map((b) => b === BUCKETS ? rgb(scoreRGB(null)) : rgb(scoreRGB((b + 0.5) / BUCKETS)));
  const bucketOf = (s) => (s === null || s === undefined ? BUCKETS : Math.min(BUCKETS - 1, Math.floor(s * BUCKETS)));
  // A score with its 95 % Wilson interval and n, as the server writes it (dgm.stats.intervals.score_label).
  const scoreBadge = (s, label) => `<span class="score" style="background:${scoreColour(s)}">${esc(label ?? fmt(s))}</span>`;

  // ---------------------------------------------------------------- layout
  // Tidy layered tree: leaves in depth-first order along x, parents centred
  // over their children, depth along y. O(n), iterative (lineages can be deep).
  function layout(g) {
    const n = g.ids.length;
    const parent = g.parent;
    const count = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) if (parent[i] >= 0) count[parent[i]]++;
    const start = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) start[i + 1] = start[i] + count[i];
    const kids = new Int32Array(Math.max(1, start[n]));
    const fill = start.slice(0, n);
    for (let i = 0; i < n; i++) if (parent[i] >= 0) kids[fill[parent[i]]++] = i;
    const x = new Float64Array(n), depth = new Int32Array(n), order = new Int32Array(n);
    let k = 0, leaf = 0, maxDepth = 0;
    const stack = [];
    for (let i = n - 1; i >= 0; i--) if (parent[i] < 0) stack.push(i);
    while (stack.length) {
      const v = stack.pop();
      order[k++] = v;
      const d = parent[v] >= 0 ? depth[parent[v]] + 1 : 0;
      depth[v] = d; if (d > maxDepth) maxDepth = d;
      if (start[v + 1] === start[v]) x[v] = leaf++;
      for (let j = start[v + 1] - 1; j >= start[v]; j--) stack.push(kids[j]);
    }
    for (let j = k - 1; j >= 0; j--) {
      const v = order[j];
      if (start[v + 1] > start[v]) x[v] = (x[kids[start[v]]] + x[kids[start[v + 1] - 1]]) / 2;
    }
    const wx = new Float64Array(n), wy = new Float64Array(n);
    for (let i = 0; i < n; i++) { wx[i] = x[i] * XUNIT; wy[i] = depth[i] * YUNIT; }
    const buckets = [...Array(BUCKETS + 1)].map(() => []);
    let maxRuns = 1;
    for (let i = 0; i < n; i++) { buckets[bucketOf(g.score[i])].push(i); if (g.runs[i] > maxRuns) maxRuns = g.runs[i]; }
    const index = new Map();
    g.ids.forEach((id, i) => index.set(id, i));
    const rejected = g.statuses.indexOf("rejected"), twin = g.statuses.indexOf("twin");
    return { wx, wy, leaves: Math.max(1, leaf), maxDepth, buckets: buckets.map((b) => Int32Array.from(b)),
             maxRuns, index, bestSet: new Set(g.best_path), rejected, twin };
  }

  // ---------------------------------------------------------------- canvas
  const canvas = $("#tree");
  const ctx = canvas.getContext("2d", { alpha: false });
  let cssW = 0, cssH = 0, dpr = 1;
  function resize() {
    const r = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(1, r.width); cssH = Math.max(1, r.height);
    canvas.width = Math.round(cssW * dpr); canvas.height = Math.round(cssH * dpr);
    requestDraw();
  }
  const sx = (wx) => wx * state.view.kx + state.view.tx;
  const sy = (wy) => wy * state.view.ky + state.view.ty;

  function fit() {
    const L = state.layout; if (!L) return;
    const pad = 30;
    const w = Math.max(XUNIT, (L.leaves - 1) * XUNIT), h = Math.max(YUNIT, L.maxDepth * YUNIT);
    const kx = (cssW - 2 * pad) / w, ky = Math.min(1.5, (cssH - 2 * pad) / h);
    state.view = { kx: Math.min(kx, 2), ky, tx: 0, ty: pad };
    state.view.tx = (cssW - (L.leaves - 1) * XUNIT * state.view.kx) / 2;
    requestDraw();
  }

  function nodeRadius(i) {
    const spacing = XUNIT * state.view.kx;
    const base = Math.max(1.2, Math.min(9, spacing * 0.42));
    const runs = state.g.runs[i] || 0;
    return base * (0.55 + 0.45 * Math.sqrt(runs / state.layout.maxRuns));
  }

  function requestDraw() {
    if (!state.dirty) { state.dirty = true; requestAnimationFrame(draw); }
  }

  function draw() {
    state.dirty = false;
    const t0 = performance.now();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, cssW, cssH);
    const g = state.g, L = state.layout;
    if (!g || !L) return;
    const n = g.ids.length, { wx, wy } = L, parent = g.parent;
    const margin = 20;
    const visible = (x, y) => x > -margin && x < cssW + margin && y > -margin && y < cssH + margin;
    // Edges: one path, one stroke. Elbow edges read better, straight ones when tiny.
    const spacing = XUNIT * state.view.kx;
    ctx.lineWidth = spacing > 6 ? 1 : 0.5;
    ctx.strokeStyle = "#b9b9b9";
    ctx.beginPath();
    for (let i = 0; i < n; i++) {
      const p = parent[i]; if (p < 0) continue;
      const x1 = sx(wx[p]), y1 = sy(wy[p]), x2 = sx(wx[i]), y2 = sy(wy[i]);
      if ((x1 < -margin && x2 < -margin) || (x1 > cssW + margin && x2 > cssW + margin) ||
          (y2 < -margin) || (y1 > cssH + margin)) continue;
      ctx.moveTo(x1, y1); ctx.lineTo(x2, y2);
    }
    ctx.stroke();
    // Twins: a dashed link to the agent whose code they repeat.
    const twinOf = g.twin_of || [];
    ctx.save(); ctx.setLineDash([4, 3]); ctx.strokeStyle = "#9467bd"; ctx.lineWidth = 1.2; ctx.beginPath();
    for (let i = 0; i < twinOf.length; i++) {
      const o = twinOf[i]; if (o < 0) continue;
      ctx.moveTo(sx(wx[i]), sy(wy[i])); ctx.lineTo(sx(wx[o]), sy(wy[o]));
    }
    ctx.stroke(); ctx.restore();
    // Best path on top, thick red.
    const best = g.best_path;
    if (best.length > 1) {
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(sx(wx[best[0]]), sy(wy[best[0]]));
      for (let j = 1; j < best.length; j++) ctx.lineTo(sx(wx[best[j]]), sy(wy[best[j]]));
      ctx.stroke();
    }
    // Nodes: one fill per colour bucket; tiny nodes as squares (much cheaper than arcs).
    const small = spacing * 0.42 < 2;
    for (let b = 0; b <= BUCKETS; b++) {
      const list = L.buckets[b]; if (!list.length) continue;
      ctx.fillStyle = bucketColours[b];
      ctx.beginPath();
      for (let j = 0; j < list.length; j++) {
        const i = list[j], x = sx(wx[i]), y = sy(wy[i]);
        if (!visible(x, y)) continue;
        const r = nodeRadius(i);
        if (small) ctx.rect(x - r, y - r, 2 * r, 2 * r);
        else { ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 6.2832); }
      }
      ctx.fill();
    }
    // Rejected agents and twins (not archive members of their own): a white veil, so admitted ones stand out.
    if ((L.rejected >= 0 || L.twin >= 0) && !small) {
      ctx.fillStyle = "rgba(255,255,255,0.55)"; ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (g.status[i] !== L.rejected && g.status[i] !== L.twin) continue;
        const x = sx(wx[i]), y = sy(wy[i]); if (!visible(x, y)) continue;
        const r = nodeRadius(i); ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 6.2832);
      }
      ctx.fill();
    }
    ring(best.length ? best[best.length - 1] : -1, "#d62728", 2.5, 4);
    ring(state.compare, "#9467bd", 3, 6);
    ring(state.selected, "#1f77b4", 3, 6);
    ring(state.hover, "#333", 1.5, 3);
    // Labels only when there is room for them.
    if (spacing > 46) {
      ctx.fillStyle = "#333"; ctx.font = "11px ui-monospace, monospace"; ctx.textAlign = "center";
      let drawn = 0;
      for (let i = 0; i < n && drawn < 3000; i++) {
        const x = sx(wx[i]), y = sy(wy[i]); if (!visible(x, y)) continue;
        const r = nodeRadius(i);
        ctx.fillText(g.ids[i].slice(0, 8), x, y + r + 12);
        if (g.score[i] !== null) ctx.fillText(g.score_label[i], x, y + r + 24);
        else if (twinOf[i] >= 0) ctx.fillText("twin of " + g.ids[twinOf[i]].slice(0, 8), x, y + r + 24);
        drawn++;
      }
    }
    explorer.draws++;
    explorer.lastDrawMs = performance.now() - t0;
    if (!explorer.ready) {
      explorer.ready = true;
      explorer.firstRenderMs = performance.now();
      canvas.dataset.rendered = "1";
    }
  }

  function ring(i, colour, width, extra) {
    if (i < 0 || !state.g) return;
    const x = sx(state.layout.wx[i]), y = sy(state.layout.wy[i]);
    ctx.strokeStyle = colour; ctx.lineWidth = width;
    ctx.beginPath(); ctx.arc(x, y, nodeRadius(i) + extra, 0, 6.2832); ctx.stroke();
  }

  function hitTest(px, py) {
    const g = state.g, L = state.layout; if (!g) return -1;
    let best = -1, bestD = Infinity;
    for (let i = 0; i < g.ids.length; i++) {
      const dx = sx(L.wx[i]) - px, dy = sy(L.wy[i]) - py;
      const d = dx * dx + dy * dy, r = nodeRadius(i) + 4;
      if (d <= r * r && d < bestD) { best = i; bestD = d; }
    }
    return best;
  }

  function screenPosOf(id) {
    const i = state.layout && state.layout.index.get(id);
    if (i === undefined || i === null) return null;
    const rect = canvas.getBoundingClientRect();
    return { x: rect.left + sx(state.layout.wx[i]), y: rect.top + sy(state.layout.wy[i]) };
  }

  function centreOn(i) {
    const L = state.layout;
    if (XUNIT * state.view.kx < 30) { const f = 30 / (XUNIT * state.view.kx); state.view.kx *= f; state.view.ky = Math.max(state.view.ky, 0.8); }
    state.view.tx = cssW / 2 - L.wx[i] * state.view.kx;
    state.view.ty = cssH / 2 - L.wy[i] * state.view.ky;
    requestDraw();
  }

  // ---------------------------------------------------------------- interaction
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, tx: state.view.tx, ty: state.view.ty, moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    const rect = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; canvas.classList.add("dragging"); }
      if (drag.moved) { state.view.tx = drag.tx + dx; state.view.ty = drag.ty + dy; requestDraw(); }
      return;
    }
    const i = hitTest(e.clientX - rect.left, e.clientY - rect.top);
    if (i !== state.hover) { state.hover = i; requestDraw(); }
    const tip = $("#tooltip");
    if (i >= 0) {
      const g = state.g;
      const twin = g.twin_of && g.twin_of[i] >= 0 ? `\ntwin of ${g.ids[g.twin_of[i]]} (same code)` : "";
      tip.textContent = `${g.ids[i]}\ngen ${g.generation[i]}  score ${g.score_label[i] ?? "–"}\n${g.statuses[g.status[i]]}  runs ${g.runs[i]}${twin}`;
      tip.style.left = (e.clientX - rect.left + 14) + "px"; tip.style.top = (e.clientY - rect.top + 10) + "px";
      tip.hidden = false;
    } else tip.hidden = true;
  });
  canvas.addEventListener("pointerup", (e) => {
    canvas.classList.remove("dragging");
    const d = drag; drag = null;
    if (!d || d.moved) return;
    const rect = canvas.getBoundingClientRect();
    const i = hitTest(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) selectIndex(i, e.shiftKey);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    zoomAt(mx, my, Math.exp(-e.deltaY * 0.0015));
  }, { passive: false });
  function zoomAt(mx, my, f) {
    const v = state.view;
    const wxm = (mx - v.tx) / v.kx, wym = (my - v.ty) / v.ky;
    v.kx = Math.min(40, Math.max(1e-4, v.kx * f)); v.ky = Math.min(40, Math.max(1e-3, v.ky * f));
    v.tx = mx - wxm * v.kx; v.ty = my - wym * v.ky;
    requestDraw();
  }
  $("#fit").onclick = fit;
  $("#zin").onclick = () => zoomAt(cssW / 2, cssH / 2, 1.6);
  $("#zout").onclick = () => zoomAt(cssW / 2, cssH / 2, 1 / 1.6);
  window.addEventListener("resize", resize);
  $("#search").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !state.g) return;
    const q = e.target.value.trim();
    const i = state.g.ids.findIndex((id) => id.startsWith(q));
    if (i >= 0) { notice(""); selectIndex(i, e.shiftKey); centreOn(i); }
    else notice(`no agent id starting with "${q}" in ${state.g.campaign.name}`);
  });
  // A permalink or search that finds nothing says so (it used to leave the page as it was, silently).
  function notice(text) { $("#notice").textContent = text; }
  document.querySelectorAll("#side nav button").forEach((b) => { b.onclick = () => showTab(b.dataset.tab); });
  function showTab(name) {
    document.querySelectorAll("#side nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + name; });
    if (name === "progress") loadProgress();
  }

  // ---------------------------------------------------------------- selection & panels
  function selectById(id, compare) {
    if (!state.layout) return;
    let i = state.layout.index.get(id);
    if (i === undefined && id) {  // a prefix, as the CLI takes: if it names one agent
      const hits = state.g.ids.flatMap((x, k) => (x.startsWith(id) ? [k] : []));
      if (hits.length === 1) i = hits[0];
      else notice(hits.length ? `agent id "${id}" is ambiguous in ${state.g.campaign.name} (${hits.length} agents)`
        : `no agent "${id}" in campaign ${state.g.campaign.name}`);
    }
    if (i !== undefined) selectIndex(i, compare);
  }
  function selectIndex(i, compare) {
    if (compare && state.selected >= 0 && i !== state.selected) {
      state.compare = i; requestDraw(); showTab("compare"); loadCompare();
      return;
    }
    state.selected = i; requestDraw(); showTab("details");
    history.replaceState(null, "", `#campaign=${state.campaign}&agent=${state.g.ids[i]}`);
    loadDetails();
  }

  function diffHtml(diff) {
    if (!diff || !diff.trim()) return '<p class="hint">no changes</p>';
    const lines = diff.split("\n").map((l) => {
      const cls = l.startsWith("diff --git") ? "file" : l.startsWith("@@") ? "hunk" :
        (l.startsWith("+") && !l.startsWith("+++")) ? "add" : (l.startsWith("-") && !l.startsWith("---")) ? "del" : "";
      return cls ? `<span class="${cls}">${esc(l)}</span>` : esc(l);
    });
    return `<pre class="diff" data-testid="diff">${lines.join("\n")}</pre>`;
  }

  async function heatmapHtml(agentIds, title) {
    const hm = await getJSON("/api/heatmap?agents=" + encodeURIComponent(agentIds.join(",")));
    if (!hm.tasks.length) return `<h3>${esc(title)}</h3><p class="hint">no task results yet</p>`;
    let html = `<h3>${esc(title)}</h3><table class="heat" data-testid="heatmap"><tr><th></th>` +
      hm.tasks.map((t) => `<th class="task" title="${esc(t)}">${esc(t.length > 22 ? "…" + t.slice(-21) : t)}</th>`).join("") + "</tr>";
    for (const a of hm.agents) {
      html += `<tr><th class="agent">${esc(a.slice(0, 10))}</th>` + hm.tasks.map((t) => {
        const s = hm.status[a][t];
        return `<td class="cell c-${s || "none"}" title="${esc(a)} · ${esc(t)}: ${s || "not run"}" data-status="${s || ""}"></td>`;
      }).join("") + "</tr>";
    }
    return html + "</table>";
  }

  async function loadDetails() {
    const id = state.g.ids[state.selected];
    const pane = $("#tab-details");
    pane.innerHTML = `<p class="hint">loading ${esc(id)}…</p>`;
    let d;
    try { d = await getJSON("/api/agents/" + encodeURIComponent(id)); } catch (err) { pane.innerHTML = `<p class="st-error">${esc(err.message)}</p>`; return; }
    if (state.g.ids[state.selected] !== id) return; // a newer click won
    const stages = Object.entries(d.stages).map(([s, v]) => `${esc(s)}: ${v.resolved}/${v.finished} (${esc(v.label)})${v.unfinished ? ` (${v.unfinished} unfinished)` : ""}`).join(", ") || "–";
    const purposes = Object.entries(d.cost.by_purpose).map(([p, v]) =>
      `<tr><td>${esc(p)}</td><td>${v.calls}</td><td>${v.prompt_tokens + v.completion_tokens}</td><td>${money(v.cost_usd, v.unpriced_calls)}</td><td>${v.errors}</td></tr>`).join("");
    let html = `<h2 data-testid="agent-id">${esc(d.id)}</h2><table class="kv">
      <tr><td>status</td><td>${esc(d.status)}${d.rejection_reason ? " — " + esc(d.rejection_reason) : ""} (${esc(d.origin)})</td></tr>
      <tr><td>score</td><td data-testid="agent-score">${scoreBadge(d.score, d.score_label)} held-out ${esc(d.heldout_label)} · stages ${stages}</td></tr>
      <tr><td>generation</td><td>${d.generation}</td></tr>${d.twin_of ? `
      <tr data-testid="twin-of"><td>twin of</td><td><button class="link" data-agent="${esc(d.twin_of)}">${esc(d.twin_of)}</button> — the same code${d.status === "twin" ? `, so not evaluated again: its record is that agent's (${esc(d.twin_of_status)}, score ${esc(d.twin_of_label ?? "–")})` : ", evaluated anyway as a second sample"}</td></tr>` : ""}${d.twins.length ? `
      <tr data-testid="twins"><td>twins</td><td>${d.twins.slice(0, 20).map((c) => `<button class="link" data-agent="${esc(c)}">${esc(c.slice(0, 8))}</button>`).join(" ")}${d.twins.length > 20 ? " …" : ""} (later children with the same code)</td></tr>` : ""}
      <tr><td>parent</td><td>${d.parent_id ? `<button class="link" data-agent="${esc(d.parent_id)}">${esc(d.parent_id)}</button>` : "– (root)"}</td></tr>
      <tr><td>children</td><td>${d.children.slice(0, 20).map((c) => `<button class="link" data-agent="${esc(c)}">${esc(c.slice(0, 8))}</button>`).join(" ") || "–"}${d.children.length > 20 ? " …" : ""}</td></tr>
      <tr><td>commit</td><td>${d.commit ? `<code>${esc(d.commit.slice(0, 12))}</code>` : '<span class="hint">none: rejected before its code was committed</span>'}</td></tr>
      <tr><td>cost</td><td data-testid="agent-cost">${money(d.cost.campaign_usd, d.cost.campaign_unpriced_calls)} in ${d.cost.campaign_calls} LLM call${d.cost.campaign_calls === 1 ? "" : "s"} in its campaign${laterCost(d.cost)}${d.cost.scripted ? " (scripted models)" : ""}</td></tr>
      </table>`;
    if (d.diagnosis_target) html += `<h3>Diagnosis target</h3><pre class="wrap">${esc(JSON.stringify(d.diagnosis_target, null, 2))}</pre>`;
    if (d.proposal) html += `<h3>Proposal</h3><pre class="wrap" data-testid="proposal">${esc(typeof d.proposal === "string" ? d.proposal : JSON.stringify(d.proposal, null, 2))}</pre>`;
    if (!d.own_code) html += `<h3>Attempted change (never committed)</h3>` + (d.attempted_patch ? diffHtml(d.attempted_patch) :
      `<p class="hint" data-testid="diff">no self-modification diff was recorded</p>`);
    else html += `<h3>Diff vs parent</h3>` + (d.parent_id ? diffHtml(d.diff_vs_parent) :
      `<p class="hint" data-testid="diff">root agent: ${d.files.length} files, no parent to diff against</p>`);
    html += `<div id="heat-slot"><p class="hint">loading heat map…</p></div>`;
    html += `<h3>Task runs (${d.task_runs.length})</h3><table class="grid" data-testid="task-runs"><tr><th>task</th><th>stage</th><th>status</th><th>F2P</th><th>P2P</th><th>s</th><th>cost</th></tr>` +
      d.task_runs.map((r) => `<tr class="clickable" data-run="${esc(r.id)}"><td>${esc(r.task_id)}</td><td>${esc(r.stage)}</td><td class="st-${esc(r.status)}">${esc(r.status)}</td><td>${esc(r.f2p || "–")}</td><td>${esc(r.p2p || "–")}</td><td>${(r.duration_s || 0).toFixed(1)}</td><td>${money(r.cost_usd, r.unpriced_calls)}</td></tr>`).join("") + "</table>";
    html += `<div id="run-slot"></div>`;
    html += `<h3>LLM calls and cost</h3><table class="grid"><tr><th>purpose</th><th>calls</th><th>tokens</th><th>cost</th><th>errors</th></tr>${purposes || '<tr><td colspan="5">none</td></tr>'}</table>`;
    if (d.calls_outside_runs && d.calls_outside_runs.length) {
      html += `<b>Calls outside task runs</b> (diagnosis, proposals)<table class="grid" data-testid="agent-calls"><tr><th>#</th><th>purpose</th><th>model</th><th>status</th><th>tokens</th><th>cost</th></tr>` +
        d.calls_outside_runs.map((c) => `<tr class="clickable" data-agent-call="${esc(c.id)}"><td>${c.seq}</td><td>${esc(c.purpose)}</td><td>${esc(c.model)}</td><td>${esc(c.status)}</td><td>${c.prompt_tokens + c.completion_tokens}</td><td>${money(c.cost_usd, c.priced === false ? 1 : 0)}</td></tr>`).join("") +
        `</table><div id="agent-call-slot"></div>`;
    }
    pane.innerHTML = html;
    pane.querySelectorAll("[data-agent]").forEach((b) => { b.onclick = () => { selectById(b.dataset.agent, false); const i = state.layout.index.get(b.dataset.agent); if (i !== undefined) centreOn(i); }; });
    pane.querySelectorAll("[data-run]").forEach((tr) => { tr.onclick = () => loadRun(tr.dataset.run); });
    pane.querySelectorAll("[data-agent-call]").forEach((tr) => {
      tr.onclick = async () => {
        $("#agent-call-slot").innerHTML = await transcriptHtml(tr.dataset.agentCall, "agent-call-transcript");
      };
    });
    // Heat map: the agent's lineage (root → it), plus the compared agent.
    const rows = d.lineage.slice(-15);
    if (state.compare >= 0 && !rows.includes(state.g.ids[state.compare])) rows.push(state.g.ids[state.compare]);
    try { $("#heat-slot").innerHTML = await heatmapHtml(rows, "Per-task results across its lineage"); }
    catch (err) { $("#heat-slot").innerHTML = `<p class="st-error">${esc(err.message)}</p>`; }
  }

  // One LLM call's request and response, as recorded.
  async function transcriptHtml(callId, testid) {
    const c = await getJSON("/api/llm_calls/" + encodeURIComponent(callId));
    const text = c.transcript ? esc(JSON.stringify(c.transcript, null, 1).slice(0, 60000)) : "no transcript was kept for this call";
    return `<pre class="wrap" data-testid="${testid}">${text}</pre>`;
  }

  async function loadRun(runId) {
    const slot = $("#run-slot"); if (!slot) return;
    slot.innerHTML = `<p class="hint">loading run ${esc(runId)}…</p>`;
    // The trajectory is the agent's own file: whatever it holds, the rest of the run is still shown.
    try { await showRun(slot, runId); }
    catch (err) { slot.innerHTML = `<p class="st-error" data-testid="run-error">could not show run ${esc(runId)}: ${esc(err.message)}</p>`; }
  }

  async function showRun(slot, runId) {
    const r = await getJSON("/api/runs/" + encodeURIComponent(runId));
    let html = `<h3>Run ${esc(r.id)} — ${esc(r.task_id)} (<span class="st-${esc(r.status)}">${esc(r.status)}</span>, ${esc(r.model)})</h3>`;
    if (r.error) html += `<pre class="wrap st-error">${esc(r.error)}</pre>`;
    if (r.grading_note) html += `<p class="hint" data-testid="grading-note">${esc(r.grading_note)}</p>`;
    if (r.cut_short) html += `<p class="hint" data-testid="cut-short">${esc(r.cut_short)}</p>`;
    const steps = (r.trajectory && r.trajectory.steps) || [];
    const trajNote = !r.trajectory ? (r.kind === "sanity" ? "none: the sanity gate runs the child's checks, not the agent"
      : "none kept: the agent wrote none, wrote more than its output directory may hold, or the run was imported")
      : r.trajectory.unreadable ? (r.trajectory.why ? "cannot be read: " + esc(r.trajectory.why) : "not readable JSON") : `${steps.length} steps${r.trajectory.exit_status ? ", " + esc(r.trajectory.exit_status) : ""}`;
    html += `<div data-testid="trajectory"><b>Trajectory</b> (${trajNote})`;
    html += steps.map((s) => `<div class="traj-step" data-testid="traj-step"><div>step ${esc(s.step)}${s.returncode !== undefined ? " · rc " + esc(s.returncode) : ""}${(s.notes || []).map((n) => " · " + esc(n)).join("")}</div>` +
      (s.reply ? `<pre class="wrap reply" data-testid="step-reply">${esc(String(s.reply).slice(0, 4000))}</pre>` : "") +
      (s.command ? `<div class="cmd">${esc(String(s.command).slice(0, 2000))}</div>` : "") +
      (s.output ? `<pre>${esc(String(s.output).slice(0, 4000))}</pre>` : "") + "</div>").join("") + "</div>";
    // An imported DGM run brings each task's outcome, not the patch behind it.
    html += `<b>Patch</b>${r.model === "dgm-import" && !(r.patch || "").trim() ? '<p class="hint">not imported: a DGM run\'s metadata keeps outcomes, not per-task patches</p>' : diffHtml(r.patch)}`;
    if (r.agent_log_tail) html += `<details data-testid="agent-log"${r.kind === "sanity" ? " open" : ""}><summary><b>${r.kind === "sanity" ? "Checks' output" : "Agent's own output"}</b> (its end; all of it: <code>dgm show-run ${esc(r.id)} --agent-log</code>)</summary><pre>${esc(r.agent_log_tail)}</pre></details>`;
    if (r.eval_log_tail) html += `<details data-testid="eval-log"><summary><b>Test log</b> (its end; all of it: <code>dgm show-run ${esc(r.id)} --eval-log</code>)</summary><pre>${esc(r.eval_log_tail)}</pre></details>`;
    html += `<b>LLM calls</b><table class="grid"><tr><th>#</th><th>model</th><th>status</th><th>tokens</th><th>s</th><th>cost</th></tr>` +
      r.llm_calls.map((c) => `<tr class="clickable" data-call="${esc(c.id)}"><td>${c.seq}</td><td>${esc(c.model)}</td><td>${esc(c.status)}</td><td>${c.prompt_tokens + c.completion_tokens}</td><td>${c.latency_s.toFixed(2)}</td><td>${money(c.cost_usd, c.priced === false ? 1 : 0)}</td></tr>`).join("") + "</table><div id=\"call-slot\"></div>";
    slot.innerHTML = html;
    slot.querySelectorAll("[data-call]").forEach((tr) => {
      tr.onclick = async () => {
        $("#call-slot").innerHTML = await transcriptHtml(tr.dataset.call, "call-transcript");
      };
    });
  }

  async function loadCompare() {
    const pane = $("#tab-compare");
    if (state.selected < 0 || state.compare < 0) return;
    const a = state.g.ids[state.selected], b = state.g.ids[state.compare];
    pane.innerHTML = `<p class="hint">comparing ${esc(a)} and ${esc(b)}…</p>`;
    const [da, db, diff] = await Promise.all([
      getJSON("/api/agents/" + encodeURIComponent(a)), getJSON("/api/agents/" + encodeURIComponent(b)),
      getJSON(`/api/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`)]);
    const col = (d) => `<div><h2>${esc(d.id)}</h2><table class="kv">
      <tr><td>score</td><td>${scoreBadge(d.score, d.score_label)}</td></tr><tr><td>held-out</td><td>${esc(d.heldout_label)}</td></tr>
      <tr><td>generation</td><td>${d.generation}</td></tr><tr><td>status</td><td>${esc(d.status)}</td></tr>
      <tr><td>stages</td><td>${Object.entries(d.stages).map(([s, v]) => `${esc(s)} ${v.resolved}/${v.finished} (${esc(v.label)})`).join(", ") || "–"}</td></tr>
      <tr><td>task runs</td><td>${d.task_runs.length}</td></tr><tr><td>cost</td><td>${money(d.cost.campaign_usd, d.cost.campaign_unpriced_calls)}${laterCost(d.cost)}</td></tr></table>
      ${d.proposal ? `<pre class="wrap">${esc(JSON.stringify(d.proposal, null, 2).slice(0, 3000))}</pre>` : ""}</div>`;
    pane.innerHTML = `<div class="cols" data-testid="compare-cols">${col(da)}${col(db)}</div>
      <div id="cmp-heat"></div><h3>Code diff ${esc(a.slice(0, 8))} → ${esc(b.slice(0, 8))}</h3>${diffHtml(diff.diff)}`;
    $("#cmp-heat").innerHTML = await heatmapHtml([a, b], "Per-task results side by side");
  }

  // ---------------------------------------------------------------- progress chart
  async function loadProgress() {
    if (!state.campaign) return;
    const info = $("#progressinfo");
    info.textContent = "loading…";
    const s = await getJSON(`/api/campaigns/${encodeURIComponent(state.campaign)}/series`);
    drawChart(s.points);
    info.textContent = s.points.length ? `${s.points.length} generation(s), ${s.source}${s.points.at(-1).partial ? `, generation ${s.points.at(-1).generation} cut short` : ""}; last: best ${s.points.at(-1).best_label}, spent ${money(s.points.at(-1).spent_usd, s.unpriced_calls)}` : "no data";
  }
  function drawChart(points) {
    const c = $("#chart"), g = c.getContext("2d");
    const W = c.width, H = c.height, L = 44, R = 56, T = 16, B = 34;
    g.clearRect(0, 0, W, H); g.font = "11px system-ui"; g.fillStyle = "#333";
    if (!points.length) return;
    const gens = points.map((p) => p.generation), g0 = Math.min(...gens), g1 = Math.max(...gens, g0 + 1);
    const maxSpend = Math.max(1e-9, ...points.map((p) => p.spent_usd));
    const X = (v) => L + (v - g0) / (g1 - g0) * (W - L - R), Y = (v) => T + (1 - v) * (H - T - B);
    g.strokeStyle = "#ccc"; g.beginPath();
    for (let t = 0; t <= 4; t++) { g.moveTo(L, Y(t / 4)); g.lineTo(W - R, Y(t / 4)); g.fillText((t / 4).toFixed(2), 8, Y(t / 4) + 4); g.fillText(money(maxSpend * t / 4).slice(0, 8), W - R + 4, Y(t / 4) + 4); }
    g.stroke();
    g.fillText("generation", W / 2 - 25, H - 6); g.fillText(String(g0), L, H - 18); g.fillText(String(g1), W - R - 10, H - 18);
    const line = (vals, colour, dash) => {
      g.strokeStyle = colour; g.setLineDash(dash || []); g.lineWidth = 2; g.beginPath(); let started = false;
      points.forEach((p, k) => { const v = vals(p); if (v === null || v === undefined) return; const x = X(p.generation), y = Y(v); if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; } });
      g.stroke(); g.setLineDash([]);
    };
    line((p) => p.best_score, "#2ca02c"); line((p) => p.mean_score, "#1f77b4");
    // Error bars on the best score: its 95 % Wilson interval.
    g.strokeStyle = "#2ca02c"; g.lineWidth = 1; g.beginPath();
    points.forEach((p) => {
      if (p.best_low === null || p.best_high === null || p.best_low === undefined) return;
      const x = X(p.generation);
      g.moveTo(x, Y(p.best_low)); g.lineTo(x, Y(p.best_high));
      g.moveTo(x - 3, Y(p.best_low)); g.lineTo(x + 3, Y(p.best_low)); g.moveTo(x - 3, Y(p.best_high)); g.lineTo(x + 3, Y(p.best_high));
    });
    g.stroke(); explorer.errorBars = points.filter((p) => p.best_low !== null && p.best_low !== undefined).length;
    line((p) => p.coverage_fraction, "#17becf", [4, 3]); line((p) => p.mean_jaccard_distance, "#9467bd", [2, 3]);
    line((p) => p.spent_usd / maxSpend, "#d62728", [6, 2]);
    [["best ± 95 %", "#2ca02c"], ["mean", "#1f77b4"], ["coverage", "#17becf"], ["diversity", "#9467bd"], ["spend (right)", "#d62728"]]
      .forEach(([label, colour], k) => { g.fillStyle = colour; g.fillRect(L + 8 + k * 88, T - 10, 10, 3); g.fillStyle = "#333"; g.fillText(label, L + 22 + k * 88, T - 6); });
  }

  // ---------------------------------------------------------------- data loading & live refresh
  async function loadGraph(keepView) {
    const t0 = performance.now();
    const g = await getJSON(`/api/campaigns/${encodeURIComponent(state.campaign)}/graph`);
    const prevSel = state.selected >= 0 && state.g ? state.g.ids[state.selected] : null;
    const prevCmp = state.compare >= 0 && state.g ? state.g.ids[state.compare] : null;
    state.g = g; state.version = g.version;
    state.layout = layout(g);
    state.selected = prevSel !== null && state.layout.index.has(prevSel) ? state.layout.index.get(prevSel) : -1;
    state.compare = prevCmp !== null && state.layout.index.has(prevCmp) ? state.layout.index.get(prevCmp) : -1;
    state.hover = -1;
    explorer.nodeCount = g.ids.length; explorer.graphLoads++; explorer.loadMs = performance.now() - t0;
    showTreeInfo();
    if (!keepView) fit(); else requestDraw();
  }

  function showTreeInfo() {
    const g = state.g;
    if (!g) return;
    const best = g.best_path.length ? g.ids[g.best_path.at(-1)] : null;
    // The status polled last: the graph is cached while the campaign is unchanged, and a killed runner changes nothing.
    const status = state.status || g.campaign.status;
    $("#treeinfo").textContent = `${g.campaign.name}: ${g.ids.length} agents · ${status}` +
      (g.campaign.model ? ` · model ${g.campaign.model}${g.campaign.scripted ? " [scripted]" : ""}` : "") +
      (status === "running?" ? " (its runner stopped checking in: killed, or its machine is down)" : "") +
      (best ? ` · best ${best.slice(0, 10)} (${g.score_label[g.best_path.at(-1)] ?? "–"})` : "");
    $("#spendinfo").innerHTML = `spent ${money(g.campaign.spent_usd)}` +
      (g.campaign.budget_usd ? ` of ${money(g.campaign.budget_usd)}` : "") + `: ${spendByRole(g.campaign.spend_by_role)}`;
  }

  async function poll() {
    if (!state.campaign) return;
    try {
      const v = await getJSON(`/api/campaigns/${encodeURIComponent(state.campaign)}/version`);
      const live = $("#live");
      live.textContent = `${v.status === "running" ? "● live" : "○"} · checked ${new Date().toLocaleTimeString()}`;
      live.classList.toggle("on", v.status === "running");
      if (v.status !== state.status) { state.status = v.status; showTreeInfo(); }
      if (v.version !== state.version) {
        await loadGraph(true);
        if (state.selected >= 0 && !$("#tab-details").hidden) loadDetails();
        if (!$("#tab-progress").hidden) loadProgress();
      }
    } catch (err) { $("#live").textContent = "archive unreachable: " + err.message; }
  }

  async function start() {
    resize();
    const params = new URLSearchParams(location.hash.slice(1));
    const campaigns = await getJSON("/api/campaigns");
    const sel = $("#campaign");
    sel.innerHTML = campaigns.map((c) => `<option value="${esc(c.id)}">${esc(c.name)} (${esc(c.kind)}, ${c.agents} agents)</option>`).join("");
    if (!campaigns.length) { $("#treeinfo").textContent = "the archive has no campaigns yet"; draw(); return; }
    // Default: the wanted one, else the most recent evolution campaign with agents (as `dgm status`):
    // an eval or replay since then is one grey dot, not what the morning's look is for.
    const wanted = params.get("campaign");
    const withAgents = campaigns.filter((c) => c.agents > 0);
    const evolved = withAgents.filter((c) => c.kind === "evolution");
    const found = campaigns.find((c) => c.id === wanted || c.name === wanted);
    state.campaign = (found || evolved.at(-1) || withAgents.at(-1) || campaigns.at(-1)).id;
    if (wanted && !found) notice(`no campaign "${wanted}" in this archive; showing the latest instead`);
    sel.value = state.campaign;
    const switchTo = async (id) => { state.campaign = sel.value = id; state.selected = state.compare = -1; state.g = null; state.status = null; await loadGraph(false); };
    sel.onchange = () => switchTo(sel.value);
    await loadGraph(false);
    if (params.get("agent") && (found || !wanted)) selectById(params.get("agent"), false);  // not in another campaign
    // A permalink pasted into this tab: only the hash changes, so nothing reloads by itself.
    window.addEventListener("hashchange", async () => {
      const p = new URLSearchParams(location.hash.slice(1));
      const c = campaigns.find((x) => x.id === p.get("campaign") || x.name === p.get("campaign"));
      notice(p.get("campaign") && !c ? `no campaign "${p.get("campaign")}" in this archive` : "");
      if (c && c.id !== state.campaign) await switchTo(c.id);
      if (p.get("agent") && (c || !p.get("campaign"))) selectById(p.get("agent"), false);
    });
    setInterval(poll, POLL_MS);
    poll();
  }
  start().catch((err) => { $("#treeinfo").textContent = "error: " + err.message; explorer.error = err.message; });
})();
