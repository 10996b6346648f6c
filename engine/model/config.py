"""Model configuration: one frozen dataclass, convertible to and from a Hugging Face `GPT2Config`."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")  # the GELUs of GPT-2 configs this GPT runs, each exactly


@dataclass(frozen=True)
class GPTConfig:
    block_size: int = 256  # context length: the most tokens the model sees at once
    vocab_size: int = 4096  # number of token ids the embedding table holds
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 128  # width of the residual stream (d_model)
    dropout: float = 0.0  # dropout on embeddings and the residual stream, in training only; tracing never has it
    attn_dropout: float | None = None  # dropout on attention weights in training; None: the same as `dropout`
    layer_norm_epsilon: float = 1e-5  # as GPT-2
    bos_token_id: int = 0  # <|endoftext|> starts and ends documents, as in GPT-2
    eos_token_id: int = 0
    activation: str = "gelu_pytorch_tanh"  # the MLP's GELU, as config.json names it: torch's fused tanh GELU, or
    #                                        "gelu_new", GPT-2's formula (equal to about 1e-7, computed apart)

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.attn_dropout is None:
            object.__setattr__(self, "attn_dropout", self.dropout)
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 < self.layer_norm_epsilon <= 1.0:  # NaN fails this too; layer norm would return NaN
            raise ValueError(f"layer_norm_epsilon must be a small positive number, got {self.layer_norm_epsilon}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unsupported activation_function {str(self.activation)[:40]!r}")

    @property
    def d_head(self) -> int:
        return self.n_embd // self.n_head

    @property
    def d_mlp(self) -> int:
        return 4 * self.n_embd

    # The architecture facts every model config answers (engine/model/arch.py's ModelConfig): GPT-2's here.
    family = "gpt2"
    positions, norm, mlp = "learned", "layernorm", "gelu"
    parallel_residual, tied_embeddings = False, True
    attn_scale, local_window, local_layers, rotary_dims = None, None, (), 0
    scale_by_layer = False

    @property
    def n_kv_head(self) -> int:
        return self.n_head

    @property
    def kv_groups(self) -> int:
        return 1

    @property
    def scale(self) -> float:
        return self.d_head ** -0.5

    def shares_keys_with(self, head: int) -> list[int]:
        return [head]

    def layer_scale(self, layer: int) -> float:
        """What q.k is multiplied by in `layer`: 1 / sqrt(d_head) in every layer of GPT-2."""
        return self.scale

    def n_params(self) -> int:
        """Parameter count with the unembedding tied to the token embedding (counted once)."""
        d, L = self.n_embd, self.n_layer
        per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
        return self.vocab_size * d + self.block_size * d + L * per_block + 2 * d

    def to_hf_dict(self) -> dict[str, Any]:
        """The fields of a transformers `GPT2Config` describing the same network."""
        return {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": None,
            "activation_function": self.activation,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.attn_dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "tie_word_embeddings": True,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> "GPTConfig":
        """Read a `GPT2Config` dict; refuse settings this engine does not implement, and numbers that are not
        plain finite numbers (JSON's 1e400 reads as infinity, `true` as 1, "4" as a string)."""
        if d.get("model_type") != "gpt2":
            raise ValueError(f"expected model_type 'gpt2', got {str(d.get('model_type'))[:40]!r}")
        if (why := cls.unsupported(d)) is not None:
            raise ValueError(why)
        eos = _whole(d, "eos_token_id", 0)
        dropout = _real(d, "resid_pdrop", 0.0)
        return cls(
            block_size=_whole(d, "n_positions"),
            vocab_size=_whole(d, "vocab_size"),
            n_layer=_whole(d, "n_layer"),
            n_head=_whole(d, "n_head"),
            n_embd=_whole(d, "n_embd"),
            dropout=dropout,
            attn_dropout=_real(d, "attn_pdrop", dropout),
            layer_norm_epsilon=_real(d, "layer_norm_epsilon", 1e-5),
            bos_token_id=_whole(d, "bos_token_id", 0),
            eos_token_id=eos,
            activation=d.get("activation_function", "gelu_new"),
        )

    @staticmethod
    def unsupported(d: dict[str, Any]) -> str | None:
        """Which part of a GPT-2 config.json this GPT does not implement (e.g. "unsupported
        activation_function 'relu'"), or None when it runs the config as transformers would. Such a config is
        still a GPT-2 network: engine/model/families/gpt2.py runs it inside transformers instead."""
        if d.get("activation_function", "gelu_new") not in ACTIVATIONS:  # transformers' default is gelu_new
            return f"unsupported activation_function {str(d.get('activation_function'))[:40]!r}"
        if d.get("n_inner") is not None and _whole(d, "n_inner") != 4 * _whole(d, "n_embd"):
            return "only n_inner = 4 * n_embd is supported"
        # reorder_and_upcast_attn only makes transformers compute the same scores in float32 under half
        # precision: the same network, so either value reads as ours.
        for flag, ok in (("scale_attn_by_inverse_layer_idx", False), ("scale_attn_weights", True),
                         ("tie_word_embeddings", True)):
            if d.get(flag, ok) != ok:
                return f"unsupported {flag}={str(d.get(flag))[:40]}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(d: dict[str, Any], key: str, default: float | None) -> float | int:
    """d[key] (or `default` when absent or null) if it is a finite JSON number; ValueError naming it otherwise."""
    if key not in d and default is None:
        raise KeyError(key)
    value = d.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"{key} must be a number, got null")
        return default
    # bool is an int in Python: `true` must not pass as 1 layer.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {str(value)[:40]!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value}")
    return value


def _whole(d: dict[str, Any], key: str, default: int | None = None) -> int:
    value = _number(d, key, default)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{key} must be a whole number, got {value}")
    return int(value)


def _real(d: dict[str, Any], key: str, default: float) -> float:
    return float(_number(d, key, default))
