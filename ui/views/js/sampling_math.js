// The sampling lab's arithmetic in the browser: the same steps as engine.generation.sampling (temperature,
// then top-k, top-p and min-p, as transformers' logits warpers) on one position's logits, in the same order
// and float32 where the engine rounds to float32, so every probability equals the engine's to 1e-6
// (tests/test_views_sampling_browser.py runs this file in Chromium against the engine). Pure functions: no DOM.

const MIN_TEMPERATURE = 0.01, MAX_TEMPERATURE = 10;
const FILTERS = ["greedy", "top-k", "top-p", "min-p"];  // in the order they apply (engine FILTERS)
const fr = Math.fround;

function scaleLogits(logits, t) {  // apply_temperature: float32 logits / T, T clamped; T = 0 leaves them
  const out = new Float64Array(logits.length);
  if (t <= 0) { out.set(logits); return out; }
  const d = fr(Math.min(Math.max(t, MIN_TEMPERATURE), MAX_TEMPERATURE));
  for (let i = 0; i < logits.length; i++) out[i] = fr(logits[i] / d);
  return out;
}

function softmax(x) {  // float32 probabilities; -Infinity gives 0
  let top = -Infinity;
  for (const v of x) if (v > top) top = v;
  const out = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) { out[i] = x[i] === -Infinity ? 0 : Math.exp(x[i] - top); sum += out[i]; }
  for (let i = 0; i < x.length; i++) out[i] = fr(out[i] / sum);
  return out;
}

// The logits' order, once: dividing by any T > 0 keeps it, so every setting and temperature reuses it.
function prepare(logits) {
  const idx = Array.from(logits.keys());
  const desc = Int32Array.from(idx.sort((a, b) => logits[b] - logits[a] || a - b));  // ties: lower id first
  return {logits, desc, asc: Int32Array.from(desc).reverse()};
}

function topK(x, k, desc) {  // keep the k largest (ties with the k-th stay)
  if (k <= 0 || k >= x.length) return x;
  const kth = x[desc[k - 1]];
  return x.map(v => v < kth ? -Infinity : v);
}

function topP(x, p, asc) {  // the nucleus: remove the least likely tokens while their total is at most 1 - p
  if (p >= 1) return x;
  const probs = softmax(x), limit = fr(1 - p), out = Float64Array.from(x);
  let cum = 0;
  for (let j = 0; j < asc.length - 1; j++) {  // the most likely token always stays
    cum += probs[asc[j]];
    if (fr(cum) <= limit) out[asc[j]] = -Infinity; else break;
  }
  return out;
}

function minP(x, m, top) {  // drop tokens under m x the top probability (the top token stays)
  if (m <= 0) return x;
  const probs = softmax(x), limit = fr(fr(m) * probs[top]);
  return x.map((v, i) => probs[i] < limit && i !== top ? -Infinity : v);
}

function entropyBits(probs) {
  let h = 0;
  for (const p of probs) if (p > 0) h -= p * Math.log2(p);
  return Math.max(0, h) + 0;
}

// Every stage for one setting, as engine.generation.sampling.sampling_stages, plus which filter removed each
// token (engine.generation.sampling_lab.removed_by: 0 none, else 1 + its index in FILTERS).
function samplingStages(prep, s) {
  const logits = prep.logits, n = logits.length, greedy = s.temperature <= 0;
  const scaled = scaleLogits(logits, s.temperature);
  const removed = new Int8Array(n);
  let filtered;
  if (greedy) {
    let top = -Infinity;
    for (const v of scaled) if (v > top) top = v;
    filtered = scaled.map(v => v < top ? -Infinity : v);
    filtered.forEach((v, i) => { if (v === -Infinity) removed[i] = 1; });
  } else {
    const k = topK(scaled, s.top_k, prep.desc), p = topP(k, s.top_p, prep.asc), m = minP(p, s.min_p, prep.desc[0]);
    for (let i = 0; i < n; i++) {
      removed[i] = k[i] === -Infinity ? 2 : p[i] === -Infinity ? 3 : m[i] === -Infinity ? 4 : 0;
    }
    filtered = m;
  }
  const after = softmax(filtered), before = greedy ? after : softmax(scaled);
  const order = prep.desc;
  const cumulative = new Float64Array(n);
  let run = 0;
  for (let j = 0; j < n; j++) { run += before[order[j]]; cumulative[j] = fr(run); }
  let kept = 0;
  for (let i = 0; i < n; i++) if (filtered[i] !== -Infinity) kept++;
  return {logits, scaled, filtered, before, after, order, cumulative, removed, nKept: kept, greedy,
          entropyBefore: entropyBits(before), entropyAfter: entropyBits(after)};
}

// The k likeliest tokens (by probability before the filters, only those above 0), plus `include` if missing;
// as engine.generation.sampling_lab.top_tokens.
function topTokens(st, k, include) {
  let nonzero = 0;
  for (const p of st.before) if (p > 0) nonzero++;
  const ids = Array.from(st.order.slice(0, Math.max(1, Math.min(k, nonzero))));
  const rank = ids.map((_, i) => i + 1);
  if (include !== null && include !== undefined && !ids.includes(include)) {
    let above = 0;
    for (const p of st.before) if (p > st.before[include]) above++;
    ids.push(include);
    rank.push(above + 1);
  }
  let sumBefore = 0, sumAfter = 0;
  for (const t of ids) { sumBefore += st.before[t]; sumAfter += st.after[t]; }
  return {ids, rank, before: ids.map(t => st.before[t]), after: ids.map(t => st.after[t]),
          kept: ids.map(t => st.removed[t] === 0), removedBy: ids.map(t => st.removed[t] ? FILTERS[st.removed[t] - 1] : null),
          restBefore: Math.max(0, 1 - fr(sumBefore)), restAfter: Math.max(0, 1 - fr(sumAfter)),
          nRest: st.logits.length - ids.length, nKept: st.nKept, nZero: st.logits.length - nonzero};
}

// Entropy before and after the filters over `n` temperatures from 0.01 to 10 (log-spaced), the filters applied
// at T = 1 to each scaled row, as the engine computes them (engine.generation.sampling).
function entropyCurve(prep, s, n = 40) {
  const temps = [], before = [], after = [];
  for (let i = 0; i < n; i++) {
    const t = MIN_TEMPERATURE * (MAX_TEMPERATURE / MIN_TEMPERATURE) ** (i / (n - 1));
    const scaled = Float32Array.from(scaleLogits(prep.logits, t));
    const st = samplingStages({logits: scaled, desc: prep.desc, asc: prep.asc}, Object.assign({}, s, {temperature: 1}));
    temps.push(t);
    before.push(st.entropyBefore);
    after.push(st.entropyAfter);
  }
  return {temps, before, after};
}
