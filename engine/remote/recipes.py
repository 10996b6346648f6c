"""Where each family NDIF serves keeps what a selective trace reads, and how its attention scores are made.

One `Recipe` per family, as engine/model/families/ has one `Family` per family for the models Glassbox runs
itself: the module paths of the layers, the final norm and the unembedding inside the transformers model; where
a layer's q and k come from (one fused projection, GPT-2's c_attn, or q_proj and k_proj); and how positions
enter them (none; Llama's rotation of halves with cos and sin from the model's rotary module, which carries
Llama-3.1's rope scaling; GPT-J's rotation of neighbouring pairs on its first rotary_dim dimensions). The job
(engine/remote/kernels.py) reads a recipe as a plain dict (`parts`).

`arch_of` reads the architecture facts (ArchConfig, the same the pages read for every model) from a
transformers config, so the sidebar and the pages describe a remote model as they describe a local one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..model.families import FAMILIES
from ..model.families.base import GELU_MLP, LAYERNORM, LEARNED, ROTARY, ArchConfig

NONE, HALVES, PAIRS = "none", "halves", "pairs"  # how positions enter q and k


class UnsupportedModel(ValueError):
    """A model NDIF serves whose architecture Glassbox has no recipe for; the message is one sentence."""


@dataclass(frozen=True)
class Recipe:
    family: str  # transformers' model_type
    name: str  # in words
    layers: str  # the decoder layers, from the model: "model.layers"
    norm: str  # the final norm
    head: str  # the unembedding
    qkv: str | None  # one projection making q, k and v (from a layer), or None
    q: str | None  # the query projection (from a layer)
    k: str | None
    rotary: str | None  # the model's rotary module (from the model); its output is what rotates q and k
    rope: str  # NONE, HALVES or PAIRS

    def parts(self, cfg: ArchConfig, layer: int | None, hf_config=None) -> dict:
        """The plain dict the job reads: these paths plus the numbers of the model (and of `layer`)."""
        scale = cfg.scale
        if hf_config is not None and getattr(hf_config, "scale_attn_by_inverse_layer_idx", False) and layer is not None:
            scale /= layer + 1  # GPT-2's option: each layer's scores divided by its number
        return {**asdict(self), "n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_head": cfg.d_head, "scale": scale}


RECIPES = {r.family: r for r in (
    Recipe("gpt2", "GPT-2", layers="transformer.h", norm="transformer.ln_f", head="lm_head", qkv="attn.c_attn",
           q=None, k=None, rotary=None, rope=NONE),
    Recipe("gptj", "GPT-J", layers="transformer.h", norm="transformer.ln_f", head="lm_head", qkv=None,
           q="attn.q_proj", k="attn.k_proj", rotary="transformer.rotary_emb", rope=PAIRS),
    Recipe("llama", "Llama", layers="model.layers", norm="model.norm", head="lm_head", qkv=None,
           q="self_attn.q_proj", k="self_attn.k_proj", rotary="model.rotary_emb", rope=HALVES),
    Recipe("qwen2", "Qwen2", layers="model.layers", norm="model.norm", head="lm_head", qkv=None,
           q="self_attn.q_proj", k="self_attn.k_proj", rotary="model.rotary_emb", rope=HALVES),
)}


def recipe_for(hf_config) -> Recipe:
    """The recipe of a transformers config, or UnsupportedModel naming the families there are."""
    kind = getattr(hf_config, "model_type", None)
    if kind not in RECIPES:
        names = ", ".join(r.name for r in RECIPES.values())
        raise UnsupportedModel(f"Glassbox reads {names} models on NDIF; this one is {str(kind)[:40]}.")
    if getattr(hf_config, "layer_types", None) and "sliding_attention" in hf_config.layer_types:
        raise UnsupportedModel("This model has sliding-window layers, which Glassbox does not rebuild on NDIF.")
    return RECIPES[kind]


def arch_of(hf_config) -> ArchConfig:
    """The architecture facts of a transformers config of a family in RECIPES."""
    kind = recipe_for(hf_config).family
    if kind in FAMILIES and FAMILIES[kind].arch is not None:  # Llama, Qwen2: the family file reads it
        return FAMILIES[kind].arch(hf_config)
    c = hf_config
    d, n_head = c.n_embd, c.n_head
    eos = c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id
    common = dict(family=kind, block_size=c.n_positions, vocab_size=c.vocab_size, n_layer=c.n_layer, n_head=n_head,
                  n_kv_head=n_head, n_embd=d, d_head=d // n_head, d_mlp=c.n_inner or 4 * d, norm=LAYERNORM,
                  mlp=GELU_MLP, activation=c.activation_function, bos_token_id=c.bos_token_id, eos_token_id=eos)
    if kind == "gpt2":
        return ArchConfig(**common, positions=LEARNED, tied_embeddings=True)
    # GPT-J: attention and MLP side by side on the same input, rotary on the first rotary_dim of each head
    return ArchConfig(**common, positions=ROTARY, parallel_residual=True, tied_embeddings=False,
                      rotary_dims=c.rotary_dim or d // n_head)
