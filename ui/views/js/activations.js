// The Feed-forward page's MLP activations for one layer (ui/views/activations.py): its most active neurons on
// every token, how its values spread, the share of neurons firing per token, and every layer at a glance. How many
// neurons, ranked by which, and the overview's measure are chosen here and reported back (state value `view`).

const METRIC_NAMES = {out_norm: "size of what the MLP writes", firing: "share of neurons firing", mean: "mean activation"};

// Vertical bars: `bars` [{x0, x1, y, hover}] on a linear x from xLo to xHi; y linear from 0 or log10.
function vbars(host, {name, title, bars, xLo, xHi, xTicks, xFmt, yLog, yFmt, xTitle, yTitle, colour, px, font, width,
                      height, tip, vline}) {
  const ys = bars.map(b => b.y), yHi = Math.max(...ys, yLog ? 10 : 1e-9);
  const yTicks = yLog ? Array.from({length: Math.floor(Math.log10(yHi)) + 1}, (_, e) => 10 ** e)
                      : niceTicks(0, yHi * 1.05, 5);
  const fmt = yFmt || numberText, tickW = Math.max(...yTicks.map(t => textWidth(fmt(t), px.tick, font)));
  const top = px.title + 16, left = tickW + px.label + 26, bottom = (xTicks.upright ? xTicks.room : px.tick + 10) + px.label + 16;
  const f = figure(host, {name, title, width, height, px, font, label: title});
  const x = linear(xLo, xHi, left, width - 14), base = height - bottom;
  const y = yLog ? logScale(0.8, yHi * 1.3, base, top) : linear(0, yHi * 1.05, base, top);
  axis(f.svg, {x: false, scale: y, ticks: yTicks, at: left, from: left, to: width - 14, fmt, px, title: yTitle, gap: tickW + 14});
  const g = f.svg.appendChild(svg("g", {}));
  for (const b of bars) {
    const top_ = b.y > 0 ? y(b.y) : base;
    g.appendChild(svg("rect", {x: x(b.x0), y: top_, width: Math.max(1, x(b.x1) - x(b.x0)), height: Math.max(0, base - top_),
                               fill: b.colour || colour}));
    const hit = g.appendChild(svg("rect", {x: x(b.x0), y: top, width: Math.max(1, x(b.x1) - x(b.x0)), height: base - top,
                                           fill: "transparent"}));
    hit.addEventListener("mousemove", e => tip.show(e, b.hover));
    hit.addEventListener("mouseleave", () => tip.hide());
  }
  for (const t of xTicks.ticks) {
    const p = x(t.at);
    f.svg.appendChild(xTicks.upright
      ? svg("text", {transform: `translate(${p + px.tick * 0.35}, ${base + 6}) rotate(-60)`, "text-anchor": "end",
                     "font-size": px.tick, style: `font-family: ${MONO}`, fill: "#222", text: t.text})
      : svg("text", {x: p, y: base + px.tick + 4, "text-anchor": "middle", "font-size": px.tick, fill: "#333", text: t.text}));
  }
  f.svg.appendChild(svg("text", {x: (left + width) / 2, y: height - 8, "text-anchor": "middle", "font-size": px.label,
                                 fill: "#111", text: xTitle}));
  if (vline) {
    f.svg.appendChild(svg("line", {x1: x(vline.at), x2: x(vline.at), y1: top, y2: base, stroke: "#444", "stroke-dasharray": "6 4"}));
    f.svg.appendChild(svg("text", {x: x(vline.at) + 4, y: top + px.small, "font-size": px.small, fill: "#111", text: vline.text}));
  }
  return f;
}

function radio(label, role, options, value, onchange) {
  return h("div", {class: "gb-v-picker", role: "radiogroup", "aria-label": label}, h("span", {}, label),
    h("div", {class: "gb-v-segmented"}, options.map(([v, text]) => {
      const b = button(text, () => onchange(v));
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", String(v === value));
      b.setAttribute("aria-pressed", String(v === value));
      b.dataset.role = `${role}-${v}`;
      return b;
    })));
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const d = data, root = viewRoot(parentElement, "gb-v-activations", d.presenting);
  const body = root.appendChild(h("div", {class: "gb-v-body"})), tip = tooltip(root);
  const px = sizes(d.presenting), font = fontOf(root), report = reporter(setStateValue, "view", 200);
  const neurons = i32(d.neurons), values = f32(d.values), C = neurons.length, P = d.tokens.length;
  const metrics = Object.fromEntries(Object.entries(d.metrics).map(([m, v]) => [m, Object.assign({}, v, {z: f32(v.values)})]));
  const firing = f32(d.firing), sel = Object.assign({}, d.sel);
  const labels = d.tokens.map((t, i) => `${d.first + i} ${short(t)}`);
  const change = update => { Object.assign(sel, update); draw(); report({n_show: sel.n_show, by: sel.by, metric: sel.metric}); };

  function draw() {
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.role : null;
    body.replaceChildren();
    tip.hide();
    const W = body.clientWidth || 800, o = {px, font, tip, presenting: d.presenting};
    const n = Math.max(1, Math.min(sel.n_show, d.most)), order = (sel.by === "mean" ? d.by_mean : d.by_max).slice(0, n);
    const slider = h("input", {type: "range", min: 1, max: d.most, step: 1, value: n, "data-role": "n_show",
                               "aria-valuetext": String(n), id: "gb-v-n-show"});
    const out = h("output", {for: "gb-v-n-show", text: String(n)});
    slider.addEventListener("input", () => { out.textContent = slider.value; change({n_show: Number(slider.value)}); });
    body.appendChild(h("div", {class: "gb-v-controls"},
      h("div", {class: "gb-v-slider gb-v-picker", title: `Layer ${d.layer} has ${thousands(d.d_mlp)} neurons; the most active are shown.`},
        h("label", {class: "gb-v-slider-head", for: "gb-v-n-show"}, h("span", {}, "Neurons shown"), out), slider),
      radio("Most active by", "by", [["max", "highest peak"], ["mean", "average"]], sel.by, v => change({by: v}))));
    let lo = Infinity, hi = -Infinity;
    for (let r = 0; r < P; r++) for (const c of order) { const v = values[r * C + c]; if (v < lo) lo = v; if (v > hi) hi = v; }
    heatmap(body, {
      name: `feedforward-layer${d.layer}-activations`, title: `Layer ${d.layer} MLP activations (after GELU)`, cls: "gb-v-act",
      rows: P, cols: order.length, value: (r, c) => values[r * C + order[c]], lo, hi, px, font, width: W, mono: true,
      rowPx: 16, minPlot: 200, maxHeight: d.presenting ? 440 : Math.min(900, Math.max(280, 90 + 16 * P) + 120),
      rowTicks: tickLabels(labels, 48), colTicks: order.map((c, at) => ({at, text: `n${neurons[c]}`})), upright: true,
      xTitle: `neuron of layer ${d.layer} (most active first)`, yTitle: "token", colourbar: {title: "activation"}, tip,
      label: `Layer ${d.layer} MLP activations`,
      hover: (r, c) => [`position ${d.first + r}: ${d.tokens[r]}`, `neuron n${neurons[order[c]]}`,
                        `activation ${fixed(values[r * C + order[c]])}`]});
    body.appendChild(h("p", {class: "gb-v-caption"}, `Each row is a token of your text, each column one of layer ` +
      `${d.layer}'s ${thousands(d.d_mlp)} neurons (the ${order.length} most active, by ` +
      `${sel.by === "max" ? "highest peak" : "average"}). Colour: viridis, dark = zero or below (silent), yellow = strongly active.`));
    const row = body.appendChild(h("div", {class: "gb-v-row"}));
    const left = row.appendChild(h("div", {class: "gb-v-col gb-v-half"})), right = row.appendChild(h("div", {class: "gb-v-col gb-v-half"}));
    const e = d.hist.edges;
    vbars(left, {name: `feedforward-layer${d.layer}-histogram`, title: `Layer ${d.layer}: distribution of activations`,
      bars: d.hist.counts.map((c, i) => ({x0: e[i], x1: e[i + 1], y: c, hover: [`${e[i].toFixed(2)} to ${e[i + 1].toFixed(2)}`,
                                                                                  `${thousands(c)} values`]})),
      xLo: e[0], xHi: e[e.length - 1], xTicks: {ticks: niceTicks(e[0], e[e.length - 1], 5).map(t => ({at: t, text: numberText(t)}))},
      yLog: true, colour: "#3b528b", xTitle: "activation after GELU", yTitle: "how many (log scale)",
      vline: {at: 0, text: `above 0: ${Math.round(d.hist.fires * 100)}% (fires)`}, height: 320,
      width: left.clientWidth || 380, ...o});
    left.appendChild(h("p", {class: "gb-v-caption"}, "GELU lets positive values through and squashes negative ones to " +
      "just below zero, so most values pile up near zero: a neuron fires when it is above zero."));
    const step = Math.max(1, Math.ceil(P / 14));
    vbars(right, {name: `feedforward-layer${d.layer}-firing`, title: `Layer ${d.layer}: share of neurons above zero, per token`,
      bars: Array.from(firing, (v, i) => ({x0: i + 0.1, x1: i + 0.9, y: v, hover: [`position ${d.first + i}: ${d.tokens[i]}`,
                                                                                  `${(v * 100).toFixed(1)}% of neurons fire`]})),
      xLo: 0, xHi: P, xTicks: {upright: true, room: Math.max(...labels.map(l => textWidth(l, px.tick, MONO))) * 0.9 + 12,
                               ticks: labels.map((text, i) => ({at: i + 0.5, text})).filter((t, i) => i % step === 0)},
      yFmt: v => `${Math.round(v * 100)}%`, colour: "#21918c", xTitle: "token", yTitle: "neurons firing",
      height: 320 + Math.min(120, Math.max(...labels.map(l => textWidth(l, px.tick, MONO))) * 0.9),
      width: right.clientWidth || 380, ...o});
    body.appendChild(h("h3", {class: "gb-v-h"}, "Every layer at a glance"));
    body.appendChild(radio("Measure", "metric", Object.entries(METRIC_NAMES), sel.metric, v => change({metric: v})));
    const m = metrics[sel.metric], L = d.n_layer;
    let mlo = Infinity, mhi = -Infinity;
    for (const v of m.z) { if (v < mlo) mlo = v; if (v > mhi) mhi = v; }
    heatmap(body, {
      name: `feedforward-overview-${sel.metric}`, title: `Every layer at a glance: ${m.what}`, cls: "gb-v-act-overview",
      rows: L, cols: P, value: (r, c) => m.z[r * P + c], lo: mlo, hi: mhi, px, font, width: W, rowPx: 45,
      maxHeight: d.presenting ? 440 : Math.min(900, 250 + 45 * L) + 60, mono: true,
      rowTicks: Array.from({length: L}, (_, i) => ({at: i, text: `layer ${i}`})), colTicks: tickLabels(labels, 28),
      upright: true, xTitle: "token", colourbar: {title: m.unit}, tip, label: `Every layer at a glance: ${m.what}`,
      hover: (r, c) => [`layer ${r}, position ${d.first + c}: ${d.tokens[c]}`, `${m.what} ${fixed(m.z[r * P + c])}`]});
    body.appendChild(h("p", {class: "gb-v-caption"}, "Rows are layers, columns tokens; viridis, yellow = the MLP works " +
      "hardest there. “Size of what the MLP writes” is the length (L2 norm) of the vector it adds to the stream."));
    body.appendChild(button("This overview (CSV)", () => {
      const rows = [["position", "token", ...Array.from({length: L}, (_, i) => `layer ${i}`)]];
      for (let c = 0; c < P; c++) rows.push([d.first + c, d.tokens[c], ...Array.from({length: L}, (_, r) => m.z[r * P + c])]);
      download(`glassbox-feedforward-overview-${sel.metric}.csv`, csvOf(rows), "text/csv");
    }));
    if (focused) {
      const again = body.querySelector(`[data-role="${focused}"]`);
      if (again) again.focus();
    }
    drawn(root);
  }
  draw();
  onResize(root, draw);
}
