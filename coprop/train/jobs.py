"""Training jobs in parallel worker processes, in dependency order.

On a 2-core CPU two single-threaded training processes use both cores (one process with two intra-op threads
does not: the tiny models' ops are too small to split). ``run_jobs`` keeps ``workers`` processes busy with the
jobs whose prerequisites are done. Workers are forked, so data the caller prepared before the call (decoded,
resized training clips) is shared with them copy-on-write instead of being prepared again in every process.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from coprop.errors import ConfigError


@dataclass
class Job:
    """``fn(**kwargs)`` once every job named in ``after`` has finished. ``fn`` must be a module-level function
    (it is pickled by name to the worker)."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()


def _order(jobs: list[Job]) -> list[Job]:
    names = {j.name for j in jobs}
    if len(names) != len(jobs):
        raise ConfigError("job names must be unique")
    missing = {a for j in jobs for a in j.after if a not in names}
    if missing:
        raise ConfigError(f"jobs wait for unknown job(s) {sorted(missing)}")
    done: set[str] = set()
    out: list[Job] = []
    while len(out) < len(jobs):
        ready = [j for j in jobs if j.name not in done and set(j.after) <= done]
        if not ready:
            raise ConfigError(f"jobs wait for each other in a circle: {sorted(names - done)}")
        out += ready
        done |= {j.name for j in ready}
    return out


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def _timed(fn: Callable, kwargs: dict) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process): CPU time does not grow when other work shares the
    cores, so it is what a quiet machine's wall time would be."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(**kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_jobs(jobs: list[Job], workers: int = 2, threads: int = 1,
             echo: Callable[[str], None] = print) -> dict[str, tuple[Any, float, float]]:
    """Run ``jobs``; returns {name: (result, wall seconds, CPU seconds)}. ``workers`` <= 1 runs them here, one
    after another.

    The first failing job stops the run: the jobs not started yet are cancelled, the running ones finish, and
    its exception is raised (naming the job)."""
    order = _order(jobs)        # validates; workers take ready jobs in the caller's order (its priorities)
    results: dict[str, tuple[Any, float, float]] = {}
    if workers <= 1:
        for j in order:
            echo(f"job {j.name} ...")
            results[j.name] = _timed(j.fn, j.kwargs)
            echo(f"job {j.name} done in {results[j.name][1]:.0f} s (CPU {results[j.name][2]:.0f} s)")
        return results
    # fork: workers inherit the caller's prepared data; spawn would re-import the caller's __main__
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    pending = list(jobs)
    running: dict[Future, Job] = {}
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        while pending or running:
            for j in [j for j in pending if set(j.after) <= set(results)][:max(0, workers - len(running))]:
                pending.remove(j)
                echo(f"job {j.name} ...")
                running[pool.submit(_timed, j.fn, j.kwargs)] = j
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                j = running.pop(fut)
                try:
                    results[j.name] = fut.result()
                except BaseException as e:
                    pending.clear()
                    raise RuntimeError(f"job {j.name} failed: {type(e).__name__}: {e}") from e
                echo(f"job {j.name} done in {results[j.name][1]:.0f} s (CPU {results[j.name][2]:.0f} s)")
    return results
