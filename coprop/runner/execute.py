"""Execute notebooks through papermill: one output notebook and artefact folder per run, a row in
``reports/index.csv`` for every outcome (failures name the failing cell and are never raised)."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from coprop import paths
from coprop.errors import ConfigError
from coprop.io import atomic_path, write_json
from coprop.runner.index import _now, append_index, git_revision, headline_metrics, read_index, reap_killed
from coprop.runner.notebooks import declared_parameters, list_notebooks, load_config, notebooks_dir, select
from coprop.runner.parameters import resolve_parameters


@dataclass
class RunResult:
    notebook: str
    status: str                     # 'ok' | 'failed' | 'killed'
    duration_s: float
    output_notebook: Path
    output_dir: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    row: dict[str, Any] = field(default_factory=dict)   # its index.csv row
    cpu_s: float = 0.0              # CPU seconds of its kernel (and papermill's own work), user + system


def describe_failure(exc: BaseException) -> str:
    """One line naming the failing cell (index, first line of its source) and the exception."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        return (f"cell {exc.cell_index} (In [{exc.exec_count}]) `{first.strip()[:100]}`: "
                f"{exc.ename}: {str(exc.evalue).splitlines()[0] if exc.evalue else ''}")
    name = type(exc).__name__
    if name == "DeadKernelError":
        return "the kernel died (probably out of memory: lower the sizes in the parameter file)"
    return f"{name}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def run_notebook(nb: Path, parameters: dict[str, Any], run: str, reports: Path, git_rev: str,
                 progress_bar: bool | None = None, record: bool = True) -> RunResult:
    """Execute one notebook. ``record=False`` (parallel workers) leaves the index.csv row (``RunResult.row``)
    and the removal of the ``.running`` marker to the caller, which records rows in notebook order."""
    import papermill

    # '<notebook>-<run>.ipynb', not '<run>.ipynb': two reports open in JupyterLab get tabs that can be told apart
    out_nb = reports / nb.stem / f"{nb.stem}-{run}.ipynb"
    out_dir = reports / nb.stem / run
    params = dict(parameters)
    if "output_dir" in declared_parameters(nb):
        params["output_dir"] = paths.display_path(out_dir)   # relative to the repo root when inside it
    if "headless" in declared_parameters(nb):
        params.setdefault("headless", True)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = out_dir / "metrics.json"
    if stale.exists():
        stale.unlink()  # a re-run must not report the previous run's numbers
    marker = reports / nb.stem / f"{run}.running"
    started = time.time()
    write_json(marker, {"pid": os.getpid(), "host": os.uname().nodename, "time": _now(), "started_unix": started,
                        "parameters": params, "git_rev": git_rev, "notebook_path": str(out_nb),
                        "output_dir": str(out_dir)})
    status, error = "ok", ""
    cpu0 = _cpu_seconds()
    # the kernel inherits this: plain-text progress, static figures instead of widgets. (MPLBACKEND stays unset:
    # the kernel's inline backend is already headless and is what puts figures into the executed notebook.)
    env_before = {k: os.environ.get(k) for k in ("COPROP_HEADLESS",)}
    os.environ["COPROP_HEADLESS"] = "1"
    pm_log = logging.getLogger("papermill")
    pm_level = pm_log.level
    pm_log.setLevel(logging.ERROR)   # names were checked above; its 'unknown parameter' warnings would be false
    try:
        papermill.execute_notebook(
            str(nb), str(out_nb), parameters=params, kernel_name="python3", cwd=str(paths.repo_root()),
            progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar, log_output=False)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row in index.csv and a named cell
        status, error = "failed", describe_failure(exc)
    finally:
        _tidy_report(out_nb, nb)
        pm_log.setLevel(pm_level)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    duration = time.time() - started
    cpu = _cpu_seconds() - cpu0
    metrics = headline_metrics(out_dir)
    row = {"time": _now(), "notebook": nb.stem, "run": run, "status": status, "duration_s": round(duration, 1),
           "git_rev": git_rev, "parameters": json.dumps(params, sort_keys=True, default=str),
           "metrics": json.dumps(metrics, sort_keys=True), "error": error,
           "notebook_path": paths.display_path(out_nb), "output_dir": paths.display_path(out_dir)}
    if record:
        append_index(reports, row)
        marker.unlink(missing_ok=True)
    return RunResult(nb.stem, status, duration, out_nb, out_dir, params, metrics, error, row, cpu)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the notebook's kernel is one
    once papermill has shut it down)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _tidy_report(out_nb: Path, nb: Path, kernel_name: str = "python3") -> None:
    """Make the executed notebook open cleanly in JupyterLab and name no machine:

    * papermill records the input and output paths as given (absolute here): rewrite them relative to the repo;
    * the kernelspec gets the installed kernel's display name (ipykernel: 'Python 3 (ipykernel)'): JupyterLab
      rewrites a differing one when the kernel starts, which marks a just-opened report as changed;
    * jupytext pairing metadata is dropped: a report is never paired (saving it must not write a .py)."""
    import nbformat

    if not out_nb.exists():
        return
    book = nbformat.read(str(out_nb), as_version=4)
    pm = book.metadata.get("papermill")
    if pm:
        pm["input_path"], pm["output_path"] = paths.display_path(nb), paths.display_path(out_nb)
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(kernel_name)
        book.metadata["kernelspec"] = {"display_name": spec.display_name, "language": spec.language,
                                       "name": kernel_name}
    except Exception:  # noqa: BLE001 - no such kernelspec: keep what the notebook says
        pass
    book.metadata.pop("jupytext", None)
    with atomic_path(out_nb) as tmp:
        nbformat.write(book, str(tmp))


def run_notebooks(config: str | Path | None = None, only: Iterable[str] | None = None, run: str | None = None,
                  overrides: dict[str, Any] | None = None, notebooks: str | Path | None = None,
                  reports: str | Path | None = None, progress_bar: bool | None = None,
                  echo=print, workers: int = 1, chains: list[list[str]] | None = None) -> list[RunResult]:
    """Run the selected notebooks; returns one RunResult each, in notebook order (failures included, never
    raised). ``workers`` > 1 runs that many notebooks side by side; ``chains`` (stems) are notebooks that must run
    one after another, in notebook order (default: those sharing a ``run_dir`` value, see ``run_chains``)."""
    all_nbs = list_notebooks(notebooks)
    if not all_nbs:
        raise ConfigError(f"no notebooks found in {Path(notebooks) if notebooks else notebooks_dir()}")
    chosen = select(all_nbs, only)
    cfg = load_config(config)
    params = resolve_parameters(chosen, cfg, all_nbs, overrides)
    run = run or (Path(config).stem if config else "default")
    reports = Path(reports) if reports else paths.reports_dir()
    reports.mkdir(parents=True, exist_ok=True)
    for row in reap_killed(reports):
        echo(f"note: {row['notebook']}/{row['run']} was killed in an earlier run; recorded as 'killed' in index.csv")
    rev = git_revision()
    if workers > 1 and len(chosen) > 1:
        return _run_parallel(chosen, params, run, reports, rev, workers, progress_bar, echo,
                             run_chains(chosen, params, chains))
    results = []
    for i, nb in enumerate(chosen, 1):
        echo(f"[{i}/{len(chosen)}] {nb.stem} (run {run!r}) ...")
        res = run_notebook(nb, params[nb], run, reports, rev, progress_bar=progress_bar)
        echo(done_line(res, i, len(chosen)))
        results.append(res)
    return results


def done_line(res: RunResult, i: int, n: int) -> str:
    line = f"[{i}/{n}] {res.notebook}: {res.status} in {res.duration_s:.0f} s -> {res.output_notebook}"
    return line if res.status == "ok" else f"{line}\n    failed at {res.error}"


# ------------------------------------------------------------------------------------------------ parallel

KERNEL_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _single_threaded_kernels() -> None:
    """Worker initializer: kernels started from this process use one BLAS/OpenMP/torch thread each, so
    ``workers`` notebooks share ``workers`` cores instead of each spawning a thread per core and fighting."""
    for k in KERNEL_THREADS:
        os.environ[k] = "1"


def expected_seconds(reports: Path, nb: Path, run: str) -> float:
    """How long ``nb`` took the last time it ran ok (index.csv; the same run name preferred), 0 if never."""
    rows = [r for r in read_index(reports) if r.get("notebook") == nb.stem and r.get("status") == "ok"]
    same = [r for r in rows if r.get("run") == run] or rows
    try:
        return float(same[-1]["duration_s"]) if same else 0.0
    except (KeyError, ValueError):
        return 0.0


def longest_first(notebooks: list[Path], reports: Path, run: str) -> list[Path]:
    """Start order for parallel runs: longest previous duration first (a long notebook started last would
    run alone at the end); notebooks never run keep their order, after timed ones of equal estimate."""
    est = {nb: expected_seconds(reports, nb, run) for nb in notebooks}
    return sorted(notebooks, key=lambda nb: -est[nb])   # stable: ties keep notebook order


def run_chains(chosen: list[Path], params: dict[Path, dict[str, Any]],
               chains: list[list[str]] | None = None) -> list[list[Path]]:
    """The notebooks grouped into chains that run one after another (notebook order inside a chain); every
    other notebook is a chain of one. Default: notebooks declaring the same ``run_dir`` value (empty included:
    they fall back to the same default folder) form a chain -- they may train into that folder, and a notebook
    may start from another's model (04's propagator from 03's keyframe model), so running them side by side
    would race. A caller that knows the folder is complete (coprop demo trains runs/demo first) names the
    chains itself; stems not selected are ignored."""
    from coprop.runner.notebooks import declared_parameters

    if chains is None:
        groups: dict[str, list[Path]] = {}
        for nb in chosen:
            key = str(params[nb]["run_dir"]) if "run_dir" in params[nb] else \
                "" if "run_dir" in declared_parameters(nb) else f"own:{nb.stem}"
            groups.setdefault(key, []).append(nb)
        return list(groups.values())
    by_stem = {nb.stem: nb for nb in chosen}
    out, used = [], set()
    for chain in chains:
        members = [by_stem[s] for s in chain if s in by_stem and s not in used]
        used |= {nb.stem for nb in members}
        if members:
            out.append(sorted(members, key=chosen.index))
    return out + [[nb] for nb in chosen if nb.stem not in used]


def _run_parallel(chosen: list[Path], params: dict[Path, dict[str, Any]], run: str, reports: Path, rev: str,
                  workers: int, progress_bar: bool | None, echo, chains: list[list[Path]]) -> list[RunResult]:
    """``workers`` notebooks at a time, each in its own process (papermill and the kernel's environment are
    per process); chains (``run_chains``) run in order, the longest chain (previous durations) starts first.
    Rows go into index.csv in notebook order, whatever order the runs finish in, so two runs of the same
    notebooks give the same index layout; a finished notebook's ``.running`` marker is removed only once its row
    is written (a runner killed in between leaves the marker, and the next run records it as 'killed')."""
    import collections
    import concurrent.futures as cf
    import multiprocessing as mp

    n = len(chosen)
    pos = {nb: i for i, nb in enumerate(chosen)}
    est = {nb: expected_seconds(reports, nb, run) for nb in chosen}
    queue = collections.deque(collections.deque(ch) for ch in sorted(chains, key=lambda ch: -sum(est[nb] for nb in ch)))
    results: dict[int, RunResult] = {}
    written = 0
    quiet = False if progress_bar is None else progress_bar   # two bars on one terminal would interleave
    echo(f"{n} notebooks, {workers} at a time (run {run!r}), longest first: "
         + "; ".join(" -> ".join(nb.stem for nb in ch) for ch in queue))
    # fork: a worker starts in milliseconds and needs no `if __name__ == "__main__"` guard in the caller's
    # script (spawn re-imports it); the workers only run papermill, never the parent's torch or its threads
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                                initializer=_single_threaded_kernels) as pool:
        running: dict[cf.Future, tuple[Path, collections.deque]] = {}

        def start(chain: collections.deque) -> None:
            nb = chain.popleft()
            running[pool.submit(run_notebook, nb, params[nb], run, reports, rev, quiet, False)] = (nb, chain)

        while queue and len(running) < workers:
            start(queue.popleft())
        while running:
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                nb, chain = running.pop(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # noqa: BLE001 - the worker process itself died: still one named row
                    res = _worker_failure(nb, run, reports, rev, params[nb], exc)
                results[pos[nb]] = res
                echo(done_line(res, pos[nb] + 1, n))
                if chain:
                    start(chain)          # the chain's next notebook takes the freed slot
                elif queue:
                    start(queue.popleft())
            while written in results:   # index rows in notebook order
                res = results[written]
                append_index(reports, res.row)
                (reports / res.notebook / f"{run}.running").unlink(missing_ok=True)
                written += 1
    return [results[i] for i in range(n)]


def _worker_failure(nb: Path, run: str, reports: Path, rev: str, params: dict[str, Any],
                    exc: BaseException) -> RunResult:
    out_nb, out_dir = reports / nb.stem / f"{nb.stem}-{run}.ipynb", reports / nb.stem / run
    error = f"the runner's worker process failed: {describe_failure(exc)}"
    row = {"time": _now(), "notebook": nb.stem, "run": run, "status": "failed", "duration_s": "",
           "git_rev": rev, "parameters": json.dumps(params, sort_keys=True, default=str), "metrics": "{}",
           "error": error, "notebook_path": paths.display_path(out_nb), "output_dir": paths.display_path(out_dir)}
    return RunResult(nb.stem, "failed", 0.0, out_nb, out_dir, params, {}, error, row)
