// Glassbox views, the heatmap: cells in a canvas at one pixel per cell (scaled up, crisp), under an SVG with the
// labels, the outline of the chosen cells, hover text and a keyboard cursor. Keyboard: Tab to the plot, the
// arrow keys move over `nav`'s grid (tiles, rows or columns), Enter or Space picks, Home and End jump.

function tickLabels(labels, most) {  // every n-th label past `most`, as ui/patterns.py tick_step
  const step = Math.max(1, Math.ceil(labels.length / most));
  return labels.map((text, at) => ({at, text})).filter(t => t.at % step === 0);
}

function heatmap(host, o) {
  const px = o.px, font = o.font, mono = o.mono ? MONO : font;
  const rowTicks = o.rowTicks || [], colTicks = o.colTicks || [];
  const tickPx = Math.max(o.tickPx || px.tick, px.small);  // never under the smallest size (16 px presenting)
  const rowW = Math.max(0, ...rowTicks.map(t => textWidth(t.text, tickPx, mono)));
  const colW = Math.max(0, ...colTicks.map(t => textWidth(t.text, tickPx, mono)));
  const upright = o.upright && colTicks.length > 0;  // key labels rotated to read upwards
  const top = (o.title ? px.title + 14 : 6) + (o.xTop ? tickPx + 8 + (o.xTitle ? px.label + 8 : 0) : 0)
              + (o.colourbar ? px.tick + 6 : 0);
  const left = (o.yTitle ? px.label + 12 : 0) + rowW + 10;
  const bottom = o.xTop ? 8 : (upright ? colW + 10 : tickPx + 10) + (o.xTitle ? px.label + 14 : 0);
  const right = o.colourbar ? 64 : 12;
  let pw = Math.max(60, o.width - left - right), ph;
  if (o.square) {
    const cell = Math.max(1, Math.min(pw / o.cols, ((o.maxHeight || 860) - top - bottom) / o.rows));
    pw = cell * o.cols;
    ph = cell * o.rows;
  } else {
    ph = Math.max(o.minPlot || 120, Math.min((o.maxHeight || 950) - top - bottom, o.rows * (o.rowPx || 18)));
  }
  const height = Math.round(top + ph + bottom), cw = pw / o.cols, ch = ph / o.rows;
  const f = figure(host, {name: o.name, title: o.title, width: o.width, height, label: o.label, px, font, cls: o.cls});
  const root = f.svg;

  // The cells: one pixel each, NaN transparent (the causal mask's blank future).
  const canvas = h("canvas", {width: o.cols, height: o.rows, "data-x": left, "data-y": top, "data-w": pw,
                              "data-h": ph, style: {left: `${left}px`, top: `${top}px`, width: `${pw}px`,
                                                    height: `${ph}px`}});
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(o.cols, o.rows), lut = o.lut || VIRIDIS_LUT;
  for (let r = 0; r < o.rows; r++) {
    for (let c = 0; c < o.cols; c++) {
      const v = o.value(r, c), k = (r * o.cols + c) * 4;
      if (!Number.isFinite(v)) continue;
      const i = lutIndex(v, o.lo, o.hi) * 3;
      img.data[k] = lut[i]; img.data[k + 1] = lut[i + 1]; img.data[k + 2] = lut[i + 2]; img.data[k + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  f.fig.insertBefore(canvas, root);
  root.firstChild.remove();  // no white background over the cells: the figure's own background shows instead
  root.appendChild(svg("g", {class: "gb-v-cells"}));

  // Labels: rows on the left, columns below (or above), never closer than a line of text.
  const g = root.appendChild(svg("g", {"font-size": tickPx, fill: "#222"}));
  const apart = (ticks, size, room) => {
    let last = -Infinity;
    return ticks.filter(t => { const at = t.at * size; if (at - last < room) return false; last = at; return true; });
  };
  for (const t of apart(rowTicks, ch, tickPx + 1)) {
    g.appendChild(svg("text", {x: left - 6, y: top + (t.at + 0.5) * ch + tickPx * 0.35, "text-anchor": "end",
                               style: `font-family: ${mono}`, text: t.text, class: "gb-v-tick"}));
  }
  for (const t of apart(colTicks, cw, upright ? tickPx + 2 : 0)) {
    const x = left + (t.at + 0.5) * cw;
    g.appendChild(upright
      ? svg("text", {transform: `translate(${x + tickPx * 0.35}, ${top + ph + 6}) rotate(-90)`, "text-anchor": "end",
                     style: `font-family: ${mono}`, text: t.text, class: "gb-v-tick"})
      : svg("text", {x, y: o.xTop ? top - 8 : top + ph + tickPx + 4, "text-anchor": "middle",
                     style: `font-family: ${mono}`, text: t.text, class: "gb-v-tick"}));
  }
  if (o.xTitle) {
    const y = o.xTop ? top - tickPx - 16 : height - 8;
    root.appendChild(svg("text", {x: left + pw / 2, y, "text-anchor": "middle", "font-size": px.label, fill: "#111",
                                  text: o.xTitle}));
  }
  if (o.yTitle) {
    root.appendChild(svg("text", {transform: `translate(${px.label}, ${top + ph / 2}) rotate(-90)`,
                                  "text-anchor": "middle", "font-size": px.label, fill: "#111", text: o.yTitle}));
  }
  const fit = Math.floor((cw - 2) / (0.62 * px.small));  // monospace characters a cell has room for
  if (o.cellText && fit >= 2) {  // a word in each cell (the lens's top tokens), white on dark cells
    const t = root.appendChild(svg("g", {"font-size": px.small, "text-anchor": "middle", style: `font-family: ${MONO}`}));
    for (let r = 0; r < o.rows; r++) {
      for (let c = 0; c < o.cols; c++) {
        const word = o.cellText(r, c, fit), v = o.value(r, c);
        if (!word) continue;
        t.appendChild(svg("text", {x: left + (c + 0.5) * cw, y: top + (r + 0.5) * ch + px.small * 0.35, text: word,
                                   fill: Number.isFinite(v) && darkAt(lut, v, o.lo, o.hi) ? "#fff" : "#111"}));
      }
    }
  }
  if (o.colourbar) {
    colourbar(root, {lut, lo: o.lo, hi: o.hi, x: left + pw + 14, y: top, height: Math.min(ph, 260),
                     title: o.colourbar.title, fmt: o.colourbar.fmt, px});
  }
  const rect = (r0, c0, r1, c1, extra) => svg("rect", Object.assign({
    x: left + c0 * cw, y: top + r0 * ch, width: (c1 - c0) * cw, height: (r1 - r0) * ch, fill: "none"}, extra));
  if (o.outline) root.appendChild(rect(...o.outline, {stroke: HIGHLIGHT, "stroke-width": o.outlineWidth || 3}));

  // Pointer: hover text and clicks, cell by cell.
  const tip = o.tip, hit = root.appendChild(svg("rect", {x: left, y: top, width: pw, height: ph, fill: "transparent",
                                                         class: "gb-v-hit"}));
  const cellAt = e => {
    const b = hit.getBoundingClientRect();
    const r = Math.floor((e.clientY - b.top) / b.height * o.rows), c = Math.floor((e.clientX - b.left) / b.width * o.cols);
    return r >= 0 && c >= 0 && r < o.rows && c < o.cols ? [r, c] : null;
  };
  hit.addEventListener("mousemove", e => {
    const at = cellAt(e), lines = at && o.hover ? o.hover(...at) : null;
    if (lines && tip) tip.show(e, lines); else if (tip) tip.hide();
    hit.style.cursor = at && o.nav && o.nav.at(...at) ? "pointer" : "default";
  });
  hit.addEventListener("mouseleave", () => tip && tip.hide());
  hit.addEventListener("click", e => {
    const at = cellAt(e), cell = at && o.nav ? o.nav.at(...at) : null;
    if (cell) o.nav.pick(...cell);
  });
  if (o.nav) keyboard(f.fig, root, o.nav, rect);
  return f;
}

// The keyboard cursor over a heatmap's grid of choices; what it is on is read out (an aria-live line).
function keyboard(fig, root, nav, rect) {
  const said = fig.appendChild(h("div", {class: "gb-v-sr", "aria-live": "polite"}));
  let at = nav.start ? nav.start.slice() : [0, 0], mark = null;
  fig.tabIndex = 0;
  fig.setAttribute("role", "application");
  fig.setAttribute("aria-roledescription", "heatmap");
  fig.setAttribute("aria-label", `${nav.label}: arrow keys move, Enter picks`);
  const show = () => {
    if (mark) mark.remove();
    mark = root.appendChild(rect(...nav.cell(...at), {stroke: "#111", "stroke-width": 2, "stroke-dasharray": "5 3",
                                                      class: "gb-v-live gb-v-cursor"}));
    said.textContent = nav.describe(...at);
  };
  fig.addEventListener("focus", show);
  fig.addEventListener("blur", () => { if (mark) mark.remove(); mark = null; });
  fig.addEventListener("keydown", e => {
    const [i, j] = at, moves = {ArrowUp: [i - 1, j], ArrowDown: [i + 1, j], ArrowLeft: [i, j - 1], ArrowRight: [i, j + 1],
                                Home: [i, 0], End: [i, nav.cols - 1], PageUp: [0, j], PageDown: [nav.rows - 1, j]};
    if (e.key in moves) {
      const [a, b] = moves[e.key];
      at = [Math.max(0, Math.min(nav.rows - 1, a)), Math.max(0, Math.min(nav.cols - 1, b))];
      show();
    } else if (e.key === "Enter" || e.key === " ") {
      nav.pick(...at);
    } else {
      return;
    }
    e.preventDefault();
    e.stopPropagation();  // Page Up / Page Down also drive the tour: not while the cursor is here
  });
  return () => at;
}
