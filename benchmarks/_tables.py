"""Benchmark output: CSV + Markdown tables, rows read back for re-rendering, targets tables, and the
least-squares line that extrapolates a measured trend to a target size."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

RANDOM_WEIGHTS_NOTE = ("Random weights and random inputs: speed and memory do not depend on the weight values; "
                       "no accuracy is measured here.")


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
