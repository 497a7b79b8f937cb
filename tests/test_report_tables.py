"""coprop.report_tables: intervals, decimals, integers, dashes with footnotes, caption, splitting."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from coprop.report_tables import DASH, format_table


def _table1():
    return pd.DataFrame({
        "method": ["Simultaneous baseline", "Co-Prop"],
        "our data": ["synthetic MS3-style (demo), test split, 24 clips"] * 2,
        "J %": [41.286100573, 44.456511592],
        "J %_lo": [39.1, 42.1234],
        "J %_hi": [43.5, 46.9],
        "F %": [50.97157, 52.3782],
        "F std": [1.97578, 0.4036],
        "frames": [120.0, 120.0],
        "paper: J": [math.nan, 63.6],
        "control points": ["", "learned"],
    })


def test_interval_std_integers_dash_and_caption():
    t = format_table(_table1(), "Table 1.", data_note="Data: synthetic.")
    f = t.frame
    assert list(f["J %"]) == ["41.3 [39.1, 43.5]", "44.5 [42.1, 46.9]"]
    assert list(f["F %"]) == ["51.0 ± 2.0", "52.4 ± 0.4"]
    assert "J %_lo" not in f.columns and "F std" not in f.columns
    assert list(f["paper: J"]) == [DASH, "63.6"] and list(f["control points"]) == [DASH, "learned"]
    # constant text columns are said once, in the caption; a constant number column stays a column
    assert "our data" not in f.columns and "our data: synthetic MS3-style (demo), test split, 24 clips" in t.caption
    assert list(f["frames"]) == ["120", "120"]
    md = t.to_markdown()
    assert md.startswith("Table 1.") and "*Data: synthetic.*" in md
    assert "nan" not in md.lower() and "120.0" not in md
    assert any(n.startswith(DASH) for n in t.notes) and any("95 %" in n for n in t.notes)
    html = t._repr_html_()
    assert "Table 1." in html and "<table" in html and "<li>" in html


def test_sensible_decimals_and_lists():
    df = pd.DataFrame({"name": ["a", "b"], "seconds": [0.0312, 0.1234], "ms": [123.456, 80.1],
                       "cp": [[1, 0, 0], [1, 0, 1]], "ok": [True, False]})
    f = format_table(df, move_constant=False).frame
    assert list(f["seconds"]) == ["0.031", "0.123"]
    assert list(f["ms"]) == ["123", "80"]
    assert list(f["cp"]) == ["1, 0, 0", "1, 0, 1"] and list(f["ok"]) == ["yes", "no"]
    assert list(format_table(df, digits=2, move_constant=False).frame["ms"]) == ["123.46", "80.10"]
    tiny = pd.DataFrame({"m": ["a"], "d %": [-0.01], "d %_lo": [-0.04], "d %_hi": [0.02]})
    assert format_table(tiny).frame["d %"][0] == "0.0 [0.0, 0.0]"   # no '-0.0'



def test_empty_column_left_out_with_a_note():
    df = pd.DataFrame({"m": ["a", "b"], "x": [1.5, 2.5], "paper row": [None, None]})
    t = format_table(df)
    assert "paper row" not in t.frame.columns
    assert any("paper row" in n for n in t.notes)


def test_per_column_missing_reason():
    df = pd.DataFrame({"m": ["a", "b"], "paper: J": [math.nan, 60.0]})
    t = format_table(df, missing_by_column={"paper: J": "the paper has no such row"})
    assert t.notes == [f"{DASH} in 'paper: J': the paper has no such row"]


def test_wide_table_splits_and_repeats_the_key():
    df = pd.DataFrame({"method": ["a long method name", "b"], **{f"column number {i}": [1.25, 2.5] for i in range(12)}})
    t = format_table(df, max_width=60)
    assert len(t.parts) > 1
    assert all(p.columns[0] == "method" for p in t.parts)
    assert sum(len(p.columns) - 1 for p in t.parts) == 12
    assert "continued, part 2" in t.to_markdown()
    with pytest.raises(ValueError, match="key column"):
        format_table(df, key=["nope"])
