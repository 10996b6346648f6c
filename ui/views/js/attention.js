// The Attention page's "All heads" view: every head at once, the chosen head large, and its query's line view
// with the keys it looks at most, all drawn here from the patterns sent once (ui/views/attention.py). Picking a
// layer, head or query (the pickers, a click on a tile or a row, the keyboard) redraws in the browser; the
// choice is reported back as the state value `view`, which the page keeps in its session keys and the URL.

const TOP_KEYS = 8, LINE_LABELS = 40, LINE_BANDS = 20;

// Every head averaged into side x side blocks, the masked cells counting as 0 (adaptive average pooling, as
// ui/views/attention.py does for a browser that lacks some heads).
function pooled(weight, L, H, n, side) {
  const bins = [], v = new Float32Array(L * H * side * side);
  for (let i = 0; i < side; i++) bins.push([Math.floor(i * n / side), Math.ceil((i + 1) * n / side)]);
  for (let l = 0; l < L; l++) for (let hd = 0; hd < H; hd++) for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) {
    const [q0, q1] = bins[i], [k0, k1] = bins[j];
    let sum = 0;
    for (let q = q0; q < q1; q++) for (let k = k0; k < Math.min(k1, q + 1); k++) sum += weight(l, hd, q, k);
    v[((l * H + hd) * side + i) * side + j] = sum / ((q1 - q0) * (k1 - k0));
  }
  return {side, bins, v};
}

function attentionData(d) {
  const L = d.n_layer, H = d.n_head, n = d.tokens.length, tri = n * (n + 1) / 2;
  const full = f32(d.patterns), Hs = d.heads.length;
  const layerAt = new Map(d.layers.map((layer, i) => [layer, i])), headAt = new Map(d.heads.map((hd, i) => [hd, i]));
  const has = (layer, hd) => layerAt.has(layer) && headAt.has(hd);
  const cell = (l, hd, q, k) => full[(layerAt.get(l) * Hs + headAt.get(hd)) * tri + q * (q + 1) / 2 + k];
  const weight = (l, hd, q, k) => k > q ? NaN : cell(l, hd, q, k);
  let ov = d.overview ? {side: d.overview.side, bins: d.overview.bins, v: f32(d.overview.values)} : null;
  if (!ov && d.overview_side < n) ov = pooled(cell, L, H, n, d.overview_side);  // every head is here
  return {L, H, n, has, weight, ov, side: ov ? ov.side : n, tokens: d.tokens, labels: d.labels || [], notes: d.notes || {}};
}

function overviewFigure(host, a, sel, o) {
  const side = a.side, gap = Math.max(1, Math.floor(side / 6)), step = side + gap;
  const tile = (r, c) => [Math.floor(r / step), Math.floor(c / step), r % step, c % step];
  const value = (r, c) => {
    const [l, hd, q, k] = tile(r, c);
    if (q >= side || k >= side) return NaN;
    if (!a.ov) return a.weight(l, hd, q, k);
    const [q0, q1] = a.ov.bins[q], [k0] = a.ov.bins[k];
    return k0 <= q1 - 1 ? a.ov.v[((l * a.H + hd) * side + q) * side + k] : NaN;  // a block wholly in the future: blank
  };
  const centres = i => i * step + (side - 1) / 2;
  const big = Math.max(a.L, a.H) > 8, tickPx = big ? o.px.small + 1 : Math.max(15, o.px.tick);
  const maxHeight = o.presenting ? 440 : Math.max(260, Math.min(860, 100 + 260 * a.L / a.H));
  const span = ([s, e]) => s === e - 1 ? `${s}` : `${s}–${e - 1}`;
  return heatmap(host, {
    name: "attention-all-heads", title: "All heads", cls: "gb-v-overview", rows: a.L * step - gap, cols: a.H * step - gap,
    value, lo: 0, hi: 1, px: o.px, font: o.font, width: o.width, square: true, maxHeight, tickPx, xTop: true,
    rowTicks: Array.from({length: a.L}, (_, i) => ({at: centres(i), text: String(i)})),
    colTicks: Array.from({length: a.H}, (_, i) => ({at: centres(i), text: String(i)})),
    xTitle: "head", yTitle: "layer", tip: o.tip, label: "Every head's attention pattern",
    outline: [sel.layer * step - gap / 2, sel.head * step - gap / 2, sel.layer * step + side + gap / 2,
              sel.head * step + side + gap / 2], outlineWidth: 4,
    hover: (r, c) => {
      const [l, hd, q, k] = tile(r, c), w = value(r, c);
      if (!Number.isFinite(w)) return null;
      const where = a.ov ? [`query ${span(a.ov.bins[q])}`, `key ${span(a.ov.bins[k])}`, `mean weight ${fixed(w)}`]
                         : [`query position ${q}`, `key position ${k}`, `weight ${fixed(w)}`];
      return [`layer ${l}, head ${hd}`, ...where, "click to open"];
    },
    nav: {rows: a.L, cols: a.H, start: [sel.layer, sel.head], label: "All heads, one tile per head",
          cell: (i, j) => [i * step, j * step, i * step + side, j * step + side],
          at: (r, c) => { const [l, hd, q, k] = tile(r, c); return q < side && k < side ? [l, hd] : null; },
          describe: (i, j) => `layer ${i}, head ${j}` + (a.labels[i * a.H + j] ? `: ${a.labels[i * a.H + j][0]}` : ""),
          pick: (i, j) => o.pick({layer: i, head: j})},
  });
}

function headFigure(host, a, sel, o) {
  const n = a.n, labels = a.tokens.map((t, i) => `${i} ${short(t)}`);
  const value = (q, k) => a.weight(sel.layer, sel.head, q, k);
  const maxHeight = o.presenting ? 440 : Math.max(500, Math.min(950, 300 + 18 * n));
  const label = a.labels[sel.layer * a.H + sel.head];
  const title = `Layer ${sel.layer}, head ${sel.head}` + (label && label[0] !== "mixed" ? ` · ${label[0]}` : "");
  return heatmap(host, {
    name: `attention-L${sel.layer}H${sel.head}`, title, cls: "gb-v-head", rows: n, cols: n, value, lo: 0, hi: 1,
    px: o.px, font: o.font, width: o.width, maxHeight, rowPx: 40, mono: true, upright: n > 6,
    tickPx: n > 24 ? 13 : 14, rowTicks: tickLabels(labels, 48), colTicks: tickLabels(labels, 20),
    xTitle: "key: the token looked at", yTitle: "query: the token looking", colourbar: {title: "weight"},
    outline: [sel.query, 0, sel.query + 1, sel.query + 1], tip: o.tip, label: title,
    hover: (q, k) => k > q ? null : [`query ${labels[q]}`, `key ${labels[k]}`, `weight ${fixed(value(q, k))}`,
                                     "click: use this query"],
    nav: {rows: n, cols: 1, start: [sel.query, 0], label: `${title}, one row per query token`,
          cell: i => [i, 0, i + 1, i + 1], at: q => [q, 0],
          describe: i => `query ${labels[i]}`, pick: i => o.pick({query: i})},
  });
}

// BertViz's line view for one query (as ui/patterns.py line_view_figure): the query on the left, lines to every
// token it sees on the right, thicker and darker for more weight. Past LINE_LABELS tokens, only the
// LINE_LABELS / 2 keys with the most weight (and the query) get a row, and a last row adds up the rest.
function lineFigure(host, a, sel, o) {
  const q = sel.query, n = q + 1, w = Array.from({length: n}, (_, k) => a.weight(sel.layer, sel.head, q, k));
  const compact = n > LINE_LABELS, px = o.px;
  const order = w.map((v, k) => k).sort((x, y) => w[y] - w[x] || x - y);
  const keys = compact ? [...new Set([q, ...order.slice(0, LINE_LABELS / 2)])].sort((x, y) => x - y)
                       : Array.from({length: n}, (_, k) => k);
  const rows = keys.length + (compact ? 1 : 0), rowPx = compact ? 24 : Math.max(18, Math.min(24, 900 / n));
  const size = rowPx >= 20 ? Math.max(15, px.tick) : Math.max(13, px.small), top = px.title + 26;
  const height = Math.round(Math.max(240, Math.min(o.presenting ? 440 : 1200, rowPx * rows + top + 14)));
  const f = figure(host, {name: `attention-lines-L${sel.layer}H${sel.head}-q${q}`, px, font: o.font, width: o.width,
                          height, title: `Layer ${sel.layer}, head ${sel.head}, query ${q}`, label: "Line view",
                          cls: "gb-v-lines"});
  const step = Math.min(rowPx, (height - top - 10) / rows), y = i => top + (i + 0.5) * step, xq = o.width * 0.3;
  const x0 = o.width * 0.31, x1 = o.width * 0.6, qRow = keys.indexOf(q), names = a.tokens.map(t => short(t, 20));
  const g = f.svg.appendChild(svg("g", {}));
  keys.forEach((k, i) => {  // in bands of weight, as the Plotly figure drew them
    const band = Math.min(Math.floor(w[k] * LINE_BANDS), LINE_BANDS - 1), mid = (band + 0.5) / LINE_BANDS;
    g.appendChild(svg("line", {x1: x0, y1: y(qRow), x2: x1, y2: y(i), stroke: LINE, "stroke-width": 0.5 + 10 * mid,
                               "stroke-opacity": 0.15 + 0.85 * mid}));
  });
  const text = (x, yy, s, extra) => svg("text", Object.assign({x, y: yy + size * 0.35, "font-size": size,
                                                                style: `font-family: ${MONO}`, text: s}, extra));
  g.appendChild(text(xq, y(qRow), compact ? `${q} ${names[q]}` : names[q],
                     {"text-anchor": "end", fill: HIGHLIGHT, "font-weight": 700}));
  keys.forEach((k, i) => {
    g.appendChild(svg("circle", {cx: x1, cy: y(i), r: 3.5, fill: k === q ? HIGHLIGHT : LINE}));
    const t = g.appendChild(text(x1 + 8, y(i), `${compact ? `${k} ${names[k]}` : names[k]}  ${share(w[k])}`,
                                 {fill: "#111"}));
    t.addEventListener("mousemove", e => o.tip.show(e, [`key ${k} ${a.tokens[k]}`, `weight ${fixed(w[k])}`]));
    t.addEventListener("mouseleave", () => o.tip.hide());
  });
  if (compact) {
    const rest = w.reduce((s, v) => s + v, 0) - keys.reduce((s, k) => s + w[k], 0);
    g.appendChild(text(x1 + 8, y(keys.length), `… the other ${thousands(n - keys.length)} tokens together  ${share(rest)}`,
                       {fill: "#555"}));
  }
  return f;
}

function topKeys(a, sel) {
  const q = sel.query, w = Array.from({length: q + 1}, (_, k) => a.weight(sel.layer, sel.head, q, k));
  const order = w.map((v, k) => k).sort((x, y) => w[y] - w[x] || x - y).slice(0, TOP_KEYS);
  return h("table", {class: "gb-v-table gb-v-topkeys"},
    h("thead", {}, h("tr", {}, h("th", {}, "position"), h("th", {}, "token"), h("th", {}, "weight"))),
    h("tbody", {}, order.map(k => h("tr", {}, h("td", {class: "num"}, k), h("td", {class: "tok"}, a.tokens[k]),
                                       h("td", {class: "num"}, fixed(w[k]))))));
}

function headCsv(a, sel) {
  const names = a.tokens.map((t, i) => `${i} ${t}`);
  const rows = [["query \\ key", ...names]];
  for (let q = 0; q < a.n; q++) {
    rows.push([names[q], ...names.map((_, k) => k > q ? 0 : a.weight(sel.layer, sel.head, q, k))]);
  }
  return csvOf(rows);
}

function picker(label, role, options, value, onchange, help) {
  const id = `gb-v-${role}-${Math.random().toString(36).slice(2, 8)}`;
  const select = h("select", {id, "data-role": role, onchange: e => onchange(Number(e.target.value))},
                   options.map(([v, text]) => h("option", {value: v, selected: v === value}, text)));
  return h("label", {class: "gb-v-picker", for: id}, h("span", {}, label, helpMark(help)), select);
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const root = viewRoot(parentElement, "gb-v-attention", data.presenting);
  const body = root.appendChild(h("div", {class: "gb-v-body"})), tip = tooltip(root);
  const a = attentionData(data), sel = Object.assign({}, data.sel), report = reporter(setStateValue, "view");
  const px = sizes(data.presenting), font = fontOf(root);
  const pick = change => {
    Object.assign(sel, change);
    draw();
    report({layer: sel.layer, head: sel.head, query: sel.query});
  };

  function draw() {
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.role : null;
    body.replaceChildren();
    tip.hide();
    body.appendChild(h("div", {class: "gb-v-controls"},
      picker("Layer", "layer", Array.from({length: a.L}, (_, i) => [i, String(i)]), sel.layer, v => pick({layer: v}),
             data.help.layer),
      picker("Head", "head", Array.from({length: a.H}, (_, i) => [i, String(i)]), sel.head, v => pick({head: v}),
             data.help.head),
      picker("Query token (the token doing the looking)", "query", a.tokens.map((t, i) => [i, `${i} · ${t}`]),
             sel.query, v => pick({query: v}), data.help.query)));
    const row = body.appendChild(h("div", {class: "gb-v-row gb-v-split"}));
    const left = row.appendChild(h("div", {class: "gb-v-col gb-v-narrow"}));
    const right = row.appendChild(h("div", {class: "gb-v-col gb-v-wide"}));
    const o = {px, font, tip, pick, presenting: data.presenting};
    overviewFigure(left, a, sel, Object.assign({width: left.clientWidth || 300}, o));
    if (!a.has(sel.layer, sel.head)) {  // a long text sends a layer or a head at a time: this one is on its way
      right.appendChild(h("div", {class: "gb-v-wait"}, `Loading layer ${sel.layer}, head ${sel.head}…`));
    } else {
      headFigure(right, a, sel, Object.assign({width: right.clientWidth || 500}, o));
      const label = a.labels[sel.layer * a.H + sel.head];
      if (label) right.appendChild(h("p", {class: "gb-v-caption gb-v-label"}, "Heuristic label: ",
                                      h("strong", {}, label[0]), `. ${label[1]}. See `, h("em", {}, "What kind of head?"),
                                      " for every figure behind the labels."));
      for (const line of a.notes[`${sel.layer},${sel.head}`] || []) right.appendChild(h("p", {class: "gb-v-caption"}, line));
      right.appendChild(button("Download this head's weights (CSV)",
                               () => download(`attention-L${sel.layer}H${sel.head}.csv`, headCsv(a, sel), "text/csv")));
      body.appendChild(h("h3", {class: "gb-v-h"}, `What “${a.tokens[sel.query]}” looks at`));
      const lines = body.appendChild(h("div", {class: "gb-v-row gb-v-split-lines"}));
      const lc = lines.appendChild(h("div", {class: "gb-v-col gb-v-wide"}));
      const tc = lines.appendChild(h("div", {class: "gb-v-col gb-v-narrow"}));
      lineFigure(lc, a, sel, Object.assign({width: lc.clientWidth || 500}, o));
      tc.append(h("p", {}, "As in BertViz's line view: the query token (orange, left) looks at every token up to " +
                           "itself (right). Thicker, darker lines carry more weight; the weights add up to 100%."),
                topKeys(a, sel));
      if (sel.query + 1 > LINE_LABELS) {
        tc.appendChild(h("p", {class: "gb-v-caption"}, `With this many tokens, the lines go to the ${LINE_LABELS / 2} ` +
                       "with the most weight (and the query itself), in text order with their positions; the last " +
                       "row adds up the rest."));
      }
    }
    if (focused) {
      const again = body.querySelector(`[data-role="${focused}"]`);
      if (again) again.focus();
    }
    drawn(root);
  }
  draw();
  onResize(root, draw);
}
