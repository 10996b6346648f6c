"""Train a tokenizer and a GPT from text files: `python -m engine.train --data FILE[:WEIGHT] ... --out DIR`.

Runs on CUDA (bf16), MPS or the CPU (engine.model.device picks; GLASSBOX_DEVICE overrides). Re-running the same
command resumes from the last checkpoint in --out. --out must be a new or empty folder, or one of this command's
checkpoints (it holds trainer_log.json): a checkpoint is saved by replacing its folder whole, so nothing else may
be in it. Every argument is
checked before anything runs; a bad one is one line on stderr and exit status 2, as argparse reports its own.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from ..model.checkpoint import CheckpointError, load_pretrained
from ..model.config import GPTConfig
from ..model.device import PRECISIONS, describe, pick_device
from ..model.gpt import GPT
from ..model.tokenizer import load_tokenizer, missing_tokenizer, train_bpe
from .data import Batches, Source, doc_hash, iter_documents, load_ids, tokenize_documents
from .evaluate import bits_per_char
from .trainer import LOG_FILE, STATE_FILE, Progress, TrainConfig, Trainer, one_line

TRAINING_FILE = "training.json"
# What a checkpoint folder holds: the model, its tokenizer (as transformers saves the kinds it reuses) and the run.
CHECKPOINT_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
                    "merges.txt", "chat_template.jinja", STATE_FILE, LOG_FILE, TRAINING_FILE}


class UsageError(Exception):
    """A problem with the command's input, reported as one line, without a traceback."""


def damaged(out: Path, e: CheckpointError) -> UsageError:
    """A checkpoint folder that cannot be resumed from: what is wrong, and the two ways forward."""
    return UsageError(f"cannot resume from {out}: {one_line(e, 240)}. Start afresh with another --out, or delete "
                      f"{out / STATE_FILE} to train this folder from scratch (its files are then replaced).")


def check_out(out: Path) -> None:
    """Refuse an --out whose contents saving would delete or replace: a file, or a folder that holds anything
    but one of this command's checkpoints (saving swaps the whole folder for the new checkpoint)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder (a new one, or a checkpoint to resume): Glassbox "
                         "never replaces a file it did not write.")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names and not names & {STATE_FILE, LOG_FILE}:  # every save of this command writes both
            raise UsageError(f"--out {out} holds files and is not a checkpoint of this command (it has no "
                             f"{LOG_FILE}); name a new or empty folder, since saving would replace its contents.")
        foreign = sorted(names - CHECKPOINT_FILES)
        if foreign:
            raise UsageError(f"--out {out} is a checkpoint but also holds {foreign[0]!r}"
                             f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, which the next save "
                             "would delete; move it out of the folder first.")
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out} cannot be created ({one_line(e, 160)}).") from None


def parse_source(spec: str) -> tuple[Path, float]:
    path, _, weight = spec.rpartition(":") if ":" in spec else (spec, "", "1")
    try:
        w = float(weight)
    except ValueError:
        path, w = spec, 1.0
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"data file not found: {p}")
    if p.stat().st_size == 0:
        raise UsageError(f"data file is empty: {p}")
    if w <= 0:
        raise UsageError(f"weight must be positive in {spec!r}")
    return p, w


def _reused_tokenizer(folder: Path):
    if not folder.is_dir() or missing_tokenizer((p.name for p in folder.iterdir()), None) is not None:
        raise UsageError(f"--tokenizer {folder} is not a folder with a tokenizer (tokenizer.json, or GPT-2's "
                         "vocab.json and merges.txt).")
    try:
        return load_tokenizer(folder)
    except Exception as e:  # the library's many ways to fail on a broken file
        raise UsageError(f"--tokenizer {folder} could not be loaded ({one_line(e, 160)}).") from None


def tokenizer_digest(tokenizer) -> str:
    """A short fingerprint of a tokenizer's vocabulary and merges."""
    return hashlib.sha1(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:12]


def whole(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `least`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least or value >= 2**63:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {least}, not {text!r}")
        return value
    return parse


def real(low: float, high: float = math.inf, low_ok: bool = True, high_ok: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high], each end included or not (NaN is in no range)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (value >= low if low_ok else value > low) and (value <= high if high_ok else value < high)
        if not (math.isfinite(value) and inside):
            span = f"{'>=' if low_ok else '>'} {low:g}" + ("" if high == math.inf else
                                                           f" and {'<=' if high_ok else '<'} {high:g}")
            raise argparse.ArgumentTypeError(f"must be a number {span}, not {text!r}")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as the command's other errors, not the 30-option usage above it
        self.exit(2, f"error: {message} (python -m engine.train --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m engine.train", description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, metavar="FILE[:WEIGHT]",
                    help="training text files; WEIGHT is the relative share of windows drawn from each")
    ap.add_argument("--heldout", help="held-out text for evaluation and bits per character (never trained on)")
    ap.add_argument("--out", required=True, help="checkpoint folder (Hugging Face format); resumes if present")
    ap.add_argument("--tokenizer", help="folder with a tokenizer to reuse instead of training one")
    ap.add_argument("--tokenizer-data", nargs="+", metavar="FILE",
                    help="train the tokenizer on these files only (default: every --data file), e.g. the "
                         "style the model is for, so its text takes fewer tokens")
    ap.add_argument("--vocab-size", type=whole(257), default=4096, help="at least 257: 256 bytes and <|endoftext|>")
    ap.add_argument("--block-size", type=whole(1), default=256)
    ap.add_argument("--n-layer", type=whole(1), default=4)
    ap.add_argument("--n-head", type=whole(1), default=4, help="must divide --n-embd")
    ap.add_argument("--n-embd", type=whole(1), default=128)
    ap.add_argument("--dropout", type=real(0, 1, high_ok=False), default=0.0,
                    help="dropout on embeddings and the residual stream, against memorising a small corpus")
    ap.add_argument("--attn-dropout", type=real(0, 1, high_ok=False),
                    help="dropout on attention weights (default: --dropout); on a CPU any of it sends "
                         "attention to PyTorch's slow path: about 1.9x per step, against 1.4x for residual dropout alone")
    ap.add_argument("--max-steps", type=whole(1), default=2000)
    ap.add_argument("--batch-size", type=whole(1), default=32)
    ap.add_argument("--lr", type=real(0, low_ok=False), default=3e-3)
    ap.add_argument("--warmup", type=whole(0), default=100)
    ap.add_argument("--weight-decay", type=real(0), default=0.1)
    ap.add_argument("--eval-interval", type=whole(0), default=250)
    ap.add_argument("--eval-batches", type=whole(1), default=10)
    ap.add_argument("--checkpoint-interval", type=whole(0), default=500)
    ap.add_argument("--seed", type=whole(0), default=1337)
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="auto: bf16 autocast on CUDA, float32 elsewhere; on CPUs with AMX, bf16 can pay for "
                         "models of a few million parameters (bench/bench_train.py measures it)")
    ap.add_argument("--stop-after", type=whole(1), metavar="STEP",
                    help="stop (and checkpoint) after this step, keeping the schedule that --max-steps sets; "
                         "a later run with other --data weights or --max-steps resumes from there")
    ap.add_argument("--work-dir", help="where tokenized data is cached (default .cache/train/<out name>)")
    return ap


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, each checked (exit status 2 and one line for a bad one, as argparse does)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.n_embd % args.n_head:
        ap.error(f"--n-head {args.n_head} must divide --n-embd {args.n_embd}: each head gets an equal share")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:  # a bad argument (2) or --help (0): already said
        return e.code if isinstance(e.code, int) else 2
    try:
        return run(args, argv if argv is not None else sys.argv[1:])
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, argv: list[str]) -> int:
    sources = [parse_source(s) for s in args.data]
    tokenizer_files = [parse_source(s)[0] for s in args.tokenizer_data or []] or [p for p, _ in sources]
    out = Path(args.out)
    check_out(out)
    work = Path(args.work_dir or Path(".cache/train") / out.name)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--work-dir {work} cannot be created ({one_line(e, 160)}).") from None
    heldout_docs: list[str] = []
    if args.heldout:
        held = Path(args.heldout)
        if not held.is_file() or held.stat().st_size == 0:
            raise UsageError(f"held-out file missing or empty: {held}")
        read = list(dict.fromkeys([p for p, _ in sources] + tokenizer_files))  # every file training reads
        if any(held.resolve() == p.resolve() for p in read):
            raise UsageError("the held-out file is also a training file")
        heldout_docs = list(iter_documents(held))
        held_hashes = {doc_hash(d) for d in heldout_docs}
        for p in read:
            overlap = sum(doc_hash(d) in held_hashes for d in iter_documents(p))
            if overlap:
                raise UsageError(f"{overlap} held-out documents also appear in {p}: the yardstick would be trained on")

    device = pick_device()
    torch.manual_seed(args.seed)
    resuming = (out / STATE_FILE).is_file()
    if resuming:
        try:
            model, tokenizer = load_pretrained(out, device)
        except CheckpointError as e:
            raise damaged(out, e) from None
        cfg = model.config
    else:
        if args.tokenizer:
            tokenizer = _reused_tokenizer(Path(args.tokenizer))
        else:
            print(f"training a {args.vocab_size}-token byte-level BPE on {len(tokenizer_files)} file(s) ...",
                  file=sys.stderr)
            tokenizer = train_bpe((d for p in tokenizer_files for d in iter_documents(p)), args.vocab_size)
        try:
            cfg = GPTConfig(block_size=args.block_size, vocab_size=len(tokenizer), n_layer=args.n_layer,
                            n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout,
                            attn_dropout=args.attn_dropout)
            model = GPT(cfg)
        except ValueError as e:  # parse_args checked each field; this is GPTConfig's own word on the whole
            raise UsageError(f"the model's settings do not fit together: {one_line(e, 160)}") from None
        except (RuntimeError, MemoryError) as e:  # a width or depth past this machine's memory
            raise UsageError(f"the model could not be built ({one_line(e, 160)}); try a smaller --n-embd, "
                             "--n-layer or --vocab-size.") from None

    def tokenized(path: Path, tag: str) -> Path:
        # Cached per file and tokenizer, so a resumed run reuses the same ids and a new tokenizer never does.
        key = f"{tag}-{path.stem}-{path.stat().st_size}-{tokenizer_digest(tokenizer)}.bin"
        dest = work / key
        if not dest.is_file():
            tokenize_documents(iter_documents(path), tokenizer, dest)
        return dest

    train_sources = [Source(load_ids(tokenized(p, f"src{i}"), cfg.vocab_size), w, str(p))
                     for i, (p, w) in enumerate(sources)]
    try:
        train = Batches(train_sources, cfg.block_size, args.batch_size, seed=args.seed)
    except ValueError as e:
        raise UsageError(f"training data: {e}") from None
    val = None
    if heldout_docs:
        held_ids = load_ids(tokenized(Path(args.heldout), "heldout"), cfg.vocab_size)
        try:
            val = Batches([Source(held_ids, 1.0, "heldout")], cfg.block_size, args.batch_size, seed=0)
        except ValueError as e:
            raise UsageError(f"held-out text: {e}") from None

    tcfg = TrainConfig(max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.lr,
                       warmup_steps=args.warmup, weight_decay=args.weight_decay,
                       eval_interval=args.eval_interval, eval_batches=args.eval_batches,
                       checkpoint_interval=args.checkpoint_interval, seed=args.seed, precision=args.precision)
    bar = tqdm(total=tcfg.max_steps, unit="step", dynamic_ncols=True, file=sys.stderr)
    val_text = "-"

    def on_progress(p: Progress) -> None:
        nonlocal val_text
        if p.event == "eval" and p.val_loss is not None:
            val_text = f"{p.val_loss:.3f}"
            tqdm.write(f"step {p.step}: train {p.loss:.3f}  held-out {p.val_loss:.3f}  "
                       f"{p.tokens_per_s:,.0f} tok/s", file=sys.stderr)
        if args.stop_after and p.step >= args.stop_after:
            trainer.request_stop()
        if p.event in ("step", "eval"):
            bar.n = p.step
            bar.set_postfix_str(f"loss {p.loss:.3f} val {val_text} {p.tokens_per_s:,.0f} tok/s")

    trainer = Trainer(model, train, tcfg, val=val, device=device, tokenizer=tokenizer, out_dir=out,
                      callback=on_progress)
    try:
        resumed = trainer.resume()
    except CheckpointError as e:
        bar.close()
        raise damaged(out, e) from None
    if resumed:
        bar.n = trainer.step
        print(f"resumed from step {trainer.step} in {out}", file=sys.stderr)
    print(f"{model.num_params():,} parameters on {describe(device)}; "
          f"{sum(len(s.ids) for s in train_sources):,} training tokens", file=sys.stderr)
    t0 = time.time()
    result = trainer.run()
    bar.close()
    if result.stopped == "nan":
        print(f"error: {result.message}", file=sys.stderr)
        return 1

    summary = {
        "command": "python -m engine.train " + shlex.join(argv),
        "model": cfg.as_dict(), "parameters": model.num_params(), "train_config": vars(args),
        "steps": result.steps, "tokens_seen": result.tokens_seen,
        "wall_time_s_this_invocation": round(time.time() - t0, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "device": describe(device), "torch": torch.__version__},
        "final_train_loss": result.final_loss, "final_heldout_loss": result.val_loss,
        "history": result.history,
    }
    if heldout_docs:
        score = bits_per_char(model, tokenizer, heldout_docs)
        summary["heldout_bits_per_char"] = score.bits_per_char
        summary["heldout_loss_per_token"] = score.loss_per_token
        print(f"held-out: {score.bits_per_char:.4f} bits per character, "
              f"{score.loss_per_token:.4f} nats per token", file=sys.stderr)
    (out / TRAINING_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"saved to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
