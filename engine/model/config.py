"""Model configuration: one frozen dataclass, convertible to and from a Hugging Face `GPT2Config`."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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

    @property
    def d_head(self) -> int:
        return self.n_embd // self.n_head

    @property
    def d_mlp(self) -> int:
        return 4 * self.n_embd

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
            "activation_function": "gelu_new",
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
        """Read a `GPT2Config` dict; refuse settings this engine does not implement."""
        if d.get("model_type") != "gpt2":
            raise ValueError(f"expected model_type 'gpt2', got {d.get('model_type')!r}")
        if d.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"unsupported activation_function {d.get('activation_function')!r}")
        if d.get("n_inner") not in (None, 4 * d["n_embd"]):
            raise ValueError("only n_inner = 4 * n_embd is supported")
        for flag, ok in (("scale_attn_by_inverse_layer_idx", False), ("reorder_and_upcast_attn", False),
                         ("scale_attn_weights", True), ("tie_word_embeddings", True)):
            if d.get(flag, ok) != ok:
                raise ValueError(f"unsupported {flag}={d.get(flag)!r}")
        eos = d.get("eos_token_id", 0)
        return cls(
            block_size=int(d["n_positions"]),
            vocab_size=int(d["vocab_size"]),
            n_layer=int(d["n_layer"]),
            n_head=int(d["n_head"]),
            n_embd=int(d["n_embd"]),
            dropout=float(d.get("resid_pdrop", 0.0)),
            attn_dropout=float(d.get("attn_pdrop", d.get("resid_pdrop", 0.0))),
            layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)),
            bos_token_id=int(d.get("bos_token_id", eos) if d.get("bos_token_id") is not None else 0),
            eos_token_id=int(eos if eos is not None else 0),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
