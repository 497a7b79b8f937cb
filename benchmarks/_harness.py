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
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
RANDOM_WEIGHTS_NOTE = ("Random weights and random inputs: speed and memory do not depend on the weight values; "
                       "no accuracy is measured here.")

# statuses a row can carry
OK, OOM, OVER_CAP, TIMEOUT, SKIPPED, ERROR = "ok", "OOM", "over-cap", "timeout", "skipped", "error"


# --------------------------------------------------------------------------------------------- host facts
def device_name(device: str) -> str:
    """Human name of the machine a device string runs on (GPU product name or CPU model + core count)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or "cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model} ({os.cpu_count()} cores)"


def device_slug(device: str) -> str:
    """Filename-safe device tag, e.g. ``cpu-2c`` or ``cuda-nvidia-h100-80gb-hbm3``."""
    if device.startswith("cuda"):
        name = device_name(device).lower()
        return "cuda-" + "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")
    return f"cpu-{os.cpu_count()}c"


def load_average() -> str:
    """1/5/15-minute load average: the CPU is shared, so every CPU number carries it."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        from coprop.errors import ConfigError

        raise ConfigError(f"--device {device} asked for, but torch.cuda.is_available() is False on this machine")
    return device


# --------------------------------------------------------------------------------------------- /proc readers
def proc_status_kb(pid: int | str = "self") -> dict[str, int]:
    """VmSize/VmRSS/VmHWM (kB) of a process; empty when it is gone."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmSize", "VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


# --------------------------------------------------------------------------------------------- child side
class Probe:
    """Timing and peak-memory measurement inside a worker process."""

    def __init__(self, device: str, mem_cap_mb: float | None):
        self.device = device
        self.mem_cap_mb = mem_cap_mb
        self.base_mb: float | None = None
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
            result = {"status": OOM, "note": _short(e)}
        else:
            result = {"status": ERROR, "note": f"{type(e).__name__}: {_short(e)}",
                      "traceback": traceback.format_exc()[-4000:]}
            code = 1
    with contextlib.suppress(Exception):
        result.setdefault("peak_mem_mb", round(probe.peak_mb(), 1))
    if probe.base_mb is not None:
        result.setdefault("base_mb", round(probe.base_mb, 1))
    Path(a.out).write_text(json.dumps(result))
    return code


def _short(e: BaseException, n: int = 200) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


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
    t0 = time.monotonic()
    try:
        mod_name, fn_name = target.split(":")
        row = {"status": OK, **getattr(importlib.import_module(mod_name), fn_name)(probe, **kwargs),
               "threads": torch.get_num_threads()}
    except Exception as e:  # noqa: BLE001 - a failing case is a row, as in the isolated path
        row = {"status": OOM if is_oom_error(e) else ERROR, "note": f"{type(e).__name__}: {_short(e)}"}
        if row["status"] == ERROR:
            sys.stderr.write(f"[bench] {target} {kwargs} failed:\n{traceback.format_exc()}\n")
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    row.setdefault("peak_mem_mb", round(probe.peak_mb(), 1))
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


# --------------------------------------------------------------------------------------------- prediction
def predict_linear(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Least-squares line through (x, y) points evaluated at ``x``; one point -> proportional; none -> None."""
    if not points:
        return None
    if len(points) == 1:
        (x0, y0), = points
        return y0 * x / x0 if x0 else y0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return my
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return my + slope * (x - mx)


# --------------------------------------------------------------------------------------------- tables
def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


def write_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], stem: str | Path,
                title: str = "", notes: Sequence[str] = (),
                extra_sections: Sequence[tuple[str, str]] = ()) -> tuple[Path, Path]:
    """Write ``stem.csv`` (all columns, one row per case) and ``stem.md`` (title, notes, pipe table)."""
    from coprop.io import atomic_path, write_text

    stem = Path(stem)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({c: r.get(c, "") for c in columns})
    head = [f"# {title}"] if title else []
    head += [f"*{n}*" for n in notes]
    body = [markdown_table(rows, columns)] + [f"## {h}\n\n{text}" for h, text in extra_sections]
    write_text(md_path, "\n\n".join(head + body) + "\n")
    return csv_path, md_path


def output_target(args, prefix: str) -> tuple[str, str, Path, list[dict] | None]:
    """(device, device label, output stem, rows read back or None) for a run or a --from-csv re-render.

    Re-rendering keeps the CSV's own stem and device (a CPU label ends in 'cores)'; anything else is a GPU)."""
    if args.from_csv:
        rows = read_rows(args.from_csv)
        label = str(rows[0]["device"]) if rows else "unknown"
        device = "cpu" if label.endswith("cores)") else "cuda"
        return device, label, Path(args.from_csv).with_suffix(""), rows
    device = resolve_device(args.device)
    stem = Path(args.out_dir) / f"{prefix}_{device_slug(device)}{'_' + args.tag if args.tag else ''}"
    return device, device_name(device), stem, None


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a results CSV written by write_table, numbers parsed back (for --from-csv re-rendering)."""
    def parse(v: str) -> Any:
        if v == "":
            return None
        for cast in (int, float):
            try:
                return cast(v)
            except ValueError:
                pass
        return v

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


TARGET_COLUMNS = ["target", "measured", "met", "margin"]


def target_row(target: str, measured: float | None, threshold: float, unit: str = "",
               higher_is_better: bool = True, note: str = "") -> dict[str, Any]:
    """One line of a targets table. ``margin`` is measured/threshold - 1 (positive = better than the target)."""
    if measured is None:
        return {"target": target, "measured": "not measured", "met": "n/a", "margin": note or "case did not run"}
    met = measured >= threshold if higher_is_better else measured <= threshold
    margin = (measured / threshold - 1.0) if higher_is_better else (1.0 - measured / threshold)
    return {"target": target, "measured": f"{measured:.3g}{unit}", "met": "yes" if met else "no",
            "margin": f"{margin:+.0%}" + (f" ({note})" if note else "")}


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    if title:
        print(f"\n{title}")
    print(markdown_table(rows, columns), flush=True)


def common_args(ap: argparse.ArgumentParser, default_cap_mb: float = 6144.0) -> None:
    """Flags every benchmark shares."""
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (cuda when available)")
    ap.add_argument("--mem-cap-mb", type=float, default=None,
                    help=f"per-case memory cap; CPU default {default_cap_mb:.0f} MB (RSS), GPU default none "
                         "(a CUDA OOM is caught and recorded)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per case before it is killed")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in each case (0 = torch default)")
    ap.add_argument("--out-dir", default=str(REPO_ROOT / "reports" / "performance"),
                    help="where the CSV and Markdown tables go")
    ap.add_argument("--tag", default="", help="extra text in the output filenames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-csv", default="",
                    help="measure nothing: re-render the tables and targets of a results CSV written earlier")
    ap.add_argument("--no-isolate", action="store_true",
                    help="run every case in this process (smoke runs: no memory cap, peaks less clean)")


def default_cap(device: str, cap: float | None, default_cpu_mb: float = 6144.0) -> float | None:
    if cap is not None:
        return cap or None
    return None if device.startswith("cuda") else default_cpu_mb


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(_worker(sys.argv[2:]))
    print("usage: python -m benchmarks._harness worker --target mod:fn --out result.json ...", file=sys.stderr)
    sys.exit(2)
