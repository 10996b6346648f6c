// The Feed-forward page's logit lens (ui/views/lens.py): stages x positions, coloured by the probability of the
// model's final prediction at each stage, each cell's top token written in it on short texts, and for the chosen
// position (a click on a column, or Tab, the arrow keys and Enter) every stage's top tokens in a table.

function lensData(d) {
  const S = d.stages.length, P = d.tokens.length, K = d.k;
  return {S, P, K, probs: f32(d.target_probs), ranks: i32(d.target_ranks), topIds: i32(d.top_ids),
          topProbs: f32(d.top_probs), target: i32(d.target_ids), label: id => d.labels[id] ?? `#${id}`};
}

function lensFigure(host, d, L, col, o) {
  const pct = v => `${(v * 100).toFixed(1)}%`, pos = c => d.first + c;
  const cols = d.tokens.map((t, c) => `${pos(c)} ${short(t)}`), text = L.P <= d.text_cells;
  const title = "Logit lens: probability of the final prediction at every stage" + (text ? " (cells: the stage's top token)" : "");
  return heatmap(host, {
    name: "logit-lens", title, cls: "gb-v-lens", rows: L.S, cols: L.P, value: (s, c) => L.probs[s * L.P + c], lo: 0, hi: 1,
    px: o.px, font: o.font, width: o.width, rowPx: 30, maxHeight: o.presenting ? 440 : Math.min(1000, 170 + 30 * L.S),
    rowTicks: d.ticks.map((t, at) => ({at, text: t})), colTicks: tickLabels(cols, 28), upright: true, mono: false,
    xTitle: "position (the model predicts the token after it)", colourbar: {title: "probability", fmt: v => `${Math.round(v * 100)}%`},
    cellText: text ? (s, c, fit) => short(L.label(L.topIds[(s * L.P + c) * L.K]), fit) : null,
    outline: [0, col, L.S, col + 1], tip: o.tip, label: title,
    hover: (s, c) => {
      const k = (s * L.P + c) * L.K;
      return [`${d.stages[s]}, position ${pos(c)} (${d.tokens[c]})`,
              `final prediction “${L.label(L.target[c])}”: ${pct(L.probs[s * L.P + c])}, rank ${L.ranks[s * L.P + c] + 1}`,
              `top token here: “${L.label(L.topIds[k])}” (${pct(L.topProbs[k])})`, "click: this position's table"];
    },
    nav: {rows: 1, cols: L.P, start: [0, col], label: "Logit lens, one column per position",
          cell: (i, j) => [0, j, L.S, j + 1], at: (s, c) => [0, c],
          describe: (i, j) => `position ${pos(j)} ${d.tokens[j]}: finally predicts ${L.label(L.target[j])}`,
          pick: (i, j) => o.pick(pos(j))},
  });
}

function lensTable(d, L, col) {
  const pct = v => `${(v * 100).toFixed(1)}%`, heads = ["stage"];
  for (let j = 0; j < L.K; j++) heads.push(`top ${j + 1}`);
  heads.push("final prediction p", "its rank");
  return h("div", {class: "gb-v-scroll"}, h("table", {class: "gb-v-table gb-v-lens-table"},
    h("thead", {}, h("tr", {}, heads.map(x => h("th", {}, x)))),
    h("tbody", {}, d.stages.map((stage, s) => {
      const k = (s * L.P + col) * L.K, cells = [h("td", {}, stage + (s === L.S - 1 ? " = model output" : ""))];
      for (let j = 0; j < L.K; j++) {
        cells.push(h("td", {class: "tok"}, `${L.label(L.topIds[k + j])}  ${pct(L.topProbs[k + j])}`));
      }
      cells.push(h("td", {class: "num"}, pct(L.probs[s * L.P + col])), h("td", {class: "num"}, L.ranks[s * L.P + col] + 1));
      return h("tr", {}, cells);
    }))));
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const d = data, root = viewRoot(parentElement, "gb-v-lens-view", d.presenting);
  const body = root.appendChild(h("div", {class: "gb-v-body"})), tip = tooltip(root);
  const L = lensData(d), px = sizes(d.presenting), font = fontOf(root), report = reporter(setStateValue, "view");
  let col = Math.max(0, Math.min(L.P - 1, d.sel.position - d.first));
  const pick = position => {
    col = position - d.first;
    draw();
    report({position});
  };

  function draw() {
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.role : null;
    body.replaceChildren();
    tip.hide();
    lensFigure(body, d, L, col, {px, font, tip, pick, width: body.clientWidth || 800, presenting: d.presenting});
    body.appendChild(h("p", {class: "gb-v-h4"}, h("strong", {}, `Position ${d.first + col}`),
                       ` (${d.tokens[col]}): what each stage would predict next`, helpMark(d.help)));
    body.appendChild(lensTable(d, L, col));
    if (focused) {
      const again = body.querySelector(`[data-role="${focused}"]`);
      if (again) again.focus();
    }
    drawn(root);
  }
  draw();
  onResize(root, draw);
}
