"""The model families Glassbox runs: one file per family, and this table that picks between them.

Each file says what its family's config.json says, where its parts live in transformers and its quirks
(gpt_neo.py: no attention scale, local layers, its own attention; llama.py: rotary, RMSNorm, gated MLP,
grouped-query heads; ...), as one `Family` (base.py). Everything else reads the family from here: the facts
and price of a config (engine/model/facts.py), the loader and the recorder (engine/model/hf.py), the
tokenizer rule (engine/model/tokenizer.py).

Adding a family (Phi, Gemma, OLMo, ...) is one new file and one row below; README.md says the steps.
"""
from __future__ import annotations

from . import gpt2, gpt_neo, gpt_neox, llama, qwen2
from .base import ArchConfig, Family, Parts

__all__ = ["FAMILIES", "FAMILY_NAMES", "SUPPORTED", "ArchConfig", "Family", "Parts", "family_for", "family_name"]

# The table: model_type -> Family, in the order the app names them.
FAMILIES: dict[str, Family] = {f.key: f for f in (
    gpt2.FAMILY,
    gpt_neo.FAMILY,
    gpt_neox.FAMILY,
    llama.FAMILY,
    qwen2.FAMILY,
)}
SUPPORTED = {f.architecture: f.key for f in FAMILIES.values()}  # config.json's architectures[0] -> model_type
FAMILY_NAMES = {f.key: f.name for f in FAMILIES.values()}


def family_name(cfg) -> str:
    """'GPT-2', 'Llama', ...: the family of a model config, in words."""
    return FAMILY_NAMES.get(cfg.family, str(cfg.family))


def family_for(config: dict, error: type[ValueError] = ValueError, untyped_gpt2: bool = False) -> Family:
    """The family a config.json (as a dict) describes, or `error` with one plain sentence: custom code (never
    run), no architecture named, one Glassbox does not run, or a model_type that says something else.
    `untyped_gpt2`: a config without architectures but with model_type gpt2 is GPT-2 (our own folders and
    old GPT-2 ones omit it); a model offered by a server or the Hub must name its architecture."""
    if "auto_map" in config:
        raise error("config.json asks to run the model's own Python code (auto_map); Glassbox never runs code "
                    "from a model (trust_remote_code), so it cannot load this one.")
    archs = config.get("architectures")
    if untyped_gpt2 and not archs and config.get("model_type") == gpt2.FAMILY.key:
        archs = [gpt2.FAMILY.architecture]
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        raise error("config.json names no architecture (its architectures list is missing or empty), so "
                    "Glassbox cannot tell what model it is.")
    arch = archs[0]
    if arch not in SUPPORTED:
        runs = list(SUPPORTED)
        raise error(f"config.json describes a model Glassbox does not run: {arch[:80]} is not supported (it runs "
                    f"{', '.join(runs[:-1])} and {runs[-1]}).")
    family = FAMILIES[SUPPORTED[arch]]
    if config.get("model_type", family.key) != family.key:
        raise error(f"config.json says {arch} but model_type {str(config.get('model_type'))[:40]!r}, not "
                    f"{family.key!r}: it does not say one thing, so Glassbox does not guess.")
    if family.check is not None and (why := family.check(config)) is not None:
        raise error(why)
    return family
