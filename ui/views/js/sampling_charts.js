// The sampling lab's charts: horizontal bars (the distribution, the stages' bars) and lines (top-p's running
// total, entropy across temperatures), as SVG with hover text and a PNG button.

const KEPT = "#0072B2", DRAWN = "#D55E00", REST = "#999999";
const REMOVED = {"greedy": "#BBBBBB", "top-k": "#E69F00", "top-p": "#CC79A7", "min-p": "#56B4E9"};

function pctTick(v) {  // Plotly's ".3~%": 0%, 20%, 2.5%
  return `${Number((v * 100).toFixed(3))}%`;
}

// rows: [{label, bars: [{value, colour, name}], text, textColour, marker, hover: [lines]}]; x from lo to hi.
function hbars(host, {name, title, rows, lo, hi, ticks, fmt, xTitle, px, font, width, tip, legendItems, lines, mono = true,
                      rowPx = 30, presenting}) {
  if (legendItems) host.appendChild(legend(legendItems));
  const labelFont = mono ? MONO : font, tickPx = px.tick;
  const labelW = Math.max(...rows.map(r => textWidth(r.label, tickPx, labelFont)), 20);
  const textW = Math.max(0, ...rows.map(r => r.text ? textWidth(r.text, tickPx, font) : 0));
  const top = px.title + 16, left = labelW + 14, bottom = tickPx + (xTitle ? px.label + 22 : 12);
  const right = Math.min(textW + 16, width * 0.3);
  if (presenting) rowPx = Math.max(tickPx + 4, Math.min(rowPx, (440 - top - bottom) / rows));  // fits under the tour
  const height = Math.round(top + rowPx * rows.length + bottom), pw = Math.max(80, width - left - right);
  const f = figure(host, {name, title, width, height, px, font, label: title});
  const x = linear(lo, hi, left, left + pw), plotBottom = top + rowPx * rows.length;
  axis(f.svg, {x: true, scale: x, ticks, at: plotBottom, from: top, to: plotBottom, fmt, px, title: xTitle});
  if (lo < 0) f.svg.appendChild(svg("line", {x1: x(0), x2: x(0), y1: top, y2: plotBottom, stroke: "#888"}));
  const g = f.svg.appendChild(svg("g", {}));
  rows.forEach((r, i) => {
    const y0 = top + i * rowPx, band = rowPx * 0.75, each = band / r.bars.length;
    g.appendChild(svg("text", {x: left - 6, y: y0 + rowPx / 2 + tickPx * 0.35, "text-anchor": "end", "font-size": tickPx,
                               style: `font-family: ${labelFont}`, fill: "#111", text: r.label}));
    r.bars.forEach((b, j) => {
      const a = x(Math.min(0, b.value)), z = x(Math.max(0, b.value));
      g.appendChild(svg("rect", {x: a, y: y0 + (rowPx - band) / 2 + j * each, width: Math.max(0, z - a), height: each,
                                 fill: b.colour}));
    });
    if (r.marker !== undefined && r.marker !== null) {  // a diamond: the value before the filters
      const mx = x(r.marker), my = y0 + rowPx / 2;
      g.appendChild(svg("path", {d: `M${mx} ${my - 6}L${mx + 6} ${my}L${mx} ${my + 6}L${mx - 6} ${my}Z`, fill: "none",
                                 stroke: "#111", "stroke-width": 2}));
    }
    if (r.text) {
      const end = Math.max(x(Math.max(0, ...r.bars.map(b => b.value))), r.marker != null ? x(r.marker) + 8 : 0);
      g.appendChild(svg("text", {x: end + 6, y: y0 + rowPx / 2 + tickPx * 0.35, "font-size": tickPx,
                                 fill: r.textColour || "#111", text: r.text}));
    }
    const hit = g.appendChild(svg("rect", {x: 0, y: y0, width, height: rowPx, fill: "transparent"}));
    if (r.hover) {
      hit.addEventListener("mousemove", e => tip.show(e, r.hover));
      hit.addEventListener("mouseleave", () => tip.hide());
    }
  });
  for (const l of lines || []) {  // a dashed vertical line with its label (min-p's threshold)
    f.svg.appendChild(svg("line", {x1: x(l.at), x2: x(l.at), y1: top, y2: plotBottom, stroke: "#333",
                                   "stroke-dasharray": "6 4", "stroke-width": 1.5}));
    f.svg.appendChild(svg("text", {x: Math.min(x(l.at) + 4, width - 4), y: top - 4, "font-size": px.small, fill: "#333",
                                   "text-anchor": x(l.at) > width * 0.6 ? "end" : "start", text: l.text}));
  }
  return f;
}

// series: [{name, xs, ys, colour, width, markers: bool, markerColours}]; lines: horizontal dashed lines [{at, text}].
function lineChart(host, {name, title, series, xLog, xLo, xHi, xTicks, yLo, yHi, yFmt, xTitle, yTitle, px, font, width,
                          height, tip, hover, hlines, legendItems}) {
  if (legendItems) host.appendChild(legend(legendItems));
  const yTicks = niceTicks(yLo, yHi, 5), tickW = Math.max(...yTicks.map(t => textWidth((yFmt || numberText)(t), px.tick, font)));
  const top = px.title + 16, left = tickW + px.label + 26, bottom = 2 * px.tick + px.label + 16, right = 16;
  const f = figure(host, {name, title, width, height, px, font, label: title});
  const x = (xLog ? logScale : linear)(xLo, xHi, left, width - right), y = linear(yLo, yHi, height - bottom, top);
  axis(f.svg, {x: true, scale: x, ticks: xTicks, at: height - bottom, from: top, to: height - bottom, px, title: xTitle});
  axis(f.svg, {x: false, scale: y, ticks: yTicks, at: left, from: left, to: width - right, fmt: yFmt, px, title: yTitle,
               gap: tickW + 14});
  for (const l of hlines || []) {
    f.svg.appendChild(svg("line", {x1: left, x2: width - right, y1: y(l.at), y2: y(l.at), stroke: "#333",
                                   "stroke-dasharray": "6 4", "stroke-width": 1.5}));
    f.svg.appendChild(svg("text", {x: width - right - 4, y: y(l.at) + (l.below ? px.small + 4 : -5), "text-anchor": "end",
                                   "font-size": px.small, fill: "#333", text: l.text}));
  }
  for (const s of series) {
    if (s.width) {
      const d = s.xs.map((v, i) => `${i ? "L" : "M"}${x(v).toFixed(1)} ${y(s.ys[i]).toFixed(1)}`).join("");
      f.svg.appendChild(svg("path", {d, fill: "none", stroke: s.colour, "stroke-width": s.width}));
    }
    if (s.markers) {
      s.xs.forEach((v, i) => f.svg.appendChild(svg("circle", {cx: x(v), cy: y(s.ys[i]), r: s.size || 3.5,
                                                            fill: (s.markerColours || [])[i] || s.colour})));
    }
  }
  if (hover) {  // the nearest x's values
    const hit = f.svg.appendChild(svg("rect", {x: left, y: top, width: width - left - right, height: height - top - bottom,
                                               fill: "transparent"}));
    hit.addEventListener("mousemove", e => {
      const b = hit.getBoundingClientRect(), at = (e.clientX - b.left) / b.width;
      const lines = hover(at);
      if (lines) tip.show(e, lines); else tip.hide();
    });
    hit.addEventListener("mouseleave", () => tip.hide());
  }
  return f;
}
