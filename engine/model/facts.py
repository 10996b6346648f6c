"""What a model is and costs, from its config.json alone: no weight is read, nothing is loaded.

`model_facts` names the architecture and its family, counts the parameters exactly (the model built by
transformers on the meta device, which allocates nothing and initialises nothing), and prices the fp32
weights and one 256-token Trace (engine.model.cost, with what a non-GPT layer records). It refuses, in one
plain sentence (`SourceError`), what Glassbox cannot or will not run: an architecture it does not support,
custom code (`auto_map`: Glassbox never sets trust_remote_code), a quantized model, numbers that are missing
or absurd. `ModelFacts.refusal` says whether a model fits this server's budget (GLASSBOX_MODEL_BUDGET_MB).
engine.model.sources finds models (local folders, the Hub) and checks them with this.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .. import settings
from .cost import size_text, trace_cost
from .families import FAMILY_NAMES, SUPPORTED, Family, family_for  # noqa: F401 - SUPPORTED is re-exported
from .families.base import MAX_LAYERS
from .files import read_config_json

MODEL_BUDGET_ENV = settings.env_name("model_budget_mb")
# Community Cloud gives the app 2.7 GB. The app with the built-in model takes about 0.6 GB (README, deploy
# section) and its shared traces up to 0.3 GB; sessions' own traces and a load's transient peak need a few
# hundred MB more. That leaves 1.5 GB for the weights of every other loaded model together, plus one trace of
# the model being added. In fp32: GPT-2 small (475 MB, 751 MB with its 256-token trace), then SmolLM2-135M
# (513 MB + 448 MB) or Pythia-160M (619 + 276 MB) beside it; Qwen2.5-0.5B (1.8 GB) needs a bigger server.
DEFAULT_MODEL_BUDGET_MB = settings.DEFAULTS.model_budget_mb
TRACE_TOKENS = 256  # the look inside that a model is priced for (or its whole context, if shorter)

# Bounds on config.json's numbers, checked before transformers sees them (a config class expands some of
# them into lists, and the model builds one module per layer): far past any real model, never absurd.
_BOUNDS = {
    **dict.fromkeys(("n_layer", "num_layers", "num_hidden_layers"), MAX_LAYERS),
    **dict.fromkeys(("n_head", "num_heads", "num_attention_heads", "num_key_value_heads"), 1024),
    **dict.fromkeys(("n_embd", "hidden_size", "head_dim"), 65_536),
    **dict.fromkeys(("n_inner", "intermediate_size"), 262_144),
    **dict.fromkeys(("n_positions", "n_ctx", "max_position_embeddings"), 1 << 21),
    "vocab_size": 1 << 21,
}
_MAY_BE_NULL = {"n_inner", "intermediate_size", "num_key_value_heads", "head_dim"}  # null: the family's default


class SourceError(ValueError):
    """One plain sentence saying what is wrong and what to do."""


@dataclass(frozen=True)
class ModelFacts:
    """Everything computed from config.json alone; no weight is read."""
    architecture: str  # architectures[0], e.g. "LlamaForCausalLM"
    family: str  # the family's key (engine/model/families), e.g. "llama"
    n_params: int  # exact, tied weights counted once
    weights_bytes: int  # in fp32, as the model is loaded
    trace_bytes: int  # one Trace of TRACE_TOKENS tokens (or the whole context, if shorter); see cost.py
    n_layer: int
    n_head: int  # query heads
    n_kv_head: int  # key/value heads: fewer than n_head with grouped-query attention
    d_model: int
    d_mlp: int
    context: int  # tokens of context (max_position_embeddings)
    vocab_size: int

    @property
    def trace_tokens(self) -> int:
        return min(TRACE_TOKENS, self.context)

    def summary(self) -> str:
        """'GPT-2 family · 124 M parameters · 475 MB in fp32 · one 256-token look inside: 276 MB' (binary MB,
        as cost.size_text writes every size in the app)."""
        return (f"{FAMILY_NAMES[self.family]} family · {_count(self.n_params)} parameters · "
                f"{size_text(self.weights_bytes)} in fp32 · one {self.trace_tokens}-token look inside: "
                f"{size_text(self.trace_bytes)}")

    def refusal(self, budget_bytes: int, loaded_bytes: int = 0) -> str | None:
        """Why this model does not fit a budget for models, or None when it fits. It needs its weights and
        room for one trace; `loaded_bytes` are the weights of the models that stay loaded beside it."""
        need = self.weights_bytes + self.trace_bytes
        if need <= budget_bytes - loaded_bytes:
            return None
        what = (f"This model needs {size_text(self.weights_bytes)} for its weights in fp32 and "
                f"{size_text(self.trace_bytes)} for one {self.trace_tokens}-token look inside, "
                f"{size_text(need)} in all; this server has {size_text(budget_bytes)} for models ({MODEL_BUDGET_ENV})")
        if need <= budget_bytes:
            return (f"{what}, and {size_text(loaded_bytes)} of it is held by the models already loaded: it fits once "
                    "fewer are loaded.")
        return f"{what}. A smaller model fits; a bigger server can raise {MODEL_BUDGET_ENV}."


def _count(n: int) -> str:
    """Parameters in words: '1.5 B', '124 M', '3.7 M', '25 K'."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} B"
    if n >= 1e7:
        return f"{n / 1e6:.0f} M"
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{max(1, round(n / 1e3))} K"


def model_budget_bytes() -> int:
    """GLASSBOX_MODEL_BUDGET_MB in bytes, or the default (1.5 GB): the weights of every model loaded besides
    the built-in one, together, plus one trace of the model being added."""
    try:
        return settings.current().model_budget_bytes
    except settings.SettingError as e:
        raise SourceError(str(e)) from None


def read_model_config(folder: str | Path) -> dict:
    """config.json of a model folder, as a dict; SourceError if it is missing, huge, or not a JSON object."""
    return read_config_json(folder, SourceError)


def model_facts(config: dict) -> ModelFacts:
    """What config.json describes and costs; SourceError for an architecture Glassbox does not run, custom
    code, a quantized model, or numbers that are missing or make no sense. Cached by the config's JSON."""
    if not isinstance(config, dict):
        raise SourceError("config.json must hold a JSON object")
    return _facts(json.dumps(config, sort_keys=True, default=repr))


@lru_cache(maxsize=128)
def _facts(config_json: str) -> ModelFacts:
    cfg = json.loads(config_json)
    family = family_for(cfg, SourceError)  # custom code, the architecture, model_type, the family's own check
    if cfg.get("quantization_config") is not None:
        raise SourceError("config.json describes a quantized model (quantization_config); Glassbox runs plain "
                          "fp32 weights only.")
    for key, top in _BOUNDS.items():
        if key in cfg and not (cfg[key] is None and key in _MAY_BE_NULL):
            _check_number(key, cfg[key], top)
    try:
        conf = family.transformers_config(cfg)
    except Exception as e:  # noqa: BLE001 - transformers validates with many exception types
        raise SourceError(f"config.json is not a valid {family.name} config: {_first_line(e)}") from None
    return _measure(family, conf)


def _check_number(key: str, value: object, top: int) -> int:
    if type(value) is not int or not 1 <= value <= top:  # type(): True is an int to isinstance
        raise SourceError(f"config.json's {key} must be a whole number from 1 to {top:,}, got {str(value)[:40]}")
    return value


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _measure(family: Family, conf) -> ModelFacts:
    """Build the model on the meta device (shapes only: no memory, no initialisation) and count."""
    import torch
    import transformers
    n_layer = _check_number("num_hidden_layers", conf.num_hidden_layers, _BOUNDS["num_hidden_layers"])
    n_head = _check_number("num_attention_heads", conf.num_attention_heads, _BOUNDS["num_attention_heads"])
    d = _check_number("hidden_size", conf.hidden_size, _BOUNDS["hidden_size"])
    context = _check_number("max_position_embeddings", conf.max_position_embeddings, _BOUNDS["n_positions"])
    vocab = _check_number("vocab_size", conf.vocab_size, _BOUNDS["vocab_size"])
    inner = getattr(conf, family.inner)  # the MLP's width; None: 4 x d_model
    d_mlp = _check_number("intermediate_size", 4 * d if inner is None else inner, _BOUNDS["intermediate_size"])
    n_kv = _check_number("num_key_value_heads", getattr(conf, "num_key_value_heads", None) or n_head, n_head)
    d_head = getattr(conf, "head_dim", None) or d // n_head
    if n_head % n_kv or (getattr(conf, "head_dim", None) is None and d % n_head):
        raise SourceError(f"config.json's heads do not divide evenly ({d} wide, {n_head} heads, {n_kv} key/value "
                          "heads)")
    try:
        # The class itself, not AutoModelForCausalLM.from_config: that sets torch's process-wide default dtype
        # to the config's for the duration, under every other thread's feet.
        with torch.device("meta"):
            model = getattr(transformers, family.architecture)(conf)
        n_params = sum(p.numel() for p in model.parameters())  # parameters() yields a tied weight once
    except Exception as e:  # noqa: BLE001 - a config transformers accepts can still fail to build
        raise SourceError(f"config.json does not describe a buildable {family.name} model: "
                          f"{_first_line(e)}") from None
    # A Trace keeps one key and value per query head (grouped heads' repeated: each head's own inputs), and a
    # rotary model's hook_pos_embed as zeros: priced as recorded (engine/model/hf.py), not as the model stores it.
    cost = trace_cost(n_layer, n_head, d, context, vocab, d_mlp, n_pos=min(TRACE_TOKENS, context), n_kv_head=n_head,
                      d_head=d_head, gated_mlp=family.gated_mlp, pos_embed=True)
    return ModelFacts(architecture=family.architecture, family=family.key, n_params=n_params,
                      weights_bytes=4 * n_params, trace_bytes=cost.bytes, n_layer=n_layer, n_head=n_head,
                      n_kv_head=n_kv, d_model=d, d_mlp=d_mlp, context=context, vocab_size=vocab)
