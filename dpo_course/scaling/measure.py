"""Measuring memory and time: peak memory on CUDA or a Linux CPU, saved activations, timed steps, device names.

Taught in 09_scaling_up; `benchmarks/` runs the same functions at real sizes.

Peak memory. On CUDA: ``torch.cuda.max_memory_allocated`` minus what was allocated before (the
allocator's own count, exact). On a Linux CPU: the kernel's resident-set high-water mark
(``VmHWM``), reset before the call by writing ``5`` to ``/proc/self/clear_refs``, minus the
resident set before: what the operating system saw, including allocator slack. Elsewhere: RSS
sampled every millisecond by a thread (can miss a short spike).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

# ---------------------------------------------------------------------------------------- memory


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc), so that reusing them cannot hide a peak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence C-level writes to file descriptor 2 (the profiler logs "profiler_start/stop" there)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profiled_peak(fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, int]:
    """Peak of the running sum of torch's CPU allocations and frees, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_fd2():  # only the start and stop are silenced, never `fn`
        prof.start()
    try:
        result = fn(*args, **kwargs)
    finally:
        with _quiet_fd2():
            prof.stop()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and str(e.device_type()).endswith("CPU")
    ]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    del prof, events
    _trim_heap()  # hand the call's freed memory back, so a notebook's resident set stays small
    return result, peak


def peak_memory(
    fn: Callable[..., Any], *args, device: str | torch.device | None = None, **kwargs
) -> tuple[Any, int]:
    """Run ``fn(*args, **kwargs)`` and return ``(its result, peak extra bytes)``.

    "Peak extra" is the most tensor memory allocated at once during the call minus what was
    allocated before it (tensors freed during the call count negative). On CUDA it comes from the
    caching allocator's counters (``max_memory_allocated``); on a CPU from torch's profiler, which
    records every allocation and free (``profile_memory=True``; it slows the call down). Both
    count tensors only, not allocator slack; `peak_rss` measures what the operating system sees.

    Taught in 09_scaling_up.
    """
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"peak_memory measures CUDA or CPU tensors, not {dev.type}: run the measurement on the CPU"
        )
    if dev is not None and dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        result = fn(*args, **kwargs)
        torch.cuda.synchronize(dev)
        return result, torch.cuda.max_memory_allocated(dev) - before
    return _profiled_peak(fn, *args, **kwargs)


def peak_rss(fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, int]:
    """``(result, peak resident-set growth in bytes)`` of a call: what the operating system saw.

    On Linux the kernel's high-water mark (``VmHWM``) is reset before the call by writing 5 to
    ``/proc/self/clear_refs``; elsewhere a thread samples the RSS every millisecond (it can miss
    a short spike). Includes allocator slack; small buffers may reuse memory the process holds.

    Taught in 08_dpo_vs_online_rl.
    """
    _trim_heap()
    before = _proc_status("VmRSS")
    if before is not None and _reset_peak_rss():
        result = fn(*args, **kwargs)
        return result, max(0, (_proc_status("VmHWM") or 0) - before)
    import psutil

    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn(*args, **kwargs)
    finally:
        stop.set()
        thread.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return result, peak[0] - before


class SavedTensorMeter:
    """Counts the bytes autograd saves for backward while active (each storage once).

    Taught in 09_scaling_up (what `saved_tensor_bytes` yields).
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self._storages: dict[int, int] = {}
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if t.numel() and t.device.type != "meta":
            storage = t.untyped_storage()
            if storage.data_ptr() not in self._exclude:
                self._storages[storage.data_ptr()] = storage.nbytes()
        return t

    @property
    def bytes(self) -> int:
        return sum(self._storages.values())


@contextlib.contextmanager
def saved_tensor_bytes(exclude: Iterable[torch.Tensor] = ()) -> Iterator[SavedTensorMeter]:
    """``with saved_tensor_bytes(model.parameters()) as meter: out = model(...)``; ``meter.bytes``.

    Counts what autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``), each
    storage once: the activations. Layers also save their weights, which are in memory anyway:
    pass them as `exclude`. Inside a gradient-checkpointed region nothing is saved, so nothing
    is seen: checkpointing keeps only each region's inputs, which this does not see either.

    Taught in 09_scaling_up.
    """
    meter = SavedTensorMeter(exclude)
    with torch.autograd.graph.saved_tensors_hooks(meter._pack, lambda t: t):
        yield meter


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_and_memory(
    method: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    repeats: int = 3,
    warmup: int = 1,
) -> dict[str, Any]:
    """Median seconds and peak extra bytes of forward + backward of `method`; also its values.

    Gradients flow to both `hidden` and `weight` (leaf tensors with ``requires_grad``), and the
    backward seeds every token with gradient 1. Times use CUDA events on a GPU and wall time on
    a CPU; memory is `peak_memory` of one more call, gradients included.

    Taught in 09_scaling_up.
    """
    device = hidden.device

    def once():
        hidden.grad = weight.grad = None
        out = method(hidden, weight, targets)
        out.sum().backward()
        return out.detach()

    for _ in range(warmup):
        once()
    times = []
    for _ in range(repeats):
        hidden.grad = weight.grad = None
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            once()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
    hidden.grad = weight.grad = None
    _sync(device)
    values, peak = peak_memory(once, device=device)
    times.sort()
    return {"seconds": times[len(times) // 2], "peak_bytes": peak, "values": values}


def cpu_name() -> str:
    """A short name of this machine's CPU (for benchmark tables).

    Taught in 09_scaling_up (through `device_name`).
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` on a GPU, else ``"cpu (<model>, <n> threads)"``.

    Taught in 09_scaling_up.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores)"
