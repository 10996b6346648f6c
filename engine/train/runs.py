"""A training run in the background, for the Train page: one thread owns a `Trainer`, and the page polls
`status()` while the model learns, so the page stays usable.

While it trains, the run keeps the loss of every step, the held-out loss of every evaluation, and at
intervals a `Snapshot`: the weights at that step (copied to the CPU), a sample from the model, and the
trace of a fixed prompt (its attention patterns and next-token distribution), so a time-lapse can scrub
through the run afterwards without running anything again.

Sharing a server, stopping, the watchdog and the run's states are its base's, `BackgroundRun`
(engine/train/background.py), which `TuningRun` shares: at most QUEUE.slots runs train (or tune) at once per
process, others wait in line; a run stops by itself (or leaves the line) when its browser session has been
gone for GLASSBOX_RECONNECT_GRACE_S, or after GLASSBOX_MAX_TRAIN_MINUTES of training.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..generation.sampling import SamplingSettings, sample
from ..generation.window import ContextWindow
from ..model.device import pick_device
from ..model.gpt import GPT
from ..model.tokenizer import EOT, display_bytes, token_bytes
from ..model.trace import NonFiniteTrace, Trace, run_trace
from .background import BackgroundRun, LineStatus, RunState
from .corpus import Prepared
from .data import Batches, Source
from .runspec import RunSpec
from .trainer import Progress, Trainer

SAMPLE_SETTINGS = SamplingSettings(temperature=0.8)
RATE_WINDOW = 50  # steps over which the time left is estimated (recent speed, not the start-up's)


@dataclass(frozen=True)
class Snapshot:
    step: int
    loss: float | None  # training loss of that step (None before training)
    val_loss: float | None  # held-out loss at that step
    sample: str  # text the model wrote from scratch, same random seed every time
    probe: Trace  # the fixed prompt through the model at that step
    state: dict[str, torch.Tensor] = field(repr=False)  # weights on the CPU (lm_head is tied to wte: not kept)


@dataclass(frozen=True)
class RunStatus(LineStatus):
    state: RunState
    step: int
    max_steps: int
    losses: tuple[tuple[int, float], ...]  # (step, training loss) for every step
    val_losses: tuple[tuple[int, float], ...]  # (step, held-out loss) for every evaluation
    tokens_per_s: float
    elapsed_s: float
    step_s: float | None  # seconds per step over the last RATE_WINDOW steps (None before two reports)
    message: str  # why it stopped, in words (empty while running)
    n_snapshots: int
    sample: str  # the latest sample
    @property
    def fraction(self) -> float:
        return self.step / max(1, self.max_steps)

    @property
    def eta_s(self) -> float | None:
        if self.step_s is None or not self.active:
            return None
        return self.step_s * (self.max_steps - self.step)


class _Diverged(Exception):
    """Raised from the progress callback to end a run whose outputs are no longer finite."""


class TrainingRun(BackgroundRun):
    """One background training run. Create, `start()`, poll `status()`, `stop()`; `model` is the result."""

    kind, failure = "train", "Training failed"

    def __init__(self, spec: RunSpec, data: Prepared, device: torch.device | str | None = None,
                 threads: int | None = None, keep_alive: Callable[[], bool] | None = None,
                 max_seconds: float | None = None, owner: str | None = None, expected_s: float | None = None,
                 init: GPT | None = None):
        super().__init__(keep_alive, max_seconds, threads, owner, expected_s)
        self.spec, self.data = spec, data
        if init is not None and init.config != spec.model:
            raise ValueError("a run that starts from a model needs that model's own configuration")
        self.init = init  # fine-tuning: the run starts from a copy of these weights (never changed themselves)
        self.tokenizer = data.tokenizer
        self.device = torch.device(device) if device is not None else pick_device()
        self.model: GPT | None = None  # the trained model once finished (eval mode); None before
        self.kept_step = 0  # the training step whose weights `model` holds (earlier than the last if it diverged)
        self._progress: Progress | None = None
        self._losses: list[tuple[int, float]] = []
        self._times: deque[tuple[int, float]] = deque(maxlen=RATE_WINDOW)  # (step, elapsed s) of recent reports
        self._val: list[tuple[int, float]] = []
        self._snapshots: list[Snapshot] = []
        self._trainer: Trainer | None = None

    def _request_stop(self) -> None:
        with self._lock:
            trainer = self._trainer
        if trainer is not None:  # before the trainer exists, `_train` sees the stop when it makes one
            trainer.request_stop()

    # -- reading ---------------------------------------------------------------------------------------
    def status(self) -> RunStatus:
        line = self.line()
        with self._lock:
            p = self._progress
            (s0, t0), (s1, t1) = (self._times[0], self._times[-1]) if self._times else ((0, 0.0), (0, 0.0))
            return RunStatus(
                state=self._state, step=p.step if p else 0, max_steps=self.spec.train.max_steps,
                losses=tuple(self._losses), val_losses=tuple(self._val),
                tokens_per_s=p.tokens_per_s if p else 0.0, elapsed_s=p.elapsed_s if p else 0.0,
                step_s=(t1 - t0) / (s1 - s0) if s1 > s0 else None,
                message=self._message, n_snapshots=len(self._snapshots),
                sample=self._snapshots[-1].sample if self._snapshots else "", **line)

    def snapshots(self) -> list[Snapshot]:
        with self._lock:
            return list(self._snapshots)

    def model_at(self, snapshot: Snapshot) -> GPT:
        """A fresh model (on the CPU, eval mode) holding the weights of `snapshot`."""
        model = GPT(self.spec.model)
        model.load_state_dict(snapshot.state, strict=False)  # lm_head.weight is wte's, tied
        return model.eval()

    def model_card(self) -> str:
        """A README for the exported folder: what was trained, on what, and how it went."""
        m, t, st = self.spec.model, self.spec.train, self.status()
        last_val = f"{st.val_losses[-1][1]:.3f}" if st.val_losses else "not measured"
        return "\n".join([
            "# A Glassbox model", "",
            "A small GPT (GPT-2 architecture) trained in the Glassbox app's Train page.",
            "Load it with `transformers.AutoModelForCausalLM.from_pretrained(folder)` or upload the zip "
            "to Glassbox again.", "",
            f"- Shape: {m.n_layer} layers, {m.n_head} heads, width {m.n_embd}, context {m.block_size} tokens, "
            f"vocabulary {m.vocab_size} tokens ({m.n_params():,} parameters)",
            f"- Training: {st.step:,} of {t.max_steps:,} steps, batch {t.batch_size}, peak learning rate "
            f"{t.learning_rate:g}, AdamW with warm-up and cosine decay; these weights are from step "
            f"{self.kept_step:,}",
            f"- Corpus: {self.data.corpus_name}. {self.data.corpus_source}",
            f"- Held-out text: {self.data.heldout}; final held-out loss {last_val} nats per token",
            f"- Outcome: {st.message}", "",
        ])

    # -- the thread ------------------------------------------------------------------------------------
    def _work(self) -> None:
        spec, data = self.spec, self.data
        with torch.random.fork_rng(devices=[]):  # seed the init without disturbing other users' randomness
            torch.manual_seed(spec.seed)
            model = GPT(spec.model)
        if self.init is not None:  # fine-tuning: a copy of the starting model's weights, on the CPU first
            model.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in self.init.state_dict().items()})
        bs, block = spec.train.batch_size, spec.model.block_size
        train = Batches([Source(data.train_ids, 1.0, "train")], block, bs, seed=spec.train.seed)
        val = Batches([Source(data.val_ids, 1.0, "held-out")], block, bs, seed=0)
        trainer = Trainer(model, train, spec.train, val=val, device=self.device, callback=self._on_progress)
        with self._lock:
            self._trainer = trainer
        if not self._running():  # stopped before the thread got here
            trainer.request_stop()
        val0 = trainer.evaluate()
        if val0 is not None:
            with self._lock:
                self._val.append((0, val0))
        self._snapshot(trainer, None, val0)
        try:
            result = trainer.run()
            diverged = result.message if result.stopped == "nan" else ""
        except _Diverged as e:  # finite weights, but outputs that overflow: diverged all the same
            result, diverged = None, str(e)
        snaps = self.snapshots()
        if diverged:
            good = snaps[-1]  # snapshots are only kept of weights that give finite outputs
            model.load_state_dict({k: v.to(self.device) for k, v in good.state.items()}, strict=False)
            state, message = RunState.DIVERGED, f"{diverged} Try a learning rate about ten times lower."
            kept = good.step
        else:
            if trainer.step != snaps[-1].step and trainer.weights_finite():
                val = trainer.evaluate()  # where a stopped run ended: measured, so its last point is current
                if val is not None:
                    with self._lock:
                        self._val.append((trainer.step, val))
                self._snapshot(trainer, result.final_loss, val)
            kept = trainer.step
            state = RunState.DONE if result.stopped == "done" else RunState.STOPPED
            message = (f"Trained {result.steps:,} steps." if state is RunState.DONE else
                       f"{self.stopped_words()} at step {result.steps:,} of {spec.train.max_steps:,}.")
        model.eval()
        self._end(state, message, model=model, kept_step=kept)

    def _on_progress(self, p: Progress) -> None:
        with self._lock:
            self._progress = p
            if p.event in ("step", "eval"):
                self._times.append((p.step, p.elapsed_s))
                if math.isfinite(p.loss):
                    self._losses.append((p.step, p.loss))
            if p.event == "eval" and p.val_loss is not None:
                self._val.append((p.step, p.val_loss))
            trainer = self._trainer
            last_val = self._val[-1][1] if self._val else None
        if p.event == "checkpoint" and trainer is not None:
            # The trainer only reports "checkpoint" after checking the weights are finite: a good snapshot,
            # and what its "diverged" message names as the last good checkpoint.
            trainer.last_good_step = p.step
            self._snapshot(trainer, p.loss, last_val)
        self._watchdog()

    @torch.no_grad()
    def _sample(self, model: GPT) -> list[int]:
        """Text from scratch, with the same random seed every time, so changes come from the model.

        A plain loop over `engine.generation.sampling.sample` on a key/value cache (ContextWindow), not
        `generate`: that one also computes every sampling stage for display, which would cost the training run
        more than the draw itself.
        """
        eot = self.tokenizer.convert_tokens_to_ids(EOT)
        gen = torch.Generator().manual_seed(self.spec.seed)
        window = ContextWindow(model, [eot])
        for _ in range(self.spec.sample_tokens):
            token = int(sample(window.next_logits().float().cpu(), SAMPLE_SETTINGS, gen))
            if token == eot:
                break
            window.append(token)
        return window.ids[1:]

    @torch.no_grad()
    def _snapshot(self, trainer: Trainer, loss: float | None, val_loss: float | None) -> None:
        model = trainer.model
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                 if k != "lm_head.weight"}
        model.eval()
        try:
            try:
                probe = run_trace(model, self.tokenizer, self.spec.probe)
            except NonFiniteTrace:
                probe = None
            if probe is None:
                good = self._snapshots[-1].step if self._snapshots else 0
                raise _Diverged(
                    f"The model's outputs overflowed to infinity at step {trainer.step}: training diverged, usually "
                    f"because the learning rate ({self.spec.train.lr_at(trainer.step):.2g}) is too high. Stopped; "
                    f"the last good checkpoint (step {good}) is kept.")
            ids = self._sample(model)
            # Bytes joined then shown: an early model writes broken UTF-8 and control bytes, shown as <0xNN>.
            text = display_bytes(b"".join(token_bytes(self.tokenizer, i) for i in ids), show_whitespace=False)
        finally:
            model.train()
        snap = Snapshot(step=trainer.step, loss=loss, val_loss=val_loss, sample=text, probe=probe, state=state)
        with self._lock:
            self._snapshots.append(snap)
