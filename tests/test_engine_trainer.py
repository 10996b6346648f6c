"""The trainer, data pipeline, held-out scoring and the training command, on tiny corpora."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import GPT, GPTConfig, train_bpe
from engine.train.cli import main as train_main
from engine.train.data import Batches, Source, iter_documents, load_ids, split_documents, tokenize_documents
from engine.train.evaluate import bits_per_char, token_nll
from engine.train.trainer import Progress, TrainConfig, Trainer

STORY = ("Once upon a time, there was a little cat named Tom. Tom liked to play with a red ball. "
         "One day, the ball rolled under the bed. Tom was sad. His friend the dog helped him get it back. "
         "Tom was happy again and they played all day.\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    train = d / "train.txt"
    train.write_text("".join(f"{STORY}Story number {i}.\n<|endoftext|>\n" for i in range(40)))
    held = d / "held.txt"
    held.write_text("Tom and the dog played with the ball in the sun. They ran and ran until the sun went "
                    "down, and then they went home to sleep.\n<|endoftext|>\n")
    return train, held


@pytest.fixture(scope="module")
def tok(corpus):
    return train_bpe(iter_documents(corpus[0]), 300)


def tiny(vocab: int, dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=32, vocab_size=vocab, n_layer=1, n_head=2, n_embd=32, dropout=dropout))


def batches(tok, path, tmp_path, seed=0) -> Batches:
    out = tmp_path / "ids.bin"
    tokenize_documents(iter_documents(path), tok, out)
    return Batches([Source(load_ids(out, len(tok)), 1.0)], 32, 8, seed=seed)


def test_documents_are_split_on_the_separator_line(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("a b\nc\n<|endoftext|>\n\n<|endoftext|>\nd <|endoftext|> e\n")
    assert list(iter_documents(f)) == ["a b\nc", "d <|endoftext|> e"]
    assert split_documents(f.read_text()) == ["a b\nc", "d <|endoftext|> e"]


def test_token_file_starts_each_document_with_endoftext(tok, corpus, tmp_path):
    out = tmp_path / "ids.bin"
    n = tokenize_documents(iter_documents(corpus[0]), tok, out)
    ids = load_ids(out, len(tok))
    assert len(ids) == n and ids.dtype == np.uint16
    assert (ids == 0).sum() == 40 and ids[0] == 0


def test_a_tiny_run_lowers_the_loss(tok, corpus, tmp_path):
    model = tiny(len(tok))
    seen: list[Progress] = []
    cfg = TrainConfig(max_steps=60, batch_size=8, learning_rate=1e-2, warmup_steps=5, eval_interval=20,
                      eval_batches=2, checkpoint_interval=0)
    result = Trainer(model, batches(tok, corpus[0], tmp_path), cfg, val=batches(tok, corpus[0], tmp_path, 1),
                     callback=seen.append).run()
    assert result.stopped == "done" and result.steps == 60
    first_loss = seen[0].loss
    assert first_loss > math.log(len(tok)) - 1  # starts near uniform
    assert result.final_loss < first_loss - 2  # and learns the repeated story
    evals = [p for p in seen if p.event == "eval"]
    assert [p.step for p in evals] == [20, 40, 60] and evals[-1].val_loss < evals[0].val_loss
    assert seen[-1].event == "done" and seen[-1].tokens_seen == 60 * 8 * 32


def test_bf16_precision_computes_in_bf16_and_keeps_float32_weights(tok, corpus, tmp_path):
    model = tiny(len(tok))
    x, y = batches(tok, corpus[0], tmp_path).next()
    with torch.no_grad():
        _, fp32_loss = model(x, y)
    cfg = TrainConfig(max_steps=30, batch_size=8, learning_rate=1e-2, warmup_steps=3, eval_interval=0,
                      checkpoint_interval=0, precision="bf16")
    trainer = Trainer(model, batches(tok, corpus[0], tmp_path), cfg)
    with torch.no_grad(), trainer._autocast():
        logits, bf16_loss = model(x, y)
    assert logits.dtype == torch.bfloat16  # the matrix work really runs in bf16 on the CPU
    assert bf16_loss.dtype == torch.float32 and float(bf16_loss) == pytest.approx(float(fp32_loss), rel=0.02)
    result = trainer.run()
    assert result.final_loss < float(fp32_loss) - 2  # it learns as float32 training does
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32


def test_auto_precision_is_float32_on_the_cpu_and_a_typo_is_refused(tok, corpus, tmp_path):
    trainer = Trainer(tiny(len(tok)), batches(tok, corpus[0], tmp_path), TrainConfig(max_steps=1))
    x, _ = batches(tok, corpus[0], tmp_path).next()
    with torch.no_grad(), trainer._autocast():
        assert trainer.model(x)[0].dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


@pytest.mark.parametrize("dropout", [0.0, 0.2])  # with dropout, the masks' random state must resume too
def test_resume_after_a_kill_matches_an_uninterrupted_run(tok, corpus, tmp_path, dropout):
    cfg = TrainConfig(max_steps=12, batch_size=8, learning_rate=5e-3, warmup_steps=2, eval_interval=0,
                      checkpoint_interval=6)
    straight = tiny(len(tok), dropout)
    Trainer(straight, batches(tok, corpus[0], tmp_path), cfg).run()

    class Killed(Exception):
        pass

    def kill_after_checkpoint(p: Progress) -> None:
        if p.event == "checkpoint" and p.step == 6:
            raise Killed

    out = tmp_path / "ckpt"
    first = tiny(len(tok), dropout)
    with pytest.raises(Killed):
        Trainer(first, batches(tok, corpus[0], tmp_path), cfg, tokenizer=tok, out_dir=out,
                callback=kill_after_checkpoint).run()
    second = tiny(len(tok), dropout)
    torch.manual_seed(123)  # a new process: its own seed, overridden by the checkpoint's state
    trainer = Trainer(second, batches(tok, corpus[0], tmp_path), cfg, tokenizer=tok, out_dir=out)
    assert trainer.resume() and trainer.step == 6
    trainer.run()
    for a, b in zip(straight.parameters(), second.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tok, corpus, tmp_path):
    model = tiny(len(tok))
    cfg = TrainConfig(max_steps=50, batch_size=8, learning_rate=1e-2, warmup_steps=1, eval_interval=0,
                      checkpoint_interval=2, grad_clip=0)
    out = tmp_path / "nan"
    trainer = Trainer(model, batches(tok, corpus[0], tmp_path), cfg, tokenizer=tok, out_dir=out)
    original_step = trainer.optimizer.step

    def poisoned_step(*a, **k):
        original_step(*a, **k)
        if trainer.step == 3:  # the fourth update blows the weights up
            with torch.no_grad():
                model.transformer.wte.weight.fill_(float("nan"))

    trainer.optimizer.step = poisoned_step
    result = trainer.run()
    assert result.stopped == "nan" and "learning rate" in result.message
    assert "step 2" in result.message  # the last good checkpoint
    from engine import load_pretrained
    good, _ = load_pretrained(out)
    assert all(torch.isfinite(p).all() for p in good.parameters())


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(55) == pytest.approx(0.55) and cfg.lr_at(100) == pytest.approx(0.1)


def test_sliding_window_nll_equals_one_pass_when_it_fits(tok):
    model = tiny(len(tok)).eval()
    ids = tok(STORY, add_special_tokens=False)["input_ids"][:30]
    logits, _ = model(torch.tensor([ids[:-1]]))
    full = torch.nn.functional.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="none")
    torch.testing.assert_close(token_nll(model, ids), full, rtol=1e-5, atol=1e-5)
    long_ids = tok(STORY * 3, add_special_tokens=False)["input_ids"]
    nll = token_nll(model, long_ids)
    assert len(nll) == len(long_ids) - 1 and torch.isfinite(nll).all()


def test_bits_per_char_is_nats_over_characters(tok):
    model = tiny(len(tok)).eval()
    doc = "Tom was happy."
    score = bits_per_char(model, tok, [doc])
    ids = [0] + tok(doc, add_special_tokens=False)["input_ids"]
    assert score.bits_per_char == pytest.approx(float(token_nll(model, ids).sum()) / math.log(2) / len(doc))
    with pytest.raises(ValueError):
        bits_per_char(model, tok, [])


@pytest.mark.parametrize("problem", ["missing", "empty", "short", "overlap", "same-file"])
def test_the_command_refuses_bad_data_clearly(problem, corpus, tmp_path, capsys):
    train, held = corpus
    data = str(train)
    if problem == "missing":
        data = str(tmp_path / "nope.txt")
    elif problem == "empty":
        (tmp_path / "empty.txt").write_text("")
        data = str(tmp_path / "empty.txt")
    elif problem == "short":
        (tmp_path / "short.txt").write_text("Just a few words.\n")
        data = str(tmp_path / "short.txt")
    elif problem == "overlap":
        (tmp_path / "o.txt").write_text(train.read_text() + held.read_text())
        data = str(tmp_path / "o.txt")
    heldout = str(train) if problem == "same-file" else str(held)
    code = train_main(["--data", data, "--heldout", heldout, "--out", str(tmp_path / "m"), "--vocab-size", "300",
                       "--block-size", "64", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
                       "--max-steps", "2", "--work-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2
    expected = {"missing": "not found", "empty": "empty", "short": "fewer than one context window",
                "overlap": "held-out documents also appear", "same-file": "also a training file"}[problem]
    assert expected in err and "Traceback" not in err


def test_the_command_trains_saves_and_resumes(corpus, tmp_path, capsys):
    train, held = corpus
    args = ["--data", f"{train}:2", "--heldout", str(held), "--out", str(tmp_path / "m"), "--vocab-size", "300",
            "--block-size", "32", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--max-steps", "4",
            "--batch-size", "4", "--eval-interval", "2", "--eval-batches", "1", "--checkpoint-interval", "2",
            "--dropout", "0.1", "--attn-dropout", "0", "--work-dir", str(tmp_path / "w")]
    assert train_main(args + ["--stop-after", "2"]) == 0
    err = capsys.readouterr().err
    assert "bits per character" in err
    import json
    assert json.loads((tmp_path / "m" / "training.json").read_text())["steps"] == 2
    assert train_main(args) == 0
    assert "resumed from step 2" in capsys.readouterr().err
    from transformers import AutoModelForCausalLM
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert hf.config.n_positions == 32
    args[args.index("--max-steps") + 1] = "6"
    assert train_main(args) == 0
    assert "resumed from step 4" in capsys.readouterr().err
    # Resumed runs keep the dropout they were started with (it is read back from config.json).
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (saved["resid_pdrop"], saved["embd_pdrop"], saved["attn_pdrop"]) == (0.1, 0.1, 0.0)


def test_the_tokenizer_trains_on_tokenizer_data_and_a_new_tokenizer_never_reuses_cached_ids(corpus, tmp_path):
    train, held = corpus
    style = tmp_path / "style.txt"
    style.write_text("The zebra and the giraffe met the hippopotamus.\n<|endoftext|>\n" * 30)
    base = ["--data", str(train), "--heldout", str(held), "--vocab-size", "300", "--block-size", "32",
            "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--max-steps", "1", "--batch-size", "2",
            "--eval-batches", "1", "--work-dir", str(tmp_path / "w")]
    assert train_main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert train_main(base + ["--out", str(tmp_path / "styled"), "--tokenizer-data", str(style)]) == 0
    from engine.model.tokenizer import load_tokenizer
    plain, styled = load_tokenizer(tmp_path / "plain"), load_tokenizer(tmp_path / "styled")
    word = " hippopotamus"
    assert len(styled(word)["input_ids"]) == 1 < len(plain(word)["input_ids"])  # learnt from the style file
    # Same vocabulary size, same data file, other merges: each tokenizer gets its own cached ids.
    assert len(list((tmp_path / "w").glob("src0-train-*.bin"))) == 2


def test_the_command_refuses_a_heldout_file_used_to_train_the_tokenizer(corpus, tmp_path, capsys):
    train, held = corpus
    code = train_main(["--data", str(train), "--tokenizer-data", str(held), "--heldout", str(held),
                       "--out", str(tmp_path / "m"), "--work-dir", str(tmp_path / "w")])
    assert code == 2 and "also a training file" in capsys.readouterr().err


def _damage(folder, how: str, other) -> str:
    """Damage a checkpoint folder one way; returns a word the refusal must contain."""
    import json
    import shutil
    weights, state = folder / "model.safetensors", folder / "trainer_state.pt"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return "model.safetensors"
    if how == "missing weights":
        weights.unlink()
        return "model.safetensors is missing"
    if how == "empty trainer state":
        state.write_bytes(b"")
        return "trainer_state.pt is empty"
    if how == "garbage trainer state":
        state.write_bytes(b"\x80\x04garbage, not a torch file" * 10)
        return "trainer_state.pt could not be read"
    if how == "truncated trainer state":
        state.write_bytes(state.read_bytes()[:100])
        return "trainer_state.pt could not be read"
    if how == "pickled trainer state":  # what torch.load(weights_only=True) refuses: a pickled object
        import pickle
        state.write_bytes(pickle.dumps(Progress))
        return "trainer_state.pt could not be read"
    if how == "invalid config":
        (folder / "config.json").write_text("{not json")
        return "config.json is not valid JSON"
    if how == "missing tokenizer":
        (folder / "tokenizer.json").unlink()
        return "tokenizer.json is missing"
    if how == "weights of another shape":
        shutil.copy(other / "model.safetensors", weights)
        return "shape"
    if how == "config of another shape":
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(cfg | {"n_embd": 32}))
        return "config.json implies"
    raise AssertionError(how)


DAMAGE = ["truncated weights", "missing weights", "empty trainer state", "garbage trainer state",
          "truncated trainer state", "pickled trainer state", "invalid config", "missing tokenizer",
          "weights of another shape", "config of another shape"]


@pytest.fixture(scope="module")
def checkpoints(corpus, tmp_path_factory):
    """Two finished 2-step runs of different widths, to damage copies of (one per test)."""
    train, _ = corpus
    root = tmp_path_factory.mktemp("runs")

    def args(out, width):
        return ["--data", str(train), "--out", str(root / out), "--vocab-size", "300", "--block-size", "32",
                "--n-layer", "1", "--n-head", "2", "--n-embd", str(width), "--max-steps", "4", "--stop-after", "2",
                "--batch-size", "4", "--checkpoint-interval", "2", "--work-dir", str(root / "w")]
    assert train_main(args("m", 16)) == 0 and train_main(args("wide", 24)) == 0
    return root, args


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_checkpoint_is_refused_in_one_plain_line(how, checkpoints, tmp_path, capsys):
    """Resuming from a damaged folder ends with one line saying what is wrong and what to do, a non-zero exit
    status and no traceback (it ended in torch's weights_only error, a bare EOFError or a KeyError)."""
    import shutil
    root, args = checkpoints
    folder = tmp_path / "m"
    shutil.copytree(root / "m", folder)
    expected = _damage(folder, how, root / "wide")
    capsys.readouterr()
    argv = args("m", 16)
    argv[argv.index("--out") + 1] = str(folder)
    code = train_main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and "Traceback" not in err
    assert len(lines) == 1 and expected in lines[0], err
    assert "another --out" in lines[0] and "trainer_state.pt" in lines[0]

