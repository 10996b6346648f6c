"""What a selective NDIF request costs against a full trace, on this machine, with NDIF played by the
NDIF-protocol server of tests/ndif_fake.py on 127.0.0.1 (nnsight's own wire format; the job runs on a local model).

    python bench/bench_ndif.py [--length 128] [--repeats 5] [--layers 6] [--width 384]

One GPT-2-shaped model with random weights (--layers, --width, GPT-2's vocabulary of 50,257), saved as a
transformers folder. Timed, median of --repeats after a warm-up, each in turn so load drift hits all alike:
- trace: the engine's full Trace of --length tokens (`run_trace`: every activation), the reference;
- selective, here: the Attention page's request (one layer's heads) run through nnsight's local execution
  (`engine.remote.run_here`: the job's code next to the model, no serialisation);
- selective, NDIF protocol: the same request sent as NDIF gets it (serialised, POSTed, polled, the answer
  downloaded, decompressed and loaded as tensors), the server running it on the same model in float32.
Bytes: the full Trace, the selective answer as loaded, and as it crossed the wire (zstd-compressed). Also the
answer sizes NDIF's models would send for the same request at 256 tokens, priced from their shapes
(engine.remote.request.answer_bytes), against a full trace of them (engine.model.cost). The load average is
printed: only ratios measured in this one run mean much.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from timing import time_in_turn  # noqa: E402

SHAPES = {  # n_layer, n_head, n_kv_head, d_model, d_mlp, vocab, context
    "GPT-2": (12, 12, 12, 768, 3072, 50257, 1024), "Llama-3.1-8B": (32, 32, 8, 4096, 14336, 128256, 131072),
    "Llama-3.1-70B": (80, 64, 8, 8192, 28672, 128256, 131072),
    "Llama-3.1-405B": (126, 128, 8, 16384, 53248, 128256, 131072)}


def mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MB"


def main() -> None:
    import transformers
    from nnsight.modeling.transformers import TransformersModel

    from engine import run_trace
    from engine.model.cost import trace_cost
    from engine.model.hf import load_model
    from engine.remote import TraceRequest, finish, plan, run_here, send_plan
    from engine.remote.client import ask
    from engine.remote.model import RemoteModel, read_hf_config, read_tokenizer
    from engine.remote.request import answer_bytes
    from engine_fixtures import tokenizer
    from ndif_fake import FakeNdif, Served, start

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--width", type=int, default=384)
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp()) / "bench--gpt2"
    config = transformers.GPT2Config(vocab_size=50257, n_positions=1024, n_embd=args.width, n_layer=args.layers,
                                     n_head=args.width // 64, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(str(folder))
    tokenizer().save_pretrained(str(folder))
    text = " ".join(["Once upon a time, a little fox found a shiny red ball in the garden."] * 40)
    model, tok = load_model(folder)
    remote = RemoteModel("bench/gpt2", None, read_hf_config(folder), read_tokenizer(folder))
    text = tok.decode(tok(text)["input_ids"][:args.length - 1])  # --length positions with the start marker
    local = TransformersModel(str(folder), task="text-generation", tokenizer=read_tokenizer(folder))
    fake = FakeNdif({"bench/gpt2": Served("bench/gpt2", local)}, keys={"bench-key"})
    server = start(fake)
    req, cap = TraceRequest(layer=args.layers // 2), 1 << 30
    p = plan(remote, text, req, cap)
    wire: list[int] = []

    def over_the_wire():
        job = send_plan(remote, p, fake.base, "bench-key", cap)
        while (saved := ask(job)) is None:
            time.sleep(0.005)
        wire.append(len(fake.jobs[job.backend.job_id]["answer"]))
        return finish(remote, p, saved, time.monotonic() - job.sent_at)

    fns = {"trace": lambda: run_trace(model, tok, text), "selective, here": lambda: run_here(remote, local, text, req),
           "selective, NDIF protocol": over_the_wire}
    times = time_in_turn(fns, args.repeats)
    trace, sel = run_trace(model, tok, text), run_here(remote, local, text, req)
    print(f"GPT-2-shaped, {args.layers} layers x {args.width} wide, random weights; {len(sel)} positions; "
          f"one thread; load average {os.getloadavg()[0]:.1f}")
    for name, seconds in times.items():
        print(f"  {name:26s} {seconds * 1000:8.1f} ms   {seconds / times['trace']:5.2f}x the trace")
    print(f"  bytes: trace {mb(trace.nbytes)}; selective answer {mb(sel.nbytes)} "
          f"({sel.nbytes / trace.nbytes:.4f}x), {mb(wire[-1])} on the wire (zstd)")
    print("Priced at 256 tokens, bf16, for the Attention page's request (one layer) and a full trace:")
    for name, (L, H, kv, d, mlp, vocab, ctx) in SHAPES.items():
        one = answer_bytes(TraceRequest(layer=0), 256, L, H, d, vocab)
        full = trace_cost(L, H, d, ctx, vocab, mlp, n_pos=256, n_kv_head=H, d_head=d // H, gated_mlp=kv < H,
                          pos_embed=True).bytes // 2  # the engine prices float32; NDIF's values are bf16
        print(f"  {name:15s} one layer {mb(one):>11s}   full trace {mb(full):>13s}   {one / full:.5f}x")
    server.shutdown()


if __name__ == "__main__":
    main()
