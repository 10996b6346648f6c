// The Next token page's sampling lab, computed here from one position's logits sent once
// (ui/views/sampling.py): presets, the temperature / top-k / top-p / min-p sliders, the summary, the
// distribution a token is drawn from and every stage, redrawn in the browser on every move. The settings and
// the stage are reported back (state value `view`), so draws, generation, links and the tour use them.

const SLIDERS = [["temperature", "Temperature"], ["top_k", "Top-k"], ["top_p", "Top-p"], ["min_p", "Min-p"]];

function sliderText(field, v) {
  if (field === "temperature") return v === 0 ? "0 · greedy" : String(v);
  if (field === "top_k") return v === 0 ? "off" : String(v);
  if (field === "top_p") return v >= 1 ? "1.00 · off" : v.toFixed(2);
  return v === 0 ? "0 · off" : v.toFixed(2);
}

function samplingSlider(field, label, options, value, disabled, explain, onchange, help) {
  const index = Math.max(0, options.indexOf(value)), id = `gb-v-${field}-${Math.random().toString(36).slice(2, 8)}`;
  const out = h("output", {for: id, text: sliderText(field, value)});
  const input = h("input", {type: "range", id, min: 0, max: options.length - 1, step: 1, value: index, disabled,
                            "data-role": field, "aria-valuetext": sliderText(field, value)});
  input.addEventListener("input", () => {
    const v = options[Number(input.value)];
    out.textContent = sliderText(field, v);
    input.setAttribute("aria-valuetext", sliderText(field, v));
    onchange(v);
  });
  return h("div", {class: "gb-v-slider"}, h("label", {class: "gb-v-slider-head", for: id},
                                              h("span", {}, label, helpMark(help)), out),
           input, h("p", {class: "gb-v-caption"}, explain));
}

function metric(label, value, help) {
  return h("div", {class: "gb-v-metric", title: help},
           h("div", {class: "gb-v-metric-label"}, label), h("div", {class: "gb-v-metric-value", text: value}));
}

function axisRange(top) {  // as distribution_figure: room after the longest bar, ticks every 1/5/10/20%
  const xMax = Math.min(1, top) * 1.3, step = top > 0.5 ? 0.2 : top > 0.15 ? 0.1 : top > 0.05 ? 0.05 : 0.01;
  const ticks = [];
  for (let i = 0; i * step <= Math.min(1, xMax) + 1e-9; i++) ticks.push(Number((i * step).toFixed(4)));
  return {xMax, ticks};
}

function distribution(host, st, top, d, o) {
  const label = id => short(d.labels[id] || `#${id}`, 18), rows = [], groups = new Map();
  top.ids.forEach((id, i) => {
    const why = top.removedBy[i], colour = top.kept[i] ? KEPT : REMOVED[why];
    groups.set(top.kept[i] ? "can be drawn" : `removed by ${why}`, colour);
    rows.push({label: label(id) + (id === d.actual ? "  ✔ next in text" : ""), marker: top.before[i],
               bars: [{value: top.kept[i] ? top.after[i] : 0, colour}],
               text: top.kept[i] ? prob(top.after[i]) : `removed by ${why}`, textColour: top.kept[i] ? "#111" : colour,
               hover: [`${d.labels[id]} (id ${id}, rank ${thousands(top.rank[i])})`, `drawn with ${prob(top.after[i])}`,
                       `before the filters ${prob(top.before[i])}`, ...(why ? [`removed by ${why}`] : [])]});
  });
  const rest = top.nZero ? `everything else (${thousands(top.nRest)}; ${thousands(top.nZero)} at 0%)`
                         : `everything else (${thousands(top.nRest)})`;
  groups.set("everything else", REST);
  rows.push({label: rest, marker: top.restBefore, bars: [{value: top.restAfter, colour: REST}], text: prob(top.restAfter),
             hover: [`the other ${thousands(top.nRest)} tokens together`, `drawn with ${prob(top.restAfter)}`,
                     `before the filters ${prob(top.restBefore)}`]});
  const {xMax, ticks} = axisRange(Math.max(...top.after, top.restAfter, ...top.before, 0.01));
  const items = [...groups].map(([name, colour]) => ({name, colour}));
  items.push({name: "before the filters", colour: "#111", shape: "diamond"});
  return hbars(host, Object.assign({name: "next-token", title: "What the next token is drawn from", rows, lo: 0,
                                    hi: xMax, ticks, fmt: pctTick, xTitle: "probability", legendItems: items}, o));
}

function stageFigure(host, stage, st, d, s, o) {
  const n = Math.min(d.n_bars, st.order.length), ids = Array.from(st.order.slice(0, n)), V = st.logits.length;
  const label = id => short(d.labels[id] || `#${id}`, 18);
  if (stage <= 1) {
    const scaled = stage === 1, vals = ids.flatMap(id => scaled ? [st.logits[id], st.scaled[id]] : [st.logits[id]]);
    const lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
    const rows = ids.map(id => ({label: label(id), bars: scaled ? [{value: st.logits[id], colour: REST},
                                                                    {value: st.scaled[id], colour: KEPT}]
                                                                 : [{value: st.logits[id], colour: KEPT}],
                                 hover: [d.labels[id], `raw logit ${fixed(st.logits[id])}`,
                                         ...(scaled ? [`logit ÷ T ${fixed(st.scaled[id])}`] : [])]}));
    const f = hbars(host, Object.assign({name: scaled ? "logits-over-t" : "raw-logits", rows, lo, hi,
      title: scaled ? "Logits divided by the temperature" : "Raw logits: the model's scores for each token",
      ticks: niceTicks(lo, hi, 5), xTitle: "logit", rowPx: scaled ? 34 : 26,
      legendItems: scaled ? [{name: "raw logit", colour: REST}, {name: "logit ÷ T", colour: KEPT}] : null}, o));
    let lowest = Infinity, highest = -Infinity;
    for (const v of st.logits) { if (v < lowest) lowest = v; if (v > highest) highest = v; }
    return [f, scaled ? "T = 0 is greedy and leaves the logits as they are. Otherwise the logits are divided by T " +
                        "(0.01 to 10): below 1 the gaps between them grow, above 1 they shrink."
                      : `The model's raw scores. Across all ${thousands(V)} tokens they range from ${lowest.toFixed(2)} ` +
                        `to ${highest.toFixed(2)}; only differences matter: softmax turns them into probabilities.`];
  }
  if (stage === 2) {
    const shown = ids.filter((id, i) => i === 0 || st.before[id] > 0), groups = new Map();
    const rows = shown.map(id => {
      const why = st.removed[id] ? FILTERS[st.removed[id] - 1] : null, colour = why ? REMOVED[why] : KEPT;
      groups.set(why ? `removed by ${why}` : "kept", colour);
      return {label: label(id), bars: [{value: st.before[id], colour}],
              hover: [d.labels[id], `${prob(st.before[id])} at this temperature`, why ? `removed by ${why}` : "kept"]};
    });
    const top = Math.max(...shown.map(id => st.before[id]), 1e-9), zero = ids.length - shown.length;
    const lines = !s.greedy && s.min_p > 0 ? [{at: s.min_p * st.before[st.order[0]],
                                               text: `min-p line: ${s.min_p} × the top probability`}] : [];
    const f = hbars(host, Object.assign({name: "filters", rows, lo: 0, hi: top * 1.05, ticks: niceTicks(0, top * 1.05, 5),
      fmt: pctTick, xTitle: "probability at this temperature", lines, legendItems: [...groups].map(([name, colour]) =>
        ({name, colour})), title: "Which tokens the filters remove" + (zero ? ` (${thousands(zero)} of the ` +
        `${thousands(ids.length)} likeliest round to 0% at this temperature: not drawn)` : "")}, o));
    const counts = FILTERS.map((name, i) => [name, st.removed.reduce((c, r) => c + (r === i + 1), 0)])
                          .filter(([, c]) => c > 0).map(([name, c]) => `${name} removed ${thousands(c)}`).join(", ");
    return [f, "The filters apply in the order top-k, top-p, min-p; each token is blamed on the first that removes " +
               `it. ${counts ? counts + "." : "Nothing is removed."}`];
  }
  if (stage === 3) {
    let reach = 1;
    for (const c of st.cumulative) if (c < 0.999) reach++;
    const m = Math.max(Math.min(10, V), Math.min(200, reach, V)), xs = Array.from({length: m}, (_, i) => i + 1);
    const ys = Array.from(st.cumulative.slice(0, m)), kept = xs.map((_, i) => st.removed[st.order[i]] === 0);
    const f = lineChart(host, Object.assign({name: "top-p", title: "Top-p's running total", xLog: m > 30, xLo: 1, xHi: m,
      xTicks: m > 30 ? LOG_TICKS.filter(t => t >= 1 && t <= m) : niceTicks(1, m, 6).filter(t => t >= 1), yLo: 0, yHi: 1.05,
      yFmt: v => `${Math.round(v * 100)}%`, xTitle: "tokens, most likely first (rank)", yTitle: "probability held so far",
      height: o.presenting ? 400 : 420,
      series: [{xs, ys, colour: "#555", width: 2},
               {xs, ys, colour: KEPT, markers: true, markerColours: kept.map(k => k ? KEPT : REMOVED["top-p"])}],
      hlines: !s.greedy && s.top_p < 1 ? [{at: s.top_p, text: `top-p = ${s.top_p}`, below: true}] : [],
      legendItems: [{name: "running total", colour: "#555", shape: "line"}, {name: "kept", colour: KEPT},
                    {name: "removed", colour: REMOVED["top-p"]}],
      hover: at => { const i = Math.min(m - 1, Math.max(0, Math.round(m > 30 ? 10 ** (at * Math.log10(m)) - 1 : at * (m - 1))));
                     return [`the ${i + 1} likeliest tokens hold ${prob(ys[i])}`]; }}, o));
    return [f, "Top-p walks down the tokens from the most likely and keeps them until the total reaches p."];
  }
  const c = entropyCurve(o.prep, s), most = Math.log2(V);
  const series = [{xs: c.temps, ys: c.before, colour: REST, width: 2}, {xs: c.temps, ys: c.after, colour: KEPT, width: 3}];
  if (!s.greedy) {
    series.push({xs: [Math.min(Math.max(s.temperature, 0.01), 10)], ys: [st.entropyAfter], colour: DRAWN, markers: true,
                 size: 7});
  }
  const f = lineChart(host, Object.assign({name: "entropy", title: "Entropy: how many bits of choice are left",
    xLog: true, xLo: 0.01, xHi: 10, xTicks: LOG_TICKS.filter(t => t >= 0.01 && t <= 10), yLo: 0,
    yHi: Math.max(most, ...c.before) * 1.05, xTitle: "temperature T (log scale)", yTitle: "entropy (bits)",
    height: o.presenting ? 400 : 420, series,
    hlines: [{at: most, text: `the most possible: all ${thousands(V)} tokens equally likely`, below: true}],
    legendItems: [{name: "before the filters", colour: REST, shape: "line"},
                  {name: "after the filters (sampled from)", colour: KEPT, shape: "line"},
                  ...(s.greedy ? [] : [{name: "your setting", colour: DRAWN}])],
    hover: at => { const i = Math.round(at * (c.temps.length - 1));
                   return [`T = ${c.temps[i].toFixed(2)}`, `before ${c.before[i].toFixed(2)} bits`,
                           `after ${c.after[i].toFixed(2)} bits`]; }}, o));
  return [f, `Entropy is how many bits of choice the distribution leaves: 0 when one token is certain, ` +
             `${most.toFixed(1)} when all ${thousands(V)} are equally likely.`];
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const d = data, root = viewRoot(parentElement, "gb-v-sampling", d.presenting);
  const body = root.appendChild(h("div", {class: "gb-v-body"})), tip = tooltip(root);
  const prep = prepare(f32(d.logits)), px = sizes(d.presenting), font = fontOf(root);
  const s = {temperature: d.sel.temperature, top_k: d.sel.top_k, top_p: d.sel.top_p, min_p: d.sel.min_p};
  let stage = Math.max(0, d.stages.indexOf(d.sel.stage));
  const report = reporter(setStateValue, "view", 250);  // a slider dragged reports once it rests
  const change = update => {
    Object.assign(s, update);
    draw();
    report(Object.assign({stage: d.stages[stage]}, s));
  };
  const same = p => SLIDERS.every(([f]) => p[f] === s[f]);

  function draw() {
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.role : null;
    body.replaceChildren();
    tip.hide();
    s.greedy = s.temperature <= 0;
    const st = samplingStages(prep, s), top = topTokens(st, d.n_bars, null), V = st.logits.length;
    const o = {px, font, tip, presenting: d.presenting, prep};
    body.appendChild(h("div", {class: "gb-v-presets"}, h("strong", {}, "Presets"),
      h("div", {class: "gb-v-segmented"}, Object.entries(d.presets).map(([name, p]) => {
        const b = button(name.charAt(0).toUpperCase() + name.slice(1), () => change(Object.assign({}, p)), d.preset_help[name]);
        b.setAttribute("aria-pressed", String(same(p)));
        b.dataset.role = `preset-${name}`;
        return b;
      }))));
    let filtered = 0;
    for (let i = 0; i < V; i++) if (st.removed[i]) filtered += st.before[i];
    const best = st.order[0];
    body.appendChild(h("div", {class: "gb-v-metrics"},
      metric("Can be drawn", thousands(st.nKept), `tokens left after the filters, of ${thousands(V)}`),
      metric("Entropy", `${st.entropyAfter.toFixed(2)} bits`,
             `bits of choice left after the filters (${st.entropyBefore.toFixed(2)} before them)`),
      metric("Top token", d.labels[best] || `#${best}`,
             `the most likely token: ${(st.after[best] * 100).toFixed(1)}% after the filters`),
      metric("Filtered out", `${(filtered * 100).toFixed(1)}%`, "probability (at this temperature) taken from the " +
             "removed tokens and shared out among the kept ones")));
    const row = body.appendChild(h("div", {class: "gb-v-row gb-v-split"}));
    const left = row.appendChild(h("div", {class: "gb-v-col gb-v-narrow"}));
    const right = row.appendChild(h("div", {class: "gb-v-col gb-v-wide"}));
    for (const [field, label] of SLIDERS) {
      left.appendChild(samplingSlider(field, label, d.options[field], s[field], field !== "temperature" && s.greedy,
                                      d.explain[field], v => change({[field]: v}), d.help[field]));
    }
    if (s.greedy) left.appendChild(h("p", {class: "gb-v-caption"}, "With T = 0 the filters have nothing to do: only the top token is left."));
    if (s.greedy) {
      right.appendChild(h("div", {class: "gb-v-info"}, h("strong", {}, "T = 0: greedy."), " The most likely token gets " +
                              "probability 1 and every other token 0, so generation always picks the same token."));
    }
    distribution(right, st, top, d, Object.assign({width: right.clientWidth || 500}, o)).fig.classList.add("gb-v-dist");
    right.appendChild(h("p", {class: "gb-v-caption"}, "Bars: the probability each token is drawn with after temperature " +
      "and filters, renormalised to add up to 100% (blue: can be drawn; orange, pink, light blue or grey: removed, by the " +
      "filter named). ◇: its probability before the filters. Colours: Okabe-Ito, colour-blind safe."));
    if (d.actual !== null) {
      right.appendChild(h("p", {class: "gb-v-note"}, "In your text the next token is ", h("code", {}, d.labels[d.actual]),
        `: the model gave it ${(st.before[d.actual] * 100).toFixed(2)}% at this temperature ` +
        `(${(st.after[d.actual] * 100).toFixed(2)}% after the filters).`));
    }
    body.appendChild(h("h3", {class: "gb-v-h"}, "Stage by stage", helpMark(d.help.stage)));
    body.appendChild(h("div", {class: "gb-v-segmented", role: "group", "aria-label": "Stage"}, d.stages.map((name, i) => {
      const b = button(name, () => { stage = i; change({}); });
      b.setAttribute("aria-pressed", String(i === stage));
      b.dataset.role = `stage-${i}`;
      return b;
    })));
    const holder = body.appendChild(h("div", {class: "gb-v-stage"}));
    const [fig, note] = stageFigure(holder, stage, st, d, s, Object.assign({width: body.clientWidth || 800}, o));
    fig.fig.classList.add("gb-v-stage-fig");
    holder.appendChild(h("p", {class: "gb-v-caption"}, note));
    if (focused) {
      const again = body.querySelector(`[data-role="${focused}"]`);
      if (again) again.focus();
    }
    drawn(root);
  }
  draw();
  onResize(root, draw);
}
