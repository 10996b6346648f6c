"""What a training run will cost before it starts: memory (refuse a model that does not fit, with the
figures) and time (measured from a real training step on this device). How many CPU threads a run may use
is engine.model.device's `run_threads`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..model.config import GPTConfig
from ..model.device import cap_threads, train_autocast
from ..model.gpt import GPT

OVERHEAD_BYTES = 100 * 2**20  # allocator workspace and per-run buffers beyond the tensors counted below
FIT_FRACTION = 0.8  # a run may use at most this share of the memory left, so the app keeps some room
MEASURE_TOKENS = 4096  # a timing step on a large config uses a smaller batch and scales it up


@dataclass(frozen=True)
class MemoryEstimate:
    training_state: int  # bytes: weights, gradients and AdamW's two moments, float32
    activations: int  # bytes kept for the backward pass of one batch, plus the logits
    snapshots: int  # bytes: weight copies kept for the time-lapse (always in CPU memory)
    overhead: int = OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return self.training_state + self.activations + self.snapshots + self.overhead


def estimate_memory(cfg: GPTConfig, batch_size: int, n_snapshots: int) -> MemoryEstimate:
    """A deliberately generous estimate (within ~1.5x of measured peaks on the CPU, never below them)."""
    p, d, t = cfg.n_params(), cfg.n_embd, cfg.block_size
    # Per token and layer: layer-norm inputs and outputs, q/k/v, attention output, the 4x MLP before and
    # after GELU, residuals (about 20 d), plus attention weights should the kernel materialise them (2 H T).
    per_token = cfg.n_layer * (20 * d + 2 * cfg.n_head * t) + 3 * cfg.vocab_size + 4 * d
    return MemoryEstimate(training_state=16 * p, activations=4 * batch_size * t * per_token,
                          snapshots=4 * p * n_snapshots)


def _cgroup_free() -> int | None:
    """Memory left under this container's limit (cgroup v2, then v1), if it has one."""
    v1 = "/sys/fs/cgroup/memory/memory."
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         (v1 + "limit_in_bytes", v1 + "usage_in_bytes")):
        try:
            raw = Path(limit).read_text().strip()
            if raw == "max" or int(raw) > 1 << 60:  # no limit set
                return None
            return max(0, int(raw) - int(Path(usage).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def available_memory() -> int | None:
    """Bytes of RAM this process can still use: psutil if installed, else /proc/meminfo, capped by the
    container's limit (Streamlit Community Cloud runs in one). None when it cannot be told."""
    free: int | None = None
    try:
        import psutil
        free = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    cgroup = _cgroup_free()
    if cgroup is not None:
        free = cgroup if free is None else min(free, cgroup)
    return free


def gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def fits_message(est: MemoryEstimate, device: torch.device, free_ram: int | None,
                 free_gpu: int | None = None) -> str | None:
    """Why the run cannot start for lack of memory, with the figures; None when it fits."""
    on_gpu = device.type == "cuda"
    need_device = est.training_state + est.activations + est.overhead
    if on_gpu and free_gpu is not None and need_device > FIT_FRACTION * free_gpu:
        return (f"This model needs about {gb(need_device)} of GPU memory to train, and the GPU has "
                f"{gb(free_gpu)} free. Make it smaller: fewer layers, a narrower width, a shorter context or "
                "a smaller batch.")
    need_ram = est.snapshots + (0 if on_gpu else need_device)
    if free_ram is not None and need_ram > FIT_FRACTION * free_ram:
        return (f"This model needs about {gb(need_ram)} of memory to train ({gb(est.training_state)} for weights, "
                f"gradients and optimizer state, {gb(est.activations)} for one batch, {gb(est.snapshots)} for "
                f"the time-lapse copies), and this server has {gb(free_ram)} free. Make it smaller: fewer "
                "layers, a narrower width, a shorter context or a smaller batch.")
    return None


def check_memory(cfg: GPTConfig, batch_size: int, n_snapshots: int, device: torch.device) -> str | None:
    """`fits_message` for the memory this machine has left right now."""
    free_gpu = None
    if device.type == "cuda":
        free_gpu = torch.cuda.mem_get_info(device)[0]
    return fits_message(estimate_memory(cfg, batch_size, n_snapshots), device, available_memory(), free_gpu)


def measure_step_seconds(cfg: GPTConfig, batch_size: int, device: torch.device, threads: int) -> float:
    """Seconds for one optimizer step of this config, measured on random tokens with the run's thread cap.

    Runs in a helper thread, because torch's thread count is per thread with OpenMP: the caller's own
    setting is left alone. Large configs are timed on fewer rows and scaled up (the cost is linear in the
    batch once a step is big enough to matter).
    """
    rows = max(1, min(batch_size, MEASURE_TOKENS // cfg.block_size))
    result: dict[str, float | BaseException] = {}

    def body() -> None:
        try:
            cap_threads(threads)
            model = GPT(cfg).to(device).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            x = torch.randint(0, cfg.vocab_size, (rows, cfg.block_size), device=device)
            times = []
            for _ in range(3):  # the first step warms up allocators and kernels; keep the fastest of the rest
                t0 = time.perf_counter()
                with train_autocast("auto", device):  # as the Train page's runs train (TrainConfig's default)
                    _, loss = model(x, x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - t0)
            result["s"] = min(times[1:]) * batch_size / rows
        except BaseException as e:  # noqa: BLE001 - reported to the caller's thread below
            result["error"] = e

    worker = threading.Thread(target=body, name="glassbox-measure", daemon=True)
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return float(result["s"])


class StepTimes:
    """The fastest time measured for one step of each (config, batch, device, threads), process-wide.

    A step timed while the machine was busy (another run training, thirty visitors) is slower than the run will
    be once it has its slot, so the estimate keeps the fastest measurement: asking again for the same settings
    gives the same estimate or a better one, never a worse one (the estimate is then stable for the same
    settings). A measurement older than `refresh_s` is retried, so a config first timed under load improves.
    """

    def __init__(self, measure: Callable[..., float] | None = None, refresh_s: float = 180.0) -> None:
        self._measure = measure or measure_step_seconds
        self._best: dict[tuple, tuple[float, float]] = {}  # key -> (seconds, when measured)
        self._lock = threading.Lock()
        self.refresh_s = refresh_s

    def seconds(self, cfg: GPTConfig, batch_size: int, device: torch.device, threads: int) -> float:
        key = (cfg, batch_size, str(device), threads)
        with self._lock:
            known = self._best.get(key)
        if known is not None and time.monotonic() - known[1] < self.refresh_s:
            return known[0]
        measured = self._measure(cfg, batch_size, device, threads)
        with self._lock:
            best = min(measured, known[0]) if known else measured
            self._best[key] = (best, time.monotonic())
        return best


STEP_TIMES = StepTimes()


def estimate_run_seconds(step_s: float, max_steps: int, n_evals: int, eval_batches: int, n_snapshots: int,
                         sample_tokens: int) -> float:
    """Whole-run time from one measured step: the steps, the held-out evaluations (a forward pass costs
    about a third of a training step) and the samples drawn for the time-lapse (small forward passes)."""
    evals = n_evals * eval_batches * step_s / 3
    samples = n_snapshots * sample_tokens * 0.002  # about 2 ms per generated token for models this size
    return max_steps * step_s + evals + samples
