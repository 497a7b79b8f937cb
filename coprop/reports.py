"""What a notebook run leaves behind: tables (CSV + Markdown), figures (PNG) and metrics.json in one folder.

Every artefact written on synthetic data carries the label coprop.data.provenance.SYNTHETIC_NOTE so it can't be
mistaken for AVSBench.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coprop.data.provenance import data_note  # the data layer owns the provenance labels
from coprop.io import atomic_path, write_json, write_text


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
        return data_note(self.synthetic)

    def table(self, df, name: str, caption: str = "", digits: int | None = None, columns=None, **fmt):
        """Write ``name.csv`` (every column, every number at full precision) and ``name.md`` (the reader's table:
        caption, data note, formatted cells, footnotes; see ``coprop.report_tables.format_table``, which gets
        ``digits`` and ``fmt``; ``columns`` limits the reader's table to those columns, with their ``_lo``/``_hi``
        and ``std`` companions). Returns the ReaderTable, so a cell ending with this call shows the table."""
        from coprop.report_tables import format_table

        with atomic_path(self.dir / f"{name}.csv") as tmp:
            df.to_csv(tmp, index=False)
        if columns is not None:
            keep = [c for c in df.columns if c in columns or any(
                str(c) in (f"{k}_lo", f"{k}_hi", f"{k} std") for k in columns)]
            df = df[keep]
        shown = format_table(df, relative_paths(caption), data_note=self.data_note, digits=digits, **fmt)
        write_text(self.dir / f"{name}.md", shown.to_markdown())
        return shown

    def figure(self, fig, name: str, dpi: int = 110, show: bool = True) -> None:
        """Write ``name.png`` and, inside a notebook, show that PNG once as the cell's output (``show``); the
        figure is closed so the inline backend does not show it a second time. Returns None on purpose: a path
        as a cell's last value would print a bare ``PosixPath(...)`` line above the figure."""
        import io

        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, bbox_inches="tight", format="png")
        with atomic_path(self.dir / f"{name}.png") as tmp:
            tmp.write_bytes(buf.getvalue())
        _close(fig)
        if show:
            _show_png(buf.getvalue())

    def metrics(self, **values: Any) -> None:
        """Merge ``values`` into metrics.json (so several cells can each add their numbers); paths inside the
        repository are written relative to its root. Returns None (no bare path as a cell's last value)."""
        path = self.dir / "metrics.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(relative_paths(values))
        current["data"] = "synthetic" if self.synthetic else "avsbench"
        write_json(path, current)


def relative_paths(obj):
    """``obj`` with every path inside the repository written relative to its root (strings, Paths, and the
    values of lists and dicts), so nothing written into reports/ names the machine it ran on."""
    from coprop.paths import display_path, repo_root

    if isinstance(obj, Path):
        return display_path(obj)
    if isinstance(obj, str):
        root = str(repo_root()).rstrip("/") + "/"
        return obj.replace(root, "")
    if isinstance(obj, dict):
        return {k: relative_paths(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(relative_paths(v) for v in obj)
    return obj


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _show_png(data: bytes) -> None:
    """Display PNG bytes when running inside IPython (a notebook kernel); do nothing in plain Python."""
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython
    from IPython.display import Image, display

    if get_ipython() is not None:
        display(Image(data=data, format="png"))
