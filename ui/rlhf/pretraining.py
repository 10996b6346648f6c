"""The first stage, side by side with the second: how the built-in model was pre-trained, read from the
files its training run wrote (training.json, trainer_log.json), and what it writes now."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from engine.train.preference import write_completions

from ..models import ModelChoice, default_model, default_model_dir, describe_size
from ..plots import fitted, plot_config
from ..server import model_work
from ..terms import define
from .figures import pretraining_figure
from .state import PAGE

SAMPLE_SEEDS = (1, 2, 3)
SAMPLE_TOKENS = 60


@st.cache_data(max_entries=2, show_spinner=False)
def _training_record(folder: str, stamp: int) -> dict | None:
    """training.json and trainer_log.json's history, or None when the folder has no record of its training."""
    record, log = Path(folder) / "training.json", Path(folder) / "trainer_log.json"
    try:
        info = json.loads(record.read_text())
        info["history"] = json.loads(log.read_text()).get("history", info.get("history", []))
        return info
    except (OSError, ValueError, AttributeError):
        return None


@st.cache_resource(max_entries=4, show_spinner="The pre-trained model writes…")
def _samples(model_key: str, _choice: ModelChoice) -> list[str]:
    # once per model per process: every session sees the same three stories
    with model_work():
        return [write_completions(_choice.model, _choice.tokenizer, "", 1, SAMPLE_TOKENS, seed=s, temperature=0.8)[0]
                for s in SAMPLE_SEEDS]


def _corpora(data: list[str]) -> str:
    """'tinystories (3 parts in 4), pd-childrens-books (1 in 4)' from the command's FILE:WEIGHT list."""
    parts = [(Path(d.rsplit(":", 1)[0]).parent.name, float(d.rsplit(":", 1)[1]) if ":" in d else 1.0) for d in data]
    total = sum(w for _, w in parts) or 1.0
    return ", ".join(f"{name} ({w / total:.0%} of the training windows at the end)" for name, w in parts)


def pretraining_section(choice: ModelChoice) -> None:
    folder = default_model_dir()
    weights = folder / "model.safetensors"
    info = _training_record(str(folder), weights.stat().st_mtime_ns if weights.is_file() else 0)
    default = default_model()
    st.markdown(
        "**Pre-training** is next-token prediction on a large body of text: the model reads windows of text and "
        "every parameter is nudged, by backpropagation, so that the token that really came next gets more "
        "probable. Nobody tells it what is good or bad; what it knows, it knows from the text.")
    if info is None:
        st.info("The built-in model's folder has no record of its training (training.json), so its pre-training "
                "cannot be shown here.", icon=":material/info:")
    else:
        c = st.columns(4)
        c[0].metric("Parameters", describe_size(int(info.get("parameters", default.n_params))),
                    help=define("parameters"))
        c[1].metric("Tokens read", f"{int(info.get('tokens_seen', 0)):,}")
        c[2].metric("Training steps", f"{int(info.get('steps', 0)):,}")
        c[3].metric("Final held-out loss", f"{info.get('final_heldout_loss', float('nan')):.3f} nats")
        data = info.get("train_config", {}).get("data", [])
        if data:
            st.caption(f"Text: {_corpora(data)}. Objective: cross-entropy of the next token. Each step read "
                       f"{info['train_config'].get('batch_size', 0)} windows of "
                       f"{info['train_config'].get('block_size', 0)} tokens. The model card "
                       f"(models/{folder.name}/README.md) gives every stage of the run, its data mix and its time.")
        if info.get("history"):
            st.plotly_chart(fitted(pretraining_figure(info["history"])), config=plot_config("pretraining-loss"),
                            key=PAGE.key("pretraining_loss"))
    st.markdown("**What the pre-trained model writes** (from nothing, temperature 0.8, seeds "
                f"{', '.join(map(str, SAMPLE_SEEDS))}; the built-in model's checkpoints along the way are not "
                "shipped, only the final weights):")
    for seed, text in zip(SAMPLE_SEEDS, _samples(default.key, default)):
        st.code(text.strip(), language=None, wrap_lines=True)
    if not choice.shared:
        st.caption(f"You are looking at **{choice.name}**; the figures above are the built-in model's, the one "
                   "every model here starts from.")
