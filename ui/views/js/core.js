// Glassbox views, the shared core: DOM building (text always as text, never as HTML), typed arrays from the
// payload, colour scales, number formats, a tooltip, downloads, and reporting the view back to the server.
// ui/views/component.py puts core.js, chart.js and heatmap.js in front of each view's own file, as one module.

const SVG_NS = "http://www.w3.org/2000/svg";
const HIGHLIGHT = "#D55E00";  // Okabe-Ito vermilion: the chosen head, row or token (as ui/patterns.py)
const LINE = "#0072B2";  // Okabe-Ito blue
const MONO = "ui-monospace, Menlo, Consolas, monospace";
// Plotly's Viridis stops (ui/patterns.py draws with the same), interpolated linearly in RGB as Plotly does.
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                 "#b5de2b", "#fde725"];

function build(node, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = String(v);  // token text lands here: never parsed as HTML
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    node.appendChild(typeof kid === "object" ? kid : document.createTextNode(String(kid)));
  }
  return node;
}

function h(tag, attrs, ...kids) { return build(document.createElement(tag), attrs, kids); }
function svg(tag, attrs, ...kids) { return build(document.createElementNS(SVG_NS, tag), attrs, kids); }

// --- the payload: typed arrays sent as base64 (ui/views/payload.py) ----------------------------------------
function bytesOf(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function f32(b64) { return new Float32Array(bytesOf(b64).buffer); }
function i32(b64) { return new Int32Array(bytesOf(b64).buffer); }

// --- colour ---------------------------------------------------------------------------------------------
function lutOf(stops) {  // 256 RGB triples
  const rgb = stops.map(c => [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16)));
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255 * (rgb.length - 1), j = Math.min(Math.floor(t), rgb.length - 2), f = t - j;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(rgb[j][c] + (rgb[j + 1][c] - rgb[j][c]) * f);
  }
  return lut;
}
const VIRIDIS_LUT = lutOf(VIRIDIS);

function lutIndex(v, lo, hi) {
  const t = hi > lo ? (v - lo) / (hi - lo) : 0;
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}
function rgbAt(lut, v, lo, hi) {
  const i = lutIndex(v, lo, hi) * 3;
  return `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
}
function darkAt(lut, v, lo, hi) {  // a cell dark enough for white text
  const i = lutIndex(v, lo, hi) * 3;
  return 0.299 * lut[i] + 0.587 * lut[i + 1] + 0.114 * lut[i + 2] < 140;
}

// --- numbers and token text --------------------------------------------------------------------------------
function chars(s) { return Array.from(s); }  // code points, as Python counts them
function short(token, n = 12) { const c = chars(token); return c.length <= n ? token : c.slice(0, n - 1).join("") + "…"; }
function share(w) { return w >= 0.095 ? `${(w * 100).toFixed(0)}%` : `${(w * 100).toFixed(1)}%`; }  // 38%, 4.2%
function prob(p) {  // 23.4%, 0.15%, 3.2e-05 (as ui/next_token/figures.py fmt_prob)
  if (p === 0) return "0%";
  if (p >= 0.01) return `${(p * 100).toFixed(1)}%`;
  if (p >= 1e-4) return `${(p * 100).toFixed(2)}%`;
  return p.toExponential(1).replace(/e([+-])(\d)$/, "e$10$2");
}
function fixed(v, d = 3) { return Number.isFinite(v) ? v.toFixed(d) : "–"; }
function thousands(n) { return Number(n).toLocaleString("en-US"); }

// --- the tooltip: one per view, text only -------------------------------------------------------------------
function tooltip(root) {
  const tip = h("div", {class: "gb-v-tip", "aria-hidden": "true"});
  root.appendChild(tip);
  return {
    show(event, lines) {
      tip.replaceChildren(...lines.map((line, i) => h("div", {class: i === 0 ? "gb-v-tip-head" : null, text: line})));
      tip.style.display = "block";
      const box = root.getBoundingClientRect(), w = tip.offsetWidth;
      let x = event.clientX - box.left + 14;
      if (x + w > box.width) x = Math.max(0, event.clientX - box.left - w - 14);
      tip.style.left = `${x}px`;
      tip.style.top = `${event.clientY - box.top + 14}px`;
    },
    hide() { tip.style.display = "none"; },
  };
}

// --- downloads -----------------------------------------------------------------------------------------
function download(name, content, type) {
  const url = URL.createObjectURL(content instanceof Blob ? content : new Blob([content], {type}));
  const a = h("a", {href: url, download: name, style: {display: "none"}});
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 2000);
}
function csvCell(v) {
  if (typeof v === "number") return Number.isFinite(v) ? String(Number(v.toPrecision(6))) : "";
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;  // a spreadsheet formula otherwise (as ui.text.csv_text)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
function csvOf(rows) { return rows.map(r => r.map(csvCell).join(",")).join("\n") + "\n"; }
// A term's definition from the glossary, as the ⓘ beside a label (hover or focus shows it).
function helpMark(text) {
  return text ? h("span", {class: "gb-v-help", title: text, tabindex: 0, role: "note", "aria-label": text}, "ⓘ") : null;
}
function button(label, onclick, title) {
  return h("button", {type: "button", class: "gb-v-button", title: title || label, onclick}, label);
}

// --- reporting the view back: a state value, never on first draw -----------------------------------------
// Each report carries a fresh `n`, so picking again what the server set meanwhile (a tour step) still counts
// as a change and reaches the page's callback.
function reporter(setStateValue, name, waitMs = 0) {
  let timer = null;
  return value => {
    clearTimeout(timer);
    timer = setTimeout(() => setStateValue(name, Object.assign({}, value, {n: Date.now() + Math.random()})), waitMs);
  };
}

// The view's root in the component's element, emptied for a fresh draw; `draws` counts redraws (tests and
// bench/bench_browser.py wait for it to change).
function viewRoot(parentElement, cls, presenting) {
  let root = parentElement.querySelector(`:scope > .${cls}`);
  if (!root) root = parentElement.appendChild(h("div", {class: `gb-v ${cls}`}));
  if (root._gbCleanup) root._gbCleanup();
  root.replaceChildren();
  root.classList.toggle("gb-v-present", Boolean(presenting));
  root.dataset.draws = "0";
  return root;
}
function drawn(root) { root.dataset.draws = String(Number(root.dataset.draws || 0) + 1); }

// Redraw on width changes (a sidebar opened, a window resized), not on every pixel.
function onResize(root, redraw) {
  let last = root.clientWidth, timer = null;
  const seen = new ResizeObserver(() => {
    if (Math.abs(root.clientWidth - last) < 4) return;
    last = root.clientWidth;
    clearTimeout(timer);
    timer = setTimeout(redraw, 120);
  });
  seen.observe(root);
  root._gbCleanup = () => seen.disconnect();
}
