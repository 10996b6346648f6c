"""A full trace through a GPT-2-small-sized model against transformers' forward with everything returned.

    python bench/bench_gpt2_trace.py [--length 256] [--repeats 3] [--threads N]

One GPT-2-small-sized GPT with random weights (12 layers, 12 heads, d_model 768, vocabulary 50,257,
context 1,024; 124M parameters; GPT-2's gelu_new) and transformers' `GPT2LMHeadModel` on the same weights.
Times (median of --repeats after one warm-up, torch.no_grad):
- trace: `engine.model.trace.trace_ids` of --length tokens (`GPT.run_with_cache`, every activation under its
  TransformerLens name, moved to the CPU as float32), with gelu_new in transformers' formula (bit-exact);
- trace, fused GELU: the same on the same weights with torch's fused tanh GELU (gelu_pytorch_tanh, what our
  own models name): what the exact formula costs;
- transformers: `GPT2LMHeadModel` (eager attention) with `output_attentions=True, output_hidden_states=True`,
  the nearest thing transformers has to a trace.
The two run in turn inside each repeat, so a busy machine slows them alike, each after freed memory went back to
the OS (bench/timing.py `release_memory`), so each pays for the fresh memory it writes; only the ratio,
measured in this one run, means much. Goal: trace/transformers at most 1.0x.

Also printed: the bytes each keeps (a trace holds every q, k, v, score, pattern and MLP activation; transformers
returns the patterns and the residual stream) and the page faults of one call, the price of writing them to
fresh memory.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
try:
    import resource  # Unix only: the page-fault count
except ImportError:
    resource = None
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import release_memory, time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)
from engine import GPT, GPTConfig, pick_device, trace_ids  # noqa: E402

GPT2_SMALL = GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, activation="gelu_new")
GOAL = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=256, help="tokens in the trace")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers  # imported here: slow, and only the reference needs it
    from transformers import GPT2LMHeadModel

    device = pick_device()
    torch.manual_seed(0)
    model = GPT(GPT2_SMALL).to(device).eval()
    fused = GPT(dataclasses.replace(GPT2_SMALL, activation="gelu_pytorch_tanh")).eval()
    fused.load_state_dict(model.state_dict(), assign=True)  # the same tensors, not a copy
    hf_cfg = transformers.GPT2Config(**{k: v for k, v in GPT2_SMALL.to_hf_dict().items() if k != "architectures"},
                                     attn_implementation="eager")
    with torch.device("meta"):  # no random init of weights that are replaced at once
        hf = GPT2LMHeadModel(hf_cfg)
    hf.load_state_dict(model.state_dict(), assign=True)
    hf.tie_weights()
    hf = hf.to(device).eval()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"GPT-2-small-sized GPT, random weights: {model.num_params() / 1e6:.1f}M parameters; {args.length} tokens")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load:.1f}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"median of {args.repeats} after 1 warm-up round\n")

    ids = torch.randint(0, GPT2_SMALL.vocab_size, (args.length,), generator=torch.Generator().manual_seed(0)).tolist()
    idx = torch.tensor([ids], device=device)
    tokens = [str(i) for i in ids]  # display strings given: the trace needs no tokenizer

    def trace():
        return trace_ids(model, None, ids, text="", tokens=tokens)

    def trace_fused():
        return trace_ids(fused, None, ids, text="", tokens=tokens)

    @torch.no_grad()
    def reference():
        return hf(idx, output_attentions=True, output_hidden_states=True)

    # The two compute the same thing: check before timing.
    ours, theirs = trace(), reference()
    torch.testing.assert_close(ours.logits, theirs.logits[0].float().cpu(), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(ours.act["blocks.11.attn.hook_pattern"], theirs.attentions[11][0].float().cpu(),
                               atol=1e-4, rtol=1e-4)
    kept = {"trace": ours.nbytes,
            "transformers": sum(x.numel() * x.element_size()
                                for x in (theirs.logits, *theirs.attentions, *theirs.hidden_states))}
    del ours, theirs
    faults = {name: minor_faults(fn) for name, fn in (("trace", trace), ("transformers", reference))}

    t = time_in_turn({"trace": trace, "trace, fused GELU": trace_fused, "transformers": reference}, args.repeats, 1,
                     device, before=release_memory)
    ratio = t["trace"] / t["transformers"]
    for name in ("trace", "transformers"):
        print(f"{name:<13} {t[name] * 1e3:8.0f} ms   keeps {kept[name] / 1e6:5.0f} MB   "
              f"{faults[name]:,} page faults in one call")
    print(f"trace, fused GELU {t['trace, fused GELU'] * 1e3:4.0f} ms")
    print(f"trace/transformers {ratio:.2f}x (goal: at most {GOAL:.1f}x): {'met' if ratio <= GOAL else 'MISSED'}")
    print(f"gelu_new's exact formula: trace {t['trace'] / t['trace, fused GELU']:.2f}x the trace with the fused GELU")
    return 0


def minor_faults(fn) -> int:
    """Page faults (minor: fresh memory touched for the first time) of one call, from a trimmed heap."""
    if resource is None:
        return -1
    release_memory()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


if __name__ == "__main__":
    sys.exit(main())
