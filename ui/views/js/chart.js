// Glassbox views, charts: a figure frame (an SVG with its title and a PNG button), scales, axes, a legend, a
// colour bar, and the PNG export (the SVG drawn at twice its size, heatmap cells included).

let gradients = 0;  // unique ids for colour-bar gradients in the page
const measureCtx = document.createElement("canvas").getContext("2d");

// Text sizes in pixels: at least 12 everywhere (ui.plots.MIN_FONT_PX), 16 in presenter mode.
function sizes(presenting) {
  return presenting ? {title: 19, tick: 16, small: 16, label: 16} : {title: 17, tick: 13, small: 12, label: 14};
}
function textWidth(text, px, family) {
  measureCtx.font = `${px}px ${family || "sans-serif"}`;
  return measureCtx.measureText(text).width;
}
function fontOf(el) { return getComputedStyle(el).fontFamily || "sans-serif"; }

// A figure: a titled SVG in a div with a button that downloads it as glassbox-<name>.png.
function figure(host, {name, title, width, height, label, px, font, cls}) {
  const fig = h("div", {class: `gb-v-fig ${cls || ""}`, "data-name": name, "data-role": cls || name});
  const root = svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label || title,
                           style: `font-family: ${font}`, xmlns: SVG_NS});
  root.appendChild(svg("rect", {x: 0, y: 0, width, height, fill: "#fff"}));
  if (title) root.appendChild(svg("text", {x: 4, y: px.title + 4, "font-size": px.title, "font-weight": 600,
                                           fill: "#111", class: "gb-v-title", text: title}));
  fig.append(root, h("div", {class: "gb-v-tools"},
                     button("PNG", () => exportPng(fig, name), `Download this figure as glassbox-${name}.png`)));
  host.appendChild(fig);
  return {fig, svg: root, width, height};
}

// --- scales and ticks ------------------------------------------------------------------------------------
function linear(d0, d1, r0, r1) { const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0); return v => r0 + (v - d0) * k; }
function logScale(d0, d1, r0, r1) {
  const a = Math.log10(d0), b = Math.log10(d1);
  return v => r0 + (Math.log10(Math.max(v, d0)) - a) * (r1 - r0) / (b - a || 1);
}
function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1, raw = span / n, mag = 10 ** Math.floor(Math.log10(raw)), err = raw / mag;
  const step = (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1) * mag, out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(12)));
  return out;
}
const LOG_TICKS = [];  // 0.01, 0.02, 0.05, 0.1, ... 50000, as ui/next_token/figures.py
for (let e = -2; e <= 4; e++) for (const m of [1, 2, 5]) LOG_TICKS.push(Number((m * 10 ** e).toPrecision(3)));
function numberText(v) { return Math.abs(v) >= 1e4 ? thousands(v) : String(Number(v.toPrecision(6))); }

// Gridlines and labels of a numeric axis. `x`: horizontal axis at `at` (its y); else a vertical one at x = `at`.
function axis(parent, {x, scale, ticks, at, from, to, fmt, px, title, gap = 40, grid = true}) {
  const g = parent.appendChild(svg("g", {class: "gb-v-axis"}));
  for (const t of ticks) {
    const p = scale(t);
    if (grid) g.appendChild(svg("line", Object.assign(x ? {x1: p, x2: p, y1: from, y2: to} : {x1: from, x2: to, y1: p, y2: p},
                                                      {stroke: "#e5e5e5"})));
    const label = (fmt || numberText)(t);
    g.appendChild(x ? svg("text", {x: p, y: at + px.tick + 3, "text-anchor": "middle", "font-size": px.tick, fill: "#333",
                                   text: label})
                    : svg("text", {x: at - 5, y: p + px.tick * 0.35, "text-anchor": "end", "font-size": px.tick,
                                   fill: "#333", text: label}));
  }
  if (title) {
    g.appendChild(x ? svg("text", {x: (from + to) / 2, y: at + 2 * px.tick + 10, "text-anchor": "middle",
                                   "font-size": px.label, fill: "#111", text: title})
                    : svg("text", {transform: `translate(${at - gap}, ${(from + to) / 2}) rotate(-90)`,
                                   "text-anchor": "middle", "font-size": px.label, fill: "#111", text: title}));
  }
  return g;
}

// A legend: swatches and names in a row that wraps, as HTML above the figure (`items`: [{name, colour, shape}]).
function legend(items) {
  return h("div", {class: "gb-v-legend"}, items.map(it => h("span", {class: "gb-v-key"},
    h("span", {class: `gb-v-swatch ${it.shape || ""}`, style: {background: it.shape ? "transparent" : it.colour,
                                                              borderColor: it.colour}}), it.name)));
}

// A vertical colour bar from `lo` to `hi` at (x, y), `height` tall, with a title above it.
function colourbar(parent, {lut, lo, hi, x, y, height, title, fmt, px}) {
  const id = `gb-v-grad-${++gradients}`, stops = [];
  for (let i = 0; i <= 10; i++) {
    const k = Math.round(i * 25.5) * 3;
    stops.push(svg("stop", {offset: `${i * 10}%`, "stop-color": `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`}));
  }
  const g = parent.appendChild(svg("g", {class: "gb-v-colourbar"}));
  g.appendChild(svg("defs", {}, svg("linearGradient", {id, x1: 0, y1: 1, x2: 0, y2: 0}, stops)));
  g.appendChild(svg("rect", {x, y, width: 12, height, fill: `url(#${id})`, stroke: "#999"}));
  const scale = linear(lo, hi, y + height, y);
  for (const t of niceTicks(lo, hi, 4)) {
    g.appendChild(svg("text", {x: x + 16, y: scale(t) + px.tick * 0.35, "font-size": px.tick, fill: "#333",
                               text: (fmt || numberText)(t)}));
  }
  if (title) g.appendChild(svg("text", {x, y: y - 8, "font-size": px.tick, fill: "#111", text: title}));
  return g;
}

// --- export: the figure as SVG (canvases become images), then as PNG at twice its size ----------------------
function exportSvg(fig) {
  const shown = fig.querySelector("svg"), copy = shown.cloneNode(true);
  for (const c of fig.querySelectorAll("canvas[data-x]")) {  // heatmap cells: nearest-neighbour, twice as sharp
    const w = Number(c.dataset.w), hgt = Number(c.dataset.h), big = document.createElement("canvas");
    big.width = Math.max(1, Math.round(w * 2));
    big.height = Math.max(1, Math.round(hgt * 2));
    const ctx = big.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(c, 0, 0, big.width, big.height);
    const image = svg("image", {x: c.dataset.x, y: c.dataset.y, width: w, height: hgt, preserveAspectRatio: "none",
                                href: big.toDataURL("image/png")});
    const under = copy.querySelector(".gb-v-cells");  // the cells go under the labels and outlines
    (under || copy).insertBefore(image, under ? under.firstChild : copy.children[1] || null);
  }
  copy.querySelectorAll(".gb-v-live").forEach(n => n.remove());  // hover marks and the keyboard cursor
  return {text: new XMLSerializer().serializeToString(copy), width: Number(shown.getAttribute("width")),
          height: Number(shown.getAttribute("height"))};
}
async function pngOf(fig, scale = 2) {
  const {text, width, height} = exportSvg(fig);
  const img = new Image();
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
  await img.decode();
  const c = document.createElement("canvas");
  c.width = width * scale;
  c.height = height * scale;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(img, 0, 0, c.width, c.height);
  return c;
}
async function exportPng(fig, name) {
  const c = await pngOf(fig);
  c.toBlob(blob => download(`glassbox-${name}.png`, blob));
}
