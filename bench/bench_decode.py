"""Generation speed: the key/value cache (GPT.decode_step) against recomputing the whole context per token.

    python bench/bench_decode.py [--prompt 64] [--new 32] [--repeats 3] [--models builtin gpt2] [--threads N]

For each model, greedy generation of --new tokens after a --prompt-token prompt, tokens per second of:
- cached: `engine.generate` (engine.generation.sampling.generate_steps on the cache, every sampling stage
  computed per step, as the Next token page does);
- recompute: the old loop, kept below as the reference: one full `model(context)` per new token, the same
  sampling stages.
Both must write the same tokens (checked before timing). Models: "builtin" is models/glassbox-stories;
"gpt2" is a GPT-2-small-sized GPT with random weights (12 layers, 12 heads, d_model 768, vocabulary 50,257,
context 1,024; 124M parameters). The two candidates run in turn inside each repeat, so a busy machine slows
them alike; only the ratio, measured in this one run, means much.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import time_in_turn  # noqa: E402  (bench/ is on sys.path when run as a script)
from engine import GPT, GPTConfig, SamplingSettings, generate, load_pretrained, pick_device  # noqa: E402
from engine.generation.sampling import sampling_stages  # noqa: E402

GPT2_SMALL = GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768)
GREEDY = SamplingSettings(temperature=0)


@torch.no_grad()
def recompute(model: GPT, ids: list[int], n_new: int) -> list[int]:
    """The generation loop before the cache: the whole context through `model(...)` for every new token."""
    device, block = next(model.parameters()).device, model.config.block_size
    ids, out = list(ids), []
    for _ in range(n_new):
        logits, _ = model(torch.tensor([ids[-block:]], device=device))
        stages = sampling_stages(logits[0, -1].cpu(), GREEDY)
        tok = int(stages.logits.argmax())
        out.append(tok)
        ids.append(tok)
    return out


def load(name: str, device: torch.device) -> tuple[str, GPT]:
    if name == "builtin":
        model, _ = load_pretrained("models/glassbox-stories", device, with_tokenizer=False)
        return "models/glassbox-stories", model
    torch.manual_seed(0)
    return "GPT-2-small-sized, random weights", GPT(GPT2_SMALL).to(device).eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    ap.add_argument("--new", type=int, default=32, help="generated tokens")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["builtin", "gpt2"], choices=["builtin", "gpt2"])
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load_avg:.1f}, torch {torch.__version__}")
    print(f"greedy, {args.new} new tokens after a {args.prompt}-token prompt, "
          f"median of {args.repeats} after 1 warm-up\n")
    print(f"{'model':<44}  {'cached tok/s':>12}  {'recompute tok/s':>15}  {'cached/recompute':>16}")
    for name in args.models:
        label, model = load(name, device)
        cfg = model.config
        prompt = torch.randint(1, cfg.vocab_size, (args.prompt,), generator=torch.Generator().manual_seed(0)).tolist()
        cached = generate(model, prompt, args.new, GREEDY)
        assert cached == recompute(model, prompt, args.new), "the cache changed the tokens"
        t = time_in_turn({"cached": lambda m=model, p=prompt: generate(m, p, args.new, GREEDY),
                          "recompute": lambda m=model, p=prompt: recompute(m, p, args.new)}, args.repeats, 1, device)
        fast, slow = args.new / t["cached"], args.new / t["recompute"]
        row = f"{label} ({model.num_params() / 1e6:.1f}M)"
        print(f"{row:<44}  {fast:>12.1f}  {slow:>15.1f}  {fast / slow:>15.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
