"""Check, with a real NDIF key on a machine with internet, that a frontier model's attention, logit lens and next
token come back within NDIF's published latency plus drawing time.

    NDIF_API_KEY=... HF_TOKEN=... python bench/ndif_check.py                      # Llama-3.1-70B
    NDIF_API_KEY=... python bench/ndif_check.py --model openai-community/gpt2      # any model NDIF runs

It sends the three requests the pages send (the Attention page's one layer of heads, the Scale ladder's lens at
the last token, the Next token page's logits at the last token), each through the app's own code
(engine.remote: plan, send, poll, check), times each from sending to holding the answer, then times drawing the
page's figures from it (Plotly figures built and serialised, as Streamlit sends them). NDIF's published
latencies for a 10-50-token prompt with an empty queue: GPT-2 about 0.5 s, Llama-3.1-8B 0.75-0.9 s, 70B
2.6-6.8 s, 405B 4.5-9.5 s per request. The ratios printed are measured / published upper bound (at most 1.0
passes), with the load average, since a busy machine draws slower. HF_TOKEN is needed once, for the gated
config and tokenizer of Meta's Llama (kept in GLASSBOX_NDIF_DIR, never the weights).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PUBLISHED_S = {"openai-community/gpt2": 0.5, "meta-llama/Llama-3.1-8B": 0.9, "meta-llama/Llama-3.1-70B": 6.8,
               "meta-llama/Llama-3.1-405B": 9.5}  # upper bounds, empty queue, 10-50 tokens
TEXT = "The Eiffel Tower is in the city of Paris, and the Colosseum is in the city of"


def main() -> int:
    from engine import settings
    from engine.remote import NdifError, TraceRequest, finish, open_remote, plan, send_plan
    from engine.remote.client import ask

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="meta-llama/Llama-3.1-70B")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--layer", type=int, default=None, help="the layer whose heads are asked for (default: middle)")
    args = ap.parse_args()
    s = settings.current()
    if not s.ndif_api_key:
        print("Set NDIF_API_KEY (free at login.ndif.us).")
        return 2
    model = open_remote(args.model, None, s.hf_token or None)
    cfg, cap = model.config, int(s.ndif_max_mb * settings.MB)
    layer = cfg.n_layer // 2 if args.layer is None else args.layer
    print(f"{args.model}: {model.num_params():,} parameters, {cfg.n_layer} layers x {cfg.n_head} heads; "
          f"NDIF at {s.ndif_url}; load average {os.getloadavg()[0]:.1f}")
    results = []
    n = len(plan(model, args.text, TraceRequest(), cap).ids)  # positions, the start marker included
    for name, request in (("attention (one layer)", TraceRequest(layer=layer)),
                          ("logit lens (last token)", TraceRequest(lens_at=(n - 1,))),
                          ("next token (last token)", TraceRequest(logits_at=(n - 1,)))):
        p = plan(model, args.text, request, cap)
        try:
            job = send_plan(model, p, s.ndif_url, s.ndif_api_key, cap)
            while (saved := ask(job)) is None:
                if time.monotonic() - job.sent_at > s.ndif_timeout_s:
                    raise NdifError("time_limit", f"no answer in {s.ndif_timeout_s:g} s")
                time.sleep(0.1)
        except NdifError as e:
            print(f"  {name}: {e}")
            return 1
        took = time.monotonic() - job.sent_at
        sel = finish(model, p, saved, took)
        start = time.perf_counter()
        draw(sel, layer, model)
        drawn = time.perf_counter() - start
        results.append((name, took, drawn))
    bound = PUBLISHED_S.get(args.model)
    print(f"  {n} tokens; published upper bound per request: {bound if bound else 'not published'} s")
    ok = True
    for name, took, drawn in results:
        ratio = f"   {took / bound:.2f}x the published bound" if bound else ""
        print(f"  {name:24s} NDIF {took:6.2f} s   then drawing {drawn:5.2f} s{ratio}")
        ok &= bound is None or took <= bound
    print("within the published latencies" if ok else "over the published latencies (a busy queue?)")
    return 0 if ok else 1


def draw(sel, layer: int, model) -> None:
    """Build and serialise the figures the pages draw from `sel`, with the pages' own builders (no browser)."""
    from engine import display_token
    from engine.generation.sampling import sampling_stages
    from engine.generation.sampling_lab import RAW, blame, removed_by, top_tokens
    from ui.attention.remote import layer_figure
    from ui.next_token.figures import distribution_figure, token_label
    from ui.patterns import head_figure, line_view_figure
    from ui.scale.figures import settle_figure
    from ui.scale.ladder import Answer
    figures = []
    if sel.request.layer is not None:
        patterns = sel.act[f"blocks.{layer}.attn.hook_pattern"].float()
        figures += [layer_figure(patterns, layer, 0), head_figure(patterns[0], sel.tokens, "head 0"),
                    line_view_figure(patterns[0][-1], sel.tokens, len(sel) - 1, "line view")]
    if sel.request.lens_at:
        cfg, tok = sel.config, model.tokenizer
        lens = [(display_token(tok, int(i)), float(p)) for i, p in zip(sel.lens_ids[:, 0, 0], sel.lens_probs[:, 0, 0])]
        figures.append(settle_figure([Answer(model.repo_id, "NDIF", model.num_params(), cfg.n_layer, cfg.n_head,
                                             cfg.n_kv_head, sel.seconds, "", [], [], 0.0, lens,
                                             sel.lens_target[:, 0].float().tolist(), 0, sel.digits)]))
    for pos in sel.request.logits_at:
        logits = sel.final_logits(pos)
        stages = sampling_stages(logits, RAW)
        top = top_tokens(stages, 15)
        figures.append(distribution_figure(top, [token_label(model.tokenizer, t) for t in top.ids],
                                           blame(removed_by(logits, RAW), top.ids), title="next token"))
    for fig in figures:
        fig.to_json()


if __name__ == "__main__":
    raise SystemExit(main())
