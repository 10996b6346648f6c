"""The bottom wing: the model and one forward pass of it. Knows no other wing.

- config: `GPTConfig`, a frozen dataclass convertible to and from a Hugging Face `GPT2Config`
- gpt: `GPT`, GPT-2's architecture with GPT-2 / Hugging Face parameter names
- trace: `Trace` and `run_trace`, one forward pass with every internal under TransformerLens names
- arch: the surface every model offers the pages (the `Model` and `ModelConfig` Protocols), and how a model
  differs from GPT-2
- hooks: what one forward pass is asked to record and to change (`Hooks`, `Replace`), passed with the call
- families: one file per model family (GPT-2, GPT-Neo, GPT-NeoX, Llama, Qwen2: its config, its parts in
  transformers, its quirks) and the table that picks between them
- hf: the families that run inside transformers, recorded into the same Trace names; `load_model` for any folder
- files: a model folder's file names and the one guarded reader of its config.json
- cost: what one Trace costs in bytes and seconds, from a config's numbers alone, and the server's budget
- facts: what a Hugging Face model is and costs from its config.json alone (exact parameters, fp32 and trace
  bytes), refusals for what Glassbox will not run, and the server's budget for models
- sources: where models come from (GLASSBOX_MODELS_DIR folders, the Hugging Face Hub), checked before loading
- hub: the Hugging Face Hub's HTTP API (a repo's file list, one file), bounded in time and size
- tokenizer: byte-level BPE (train, load, display forms of tokens)
- chat: an instruct model's chat template, rendered in transformers' sandbox, as tokens
- checkpoint: Hugging Face-compatible folders, read as safetensors and JSON only
- device: where the model runs (CUDA, MPS, CPU) and on how many CPU threads
"""
from .checkpoint import CheckpointError, load_pretrained, save_pretrained
from .config import GPTConfig
from .device import cap_threads, describe, pick_device, run_threads
from .gpt import GPT
from .tokenizer import EOT, Encoding, display_bytes, display_token, encode, load_tokenizer, token_bytes, train_bpe
from .trace import Trace, hook_names, run_trace, trace_ids

__all__ = [
    "CheckpointError", "EOT", "Encoding", "GPT", "GPTConfig", "Trace", "cap_threads", "describe", "display_bytes",
    "display_token", "encode", "hook_names", "load_pretrained", "load_tokenizer", "pick_device", "run_threads",
    "run_trace", "save_pretrained", "token_bytes", "trace_ids", "train_bpe",
]
