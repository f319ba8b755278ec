"""Timing and memory: interleaved repeats, medians, spreads, ratios, peak memory.

Every comparison in the benchmarks is a ratio of cases timed in the same
process, round by round (case A, case B, case A, case B ...; the order
rotates every round), so a machine that slows down half-way slows every case
alike and the ratio stays put.  A ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import statistics
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

MB = 1024 * 1024


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of each repeat of one case."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def spread(self) -> float:
        """``(max - min) / median`` of the repeats (0.05: the repeats lie within 5 %)."""
        if len(self.seconds) < 2:
            return 0.0
        return (max(self.seconds) - min(self.seconds)) / self.median

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": min(self.seconds, default=float("nan")),
            "max_s": max(self.seconds, default=float("nan")),
            "spread": self.spread,
            "repeats": len(self.seconds),
            "seconds": self.seconds,
        }


@dataclass
class Ratio:
    """``a / b`` per round: median and range."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": min(self.values, default=float("nan")),
            "max": max(self.values, default=float("nan")),
        }


def ratio(a: Timing, b: Timing) -> Ratio:
    """Per-round ``a / b`` (rounds paired by index)."""
    return Ratio([x / y for x, y in zip(a.seconds, b.seconds, strict=False) if y > 0])


def time_interleaved(
    cases: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int,
    device: torch.device,
    budget: Budget | None = None,
) -> dict[str, Timing]:
    """Run every case ``warmup`` times, then ``repeats`` rounds of one timed call each.

    The case order rotates each round.  A round is skipped once ``budget`` is
    spent (at least one timed round always runs).
    """
    names = list(cases)
    if not names:  # every case failed to build: nothing to time
        return {}
    for _ in range(warmup):
        for name in names:
            cases[name]()
    synchronize(device)
    timings = {name: Timing() for name in names}
    for round_index in range(repeats):
        if round_index > 0 and budget is not None and budget.spent():
            break
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            began = time.perf_counter()
            cases[name]()
            synchronize(device)
            timings[name].seconds.append(time.perf_counter() - began)
    return timings


class Budget:
    """Wall-clock seconds a run may use; sections skip what would exceed it."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def spent(self) -> bool:
        return self.seconds is not None and self.elapsed() >= self.seconds


# -- memory -----------------------------------------------------------------------------------


class TensorMemory(TorchDispatchMode):
    """Peak bytes of the tensor storages created while active (CPU or GPU, exact, no allocator).

    Every operator's new outputs are counted until their storage is freed;
    views and in-place results share an existing storage and are not counted
    again.  What a GPU allocator would add (rounding, cache) is left out, so
    this is a lower bound of ``torch.cuda.max_memory_allocated`` for the same work.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not any(r.alias_info is not None for r in func._schema.returns):
            for value in tree_flatten(out)[0]:
                if isinstance(value, torch.Tensor):
                    self._track(value)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self.live:
            return
        size = storage.nbytes()
        self.live[key] = size
        self.current += size
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


def state_bytes(modules: Iterable[Any] = (), optimizers: Iterable[Any] = (), tensors=()) -> int:
    """Bytes of the distinct storages of modules' parameters/buffers, optimizer states, tensors.

    Gradients are left out: :func:`measure_memory` frees them before the step,
    which allocates them again.
    """
    seen: dict[int, int] = {}

    def add(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            seen[storage._cdata] = storage.nbytes()
        elif isinstance(value, Mapping):
            for item in value.values():
                add(item)
        elif isinstance(value, list | tuple):
            for item in value:
                add(item)

    for module in modules:
        if module is None:
            continue
        for tensor in [*module.parameters(), *module.buffers()]:
            add(tensor)
    for optimizer in optimizers:
        if optimizer is not None:
            add(list(optimizer.state.values()))
    add(list(tensors))
    return sum(seen.values())


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status() -> dict[str, float]:
    values = {}
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":")
                    values[key] = int(value.split()[0]) * 1024 / MB
    except OSError:
        pass
    return values


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure_memory(
    step: Callable[[], Any],
    device: torch.device,
    *,
    state: Callable[[], int],
    free_gradients: Callable[[], Any] | None = None,
    track_tensors: bool = True,
) -> dict[str, Any]:
    """Peak memory of one call of ``step``, in MiB.

    ``state()`` returns the bytes the case holds between steps (weights,
    optimizer state, inputs); gradients are freed first (``free_gradients``)
    since the step makes them anew.  Reported:

    - ``tensor_peak_mb``: ``state`` + the peak of the storages the step creates
      (:class:`TensorMemory`): what the step needs, the same on any device;
    - ``cuda_peak_mb`` (CUDA): ``state`` + the growth of
      ``torch.cuda.max_memory_allocated`` during the step (measured in a
      step without the tensor tracker), and ``cuda_max_allocated_mb`` /
      ``cuda_max_reserved_mb``: the allocator's whole peak in that step,
      everything else the process holds on the GPU included;
    - ``rss_growth_mb`` and ``rss_peak_mb`` (CPU, Linux): growth of the
      process's peak resident set during the step (memory the allocator kept
      is returned to the system first) and that peak itself.

    The first measured step also allocates the optimizer's state, which
    later steps keep in ``state``: the peak is the same either way.
    ``track_tensors=False`` (compiled code) leaves ``tensor_peak_mb`` out.
    """
    if free_gradients is not None:
        free_gradients()
    result: dict[str, Any] = {"state_mb": state() / MB}
    _release_free_memory()
    if device.type == "cuda":
        # The allocator's numbers from a step of its own: the tensor tracker's dispatch
        # mode must not change what the allocator sees.
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        growth = torch.cuda.max_memory_allocated(device) - before
        result["cuda_peak_mb"] = result["state_mb"] + growth / MB
        # Everything the process holds on the GPU at its peak (other cases' weights too):
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / MB
        result["cuda_max_reserved_mb"] = torch.cuda.max_memory_reserved(device) / MB
        if free_gradients is not None:
            free_gradients()
        if track_tensors:
            with TensorMemory() as tracker:
                step()
            result["tensor_peak_mb"] = result["state_mb"] + tracker.peak / MB
        return result
    tracker = TensorMemory() if track_tensors else contextlib.nullcontext()
    rss_reset = _reset_peak_rss()
    before_status = _proc_status()
    with tracker:
        step()
    after = _proc_status()
    if rss_reset and "VmHWM" in after and "VmRSS" in before_status:
        result["rss_growth_mb"] = after["VmHWM"] - before_status["VmRSS"]
        result["rss_peak_mb"] = after["VmHWM"]
    if track_tensors:
        result["tensor_peak_mb"] = result["state_mb"] + tracker.peak / MB
    return result
