"""Execute notebooks through papermill into ``reports/`` and keep one row per run in ``reports/index.csv``.

Layout of one run (notebook ``05_ablations``, run name ``demo``)::

    reports/05_ablations/demo.ipynb      executed notebook (outputs kept)
    reports/05_ablations/demo/           its artefacts: metrics.json, *.csv, *.md, *.png
    reports/05_ablations/demo.running    present only while the run is in flight (a crash leaves it behind)

Parameter files (``configs/*.yaml``) hold a ``defaults:`` mapping applied to every notebook that declares those
parameters, plus one mapping per notebook (keyed by its file stem, e.g. ``05_ablations:``). Every name is checked
against the notebooks' parameters cells (``papermill.inspect_notebook``) before anything runs, so a typo in a
config fails in a second instead of after an hour on a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from coprop import paths
from coprop.errors import ConfigError, CopropError
from coprop.io import atomic_path, write_json

INDEX_COLUMNS = ["time", "notebook", "run", "status", "duration_s", "git_rev", "parameters", "metrics",
                 "error", "notebook_path", "output_dir"]

# which metrics.json entries make it into index.csv: scalars only, so the index stays one readable row per run
_HEADLINE_TYPES = (int, float, str, bool)


class NotebookFailed(CopropError):
    """One or more notebooks raised; the message names each failing cell."""


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


# ----------------------------------------------------------------------------------------------- discovery

def notebooks_dir() -> Path:
    return Path(os.environ.get("COPROP_NOTEBOOKS", paths.repo_root() / "notebooks"))


def list_notebooks(directory: str | Path | None = None) -> list[Path]:
    """Every executable notebook (``NN_name.ipynb``) in the notebooks folder, in order."""
    directory = Path(directory) if directory else notebooks_dir()
    return sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith((".", "_")))


def select(notebooks: list[Path], only: Iterable[str] | None) -> list[Path]:
    """``only`` entries match a stem exactly or by prefix ('05' selects 05_ablations)."""
    if not only:
        return notebooks
    chosen = []
    for name in only:
        hits = [p for p in notebooks if p.stem == name] or [p for p in notebooks if p.stem.startswith(name)]
        if not hits:
            raise ConfigError(f"--only {name!r} matches no notebook; available: {[p.stem for p in notebooks]}")
        chosen += [p for p in hits if p not in chosen]
    return [p for p in notebooks if p in chosen]


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a parameter file into ``{'defaults': {...}, '<notebook stem>': {...}}``."""
    if path is None:
        return {"defaults": {}}
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameter file not found (see configs/ for smoke.yaml, demo.yaml, paper.yaml)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) or v is None for v in raw.values()):
        raise ConfigError(f"{path}: expected 'defaults:' and one mapping per notebook at the top level")
    cfg = {str(k): dict(v or {}) for k, v in raw.items()}
    cfg.setdefault("defaults", {})
    return cfg


# ----------------------------------------------------------------------------------------------- parameters

def _declared(nb: Path) -> dict[str, dict[str, Any]]:
    """Parameters of a notebook: papermill's inspection (types, defaults, help) plus every name the
    parameters cell assigns. papermill skips a line holding more than one '=' (e.g. '= ' inside the comment),
    so names are also read with ``ast``; such a parameter is still known, just without type or help."""
    import ast

    import nbformat
    import papermill

    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # its "Unable to parse line" warnings are handled below
    try:
        found = dict(papermill.inspect_notebook(str(nb)))
    finally:
        quiet.setLevel(level)
    cell = next((c for c in nbformat.read(str(nb), as_version=4).cells
                 if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is not None:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            tree = None
        for node in (tree.body if tree else []):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else \
                node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in found:
                    found[t.id] = {"name": t.id, "inferred_type_name": "None", "default": "", "help": ""}
    return found


_TYPE_CHECKS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def resolve_parameters(notebooks: list[Path], config: dict[str, dict[str, Any]], all_notebooks: list[Path],
                       overrides: dict[str, Any] | None = None) -> dict[Path, dict[str, Any]]:
    """Merge defaults, the notebook's section and command-line overrides; reject every unknown name up front.

    A name under ``defaults`` (or given with ``-p``) only has to be declared by some notebook in the folder: it
    is passed to the notebooks that declare it. A name under a notebook's own section must be declared by it.
    """
    declared = {nb: _declared(nb) for nb in all_notebooks}
    stems = {nb.stem: nb for nb in all_notebooks}
    problems = []
    for section in config:
        if section != "defaults" and section not in stems:
            problems.append(f"section {section!r} names no notebook (have {sorted(stems)})")
    shared = dict(config.get("defaults", {}))
    shared.update(overrides or {})
    everyone = set().union(*(d.keys() for d in declared.values())) if declared else set()
    for name in shared:
        if name not in everyone:
            problems.append(f"parameter {name!r} is declared by no notebook")
    resolved: dict[Path, dict[str, Any]] = {}
    for nb in notebooks:
        params = {k: v for k, v in shared.items() if k in declared[nb]}
        for k, v in config.get(nb.stem, {}).items():
            if k not in declared[nb]:
                problems.append(f"{nb.stem}: unknown parameter {k!r} (declared: {sorted(declared[nb])})")
            params[k] = v
        for k, v in (overrides or {}).items():
            if k in declared[nb]:
                params[k] = v
        for k, v in params.items():
            want = (declared[nb].get(k) or {}).get("inferred_type_name", "None")
            ok = _TYPE_CHECKS.get(want)
            if ok and not (isinstance(v, ok) and not (want != "bool" and isinstance(v, bool))):
                problems.append(f"{nb.stem}: parameter {k!r} expects {want}, got {type(v).__name__} {v!r}")
        resolved[nb] = params
    if problems:
        raise ConfigError("rejected before running anything: " + "; ".join(problems))
    return resolved


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``-p key=value`` pairs; values are read as YAML scalars (``-p seed=1`` is an int)."""
    import yaml

    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"-p {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v != "" else ""
    return out


# ----------------------------------------------------------------------------------------------- index.csv

def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.repo_root(), capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside ``path`` so concurrent runners never lose each other's rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_index(reports: Path, row: dict[str, Any]) -> Path:
    """Add one row to ``reports/index.csv``: locked read, then atomic rewrite (a crash keeps the old file)."""
    index = reports / "index.csv"
    with _locked(index):
        rows = read_index(reports)
        rows.append({c: row.get(c, "") for c in INDEX_COLUMNS})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        with atomic_path(index) as tmp:
            tmp.write_text(buf.getvalue())
    return index


def read_index(reports: str | Path | None = None) -> list[dict[str, str]]:
    index = Path(reports or paths.reports_dir()) / "index.csv"
    if not index.exists():
        return []
    with open(index, newline="") as fh:
        return list(csv.DictReader(fh))


def headline_metrics(output_dir: Path) -> dict[str, Any]:
    path = output_dir / "metrics.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {"metrics_json": "unreadable"}
    return {k: v for k, v in data.items() if isinstance(v, _HEADLINE_TYPES)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------- markers

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_killed(reports: Path) -> list[dict[str, Any]]:
    """Turn every ``*.running`` marker whose runner is gone into a 'killed' row in index.csv."""
    reaped = []
    for marker in sorted(reports.glob("*/*.running")):
        try:
            info = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
        if info.get("pid") and info.get("host") == os.uname().nodename and _pid_alive(int(info["pid"])):
            continue  # another runner is still working on it
        started = info.get("started_unix")
        row = {
            "time": info.get("time", _now()), "notebook": marker.parent.name, "run": marker.stem, "status": "killed",
            "duration_s": round(time.time() - started, 1) if started else "",
            "git_rev": info.get("git_rev", ""), "parameters": json.dumps(info.get("parameters", {}), sort_keys=True),
            "metrics": json.dumps(headline_metrics(Path(info.get("output_dir", marker.with_suffix(""))))),
            "error": "runner stopped before the notebook finished (killed or machine went down)",
            "notebook_path": info.get("notebook_path", ""), "output_dir": info.get("output_dir", ""),
        }
        append_index(reports, row)
        marker.unlink(missing_ok=True)
        reaped.append(row)
    return reaped


# ----------------------------------------------------------------------------------------------- execution

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
                 progress_bar: bool | None = None) -> RunResult:
    import papermill

    out_nb = reports / nb.stem / f"{run}.ipynb"
    out_dir = reports / nb.stem / run
    params = dict(parameters)
    if "output_dir" in _declared(nb):
        params["output_dir"] = str(out_dir)
    if "headless" in _declared(nb):
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
        pm_log.setLevel(pm_level)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    duration = time.time() - started
    metrics = headline_metrics(out_dir)
    append_index(reports, {
        "time": _now(), "notebook": nb.stem, "run": run, "status": status, "duration_s": round(duration, 1),
        "git_rev": git_rev, "parameters": json.dumps(params, sort_keys=True, default=str),
        "metrics": json.dumps(metrics, sort_keys=True), "error": error, "notebook_path": str(out_nb),
        "output_dir": str(out_dir)})
    marker.unlink(missing_ok=True)
    return RunResult(nb.stem, status, duration, out_nb, out_dir, params, metrics, error)


def run_notebooks(config: str | Path | None = None, only: Iterable[str] | None = None, run: str | None = None,
                  overrides: dict[str, Any] | None = None, notebooks: str | Path | None = None,
                  reports: str | Path | None = None, progress_bar: bool | None = None,
                  echo=print) -> list[RunResult]:
    """Run the selected notebooks in order; returns one RunResult each (failures included, never raised)."""
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
    results = []
    for i, nb in enumerate(chosen, 1):
        echo(f"[{i}/{len(chosen)}] {nb.stem} (run {run!r}) ...")
        res = run_notebook(nb, params[nb], run, reports, rev, progress_bar=progress_bar)
        line = f"[{i}/{len(chosen)}] {nb.stem}: {res.status} in {res.duration_s:.0f} s -> {res.output_notebook}"
        echo(line if res.status == "ok" else f"{line}\n    failed at {res.error}")
        results.append(res)
    return results


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="coprop run-notebooks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", "-f", help="parameter file (configs/smoke.yaml, demo.yaml, paper.yaml)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="notebooks to run, by stem or prefix ('05' or '05_ablations'); commas also split")
    ap.add_argument("--run", help="run name: reports/<notebook>/<run>.ipynb (default: the config's stem)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter for every notebook that declares it (YAML value)")
    ap.add_argument("--notebooks-dir", help="folder of notebooks (default: notebooks/)")
    ap.add_argument("--reports-dir", help="where reports go (default: reports/)")
    ap.add_argument("--list", action="store_true", help="list notebooks and their parameters, run nothing")
    args = ap.parse_args(argv)
    only = [n for item in (args.only or []) for n in item.split(",") if n]
    if args.list:
        for nb in select(list_notebooks(args.notebooks_dir), only):
            print(nb.stem)
            for name, info in _declared(nb).items():
                print(f"    {name}: {info['inferred_type_name']} = {info['default']}  {info['help']}")
        return 0
    results = run_notebooks(args.config, only, args.run, parse_overrides(args.param), args.notebooks_dir,
                            args.reports_dir)
    failed = [r for r in results if r.status != "ok"]
    reports = Path(args.reports_dir) if args.reports_dir else paths.reports_dir()
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ok; reports in {reports}/ "
          f"(index: {reports / 'index.csv'})")
    for r in failed:
        print(f"FAILED {r.notebook}: {r.error}", file=sys.stderr)
    return 1 if failed else 0
