"""``reports/index.csv``: one row per notebook run (appended under a lock, rewritten atomically), and the
``*.running`` markers that turn a run killed halfway into a 'killed' row at the next run."""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coprop import paths
from coprop.io import atomic_path


INDEX_COLUMNS = ["time", "notebook", "run", "status", "duration_s", "git_rev", "parameters", "metrics",
                 "error", "notebook_path", "output_dir"]

# which metrics.json entries make it into index.csv: scalars only, so the index stays one readable row per run
_HEADLINE_TYPES = (int, float, str, bool)


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
        # every row, old ones included, names paths relative to the repository root (rows written before
        # the runner did so still held the machine's absolute paths)
        root = str(paths.repo_root()).rstrip("/") + "/"
        rows = [{k: (v.replace(root, "") if isinstance(v, str) else v) for k, v in r.items()} for r in rows]
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
