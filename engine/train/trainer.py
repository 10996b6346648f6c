"""The trainer: AdamW, warm-up then cosine decay, gradient clipping, held-out evaluation, atomic
checkpoints and resume. It knows nothing about Streamlit: it reports through a callback (as minGPT's
`Trainer` does), so the command line and the app's Train page drive the same loop.
"""
from __future__ import annotations

import io
import json
import math
import pickle  # only for its exception type: torch.load(weights_only=True) raises it
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..model.checkpoint import CheckpointError, load_pretrained, save_pretrained
from ..model.device import PRECISIONS, train_autocast
from ..model.gpt import GPT
from .data import Batches

STATE_FILE = "trainer_state.pt"  # optimizer, data-order and random state; our own file, loaded weights_only
LOG_FILE = "trainer_log.json"


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, shortened: torch's and safetensors' run to many lines."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _read_state(path: Path, device: torch.device) -> dict:
    """The trainer state file, loaded weights_only; CheckpointError if it is empty, truncated or garbage."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{STATE_FILE} is empty")
    try:
        with warnings.catch_warnings():  # a garbage file can draw a multi-line UserWarning before the error
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:  # torch's weights_only refusal; its advice (weights_only=False) could run code
        raise CheckpointError(f"{STATE_FILE} could not be read: it is not a trainer state of tensors and numbers, "
                              "and loading anything else could run code") from None
    except Exception as e:  # EOFError for a truncated file, RuntimeErrors from the zip reader
        raise CheckpointError(f"{STATE_FILE} could not be read ({type(e).__name__}: {one_line(e)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{STATE_FILE} does not hold a trainer state")
    return state


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = 1000  # optimizer steps in the whole run
    batch_size: int = 32  # sequences per step
    learning_rate: float = 3e-3  # peak learning rate, reached after warm-up
    min_lr_ratio: float = 0.1  # the cosine decays to this fraction of the peak
    warmup_steps: int = 100  # linear warm-up from 0
    weight_decay: float = 0.1  # on matrices and embeddings, not on biases and norms
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    eval_interval: int = 100  # steps between held-out evaluations; 0 = only at the end
    eval_batches: int = 10  # batches per evaluation (fixed, so evaluations compare)
    checkpoint_interval: int = 500  # steps between checkpoints; 0 = only at the end
    seed: int = 1337  # model init is the caller's; this seeds the data order
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA, float32 elsewhere), "fp32" or "bf16"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        span = max(1, self.max_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.learning_rate * self.min_lr_ratio
        return floor + 0.5 * (self.learning_rate - floor) * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Progress:
    """What the trainer reports after each step; `event` says why this report was made."""
    event: str  # "step", "eval", "checkpoint", "done", "stopped" or "nan"
    step: int  # optimizer steps completed
    max_steps: int
    loss: float  # training loss of the last step (nats per token)
    lr: float
    tokens_per_s: float  # training throughput averaged since the run (or resume) began
    elapsed_s: float
    tokens_seen: int
    val_loss: float | None = None  # set on "eval" (and "done" when evaluated)
    message: str = ""


@dataclass
class TrainResult:
    steps: int
    tokens_seen: int
    elapsed_s: float
    final_loss: float
    val_loss: float | None
    stopped: str  # "done", "stopped" or "nan"
    message: str = ""
    history: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, model: GPT, train: Batches, cfg: TrainConfig, val: Batches | None = None,
                 device: torch.device | str = "cpu", tokenizer=None, out_dir: str | Path | None = None,
                 callback: Callable[[Progress], None] | None = None):
        self.model, self.train_data, self.val_data, self.cfg = model, train, val, cfg
        self.device = torch.device(device)
        self.tokenizer, self.callback = tokenizer, callback
        self.out_dir = Path(out_dir) if out_dir else None
        self.step, self.tokens_seen = 0, 0
        self.history: list[dict] = []  # one row per evaluation, kept in checkpoints
        self.last_good_step: int | None = None
        self._stop = threading.Event()
        self.model.to(self.device)
        self.optimizer = self._make_optimizer()
        # Fixed held-out batches, drawn once, so every evaluation measures the same text.
        self._val_batches = [val.next("cpu") for _ in range(cfg.eval_batches)] if val else []

    def _make_optimizer(self) -> torch.optim.AdamW:
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.cfg.learning_rate, betas=(self.cfg.beta1, self.cfg.beta2),
                                 fused=self.device.type == "cuda")

    def _autocast(self):
        return train_autocast(self.cfg.precision, self.device)

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (safe from another thread)."""
        self._stop.set()

    @torch.no_grad()
    def evaluate(self) -> float | None:
        if not self._val_batches:
            return None
        self.model.eval()
        total = 0.0
        for x, y in self._val_batches:
            with self._autocast():
                _, loss = self.model(x.to(self.device), y.to(self.device))
            total += float(loss)
        self.model.train()
        return total / len(self._val_batches)

    def save(self) -> None:
        """Checkpoint weights, tokenizer and trainer state atomically (write, then rename)."""
        if self.out_dir is None:
            return
        buf = io.BytesIO()
        # The global torch generator draws the dropout masks: saved, so a resumed run drops what an
        # uninterrupted one would.
        rng = {"torch_rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        torch.save({"step": self.step, "tokens_seen": self.tokens_seen, "optimizer": self.optimizer.state_dict(),
                    "data_rng": self.train_data.state(), "train_config": asdict(self.cfg)} | rng, buf)
        log = json.dumps({"train_config": asdict(self.cfg), "history": self.history}, indent=1)
        save_pretrained(self.model, self.tokenizer, self.out_dir,
                        extra_files={STATE_FILE: buf.getvalue(), LOG_FILE: log})
        self.last_good_step = self.step

    def resume(self) -> bool:
        """Continue from the checkpoint in out_dir, if it has trainer state. Returns whether it resumed.

        Raises CheckpointError, with one line saying which file is damaged, for a folder that cannot be
        resumed from (weights, config or trainer state truncated, empty, garbage or of another shape)."""
        if self.out_dir is None or not (self.out_dir / STATE_FILE).is_file():
            return False
        model, _ = load_pretrained(self.out_dir, self.device, with_tokenizer=False)
        try:
            self.model.load_state_dict(model.state_dict())
        except RuntimeError as e:  # the weights describe another model than the one being trained
            raise CheckpointError(f"the saved weights are of another shape than this model ({one_line(e)})"
                                  ) from None
        state = _read_state(self.out_dir / STATE_FILE, self.device)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            for p in self.model.parameters():  # load_state_dict checks the number of tensors, not their shapes
                saved = self.optimizer.state.get(p, {}).get("exp_avg")
                if saved is not None and saved.shape != p.shape:
                    raise ValueError(f"optimizer state of shape {tuple(saved.shape)} for a parameter of "
                                     f"{tuple(p.shape)}")
            self.train_data.set_state(state["data_rng"])
            if "torch_rng" in state:  # checkpoints from before it was saved resume with the caller's seed
                torch.set_rng_state(state["torch_rng"].cpu())
            if "cuda_rng" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
            self.step, self.tokens_seen = int(state["step"]), int(state["tokens_seen"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise CheckpointError(f"{STATE_FILE} does not fit this checkpoint ({one_line(e)})") from None
        log = self.out_dir / LOG_FILE
        if log.is_file():
            try:
                self.history = json.loads(log.read_text())["history"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                raise CheckpointError(f"{LOG_FILE} is damaged ({one_line(e)})") from None
        self.last_good_step = self.step
        return True

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())

    def _diverged(self, what: str, lr: float) -> str:
        kept = (f"the last good checkpoint (step {self.last_good_step}) is kept"
                if self.last_good_step is not None else "no checkpoint was saved before it")
        return (f"{what}: training diverged, usually because the learning rate ({lr:.2g}) is too high. "
                f"Stopped; {kept}.")

    def _report(self, event: str, loss: float, t0: float, tokens0: int, **kw) -> Progress:
        elapsed = time.perf_counter() - t0
        p = Progress(event=event, step=self.step, max_steps=self.cfg.max_steps, loss=loss,
                     lr=self.cfg.lr_at(max(0, self.step - 1)),
                     tokens_per_s=(self.tokens_seen - tokens0) / max(elapsed, 1e-9), elapsed_s=elapsed,
                     tokens_seen=self.tokens_seen, **kw)
        if self.callback:
            self.callback(p)
        return p

    def run(self) -> TrainResult:
        cfg, model = self.cfg, self.model
        model.train()
        t0, tokens0 = time.perf_counter(), self.tokens_seen
        loss_value, val, stopped, message = float("nan"), None, "done", ""
        while self.step < cfg.max_steps:
            if self._stop.is_set():
                stopped, message = "stopped", f"stopped at step {self.step}"
                break
            lr = cfg.lr_at(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = self.train_data.next(self.device)
            with self._autocast():
                _, loss = model(x, y)
            loss_value = loss.detach().item()
            if not math.isfinite(loss_value):
                stopped, message = "nan", self._diverged(f"The loss became {loss_value} at step {self.step + 1}", lr)
                break
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.step += 1
            self.tokens_seen += x.numel()
            last = self.step == cfg.max_steps
            if (cfg.eval_interval and self.step % cfg.eval_interval == 0) or last:
                val = self.evaluate()
                self.history.append({"step": self.step, "loss": loss_value, "val_loss": val,
                                     "tokens_seen": self.tokens_seen,
                                     "elapsed_s": round(time.perf_counter() - t0, 2)})
                self._report("eval", loss_value, t0, tokens0, val_loss=val)
            else:
                self._report("step", loss_value, t0, tokens0)
            if (cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0) or last:
                if not self.weights_finite():
                    stopped, message = "nan", self._diverged(f"The weights became NaN at step {self.step}", lr)
                    break
                self.save()
                self._report("checkpoint", loss_value, t0, tokens0)
        model.eval()
        if stopped == "stopped" and self.weights_finite():
            self.save()  # a stopped run keeps what it learned (the next run resumes here)
        final = self._report(stopped, loss_value, t0, tokens0, val_loss=val, message=message)
        return TrainResult(steps=self.step, tokens_seen=self.tokens_seen, elapsed_s=final.elapsed_s,
                           final_loss=loss_value, val_loss=val, stopped=stopped, message=message,
                           history=list(self.history))
