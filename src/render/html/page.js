// netprof's report page: draws the data block (schema netprof-html/1,
// written by src/render/html) on canvases. No library, no network.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const frames = data.frames;
  const $ = (id) => document.getElementById(id);
  const isDiff = data.kind === "diff";
  const ROW = 17;
  const FONT = "12px ui-monospace, monospace";

  // What tests and the benchmark read back (see tests/browser.rs).
  const api = (window.netprof = { firstDrawMs: null });

  function label(f) {
    const m = frames.module[f];
    return m ? `${frames.name[f]} [${frames.modules[m]}]` : frames.name[f];
  }
  function number(n) {
    return Math.round(n).toLocaleString("en-US");
  }
  function percent(part, whole) {
    return whole > 0 ? ((100 * part) / whole).toFixed(2) + "%" : "0%";
  }
  function amount(n, unit) {
    if (unit === "ns") {
      if (n >= 1e9) return (n / 1e9).toFixed(3) + " s";
      if (n >= 1e6) return (n / 1e6).toFixed(3) + " ms";
      if (n >= 1e3) return (n / 1e3).toFixed(1) + " µs";
      return number(n) + " ns";
    }
    return number(n) + " " + unit;
  }
  function text(el, value) {
    el.textContent = value;
    return el;
  }
  function element(tag, value, cls) {
    const el = document.createElement(tag);
    if (value !== undefined) el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  // A canvas sized for the screen's pixels, cleared; its 2D context.
  function prepare(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.floor(width * ratio);
    canvas.height = Math.floor(height * ratio);
    canvas.style.height = height + "px";
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    return g;
  }

  // ---- Trees -------------------------------------------------------------
  // A tree is the pre-order arrays of the data block plus what one pass
  // derives: parent, end of subtree, and totals per column. The virtual root
  // (index -1) is the sum of the depth-0 nodes.
  function buildTree(flat) {
    const n = flat.frame.length;
    const columns = flat.self.length;
    const parent = new Int32Array(n);
    const end = new Int32Array(n);
    const total = [];
    const path = [];
    for (let i = 0; i < n; i++) {
      const d = flat.depth[i];
      while (path.length > d) end[path.pop()] = i;
      parent[i] = d > 0 ? path[d - 1] : -1;
      path.push(i);
    }
    while (path.length) end[path.pop()] = n;
    const rootTotal = [];
    for (let c = 0; c < columns; c++) {
      const t = Float64Array.from(flat.self[c]);
      let root = 0;
      for (let i = n - 1; i >= 0; i--) {
        if (parent[i] >= 0) t[parent[i]] += t[i];
        else root += t[i];
      }
      total.push(t);
      rootTotal.push(root);
    }
    return { n, frame: flat.frame, depth: flat.depth, self: flat.self, parent, end, total, rootTotal, columns };
  }

  // A tree built in the page (the sandwich's): nested nodes flattened.
  function flatten(root, columns) {
    const flat = { frame: [], depth: [], self: [] };
    for (let c = 0; c < columns; c++) flat.self.push([]);
    const walk = (node, depth) => {
      flat.frame.push(node.f);
      flat.depth.push(depth);
      for (let c = 0; c < columns; c++) flat.self[c].push(node.s[c]);
      const kids = [...node.kids.values()].sort((a, b) => (frames.name[a.f] < frames.name[b.f] ? -1 : 1));
      for (const k of kids) walk(k, depth + 1);
    };
    walk(root, 0);
    return buildTree(flat);
  }
  function child(node, f, columns) {
    let k = node.kids.get(f);
    if (!k) {
      k = { f, s: new Array(columns).fill(0), kids: new Map() };
      node.kids.set(f, k);
    }
    return k;
  }
  // Nodes of `frame` with no node of the same frame above them.
  function outermost(tree, frame) {
    const out = [];
    for (let i = 0; i < tree.n; ) {
      if (tree.frame[i] === frame) {
        out.push(i);
        i = tree.end[i];
      } else i++;
    }
    return out;
  }
  // What `frame` calls: its subtrees merged.
  function calleesOf(tree, frame) {
    const root = { f: frame, s: new Array(tree.columns).fill(0), kids: new Map() };
    for (const top of outermost(tree, frame)) {
      const at = [root];
      const base = tree.depth[top];
      for (let i = top; i < tree.end[top]; i++) {
        const d = tree.depth[i] - base;
        at.length = d + 1;
        const node = d === 0 ? root : child(at[d - 1], tree.frame[i], tree.columns);
        at[d] = node;
        for (let c = 0; c < tree.columns; c++) node.s[c] += tree.self[c][i];
      }
    }
    return flatten(root, tree.columns);
  }
  // Who calls `frame`: each outermost occurrence's path to the root,
  // reversed, weighted by the occurrence's total.
  function callersOf(tree, frame) {
    const root = { f: frame, s: new Array(tree.columns).fill(0), kids: new Map() };
    for (const top of outermost(tree, frame)) {
      let node = root;
      for (let p = tree.parent[top]; p >= 0; p = tree.parent[p]) node = child(node, tree.frame[p], tree.columns);
      for (let c = 0; c < tree.columns; c++) node.s[c] += tree.total[c][top];
    }
    return flatten(root, tree.columns);
  }

  // ---- Colours -----------------------------------------------------------
  function hash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    return (h >>> 0) / 4294967296;
  }
  const colourCache = new Map();
  function frameColour(f) {
    let c = colourCache.get(f);
    if (c) return c;
    const v = hash(frames.name[f]);
    switch (frames.kind[f]) {
      case "comm": c = `hsl(0, 0%, ${78 + 8 * v}%)`; break;
      case "merged": c = "#bbb"; break;
      case "module": c = `hsl(${175 + 30 * v}, 55%, ${55 + 12 * v}%)`; break;
      case "bpf": c = `hsl(${265 + 25 * v}, 50%, ${68 + 10 * v}%)`; break;
      case "user": c = `hsl(${55 + 30 * v}, 60%, ${55 + 10 * v}%)`; break;
      default: c = `hsl(${8 + 32 * v}, 85%, ${58 + 10 * v}%)`;
    }
    colourCache.set(f, c);
    return c;
  }
  // Differential: red where the share grew, blue where it shrank.
  function deltaColour(delta, scale) {
    const k = Math.min(1, Math.abs(delta) / scale);
    // Unchanged frames are light grey, so that they still show on white.
    const strong = Math.round(235 + 20 * k), light = Math.round(235 * (1 - 0.8 * k));
    return delta >= 0 ? `rgb(${strong},${light},${light})` : `rgb(${light},${light},${strong})`;
  }

  // ---- Search ------------------------------------------------------------
  let matcher = null; // Uint8Array over frames, or null
  function compileSearch(term) {
    if (!term) return null;
    let re;
    try {
      re = new RegExp(term, "i");
    } catch (e) {
      const lower = term.toLowerCase();
      re = { test: (s) => s.toLowerCase().includes(lower) };
    }
    const m = new Uint8Array(frames.name.length);
    for (let f = 0; f < m.length; f++) m[f] = re.test(label(f)) ? 1 : 0;
    return m;
  }
  // Share of the tree's samples with a matching frame on their stack.
  function matchedShare(tree, column) {
    let sum = 0;
    for (let i = 0; i < tree.n; ) {
      if (matcher[tree.frame[i]]) {
        sum += tree.total[column][i];
        i = tree.end[i];
      } else i++;
    }
    return sum;
  }

  // ---- Flamegraphs -------------------------------------------------------
  // One view draws one tree on one canvas: zoomed on a node (-1: all),
  // root at the bottom (flame) or top (icicle).
  class FlameView {
    constructor(canvas, options) {
      this.canvas = canvas;
      this.options = options; // {unit, icicle, onPick}
      this.tree = null;
      this.zoom = -1;
      this.rects = [];
      canvas.addEventListener("mousemove", (e) => this.hover(e));
      canvas.addEventListener("mouseleave", () => this.options.onHover && this.options.onHover(null));
      canvas.addEventListener("click", (e) => this.click(e));
    }
    setTree(tree, column) {
      this.tree = tree;
      this.column = column;
      this.zoom = -1;
      this.draw();
    }
    // Nodes drawn, with their x and width in CSS pixels (pruning those
    // under a third of a pixel, and their subtrees).
    layout(width) {
      const t = this.tree, col = this.column, out = [];
      const z = this.zoom;
      const scale = width / Math.max(1, z >= 0 ? t.total[col][z] : t.rootTotal[col]);
      // The zoomed node's ancestors span the width.
      const chain = [];
      for (let p = z; p >= 0; p = t.parent[p]) chain.unshift(p);
      let level = this.options.noAllBar ? 0 : 1; // 0 is the "all" bar
      for (const p of chain.slice(0, -1)) out.push({ node: p, x: 0, w: width, level: level++ });
      const firstLevel = level;
      const starts = z >= 0 ? [z] : [];
      if (z < 0) for (let i = 0; i < t.n; i = t.end[i]) starts.push(i);
      let x = 0;
      for (const s of starts) {
        // Children are laid out left to right from their parent's x.
        const cursor = new Float64Array(t.n);
        const baseDepth = t.depth[s];
        for (let i = s; i < t.end[s]; ) {
          const w = t.total[col][i] * scale;
          const nx = i === s ? x : cursor[t.parent[i]];
          if (i !== s) cursor[t.parent[i]] = nx + w;
          if (w < 0.33) {
            i = t.end[i];
            continue;
          }
          out.push({ node: i, x: nx, w, level: firstLevel + t.depth[i] - baseDepth });
          cursor[i] = nx;
          i++;
        }
        x += t.total[col][s] * scale;
      }
      return out;
    }
    draw() {
      const canvas = this.canvas, t = this.tree;
      if (!t) return;
      const width = canvas.parentElement.clientWidth || 1200;
      const rects = this.layout(width);
      const levels = rects.reduce((m, r) => Math.max(m, r.level), 0) + 1;
      const height = levels * ROW + 4;
      const g = prepare(canvas, width, height);
      g.textBaseline = "middle";
      const yOf = (level) => (this.options.icicle ? level * ROW : height - (level + 1) * ROW);
      this.rects = this.options.noAllBar ? rects : [{ node: -1, x: 0, w: width, level: 0 }, ...rects];
      for (const r of this.rects) {
        r.y = yOf(r.level);
        const f = r.node >= 0 ? t.frame[r.node] : -1;
        let fill;
        if (f >= 0 && matcher && matcher[f]) fill = "#e040d0";
        else if (this.options.diff && t.columns === 2) fill = this.diffColour(r.node);
        else fill = f >= 0 ? frameColour(f) : "#d8d8d8";
        g.fillStyle = fill;
        g.fillRect(r.x, r.y, Math.max(r.w - 0.5, 0.5), ROW - 1);
        if (r.w > 28) {
          const name = f >= 0 ? label(f) : "all";
          const room = Math.floor((r.w - 6) / 7.2);
          g.fillStyle = "#111";
          g.fillText(name.length > room ? name.slice(0, Math.max(room - 2, 1)) + ".." : name, r.x + 3, r.y + ROW / 2);
        }
      }
      if (api.firstDrawMs === null) api.firstDrawMs = performance.now();
    }
    diffColour(node) {
      const t = this.tree;
      const share = (c, i) => (i >= 0 ? t.total[c][i] : t.rootTotal[c]) / Math.max(1, t.rootTotal[c]);
      return deltaColour(share(1, node) - share(0, node), 0.05);
    }
    at(e) {
      const box = this.canvas.getBoundingClientRect();
      const x = e.clientX - box.left, y = e.clientY - box.top;
      for (let i = this.rects.length - 1; i >= 0; i--) {
        const r = this.rects[i];
        if (x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + ROW) return r;
      }
      return null;
    }
    describe(node) {
      const t = this.tree, unit = this.options.unit;
      const name = node >= 0 ? label(t.frame[node]) : "all";
      const total = (c) => (node >= 0 ? t.total[c][node] : t.rootTotal[c]);
      const self = (c) => (node >= 0 ? t.self[c][node] : 0);
      if (t.columns === 2) {
        const b = total(0) / Math.max(1, t.rootTotal[0]), a = total(1) / Math.max(1, t.rootTotal[1]);
        return `${name}: before ${(100 * b).toFixed(2)}%, after ${(100 * a).toFixed(2)}% (${a >= b ? "+" : ""}${(100 * (a - b)).toFixed(2)} points); ${amount(total(0), unit)} before, ${amount(total(1), unit)} after`;
      }
      const root = t.rootTotal[this.column];
      return `${name}: ${amount(total(this.column), unit)} (${percent(total(this.column), root)}), self ${amount(self(this.column), unit)} (${percent(self(this.column), root)})`;
    }
    hover(e) {
      const r = this.at(e);
      if (this.options.onHover) this.options.onHover(r ? this.describe(r.node) : null);
    }
    click(e) {
      const r = this.at(e);
      if (!r) return;
      this.zoom = r.node;
      this.draw();
      if (this.options.onPick) this.options.onPick(r.node);
    }
    // What the tests read: every drawn frame with its stack, in viewport
    // coordinates.
    drawn() {
      const t = this.tree;
      return this.rects
        .filter((r) => r.node >= 0)
        .map((r) => {
          const path = [];
          for (let p = r.node; p >= 0; p = t.parent[p]) path.unshift(frames.name[t.frame[p]]);
          const box = this.canvas.getBoundingClientRect();
          return {
            name: frames.name[t.frame[r.node]],
            path,
            x: r.x + box.left,
            y: r.y + box.top,
            w: r.w,
            h: ROW,
            highlighted: !!(matcher && matcher[t.frame[r.node]]),
          };
        });
    }
  }

  // ---- Page --------------------------------------------------------------
  text($("title"), data.title);
  const trees = data.profiles.map((p) => buildTree(p.tree));
  let current = 0;
  let icicle = false;
  const flameDetails = $("details");
  const mainView = new FlameView($("flame"), {
    get unit() {
      return data.profiles[current] ? data.profiles[current].unit : "samples";
    },
    get icicle() {
      return icicle;
    },
    diff: isDiff,
    onHover: (s) => text(flameDetails, s || "\u00a0"),
  });
  const widthColumn = () => (isDiff ? Number($("widths").value) : 0);

  function summarise() {
    const p = data.profiles[current];
    if (!p) return;
    const t = trees[current];
    if (isDiff)
      text($("summary"), `${p.name}: ${amount(t.rootTotal[0], p.unit)} before, ${amount(t.rootTotal[1], p.unit)} after. Red grew, blue shrank (share of all samples). Click a frame to zoom.`);
    else text($("summary"), `${p.name}: ${amount(t.rootTotal[0], p.unit)}. Click a frame to zoom, search to highlight.`);
  }
  function showMatch() {
    const t = trees[current];
    if (!matcher || !t) return text($("match"), "");
    const col = isDiff ? 1 : 0;
    const hit = matchedShare(t, col);
    text($("match"), `${$("search").value}: ${percent(hit, t.rootTotal[col])} of ${data.profiles[current].name}`);
  }
  if (data.profiles.length) {
    $("flame-section").hidden = false;
    data.profiles.forEach((p, i) => $("event").append(new Option(p.name, i)));
    if (data.profiles.length < 2) $("event").parentElement.hidden = true;
    for (const el of document.querySelectorAll(".diff-only")) el.hidden = !isDiff;
    $("event").addEventListener("change", () => {
      current = Number($("event").value);
      mainView.setTree(trees[current], widthColumn());
      summarise();
      showMatch();
      $("sandwich").hidden = true;
      buildFunctions();
    });
    $("widths").addEventListener("change", () => mainView.setTree(trees[current], widthColumn()));
    $("search").addEventListener("input", () => {
      matcher = compileSearch($("search").value);
      mainView.draw();
      showMatch();
    });
    $("orient").addEventListener("click", () => {
      icicle = !icicle;
      text($("orient"), icicle ? "Flame" : "Icicle");
      mainView.draw();
    });
    $("reset").addEventListener("click", () => {
      mainView.zoom = -1;
      mainView.draw();
    });
    summarise();
    mainView.setTree(trees[current], widthColumn());
  }

  // ---- Functions and the sandwich ----------------------------------------
  let fnSort = { key: "total", down: true };
  let fnRows = [];
  // Callers drawn upwards from the function, callees downwards.
  const sandwichView = (canvas, icicle) =>
    new FlameView(canvas, {
      get unit() {
        return data.profiles[current].unit;
      },
      icicle,
      diff: isDiff,
      noAllBar: true,
      onHover: (s) => text($("sandwich-details"), s || "\u00a0"),
    });
  const callersView = sandwichView($("callers"), false);
  const calleesView = sandwichView($("callees"), true);
  function functionTotals(t, col) {
    const self = new Float64Array(frames.name.length), total = new Float64Array(frames.name.length);
    const onPath = new Int32Array(frames.name.length);
    const path = [];
    for (let i = 0; i < t.n; i++) {
      while (path.length > t.depth[i]) onPath[t.frame[path.pop()]]--;
      const f = t.frame[i];
      self[f] += t.self[col][i];
      if (onPath[f] === 0) total[f] += t.total[col][i];
      onPath[f]++;
      path.push(i);
    }
    return { self, total };
  }
  function buildFunctions() {
    const t = trees[current];
    if (!t) return;
    $("functions-section").hidden = false;
    const col = isDiff ? 1 : 0;
    const { self, total } = functionTotals(t, col);
    fnRows = [];
    for (let f = 0; f < frames.name.length; f++)
      if (frames.kind[f] !== "comm" && frames.kind[f] !== "merged" && total[f] > 0) fnRows.push({ f, self: self[f], total: total[f] });
    renderFunctions();
  }
  function renderFunctions() {
    const t = trees[current], col = isDiff ? 1 : 0, unit = data.profiles[current].unit;
    const filter = compileSearch($("fn-filter").value);
    const module = $("fn-module").value;
    const rows = fnRows.filter((r) => (!filter || filter[r.f]) && (module === "" || String(frames.module[r.f]) === module));
    const key = fnSort.key;
    const cmp = key === "name" ? (a, b) => (frames.name[a.f] < frames.name[b.f] ? -1 : 1) : key === "module" ? (a, b) => frames.module[a.f] - frames.module[b.f] : (a, b) => a[key] - b[key];
    rows.sort((a, b) => (fnSort.down ? -cmp(a, b) : cmp(a, b)));
    const shown = rows.slice(0, 500);
    text($("fn-count"), `${rows.length} functions${rows.length > shown.length ? `, the first ${shown.length} shown` : ""}`);
    const head = $("functions").tHead;
    head.replaceChildren();
    const hr = head.insertRow();
    for (const [k, name, num] of [["name", "Function", false], ["module", "Module", false], ["self", "Self", true], ["total", "Total", true]]) {
      const th = element("th", name + (fnSort.key === k ? (fnSort.down ? " ▼" : " ▲") : ""), num ? "num" : "");
      th.addEventListener("click", () => {
        fnSort = { key: k, down: fnSort.key === k ? !fnSort.down : k !== "name" && k !== "module" };
        renderFunctions();
      });
      hr.append(th);
    }
    const body = $("functions").tBodies[0];
    const root = t.rootTotal[col];
    body.replaceChildren(
      ...shown.map((r) => {
        const tr = element("tr");
        tr.dataset.frame = r.f;
        tr.append(
          element("td", frames.name[r.f]),
          element("td", frames.modules[frames.module[r.f]] || (frames.kind[r.f] === "kernel" ? "vmlinux" : "")),
          element("td", `${amount(r.self, unit)} (${percent(r.self, root)})`, "num"),
          element("td", `${amount(r.total, unit)} (${percent(r.total, root)})`, "num")
        );
        tr.addEventListener("click", () => pickFunction(r.f, tr));
        return tr;
      })
    );
  }
  function pickFunction(f, row) {
    for (const tr of document.querySelectorAll("#functions tr.picked")) tr.classList.remove("picked");
    if (row) row.classList.add("picked");
    $("sandwich").hidden = false;
    text($("sandwich-title"), label(f));
    const col = isDiff ? 1 : 0;
    callersView.setTree(callersOf(trees[current], f), col);
    calleesView.setTree(calleesOf(trees[current], f), col);
  }
  api.pickFunction = (name) => {
    const f = frames.name.indexOf(name);
    if (f >= 0) pickFunction(f, document.querySelector(`#functions tr[data-frame="${f}"]`));
    return f >= 0;
  };
  api.sandwich = () => ({
    callers: callersView.drawn().map((r) => r.name),
    callees: calleesView.drawn().map((r) => r.name),
  });
  if (trees.length) {
    for (let m = 1; m < frames.modules.length; m++) $("fn-module").append(new Option(frames.modules[m], m));
    $("fn-filter").addEventListener("input", renderFunctions);
    $("fn-module").addEventListener("change", renderFunctions);
    buildFunctions();
  }

  // ---- Changes (diff) ----------------------------------------------------
  function points(x) {
    return (x >= 0 ? "+" : "") + (100 * x).toFixed(2);
  }
  function profileChanges() {
    const c = data.changes;
    $("changes-section").hidden = false;
    text($("changes-note"), `${c.method}. Shares in percent of each side's samples; changes in points with their 95% interval; * marks a change beyond noise. Rows beyond noise first. Click a row to find it in the flamegraph.`);
    const rows = c.functions.slice().sort((a, b) => {
      const sa = a.self.significant || a.total.significant, sb = b.self.significant || b.total.significant;
      if (sa !== sb) return sa ? -1 : 1;
      return Math.abs(b.self.delta) - Math.abs(a.self.delta) || Math.abs(b.total.delta) - Math.abs(a.total.delta);
    });
    const head = $("changes").tHead.insertRow();
    for (const [name, num] of [["", false], ["Function", false], ["Module", false], ["Self before", true], ["Self after", true], ["Self change", true], ["95% interval", true], ["Total before", true], ["Total after", true], ["Total change", true]])
      head.append(element("th", name, num ? "num" : ""));
    const body = $("changes").tBodies[0];
    for (const r of rows.slice(0, 300)) {
      const tr = body.insertRow();
      const marked = r.self.significant || r.total.significant;
      tr.className = marked ? "significant" : "";
      const cls = (d) => "num " + (d > 0 ? "grew" : d < 0 ? "shrank" : "");
      tr.append(
        element("td", marked ? "*" : "", "mark"),
        element("td", r.function),
        element("td", r.module || ""),
        element("td", (100 * r.self.before).toFixed(2), "num"),
        element("td", (100 * r.self.after).toFixed(2), "num"),
        element("td", points(r.self.delta), cls(r.self.delta)),
        element("td", "±" + (100 * r.self.ci95).toFixed(2), "num"),
        element("td", (100 * r.total.before).toFixed(2), "num"),
        element("td", (100 * r.total.after).toFixed(2), "num"),
        element("td", points(r.total.delta), cls(r.total.delta))
      );
      tr.addEventListener("click", () => {
        $("search").value = "^" + r.function.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + (r.module ? ` \\[${r.module}\\]` : "") + "$";
        $("search").dispatchEvent(new Event("input"));
      });
    }
  }

  // ---- Latency histograms (latency diff) ---------------------------------
  function latencyChanges() {
    const c = data.changes;
    $("changes-section").hidden = false;
    text($("changes-note"), `${c.method}. * marks a change beyond noise; rows beyond noise first. Pick a function to see both histograms.`);
    const head = $("changes").tHead.insertRow();
    for (const [name, num] of [["", false], ["Function", false], ["Module", false], ["Calls before", true], ["Calls after", true], ["Median before", true], ["Median after", true], ["Change", true], ["IQR before", true], ["IQR after", true], ["p", true]])
      head.append(element("th", name, num ? "num" : ""));
    const body = $("changes").tBodies[0];
    c.functions.forEach((r, i) => {
      const tr = body.insertRow();
      tr.className = r.significant ? "significant" : "";
      tr.append(
        element("td", r.significant ? "*" : "", "mark"),
        element("td", r.function),
        element("td", r.module || ""),
        element("td", number(r.before_calls), "num"),
        element("td", number(r.after_calls), "num"),
        element("td", amount(r.before_median_ns, "ns"), "num"),
        element("td", amount(r.after_median_ns, "ns"), "num"),
        element("td", (r.median_change >= 0 ? "+" : "") + (100 * r.median_change).toFixed(1) + "%", "num " + (r.median_change > 0 ? "grew" : "shrank")),
        element("td", amount(r.before_iqr_ns, "ns"), "num"),
        element("td", amount(r.after_iqr_ns, "ns"), "num"),
        element("td", r.p_value.toPrecision(2), "num")
      );
      tr.addEventListener("click", () => {
        $("histogram-function").value = i;
        drawHistogram();
      });
    });
    $("histogram-section").hidden = false;
    data.histograms.forEach((h, i) => $("histogram-function").append(new Option(h.module ? `${h.function} [${h.module}]` : h.function, i)));
    $("histogram-function").addEventListener("change", drawHistogram);
    drawHistogram();
  }
  // Both sides' histograms on one log-scaled time axis, each as the share
  // of its calls per bucket.
  function drawHistogram() {
    const h = data.histograms[Number($("histogram-function").value) || 0];
    const canvas = $("histogram");
    if (!h) return;
    const width = canvas.parentElement.clientWidth || 1000, height = 260, pad = 40;
    const g = prepare(canvas, width, height);
    const all = h.before.concat(h.after);
    const low = Math.max(1, Math.min(...all.map((b) => b[0])));
    const high = Math.max(...all.map((b) => b[1]));
    const lx = (v) => pad + ((Math.log(Math.max(v, 1)) - Math.log(low)) / Math.max(1e-9, Math.log(high) - Math.log(low))) * (width - 2 * pad);
    const share = (side) => {
      const n = side.reduce((s, b) => s + b[2], 0) || 1;
      return side.map((b) => [b[0], b[1], b[2] / n]);
    };
    const sides = [share(h.before), share(h.after)];
    const top = Math.max(...sides.flat().map((b) => b[2]), 1e-9);
    [["rgba(40, 90, 200, 0.5)", sides[0]], ["rgba(210, 50, 40, 0.5)", sides[1]]].forEach(([fill, side]) => {
      g.fillStyle = fill;
      for (const [a, b, s] of side) {
        const x0 = lx(a), x1 = Math.max(lx(b), x0 + 1);
        const y = (height - pad) * (1 - s / top) + 10;
        g.fillRect(x0, y, x1 - x0, height - pad - y);
      }
    });
    g.fillStyle = "#333";
    g.textBaseline = "top";
    // The range's ends and every power of ten between them.
    const ticks = [low, high];
    for (let v = Math.pow(10, Math.ceil(Math.log10(low))); v < high; v *= 10) ticks.push(v);
    for (const v of ticks) {
      const x = lx(v);
      g.fillRect(x, height - pad, 1, 5);
      g.fillText(amount(v, "ns"), Math.min(x + 2, width - 60), height - pad + 6);
    }
    g.fillText("share of each side's calls per bucket; time on a log scale", pad, height - 14);
  }

  // ---- Timeline ----------------------------------------------------------
  const RUNNING_COLOUR = "#495057";
  const SERIES_COLOURS = ["#d9480f", "#1971c2", "#2f9e44", "#9c36b5", "#e67700", "#0c8599"];
  const timeline = data.timeline;
  let span = null; // [first bin, last bin + 1] shown
  const LABEL_W = 220, LANE = 16;
  function drawTimeline() {
    const canvas = $("timeline");
    const width = canvas.parentElement.clientWidth || 1200;
    const rows = timeline.threads;
    const height = 24 + rows.length * LANE;
    const g = prepare(canvas, width, height);
    g.textBaseline = "middle";
    const plot = width - LABEL_W - 4;
    const [from, to] = span;
    const perPixel = (to - from) / plot;
    // The time axis, in seconds from the first sample.
    g.fillStyle = "#333";
    const secs = (bin) => (bin * timeline.bin_ns) / 1e9;
    const range = secs(to - from);
    const step = Math.pow(10, Math.floor(Math.log10(range / 4 || 1)));
    for (let s = Math.ceil(secs(from) / step) * step; s <= secs(to); s += step) {
      const x = LABEL_W + ((s - secs(from)) / range) * plot;
      g.fillRect(x, 14, 1, height - 14);
      g.fillText(s.toFixed(Math.max(0, -Math.floor(Math.log10(step)))) + " s", x + 2, 7);
    }
    g.globalAlpha = 1;
    rows.forEach((row, r) => {
      const y = 20 + r * LANE;
      g.fillStyle = r % 2 ? "#f7f7f7" : "#fff";
      g.fillRect(0, y, width, LANE);
      g.fillStyle = "#222";
      g.fillText(`${row.comm} ${row.tid}`.slice(0, 30), 4, y + LANE / 2);
      // Lanes: time on a CPU (from sched_switch), then one per event.
      const lanes = [];
      if (row.running.length) lanes.push({ bins: row.running, colour: RUNNING_COLOUR, full: timeline.bin_ns * Math.max(perPixel, 1) });
      for (const series of row.series) lanes.push({ bins: series.bins, colour: SERIES_COLOURS[series.profile % SERIES_COLOURS.length] });
      const laneH = (LANE - 2) / Math.max(1, lanes.length);
      lanes.forEach((lane, k) => {
        const px = new Float64Array(plot + 1);
        let bin = 0;
        for (let i = 0; i < lane.bins.length; i += 2) {
          bin += lane.bins[i];
          if (bin < from || bin >= to) continue;
          px[Math.min(plot, Math.floor((bin - from) / perPixel))] += lane.bins[i + 1];
        }
        // Time on a CPU is a fraction of the pixel's time; events are
        // relative to the row's busiest pixel.
        const top = lane.full || px.reduce((m, v) => Math.max(m, v), 0);
        g.fillStyle = lane.colour;
        for (let x = 0; x <= plot; x++) {
          if (!px[x]) continue;
          g.globalAlpha = Math.min(1, 0.25 + (0.75 * px[x]) / top);
          g.fillRect(LABEL_W + x, y + 1 + k * laneH, Math.max(1, 1 / perPixel), laneH);
        }
        g.globalAlpha = 1;
      });
    });
  }
  if (timeline && timeline.threads.length) {
    $("timeline-section").hidden = false;
    span = [0, timeline.bins];
    const legend = $("timeline-legend");
    const shown = new Set(timeline.threads.flatMap((t) => t.series.map((s) => s.profile)));
    for (const p of [...shown].sort()) {
      const sw = element("span", "\u25a0 " + data.profiles[p].name + " ");
      sw.style.color = SERIES_COLOURS[p % SERIES_COLOURS.length];
      legend.append(sw);
    }
    if (timeline.threads.some((t) => t.running.length)) {
      const sw = element("span", "\u25a0 on a CPU (from sched:sched_switch) ");
      sw.style.color = RUNNING_COLOUR;
      legend.prepend(sw);
    }
    if (data.profiles.some((p) => p.unit === "ns"))
      legend.append(" (off-CPU time is counted in the kernel without a time per wait: it is in the flamegraph, not here)");
    if (timeline.threads_left_out) legend.append(` (${timeline.threads_left_out} quieter threads left out)`);
    const canvas = $("timeline");
    let dragFrom = null;
    const binAt = (e) => {
      const box = canvas.getBoundingClientRect();
      const plot = box.width - LABEL_W - 4;
      const x = Math.min(Math.max(e.clientX - box.left - LABEL_W, 0), plot);
      return span[0] + (x / plot) * (span[1] - span[0]);
    };
    canvas.addEventListener("mousedown", (e) => (dragFrom = binAt(e)));
    canvas.addEventListener("mouseup", (e) => {
      const to = binAt(e);
      if (dragFrom !== null && Math.abs(to - dragFrom) >= 1) {
        span = [Math.floor(Math.min(dragFrom, to)), Math.ceil(Math.max(dragFrom, to))];
        drawTimeline();
      }
      dragFrom = null;
    });
    canvas.addEventListener("dblclick", () => {
      span = [0, timeline.bins];
      drawTimeline();
    });
    canvas.addEventListener("mousemove", (e) => {
      const box = canvas.getBoundingClientRect();
      const r = Math.floor((e.clientY - box.top - 20) / LANE);
      const row = timeline.threads[r];
      const t = ((binAt(e) * timeline.bin_ns) / 1e9).toFixed(4);
      text($("timeline-details"), row ? `${row.comm} pid ${row.pid} tid ${row.tid} at ${t} s` : "\u00a0");
    });
    drawTimeline();
  }
  const sumPairs = (pairs) => pairs.reduce((sum, v, i) => (i % 2 ? sum + v : sum), 0);
  api.timelineRows = () =>
    timeline ? timeline.threads.map((t) => ({ comm: t.comm, pid: t.pid, tid: t.tid, running_ns: sumPairs(t.running) })) : [];
  api.timelineSpan = () => span && span.slice();

  if (isDiff) profileChanges();
  if (data.kind === "latency-diff") latencyChanges();

  // ---- Facts -------------------------------------------------------------
  for (const [what, value] of data.facts) {
    const tr = $("facts").insertRow();
    tr.append(element("td", what), element("td", value));
  }

  api.drawn = () => mainView.drawn();
  api.zoomed = () => (mainView.zoom >= 0 ? frames.name[trees[current].frame[mainView.zoom]] : null);
  api.matchText = () => $("match").textContent;
  window.addEventListener("resize", () => {
    mainView.draw();
    if (span) drawTimeline();
  });
  // For benches/html_budget.sh, which reads them from the DOM: the first
  // flamegraph drawn, and everything (table, timeline) ready.
  document.body.dataset.firstDrawMs = api.firstDrawMs === null ? "" : api.firstDrawMs.toFixed(0);
  document.body.dataset.readyMs = performance.now().toFixed(0);
})();
