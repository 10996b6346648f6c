"""Where a model's parameters live, and how its size compares with models people have heard of."""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch.nn as nn

PARTS = ("Embeddings", "Attention", "MLP", "Layer norms", "Final norm", "Output layer", "Other")


@dataclass(frozen=True)
class ParamGroup:
    part: str  # one of PARTS
    layer: int | None  # the block it belongs to; None outside the blocks
    name: str  # what it is, in words
    count: int  # number of parameters (a weight shared by two modules counts once)
    shape: str  # the tensors' shapes, e.g. "c_fc 128×512 + 512, c_proj 512×128 + 128"


# Our GPT's names (GPT-2's) and those of the transformers models engine/model/hf.py wraps (under `hf.`).
_BLOCK = re.compile(r"(?:hf\.)?(?:transformer|model|gpt_neox)\.(?:h|layers)\.(\d+)\.([a-z_0-9]+)\.")
_BLOCK_PART = {"attn": ("Attention", "attention"), "self_attn": ("Attention", "attention"),
               "attention": ("Attention", "attention"), "mlp": ("MLP", "feed-forward (MLP)")}
_NORMS = ("ln_1", "ln_2", "input_layernorm", "post_attention_layernorm")
_TOP = {r"(?:hf\.)?(?:transformer\.wte|model\.embed_tokens|gpt_neox\.embed_in)\.": ("Embeddings", "token embedding"),
        r"(?:hf\.)?transformer\.wpe\.": ("Embeddings", "position embedding"),
        r"(?:hf\.)?(?:transformer\.ln_f|model\.norm|gpt_neox\.final_layer_norm)\.": ("Final norm", "final norm"),
        r"(?:hf\.)?(?:lm_head|embed_out)\.": ("Output layer", "output layer (unembedding)")}
TIED = " (also the output layer: the weights are tied)"


def _classify(name: str, tied: bool = True) -> tuple[str, int | None, str]:
    m = _BLOCK.match(name)
    if m:
        if m.group(2) in _NORMS:
            return "Layer norms", int(m.group(1)), f"block {m.group(1)} layer norms"
        part, words = _BLOCK_PART.get(m.group(2), ("Other", m.group(2)))
        return part, int(m.group(1)), f"block {m.group(1)} {words}"
    for pattern, (part, words) in _TOP.items():
        if re.match(pattern, name):
            return part, None, words + (TIED if words == "token embedding" and tied else "")
    return "Other", None, name  # a parameter this breakdown does not know: still counted


def param_breakdown(model: nn.Module) -> list[ParamGroup]:
    """The model's parameters grouped by part and block, in model order; counts sum to `num_params()`.

    `named_parameters()` lists a tied weight once (under its first name, the token embedding), so the
    output layer shares its count with the embedding instead of being counted twice, as the model does.
    """
    groups: dict[tuple[str, int | None, str], list[int | str]] = {}
    tied = model.config.tied_embeddings
    for name, p in model.named_parameters():
        key = _classify(name, tied)
        entry = groups.setdefault(key, [0, []])
        entry[0] += p.numel()
        entry[1].append(f"{'.'.join(name.split('.')[-2:])} {'×'.join(map(str, p.shape))}")
    return [ParamGroup(part=k[0], layer=k[1], name=k[2], count=v[0], shape=", ".join(v[1]))
            for k, v in groups.items()]


def part_totals(groups: list[ParamGroup]) -> dict[str, int]:
    """Parameters per part (all blocks together), parts in PARTS order, empty parts left out."""
    totals = {part: 0 for part in PARTS}
    for g in groups:
        totals[g.part] += g.count
    return {part: n for part, n in totals.items() if n}


@dataclass(frozen=True)
class KnownModel:
    name: str
    params: int
    year: int
    note: str  # one line: what it is


# Sources:
# - GPT-2 small/medium/large/XL: Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"
#   (Table 2 gives 117M/345M/762M/1542M); the exact counts are those of the released checkpoints as loaded by
#   Hugging Face transformers (`GPT2LMHeadModel.num_parameters()` for gpt2, gpt2-medium, gpt2-large, gpt2-xl,
#   embeddings tied), 124,439,808 / 354,823,168 / 774,030,080 / 1,557,611,200.
# - GPT-3: Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1 (175.0B).
# - Llama 3 8B / 70B: Meta's model cards on Hugging Face (meta-llama/Meta-Llama-3-8B, -70B), safetensors
#   parameter counts 8,030,261,248 and 70,553,706,496.
# - Llama 3.1 405B: Grattafiori et al. 2024, "The Llama 3 Herd of Models", Table 3 (405B, nominal).
# - BERT-base: Devlin et al. 2019, "BERT", section 3 (110M, nominal).
# - nanoGPT's Shakespeare character model: Karpathy's nanoGPT README, "baby GPT" (10.65M).
KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("nanoGPT Shakespeare (char)", 10_650_000, 2023, "a 6-layer teaching model, trained in minutes"),
    KnownModel("BERT-base", 110_000_000, 2018, "Google's encoder, the start of the pretraining era"),
    KnownModel("GPT-2 small", 124_439_808, 2019, "the smallest GPT-2, 12 layers, width 768"),
    KnownModel("GPT-2 medium", 354_823_168, 2019, "24 layers, width 1024"),
    KnownModel("GPT-2 large", 774_030_080, 2019, "36 layers, width 1280"),
    KnownModel("GPT-2 XL", 1_557_611_200, 2019, "the full GPT-2, 48 layers, width 1600"),
    KnownModel("Llama 3 8B", 8_030_261_248, 2024, "Meta's small open model, 32 layers, width 4096"),
    KnownModel("Llama 3 70B", 70_553_706_496, 2024, "80 layers, width 8192"),
    KnownModel("GPT-3", 175_000_000_000, 2020, "96 layers, width 12288"),
    KnownModel("Llama 3.1 405B", 405_000_000_000, 2024, "126 layers, width 16384"),
)


def compare(n_params: int, models: tuple[KnownModel, ...] = KNOWN_MODELS) -> list[tuple[KnownModel, float]]:
    """Each known model with how many times larger it is than a model of `n_params` parameters."""
    if n_params <= 0:
        raise ValueError("a model has at least one parameter")
    return [(m, m.params / n_params) for m in models]


@dataclass(frozen=True)
class ParamChange:
    part: str  # one of PARTS
    layer: int | None  # the block; None outside the blocks
    name: str  # what it is, in words, as in ParamGroup
    relative: float  # ||after - before|| / ||before|| over the group's parameters
    count: int  # parameters in the group


def param_changes(before: nn.Module, after: nn.Module) -> list[ParamChange]:
    """How far each group of parameters moved between two models of one shape, largest first.

    The relative change is the length of the difference over the length of the original, per group (block
    and part), so groups of different sizes compare. It says *where* the weights changed, not *why* the
    behaviour did: that is the black box.
    """
    old = dict(before.named_parameters())
    sums: dict[tuple[str, int | None, str], list[float]] = {}
    for name, p in after.named_parameters():
        if name not in old or old[name].shape != p.shape:
            raise ValueError(f"the models differ at {name}: compare a model with a tuned copy of itself")
        entry = sums.setdefault(_classify(name), [0.0, 0.0, 0])
        entry[0] += float((p.detach().float().cpu() - old[name].detach().float().cpu()).pow(2).sum())
        entry[1] += float(old[name].detach().float().pow(2).sum())
        entry[2] += p.numel()
    changes = [ParamChange(part=k[0], layer=k[1], name=k[2], relative=(d ** 0.5) / max(b ** 0.5, 1e-12), count=n)
               for k, (d, b, n) in sums.items()]
    return sorted(changes, key=lambda c: c.relative, reverse=True)
