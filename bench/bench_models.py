"""Server memory with a real-sized pretrained model loaded beside the default one, after every page was opened.

    python bench/bench_models.py [--family gpt2|llama] [--pages all]

Builds a model of GPT-2 small's shape (124M parameters, random weights: memory does not depend on their
values) or of SmolLM2-135M's (Llama family), saves it as a server folder, then runs every page in this process
(Streamlit's AppTest, as a server runs them) first on the built-in model, then with that model picked in the
sidebar. Prints the process's resident memory (RSS) after each stage, the ratio against the built-in model
alone measured in the same run, and the model's facts (what the picker shows before loading).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import torch  # noqa: E402

SHAPES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024,
                                                    vocab_size=50257)),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        max_position_embeddings=2048, vocab_size=49152, tie_word_embeddings=True)),
}
TEXT = ("Once upon a time, a little fox found a shiny red ball in the garden. She rolled it to her friend the "
        "rabbit, and they played until the sun went down.")


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def save_model(family: str, folder: Path) -> None:
    import transformers
    from engine import load_tokenizer
    config_cls, model_cls, fields = SHAPES[family]
    config = getattr(transformers, config_cls)(**fields)
    with torch.device("cpu"):
        model = getattr(transformers, model_cls)(config)
    model.save_pretrained(str(folder))
    # A real GPT-2 tokenizer is not at hand offline; the built-in one (4,096 tokens) stands in. The vocabulary
    # table, logits and every activation still have the real model's sizes.
    load_tokenizer(ROOT / "models" / "glassbox-stories").save_pretrained(str(folder))
    del model


def walk(pages: list[str], model: str | None) -> float:
    import logging

    from streamlit.testing.v1 import AppTest
    for name in ("streamlit", "streamlit.runtime.scriptrunner_utils.script_run_context"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "missing ScriptRunContext" once per page, harmless
    t0 = time.perf_counter()
    for page in pages:
        at = AppTest.from_file(str(ROOT / page), default_timeout=600)
        at.session_state["state.text"] = TEXT
        if model is not None:
            at.session_state["models.selected"] = model
        at.run()
        problems = [e.message for e in at.exception] + [e.value for e in at.error]
        if problems:
            print(f"  {page}: {problems[:2]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=sorted(SHAPES), default="gpt2")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
          + (" (busy: times are not comparable)" if os.getloadavg()[0] > 1.5 else ""))
    pages = ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / f"{args.family}-sized"
        save_model(args.family, folder)
        os.environ["GLASSBOX_MODELS_DIR"] = tmp
        from engine.model.sources import check_folder
        facts = check_folder(folder)
        print(f"{folder.name}: {facts.summary()}")
        start = rss_mb()
        s_default = walk(pages, None)
        default = rss_mb()
        s_model = walk(pages, f"folder:{folder.name}")
        both = rss_mb()
    print(f"RSS after imports: {start:,.0f} MB")
    print(f"RSS after every page on the built-in model: {default:,.0f} MB ({s_default:.0f} s)")
    print(f"RSS after every page again with {folder.name} picked: {both:,.0f} MB ({s_model:.0f} s); "
          f"ratio {both / default:.2f}x the built-in model alone, +{both - default:,.0f} MB")


if __name__ == "__main__":
    main()
