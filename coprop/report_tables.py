"""Tables for readers: numbers a person can read, in the notebook and in the saved Markdown.

``format_table(df, caption)`` turns a results DataFrame (full-precision numbers, one column per quantity) into a
:class:`ReaderTable`:

* a mean with its interval, from columns ``X``, ``X_lo``, ``X_hi``, becomes one cell ``44.5 [42.1, 46.9]``;
  a mean with a spread column ``X std`` (or ``base std`` beside ``base %``) becomes ``44.5 ± 2.6``;
* percentages (a ``%`` or a metric name J, F, AR, mIoU as a word in the column name, or listed in ``percent=``)
  get one decimal, other numbers three
  significant digits, and columns holding only whole numbers are written as integers (``120``, not ``120.0``);
* a missing value (NaN, None, empty string) is a dash ``—`` with a footnote saying why (``missing=`` or
  ``missing_by_column=``); a column with no value at all is left out and the footnote names it;
* a text column with the same value in every row (the data description, the seeds) is said once in the caption
  instead of in every row (``shared=`` forces columns there);
* a table wider than ``max_width`` characters is split into parts that each repeat the key column(s).

A ReaderTable shows itself as HTML with its caption and footnotes in JupyterLab (``_repr_html_``) and as
Markdown in text outputs; ``to_markdown()`` is what ``RunOutput.table`` writes into the ``.md`` file. The CSV
beside it keeps every number at full precision.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

DASH = "—"
DEFAULT_MISSING = "no value: not measured in this run, or no counterpart in the paper"
INTERVAL_NOTE = "a [b, c]: mean a with its 95 % interval [b, c]"
STD_NOTE = "a ± s: mean a and standard deviation s over training seeds"


@dataclass
class ReaderTable:
    """A formatted table: ``parts`` (string cells; more than one when split for width), caption, footnotes."""

    parts: list[pd.DataFrame]
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    data_note: str = ""

    def to_markdown(self) -> str:
        """Caption, data note, each part as a pipe table (parts after the first labelled as continued), notes."""
        out = [x for x in (self.caption, f"*{self.data_note}*" if self.data_note else "") if x]
        for i, part in enumerate(self.parts):
            if i:
                out.append(f"*(continued, part {i + 1} of {len(self.parts)})*")
            out.append(_pipe_table(part))
        if self.notes:
            out.append("\n".join(f"- {n}" for n in self.notes))
        return "\n\n".join(out) + "\n"

    def _repr_html_(self) -> str:
        blocks = []
        if self.caption or self.data_note:
            cap = html.escape(self.caption)
            if self.data_note:
                cap += (" " if cap else "") + f"<i>{html.escape(self.data_note)}</i>"
            blocks.append(f'<p style="max-width:60em;margin:0 0 .4em 0">{cap}</p>')
        for i, part in enumerate(self.parts):
            if i:
                blocks.append(f"<p style='margin:.6em 0 .2em 0'><i>continued, part {i + 1} of "
                              f"{len(self.parts)}</i></p>")
            blocks.append(_html_table(part))
        if self.notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
            blocks.append(f'<ul style="font-size:90%;margin:.4em 0 0 0;padding-left:1.2em">{items}</ul>')
        return "<div>" + "\n".join(blocks) + "</div>"

    def __repr__(self) -> str:   # text/plain: papermill logs and terminals
        return self.to_markdown()

    @property
    def frame(self) -> pd.DataFrame:
        """All parts side by side again (string cells), e.g. for tests."""
        if len(self.parts) == 1:
            return self.parts[0]
        keys = [c for c in self.parts[0].columns if all(c in p.columns for p in self.parts)]
        merged = self.parts[0]
        for p in self.parts[1:]:
            merged = pd.concat([merged, p.drop(columns=keys)], axis=1)
        return merged


def format_table(df: pd.DataFrame, caption: str = "", *, data_note: str = "", shared: Iterable[str] = (),
                 key: Sequence[str] | None = None, percent: Iterable[str] = (),
                 digits: int | Mapping[str, int] | None = None, missing: str = DEFAULT_MISSING,
                 missing_by_column: Mapping[str, str] | None = None, interval_note: str = INTERVAL_NOTE,
                 std_note: str = STD_NOTE, max_width: int = 130, move_constant: bool = True) -> ReaderTable:
    """Format ``df`` for readers (see the module docstring for the rules).

    Args:
        df: one row per method / setting; numbers at full precision. Not modified.
        caption: what the table shows (the data description is appended from ``shared`` columns).
        data_note: one line naming the data (``RunOutput.data_note``), shown under the caption.
        shared: columns to state once in the caption even if they differ per row (then as ``a / b``).
        key: columns repeated in every part of a split table (default: the first column).
        percent: more columns to treat as percentages (one decimal) besides those with ``%`` in the name.
        digits: decimals for every non-integer number column, or per column; default: automatic.
        missing / missing_by_column: why a cell is empty, for the footnote (per column where the reason differs).
        max_width: characters per part (about what fits in a JupyterLab output area 1000 px wide, ~7 px a
            character).
        move_constant: move text columns with one value in every row into the caption (tables of 2+ rows).

    Returns:
        ReaderTable. Raises ValueError when ``key`` names a column that is not in ``df``.
    """
    src = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df.copy()
    src.columns = [str(c) for c in src.columns]
    percent = {str(c) for c in percent}
    missing_by_column = dict(missing_by_column or {})
    notes: list[str] = []
    cells: dict[str, list[str]] = {}
    consumed: set[str] = set()
    used_interval = used_std = False
    for col in src.columns:
        if col in consumed:
            continue
        lo, hi = f"{col}_lo", f"{col}_hi"
        std = _std_column(src.columns, col)
        if lo in src.columns and hi in src.columns and _numeric(src[col]):
            d = _decimals(src[[col, lo, hi]].to_numpy().ravel(), col, percent, digits)
            cells[col] = [_interval(v, a, b, d) for v, a, b in zip(src[col], src[lo], src[hi])]
            consumed |= {lo, hi}
            used_interval |= any(_finite(a) for a in src[lo])
        elif std is not None and _numeric(src[col]):
            d = _decimals(src[col].to_numpy(), col, percent, digits)
            cells[col] = [_pm(v, s, d) for v, s in zip(src[col], src[std])]
            consumed.add(std)
            used_std |= any(_finite(s) for s in src[std])
        else:
            cells[col] = _format_column(src[col], col, percent, digits)
    out = pd.DataFrame(cells, columns=list(cells))
    # columns with no value at all: left out, and said so
    empty = [c for c in out.columns if (out[c] == DASH).all() and len(out)]
    if empty:
        notes.append("left out (no value in any row): " + ", ".join(empty))
        out = out.drop(columns=empty)
    # the same text in every row: once in the caption
    shared = [c for c in shared if c in out.columns]
    if move_constant and len(out) > 1:
        shared += [c for c in out.columns if c not in shared and not _numeric(src[c])
                   and out[c].nunique() == 1 and out[c].iloc[0] != DASH and c != out.columns[0]]
    said = [f"{c}: {' / '.join(dict.fromkeys(out[c]))}" for c in shared]
    out = out.drop(columns=shared)
    full_caption = caption.rstrip()
    if said:
        full_caption = (full_caption + (" " if full_caption else "") + "; ".join(said) + ".").strip()
    if used_interval:
        notes.append(interval_note)
    if used_std:
        notes.append(std_note)
    dashed = [c for c in out.columns if (out[c] == DASH).any()]
    generic = [c for c in dashed if c not in missing_by_column]
    if generic:
        notes.append(f"{DASH} {missing}")
    notes += [f"{DASH} in '{c}': {missing_by_column[c]}" for c in dashed if c in missing_by_column]
    key = list(key) if key is not None else list(out.columns[:1])
    bad = [k for k in key if k not in out.columns]
    if bad:
        raise ValueError(f"format_table: key column(s) {bad} not in the table (columns: {list(out.columns)})")
    return ReaderTable(_split(out, key, max_width), full_caption, notes, data_note)


# ------------------------------------------------------------------------------------------------ cells

def _finite(v) -> bool:
    try:
        return v is not None and not isinstance(v, (str, bool)) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _std_column(columns: Sequence[str], col: str) -> str | None:
    """The spread column of ``col``: ``'<col> std'``, or ``'<base> std'`` when ``col`` is ``'<base> %'``."""
    for cand in (f"{col} std", f"{col[:-2]} std" if col.endswith(" %") else None):
        if cand and cand in columns:
            return cand
    return None


# metric names that are reported in % throughout coprop (AVSBench J and F, Alignment Rate, mIoU)
_PERCENT_WORDS = {"J", "F", "AR", "mIoU", "J&F"}


def _is_percent(col: str, percent: set[str]) -> bool:
    words = col.replace("(", " ").replace(")", " ").replace(":", " ").split()
    return "%" in col or col in percent or bool(_PERCENT_WORDS & set(words))


def _decimals(values, col: str, percent: set[str], digits) -> int:
    if isinstance(digits, Mapping) and col in digits:
        return int(digits[col])
    if isinstance(digits, int):
        return digits
    if _is_percent(col, percent):
        return 1
    finite = [abs(float(v)) for v in values if _finite(v) and float(v) != 0]
    if not finite:
        return 1
    top = max(finite)
    # three significant digits for the largest value of the column, at most four decimals
    return int(min(4, max(0, 2 - math.floor(math.log10(top)))))


def _f(v, d: int) -> str:
    """``v`` with ``d`` decimals; a value that rounds to zero is written without a sign ('0.0', never '-0.0')."""
    out = f"{float(v):.{d}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def _num(v, d: int) -> str:
    return _f(v, d) if _finite(v) else DASH


def _interval(v, lo, hi, d: int) -> str:
    if not _finite(v):
        return DASH
    if _finite(lo) and _finite(hi):
        return f"{_f(v, d)} [{_f(lo, d)}, {_f(hi, d)}]"
    return _f(v, d)


def _pm(v, s, d: int) -> str:
    if not _finite(v):
        return DASH
    return f"{_f(v, d)} ± {_f(s, d)}" if _finite(s) else _f(v, d)


def _format_column(s: pd.Series, col: str, percent: set[str], digits) -> list[str]:
    if pd.api.types.is_bool_dtype(s):
        return ["yes" if v else "no" for v in s]
    if _numeric(s):
        vals = s.to_numpy()
        finite = [float(v) for v in vals if _finite(v)]
        if not _is_percent(col, percent) and finite and all(float(v).is_integer() for v in finite) \
                and not (isinstance(digits, Mapping) and col in digits):
            return [f"{int(float(v))}" if _finite(v) else DASH for v in vals]
        d = _decimals(vals, col, percent, digits)
        return [_num(v, d) for v in vals]
    return [_text(v) for v in s]


def _text(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or (isinstance(v, str) and not v.strip()):
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) or DASH
    if isinstance(v, float):
        return f"{int(v)}" if v.is_integer() else f"{v:.3g}"
    return str(v)


# ------------------------------------------------------------------------------------------------ layout

def _width(df: pd.DataFrame, cols: Sequence[str]) -> int:
    """Characters a row of these columns takes: the widest of header and cells, plus 3 for padding/rules.
    Headers wrap at spaces in HTML, so a header counts with its longest word, not its full length."""
    total = 0
    for c in cols:
        head = max((len(w) for w in str(c).split()), default=1)
        total += max([head] + [len(str(v)) for v in df[c]]) + 3
    return total


def _split(df: pd.DataFrame, key: list[str], max_width: int) -> list[pd.DataFrame]:
    rest = [c for c in df.columns if c not in key]
    if _width(df, list(df.columns)) <= max_width or not rest:
        return [df]
    parts, current = [], []
    for c in rest:
        if current and _width(df, key + current + [c]) > max_width:
            parts.append(current)
            current = []
        current.append(c)
    parts.append(current)
    return [df[key + p] for p in parts]


def _pipe_table(df: pd.DataFrame) -> str:
    esc = lambda x: str(x).replace("|", "\\|")  # noqa: E731 - a pipe inside a cell would end the cell
    lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |",
             "|" + "|".join("---" if _left(df[c]) else "---:" for c in df.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(df: pd.DataFrame) -> str:
    """An HTML table with text columns aligned left and number columns right (JupyterLab's stylesheet aligns
    every cell right), numbers kept on one line with digits of equal width."""
    left = {c: _left(df[c]) for c in df.columns}

    def style(c) -> str:
        return ("text-align:left" if left[c] else
                "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums") + ";padding:3px 10px"

    head = "".join(f'<th style="{style(c)}">{html.escape(str(c))}</th>' for c in df.columns)
    rows = "".join("<tr>" + "".join(f'<td style="{style(c)}">{html.escape(str(v))}</td>'
                                    for c, v in zip(df.columns, row)) + "</tr>" for row in df.itertuples(index=False))
    return f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _left(col: pd.Series) -> bool:
    """Text columns align left, number columns (cells starting with a digit, sign or dash) right."""
    return not all(str(v)[:1] in "-0123456789" + DASH for v in col)
