"""Glassbox engine: a small GPT you can train and look inside. Never imports streamlit."""
from .checkpoint import CheckpointError, load_pretrained, save_pretrained
from .config import GPTConfig
from .device import describe, pick_device
from .model import GPT
from .sampling import SamplingSettings, SamplingStages, Step, generate, generate_steps, sample, sampling_stages
from .tokenizer import EOT, Encoding, display_bytes, display_token, encode, load_tokenizer, token_bytes, train_bpe
from .trace import Trace, hook_names, run_trace, trace_ids

__all__ = [
    "CheckpointError", "EOT", "Encoding", "GPT", "GPTConfig", "SamplingSettings", "SamplingStages", "Step",
    "Trace", "describe", "display_bytes", "display_token", "encode", "generate", "generate_steps",
    "hook_names", "load_pretrained", "load_tokenizer", "pick_device", "run_trace", "sample",
    "sampling_stages", "save_pretrained", "token_bytes", "trace_ids", "train_bpe",
]
