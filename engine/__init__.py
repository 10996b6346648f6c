"""Glassbox engine: a small GPT you can train and look inside. Never imports streamlit.

Five wings, each built only on those before it:

- model/: the config, the GPT, the Trace of one forward pass, the tokenizer, checkpoints, the device, edits
- generation/: sampling as pure functions, step-by-step generation, the key/value-cache decoder
- inspect/: what the pages compute from a Trace (heads, lens, neurons, embeddings, parameters, ...)
- train/: the Trainer, its command line, data, background runs
- intervene/: what changes a forward pass (patching, ablation, steering, forcing a token, attribution)

This module is the front door: the names most callers need, from model/ and generation/.
"""
from .generation import SamplingSettings, SamplingStages, Step, generate, generate_steps, sample, sampling_stages
from .model import (EOT, GPT, CheckpointError, Encoding, GPTConfig, Trace, describe, display_bytes, display_token,
                    encode, hook_names, load_pretrained, load_tokenizer, pick_device, run_trace, save_pretrained,
                    token_bytes, trace_ids, train_bpe)

__all__ = [
    "CheckpointError", "EOT", "Encoding", "GPT", "GPTConfig", "SamplingSettings", "SamplingStages", "Step",
    "Trace", "describe", "display_bytes", "display_token", "encode", "generate", "generate_steps",
    "hook_names", "load_pretrained", "load_tokenizer", "pick_device", "run_trace", "sample",
    "sampling_stages", "save_pretrained", "token_bytes", "trace_ids", "train_bpe",
]
