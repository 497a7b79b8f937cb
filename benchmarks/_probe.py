"""The child side of a benchmark case: ``Probe`` measures time and peak memory inside the worker process (CUDA
peak allocation on a GPU, the kernel's RSS high-water mark on a CPU, with an address-space limit so an
allocation past the cap fails as a catchable error), the statuses a row can carry, and the calibration case."""
from __future__ import annotations

import contextlib
import resource
import time
from pathlib import Path
from typing import Any, Iterable

from benchmarks._host import proc_status_kb

# statuses a row can carry
OK, OOM, OVER_CAP, TIMEOUT, SKIPPED, ERROR = "ok", "OOM", "over-cap", "timeout", "skipped", "error"


_IMPORT_MB: float | None = None   # the process's footprint after the imports, measured once

class Probe:
    """Timing and peak-memory measurement inside a worker process."""

    def __init__(self, device: str, mem_cap_mb: float | None):
        self.device = device
        self.mem_cap_mb = mem_cap_mb
        self.base_mb: float | None = None
        self.import_mb: float | None = None
        self._limited = False

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def current_mb(self) -> float:
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated(self.device) / 2**20
        return proc_status_kb().get("VmRSS", 0) / 1024

    def start(self) -> None:
        """Reset the peak counters to what is resident now and arm the memory cap (CPU)."""
        import gc

        gc.collect()
        self.sync()
        if self.cuda:
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            # "5" resets the RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")
            self._arm_address_limit()
        self.base_mb = self.current_mb()

    def mark_imports(self) -> float:
        """Record the footprint of the interpreter with torch, timm and coprop's model and pipeline modules
        imported and nothing built (RSS on a CPU; CUDA allocated on a GPU, i.e. 0). ``model_mem_mb`` = peak minus
        this: what the models' weights and activations take, not the interpreter and its libraries."""
        import gc
        import importlib

        global _IMPORT_MB
        if _IMPORT_MB is None:   # once per process: with --no-isolate a later case would otherwise count the
            # memory the allocator kept from the cases before it as "imports" (model_mem_mb 1.3 MB, measured)
            for name in ("torch", "timm", "coprop", "coprop.models.keyframe", "coprop.models.simultaneous",
                         "coprop.models.propagators", "coprop.models.aot_propagator", "coprop.pipeline"):
                importlib.import_module(name)
            gc.collect()
            _IMPORT_MB = self.current_mb()
        self.import_mb = _IMPORT_MB
        return self.import_mb

    def model_mem_mb(self) -> float | None:
        """Peak minus the import footprint (None before ``mark_imports``)."""
        return None if self.import_mb is None else round(self.peak_mb() - self.import_mb, 1)

    def peak_mb(self) -> float:
        self.sync()
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return proc_status_kb().get("VmHWM", 0) / 1024

    def _arm_address_limit(self) -> None:
        # RLIMIT_AS bounds virtual memory. torch reserves a few GB of address space it never touches, so the
        # limit is "what is mapped now + the RSS still allowed under the cap + slack for thread arenas". New
        # tensors are touched when written, so this fails an allocation close to where RSS would pass the cap,
        # as a catchable error instead of the kernel's OOM killer. The parent also kills on RSS > cap.
        if self._limited or not self.mem_cap_mb:
            return
        st = proc_status_kb()
        room_kb = int(self.mem_cap_mb * 1024) - st.get("VmRSS", 0)
        limit = (st.get("VmSize", 0) + max(room_kb, 0) + 256 * 1024) * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        self._limited = True

    @contextlib.contextmanager
    def timed(self) -> Iterable[list[float]]:
        """``with probe.timed() as t: ...`` then ``t[0]`` is the wall time in seconds (device synchronised)."""
        box: list[float] = []
        self.sync()
        t0 = time.perf_counter()
        yield box
        self.sync()
        box.append(time.perf_counter() - t0)


def allocation_case(probe: Probe, mb: float) -> dict[str, Any]:
    """Calibration case: allocate and touch ``mb`` MB. Checks the peak reading and the OOM path end to end."""
    import torch

    probe.start()
    with probe.timed() as t:
        x = torch.ones(int(mb * 2**20) // 4, dtype=torch.float32, device=probe.device)
        total = float(x[:: 1 << 16].sum())
    del x
    return {"seconds": t[0], "checksum": total}


def is_oom_error(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "can't allocate memory", "cannot allocate memory",
                                   "defaultcpuallocator", "std::bad_alloc"))


def short_error(e: BaseException, n: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."
