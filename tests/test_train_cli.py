"""`python -m engine.train`'s arguments: --out never deletes or replaces what the command did not write, and
every bad argument is one line on stderr with exit status 2, no traceback (tests/test_engine_trainer.py trains,
saves and resumes with it)."""
from __future__ import annotations

import shutil

import pytest

from engine.train.cli import main as train_main

STORY = "Once upon a time, there was a little cat named Tom. Tom liked to play with a red ball. Tom was happy.\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    train = d / "train.txt"
    train.write_text("".join(f"{STORY}Story number {i}.\n<|endoftext|>\n" for i in range(40)))
    return train, None


@pytest.fixture(scope="module")
def checkpoint(corpus, tmp_path_factory):
    """A finished 2-step run's folder, to copy."""
    out = tmp_path_factory.mktemp("runs") / "m"
    assert train_main(_small(corpus, out, "--checkpoint-interval", "2")) == 0
    return out


def _small(corpus, out, *more: str) -> list[str]:
    train, _ = corpus
    return ["--data", str(train), "--out", str(out), "--vocab-size", "300", "--block-size", "32", "--n-layer", "1",
            "--n-head", "2", "--n-embd", "16", "--max-steps", "2", "--batch-size", "2", "--eval-batches", "1",
            "--work-dir", str(out.parent / "w"), *more]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("what", ["a file", "a folder of other files", "a checkpoint with a file of the user's"])
def test_the_command_never_deletes_what_it_did_not_write(what, corpus, checkpoint, tmp_path, capsys):
    """--out at a file replaced it, and at a folder deleted its contents; refused now in one line, untouched."""
    out = tmp_path / "out"
    if what == "a file":
        out.write_text("my notes")
        words = "is a file"
    elif what == "a folder of other files":
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
        (out / "config.json").write_text("{}")  # a model folder, but not one of ours
        words = "not a checkpoint of this command"
    else:
        shutil.copytree(checkpoint, out)
        (out / "notes.txt").write_text("what this run is for")
        words = "also holds 'notes.txt'"
    before = {p: p.read_bytes() for p in ([out] if out.is_file() else sorted(out.rglob("*")))}
    capsys.readouterr()
    assert train_main(_small(corpus, out)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert words in line and str(out) in line
    assert {p: p.read_bytes() for p in before} == before and sorted(tmp_path.glob(".out*")) == []
    assert not (tmp_path / "w").exists()  # refused before any work


BAD = [  # arguments, the words of the one-line refusal
    (["--n-head", "0"], "argument --n-head: must be a whole number >= 1, not '0'"),
    (["--max-steps", "-5"], "argument --max-steps: must be a whole number >= 1, not '-5'"),
    (["--lr", "nan"], "argument --lr: must be a number > 0, not 'nan'"),
    (["--dropout", "1.0"], "argument --dropout: must be a number >= 0 and < 1, not '1.0'"),
    (["--n-head", "3"], "--n-head 3 must divide --n-embd 16"),
    (["--lr", "0"], "argument --lr: must be a number > 0"),
    (["--lr", "inf"], "argument --lr: must be a number > 0"),
    (["--attn-dropout", "-0.1"], "argument --attn-dropout: must be a number >= 0 and < 1"),
    (["--weight-decay", "-1"], "argument --weight-decay: must be a number >= 0"),
    (["--vocab-size", "100"], "argument --vocab-size: must be a whole number >= 257"),
    (["--batch-size", "two"], "argument --batch-size: must be a whole number >= 1, not 'two'"),
    (["--block-size", "0"], "argument --block-size: must be a whole number >= 1"),
    (["--n-layer", "1.5"], "argument --n-layer: must be a whole number >= 1"),
    (["--eval-batches", "0"], "argument --eval-batches: must be a whole number >= 1"),
    (["--warmup", "-1"], "argument --warmup: must be a whole number >= 0"),
    (["--seed", "-1"], "argument --seed: must be a whole number >= 0"),
    (["--stop-after", "0"], "argument --stop-after: must be a whole number >= 1"),
    (["--precision", "fp8"], "argument --precision: invalid choice"),
    (["--tokenizer", "NOWHERE"], "is not a folder with a tokenizer"),
    (["--work-dir", "A_FILE"], "--work-dir"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_every_bad_argument_is_one_line_and_status_2(args, words, corpus, tmp_path, capsys):
    (tmp_path / "A_FILE").write_text("x")
    args = [str(tmp_path / a) if a in ("NOWHERE", "A_FILE") else a for a in args]
    assert train_main(_small(corpus, tmp_path / "m", *args)) == 2
    assert words in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


def test_an_empty_folder_and_a_checkpoint_without_its_state_are_trained_into(corpus, checkpoint, tmp_path):
    """What --out may be: a new folder, an empty one, or a checkpoint whose trainer_state.pt was deleted to
    train it afresh (as the message about a damaged checkpoint advises)."""
    (tmp_path / "empty").mkdir()
    assert train_main(_small(corpus, tmp_path / "empty")) == 0
    again = tmp_path / "again"
    shutil.copytree(checkpoint, again)
    (again / "trainer_state.pt").unlink()
    assert train_main(_small(corpus, again)) == 0
    assert (again / "trainer_state.pt").is_file() and (tmp_path / "empty" / "model.safetensors").is_file()
