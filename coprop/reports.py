"""What a notebook run leaves behind: tables (CSV + Markdown), figures (PNG) and metrics.json in one folder.

Every artefact written on synthetic data carries the label SYNTHETIC_NOTE so it can't be mistaken for AVSBench.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coprop.io import atomic_path, write_json, write_text

SYNTHETIC_NOTE = "Data: coprop synthetic source-conversion benchmark (synthetic, not AVSBench)."


class RunOutput:
    """One output folder. ``synthetic`` marks every table and metrics file as measured on synthetic data."""

    def __init__(self, output_dir: str | Path, synthetic: bool = True):
        # Relative paths are taken from the repository root, not the cwd: nbval starts kernels in notebooks/,
        # papermill in the repo root, and both must write to the same reports/ folder.
        from coprop.paths import repo_root

        out = Path(output_dir).expanduser()
        self.dir = out if out.is_absolute() else repo_root() / out
        self.dir.mkdir(parents=True, exist_ok=True)
        self.synthetic = synthetic

    @property
    def data_note(self) -> str:
        return SYNTHETIC_NOTE if self.synthetic else "Data: AVSBench."

    def table(self, df, name: str, caption: str = "", digits: int = 4) -> Path:
        """Write ``name.csv`` and ``name.md`` (caption and data label above the table; floats in the Markdown
        rounded to ``digits`` decimals, the CSV keeps full precision)."""
        with atomic_path(self.dir / f"{name}.csv") as tmp:
            df.to_csv(tmp, index=False)
        head = "\n\n".join(x for x in (caption, f"*{self.data_note}*") if x)
        write_text(self.dir / f"{name}.md", f"{head}\n\n{_markdown(df, digits)}\n")
        return self.dir / f"{name}.csv"

    def figure(self, fig, name: str, dpi: int = 110) -> Path:
        path = self.dir / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        return path

    def metrics(self, **values: Any) -> Path:
        """Merge ``values`` into metrics.json (so several cells can each add their numbers)."""
        path = self.dir / "metrics.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(values)
        current["data"] = "synthetic" if self.synthetic else "avsbench"
        return write_json(path, current)


def _markdown(df, digits: int = 4) -> str:
    """A pipe table without the optional tabulate dependency."""
    cols = [str(c) for c in df.columns]
    rows = [[_fmt(v, digits) for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""   # missing (NaN / None) cells stay empty rather than printing 'nan'
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)
