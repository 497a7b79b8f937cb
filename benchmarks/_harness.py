"""Measurement code shared by the benchmarks.

Every case runs in a fresh Python process so that one case's allocations, allocator caches and peak
counters cannot leak into the next, and so that an out-of-memory kills a child, not the machine (the
CPU box is shared). The parent:

* starts ``python -m benchmarks._harness worker ...`` with the case's target function and arguments,
* on CPU watches the child's resident set through /proc and kills it when it passes the memory cap,
* turns whatever happened into one row: ``ok``, ``OOM`` (caught allocation failure or killed at the
  cap), ``timeout`` or ``error``.

The child measures itself through a :class:`Probe`: ``probe.start()`` resets the peak counters (CUDA peak
allocated on GPU; the kernel's RSS high-water mark via /proc/self/clear_refs on CPU) once the model is
built and warmed up, so the peak covers the measured work plus what is already resident (weights, the
interpreter, torch itself) -- the memory a user actually needs.

This module is the isolation itself (the worker entry point and the parent that watches it) and the one import
the benchmark scripts need: ``from benchmarks import _harness as H`` also gives the host facts (``_host``), the
probe and statuses (``_probe``), tables and targets (``_tables``) and the shared flags (``_args``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks._args import common_args, default_cap, output_target
from benchmarks._host import REPO_ROOT, device_name, device_slug, load_average, proc_status_kb, resolve_device
from benchmarks._probe import (ERROR, OK, OOM, OVER_CAP, SKIPPED, TIMEOUT, Probe, allocation_case, is_oom_error,
                               short_error)
from benchmarks._tables import (RANDOM_WEIGHTS_NOTE, TARGET_COLUMNS, markdown_table, predict_linear, print_table,
                                read_rows, target_row, write_table)

__all__ = ["ERROR", "OK", "OOM", "OVER_CAP", "RANDOM_WEIGHTS_NOTE", "REPO_ROOT", "SKIPPED", "TARGET_COLUMNS",
           "TIMEOUT", "Probe", "allocation_case", "common_args", "default_cap", "device_name", "device_slug",
           "is_oom_error", "load_average", "markdown_table", "output_target", "predict_linear", "print_table",
           "proc_status_kb", "read_rows", "resolve_device", "run_case", "run_in_process", "run_isolated",
           "short_error", "target_row", "write_table"]


def _worker(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks._harness worker")
    ap.add_argument("--target", required=True, help="module:function taking (probe, **kwargs) -> dict")
    ap.add_argument("--kwargs", default="{}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mem-cap-mb", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    probe = Probe(a.device, a.mem_cap_mb or None)
    probe.mark_imports()  # before any model is built: model_mem_mb = peak - this
    if a.device.startswith("cuda") and a.mem_cap_mb:
        total = torch.cuda.get_device_properties(a.device).total_memory / 2**20
        torch.cuda.set_per_process_memory_fraction(min(1.0, a.mem_cap_mb / total), a.device)
    result: dict[str, Any]
    code = 0
    try:
        mod_name, fn_name = a.target.split(":")
        fn: Callable[..., dict] = getattr(importlib.import_module(mod_name), fn_name)
        measured = fn(probe, **json.loads(a.kwargs))
        result = {"status": OK, **measured, "threads": torch.get_num_threads()}
    except BaseException as e:  # noqa: BLE001 - every failure becomes a row, none escapes
        if is_oom_error(e):
            result = {"status": OOM, "note": short_error(e)}
        else:
            result = {"status": ERROR, "note": f"{type(e).__name__}: {short_error(e)}",
                      "traceback": traceback.format_exc()[-4000:]}
            code = 1
    with contextlib.suppress(Exception):
        result.setdefault("peak_mem_mb", round(probe.peak_mb(), 1))
        if result["status"] == OK:
            result.setdefault("model_mem_mb", probe.model_mem_mb())
            result.setdefault("import_mb", round(probe.import_mb, 1))
    if probe.base_mb is not None:
        result.setdefault("base_mb", round(probe.base_mb, 1))
    Path(a.out).write_text(json.dumps(result))
    return code


# --------------------------------------------------------------------------------------------- parent side
def run_isolated(target: str, kwargs: dict[str, Any], *, device: str = "cpu", mem_cap_mb: float | None = None,
                 timeout_s: float = 600.0, threads: int = 0, poll_s: float = 0.05) -> dict[str, Any]:
    """Run ``target(probe, **kwargs)`` in a fresh interpreter; always returns a row dict with a ``status``."""
    with tempfile.TemporaryDirectory(prefix="coprop-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks._harness", "worker", "--target", target,
               "--kwargs", json.dumps(kwargs), "--out", str(out), "--device", device,
               "--mem-cap-mb", str(mem_cap_mb or 0), "--threads", str(threads)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
        env.setdefault("COPROP_HEADLESS", "1")
        log = Path(tmp) / "child.log"
        with open(log, "w") as logf:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
            killed_at_cap, timed_out, rss_peak_kb = False, False, 0
            t0 = time.monotonic()
            while proc.poll() is None:
                rss = proc_status_kb(proc.pid).get("VmRSS", 0)
                rss_peak_kb = max(rss_peak_kb, rss)
                if mem_cap_mb and not device.startswith("cuda") and rss > mem_cap_mb * 1024:
                    killed_at_cap = True
                    proc.kill()
                elif time.monotonic() - t0 > timeout_s:
                    timed_out = True
                    proc.kill()
                time.sleep(poll_s)
            proc.wait()
        wall = time.monotonic() - t0
        if killed_at_cap:
            return {"status": OOM, "peak_mem_mb": round(rss_peak_kb / 1024, 1),
                    "note": f"killed at the {mem_cap_mb:.0f} MB cap"}
        if timed_out:
            return {"status": TIMEOUT, "note": f"killed after {timeout_s:.0f} s"}
        if out.exists():
            row = json.loads(out.read_text())
            row.pop("traceback", None) if row.get("status") == OK else None
            if row.get("status") == ERROR:
                sys.stderr.write(f"[bench] {target} {kwargs} failed:\n{row.get('traceback', '')}\n")
                row.pop("traceback", None)
            row.setdefault("case_wall_s", round(wall, 1))
            return row
        tail = log.read_text()[-1500:]
        sig = -proc.returncode if proc.returncode < 0 else None
        if sig == signal.SIGKILL:  # the kernel's OOM killer (we did not kill it ourselves)
            return {"status": OOM, "peak_mem_mb": round(rss_peak_kb / 1024, 1), "note": "killed by SIGKILL"}
        sys.stderr.write(f"[bench] {target} {kwargs} crashed (rc={proc.returncode}):\n{tail}\n")
        return {"status": ERROR, "note": f"worker exited with {proc.returncode}: {' '.join(tail.split())[-200:]}"}


def run_in_process(target: str, kwargs: dict[str, Any], *, device: str = "cpu") -> dict[str, Any]:
    """Run a case in this interpreter: no memory cap, peaks include what earlier cases left behind.

    For smoke runs (notebook, tests) where starting torch once per case would cost more than the case.
    """
    import torch

    probe = Probe(device, None)
    probe.mark_imports()  # here it also holds what earlier cases left behind, and so does the peak
    t0 = time.monotonic()
    try:
        mod_name, fn_name = target.split(":")
        row = {"status": OK, **getattr(importlib.import_module(mod_name), fn_name)(probe, **kwargs),
               "threads": torch.get_num_threads()}
    except Exception as e:  # noqa: BLE001 - a failing case is a row, as in the isolated path
        row = {"status": OOM if is_oom_error(e) else ERROR, "note": f"{type(e).__name__}: {short_error(e)}"}
        if row["status"] == ERROR:
            sys.stderr.write(f"[bench] {target} {kwargs} failed:\n{traceback.format_exc()}\n")
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    row.setdefault("peak_mem_mb", round(probe.peak_mb(), 1))
    if row["status"] == OK:
        row.setdefault("model_mem_mb", probe.model_mem_mb())
        row.setdefault("import_mb", round(probe.import_mb, 1))
    if probe.base_mb is not None:
        row.setdefault("base_mb", round(probe.base_mb, 1))
    row.setdefault("case_wall_s", round(time.monotonic() - t0, 1))
    return row


def run_case(target: str, kwargs: dict[str, Any], *, isolate: bool = True, device: str = "cpu",
             mem_cap_mb: float | None = None, timeout_s: float = 600.0, threads: int = 0) -> dict[str, Any]:
    if isolate:
        return run_isolated(target, kwargs, device=device, mem_cap_mb=mem_cap_mb, timeout_s=timeout_s,
                            threads=threads)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return run_in_process(target, kwargs, device=device)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(_worker(sys.argv[2:]))
    print("usage: python -m benchmarks._harness worker --target mod:fn --out result.json ...", file=sys.stderr)
    sys.exit(2)
