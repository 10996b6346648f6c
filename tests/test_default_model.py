"""The embedded default model: loads, is what its model card says, and transformers agrees with it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from engine import SamplingSettings, generate, load_pretrained
from engine.train.data import iter_documents
from engine.train.evaluate import bits_per_char

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "glassbox-stories"
HELDOUT = ROOT.parent / "shared" / "data" / "tinystories" / "heldout.txt"
SLICE = 10  # stories of the held-out file scored in the test (the card reports the same slice)


@pytest.fixture(scope="module")
def loaded():
    return load_pretrained(MODEL)


def card_figure(name: str) -> float:
    text = (MODEL / "README.md").read_text()
    m = re.search(rf"\|\s*{re.escape(name)}\s*\|\s*([0-9.]+)", text)
    assert m, f"the model card has no row {name!r}"
    return float(m.group(1))


def test_the_folder_is_small_and_complete():
    files = {p.name for p in MODEL.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    assert "trainer_state.pt" not in files  # optimizer state stays out of the shipped model
    assert sum(p.stat().st_size for p in MODEL.iterdir()) < 25 * 2**20


@pytest.mark.skipif(not HELDOUT.is_file(), reason="../shared/data is not beside this checkout")
def test_heldout_bits_per_char_matches_the_card(loaded):
    model, tok = loaded
    docs = list(iter_documents(HELDOUT))[:SLICE]
    score = bits_per_char(model, tok, docs)
    assert score.bits_per_char == pytest.approx(card_figure(f"held-out bits per character, first {SLICE} stories"),
                                                abs=2e-3)
    assert card_figure("held-out bits per character, all 98 stories") <= 1.0  # the goal of issue 3


def test_transformers_writes_the_same_greedy_story(loaded):
    from transformers import AutoModelForCausalLM
    model, tok = loaded
    hf = AutoModelForCausalLM.from_pretrained(MODEL).eval()
    prompt = [tok.eos_token_id] + tok("Once upon a time, there was a little", add_special_tokens=False)["input_ids"]
    ours = generate(model, prompt, 40, SamplingSettings(temperature=0))
    with torch.no_grad():
        # An explicit mask: otherwise transformers takes the leading <|endoftext|> (= pad id) for padding.
        theirs = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             max_new_tokens=40, do_sample=False,
                             pad_token_id=tok.eos_token_id, eos_token_id=None)[0, len(prompt):].tolist()
    assert ours == theirs
    assert len(set(tok.decode(ours).split())) > 5  # real words, not one token repeated


def test_the_same_seed_writes_the_same_story(loaded):
    model, tok = loaded
    prompt = [tok.eos_token_id]
    s = SamplingSettings(temperature=0.8, top_k=40)
    a = generate(model, prompt, 30, s, torch.Generator().manual_seed(7))
    b = generate(model, prompt, 30, s, torch.Generator().manual_seed(7))
    assert a == b
