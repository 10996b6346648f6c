"""Preference tuning with DPO (Direct Preference Optimization, Rafailov et al. 2023): the idea behind RLHF,
run on the real model.

People (or a rule standing in for them) say which of two completions of a prompt they prefer. DPO moves a
copy of the model, the *policy* pi, so that the preferred ("chosen") completion gains log-probability
relative to the frozen original, the *reference* pi_ref, and the rejected one loses it:

    loss = -log sigmoid(beta * ((log pi(chosen) - log pi_ref(chosen)) - (log pi(rejected) - log pi_ref(rejected))))

beta * (log pi - log pi_ref) is the completion's implicit *reward*; the reward margin (chosen minus rejected)
grows as the policy learns the preference, and beta sets how far it may drift from the reference for it.
The reference is never changed: its log-probabilities are computed once, before the first step.

`PreferenceTuner` reports through a callback, like `Trainer`; `TuningRun` (engine/train/tuning.py) runs it
in the background for the app.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..generation.decode import generate_batch
from ..generation.sampling import SamplingSettings
from ..model.gpt import GPT
from ..model.tokenizer import EOT


class PreferenceError(ValueError):
    """Pairs or settings that cannot be tuned on; the message says why in one plain sentence."""


@dataclass(frozen=True)
class PreferencePair:
    prompt: str  # the text both completions continue
    chosen: str  # the preferred completion
    rejected: str  # the completion it is preferred over
    labelled_by: str = "you"  # who chose: "you", or the name of the rule that stands in for a person


@dataclass(frozen=True)
class TuneConfig:
    beta: float = 0.1  # how strongly the policy is held to the reference: small beta lets it drift further
    learning_rate: float = 5e-5  # AdamW step size; 1e-4 and up soon makes the model forget its English
    steps: int = 30  # optimizer steps, each over every pair at once
    weight_decay: float = 0.0  # decay would pull weights towards zero, away from the reference: off
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    seed: int = 0  # nothing random is drawn today (no dropout, full batches); kept for reproducible extensions

    def check(self) -> None:
        if not (math.isfinite(self.beta) and 0 < self.beta <= 10):
            raise PreferenceError(f"beta must be a number above 0 and at most 10, not {self.beta}.")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise PreferenceError(f"The learning rate must be above 0 and at most 1, not {self.learning_rate}.")
        if not 1 <= self.steps <= 10_000:
            raise PreferenceError(f"Steps must be between 1 and 10,000, not {self.steps}.")


@dataclass(frozen=True)
class PairBatch:
    """Every pair as one padded batch: the chosen sequences in rows [0, n), the rejected in rows [n, 2n)."""
    ids: torch.Tensor  # [2n, T] prompt then completion tokens, right-padded
    mask: torch.Tensor  # [2n, T-1] True where position t predicts a completion token (ids[:, t + 1])
    n_pairs: int

    @property
    def n_completion_tokens(self) -> int:
        return int(self.mask.sum())


def encode_pairs(tokenizer, pairs: Sequence[PreferencePair], block_size: int) -> PairBatch:
    """Token ids of every <|endoftext|> + prompt + completion, with the completion tokens marked.

    The prompt and each completion are encoded separately, so both completions of a pair start from the same
    prompt tokens. Refuses, in a sentence, what cannot be tuned on.
    """
    if not pairs:
        raise PreferenceError("There are no preference pairs yet: mark a preferred and a rejected completion first.")
    eot = tokenizer.convert_tokens_to_ids(EOT)
    chosen_rows: list[tuple[list[int], int]] = []  # (ids, number of prompt ids incl. the start marker)
    rejected_rows: list[tuple[list[int], int]] = []
    for i, pair in enumerate(pairs, 1):
        if not pair.chosen.strip() or not pair.rejected.strip():
            raise PreferenceError(f"Pair {i} has an empty completion: both sides need some text.")
        if pair.chosen == pair.rejected:
            raise PreferenceError(f"Pair {i} prefers a completion over itself: the two sides must differ.")
        prompt = [eot] + tokenizer.encode(pair.prompt, add_special_tokens=False)
        if len(prompt) >= block_size:
            raise PreferenceError(f"Pair {i}'s prompt has {len(prompt) - 1:,} tokens, more than the model's "
                                  f"context of {block_size:,} leaves room for: shorten the prompt.")
        for completion, rows in ((pair.chosen, chosen_rows), (pair.rejected, rejected_rows)):
            ids = prompt + tokenizer.encode(completion, add_special_tokens=False)
            rows.append((ids[:block_size], len(prompt)))  # a completion past the context is cut there
    rows = chosen_rows + rejected_rows
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), eot, dtype=torch.long)
    mask = torch.zeros(len(rows), width - 1, dtype=torch.bool)
    for r, (row, n_prompt) in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row)
        mask[r, n_prompt - 1:len(row) - 1] = True  # position t predicts token t + 1: the completion's tokens
    return PairBatch(ids, mask, len(pairs))


def completion_logprobs(model: GPT, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(completion | prompt) of every row, and the model's full log-distribution at every completion
    position: ([2n], [n_completion_tokens, vocab]). Differentiable."""
    device = next(model.parameters()).device
    ids, mask = batch.ids.to(device), batch.mask.to(device)
    hidden = model.final_hidden(ids)  # [2n, T, d_model]; right padding cannot reach earlier positions (causal)
    # logits only where a completion token is predicted: the prompt and the padding need no vocabulary matmul
    logits = model.lm_head(hidden[:, :-1][mask])  # [n_completion_tokens, vocab]
    logp = F.log_softmax(logits.float(), dim=-1)
    taken = logp.gather(-1, ids[:, 1:][mask][:, None])[:, 0]  # [n_completion_tokens]
    rows = mask.nonzero()[:, 0]  # the row of each completion token
    seq = torch.zeros(ids.shape[0], device=device, dtype=taken.dtype).index_add(0, rows, taken)  # [2n]
    return seq, logp


@torch.no_grad()
def sequence_logprobs(model: GPT, batch: PairBatch) -> torch.Tensor:
    """log pi(completion | prompt) of every row: the sum over its completion tokens. [2n]"""
    return completion_logprobs(model, batch)[0]


@dataclass(frozen=True)
class DpoStats:
    loss: float  # the DPO loss, mean over pairs (log 2 = 0.693 before the first step)
    margin: float  # mean reward margin: chosen reward minus rejected reward
    accuracy: float  # share of pairs whose chosen completion has the larger reward
    chosen_reward: float  # mean beta * (log pi - log pi_ref) of the chosen completions
    rejected_reward: float  # the same for the rejected ones
    chosen_logp: float  # mean log pi(chosen | prompt), in nats
    rejected_logp: float  # mean log pi(rejected | prompt)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, DpoStats]:
    """The DPO loss of sequence log-probabilities ([n] each) and what it says, as plain numbers."""
    chosen_reward = beta * (policy_chosen - ref_chosen)  # [n]
    rejected_reward = beta * (policy_rejected - ref_rejected)  # [n]
    margins = chosen_reward - rejected_reward  # [n]
    loss = -F.logsigmoid(margins).mean()
    m = margins.detach()
    stats = DpoStats(
        loss=float(loss.detach()), margin=float(m.mean()), accuracy=float((m > 0).float().mean()),
        chosen_reward=float(chosen_reward.detach().mean()), rejected_reward=float(rejected_reward.detach().mean()),
        chosen_logp=float(policy_chosen.detach().mean()), rejected_logp=float(policy_rejected.detach().mean()))
    return loss, stats


def mean_kl(policy_logp: torch.Tensor, ref_logp: torch.Tensor) -> float:
    """Mean KL(pi || pi_ref) in nats over the next-token distributions at the completion positions."""
    if policy_logp.numel() == 0:
        return 0.0
    # sum over tokens and vocabulary as one dot product: the same number, one pass fewer over [tokens, vocab]
    total = torch.dot(policy_logp.exp().flatten(), (policy_logp - ref_logp).flatten())
    return float(total) / policy_logp.shape[0]


@dataclass(frozen=True)
class TuneProgress:
    step: int  # optimizer steps completed (0: before the first)
    steps: int
    stats: DpoStats  # measured at the policy of this step, before the update that follows it
    kl: float  # mean KL(pi || pi_ref) per completion token, nats
    elapsed_s: float


@dataclass(frozen=True)
class TuneResult:
    steps: int
    history: tuple[TuneProgress, ...]
    stopped: bool  # True when request_stop ended it early
    elapsed_s: float


class PreferenceTuner:
    """DPO on a copy of `model`. `model` itself is the frozen reference and is never changed.

    Each step runs every pair at once (the sets are small); the policy runs in eval mode, so dropout is off
    and the loss changes only because the weights do (TRL disables dropout for DPO by default too).
    """

    def __init__(self, model: GPT, tokenizer, pairs: Sequence[PreferencePair], cfg: TuneConfig = TuneConfig(),
                 callback: Callable[[TuneProgress], None] | None = None):
        cfg.check()
        self.cfg, self.callback = cfg, callback
        self.reference = model
        self.batch = encode_pairs(tokenizer, pairs, model.config.block_size)
        self.policy = copy.deepcopy(model).eval()
        for p in self.policy.parameters():
            p.requires_grad_(True)
        n = self.batch.n_pairs
        with torch.no_grad():
            ref, self._ref_dist = completion_logprobs(model, self.batch)
        self._ref_chosen, self._ref_rejected = ref[:n], ref[n:]
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.95),
                                           weight_decay=cfg.weight_decay)
        self.step = 0
        self.history: list[TuneProgress] = []
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Stop after the current step (safe to call from another thread)."""
        self._stop.set()

    def _measure(self) -> tuple[torch.Tensor, DpoStats, float]:
        n = self.batch.n_pairs
        seq, dist = completion_logprobs(self.policy, self.batch)  # [2n], [n_completion_tokens, vocab]
        loss, stats = dpo_loss(seq[:n], seq[n:], self._ref_chosen, self._ref_rejected, self.cfg.beta)
        with torch.no_grad():
            kl = mean_kl(dist, self._ref_dist)
        return loss, stats, kl

    def _report(self, stats: DpoStats, kl: float, started: float) -> None:
        p = TuneProgress(self.step, self.cfg.steps, stats, kl, time.monotonic() - started)
        self.history.append(p)
        if self.callback is not None:
            self.callback(p)

    def run(self) -> TuneResult:
        started = time.monotonic()
        for _ in range(self.cfg.steps):
            if self._stop.is_set():
                break
            loss, stats, kl = self._measure()
            self._report(stats, kl, started)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.step += 1
        with torch.no_grad():
            _, stats, kl = self._measure()
        self._report(stats, kl, started)  # where it ended: the tuned model's own figures
        self.policy.requires_grad_(False)
        return TuneResult(self.step, tuple(self.history), self.step < self.cfg.steps, time.monotonic() - started)


@torch.no_grad()
def write_completions(model: GPT, tokenizer, prompt: str, n: int, n_tokens: int, seed: int,
                      temperature: float = 1.0) -> list[str]:
    """`n` completions of `prompt`, drawn together from one seeded generator: the same seed, model and prompt
    give the same completions, so a tuned model can be compared with its reference on equal terms."""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    ids = [eot] + tokenizer.encode(prompt, add_special_tokens=False)
    ids = ids[-(model.config.block_size - 1):]  # room for at least one new token
    out = generate_batch(model, [ids] * n, n_tokens, SamplingSettings(temperature=temperature),
                         torch.Generator().manual_seed(seed), stop_id=eot)
    return [tokenizer.decode(o) for o in out]


@torch.no_grad()
def next_token_probs(model: GPT, tokenizer, prompt: str) -> torch.Tensor:
    """The model's probabilities for the token after <|endoftext|> + `prompt`. [vocab]"""
    eot = tokenizer.convert_tokens_to_ids(EOT)
    ids = ([eot] + tokenizer.encode(prompt, add_special_tokens=False))[-model.config.block_size:]
    device = next(model.parameters()).device
    logits, _ = model.decode_step(torch.tensor([ids], device=device))
    return logits[0, -1].float().softmax(-1).cpu()
