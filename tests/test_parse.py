"""parse_control_points: the forms models produce, the documented repairs, and a fuzz run."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coprop.controlpoints.parse import (REJECTS, REPAIRS, ControlPointParseError, ParseStats,
                                        parse_control_points)


@pytest.mark.parametrize("text", [
    "[1, 0, 0, 1, 0]",
    '["1", "0", "0", "1", "0"]',
    "```python\n[1,0,0,1,0]\n```",
    "```json\n{\"frames\": [1, 0, 0, 1, 0]}\n```",
    "Sure. The control points list is [1, 0, 0, 1, 0], because the sound changes at frame 4.",
    "1 0 0 1 0",
    "1, 0, 0, 1, 0",
    "Answer: 10010",
    "Frame 1: 1\nFrame 2: 0\nFrame 3: 0\nFrame 4: 1\nFrame 5: 0",
    "frame 0 = 1; frame 1 = 0; frame 2 = 0; frame 3 = 1; frame 4 = 0",
    "Sample 1: [1, 0, 0, 0, 0]\nSample 2: [1, 1, 0, 0, 0]\nSo this clip: [1, 0, 0, 1, 0]",
    "(1, 0, 0, 1, 0)",
])
def test_accepted_forms(text):
    stats = ParseStats()
    assert parse_control_points(text, 5, stats) == [1, 0, 0, 1, 0]
    assert stats["clean"] == 1 and stats["repaired"] == 0


def test_picks_list_of_length_T_over_echoed_examples():
    text = "Examples: [1,0,0,0,0,0,0,0,0,0] and [1,0,0,0,0,1,0,0,0,0]. Output: [1,1,0,0,0]"
    assert parse_control_points(text, 5) == [1, 1, 0, 0, 0]
    assert parse_control_points(text, 10) == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_repairs_are_documented_and_counted():
    s = ParseStats()
    assert parse_control_points("[1,0,0,1,0,0,1]", 5, s) == [1, 0, 0, 1, 0]
    assert s["truncated"] == 1
    assert parse_control_points("[1,0,1]", 5, s) == [1, 0, 1, 0, 0]
    assert s["padded"] == 1
    assert parse_control_points("[0,0,1,0,0]", 5, s) == [1, 0, 1, 0, 0]
    assert s["forced_first"] == 1
    # values > 1 are per-frame labels (the paper asks for "the categories of these frames")
    assert parse_control_points("[2, 2, 5, 5, 2]", 5, s) == [1, 0, 1, 0, 1]
    assert s["labels"] == 1
    # labels are converted before padding, so the padded tail adds no change
    assert parse_control_points("[3, 3, 4]", 5, s) == [1, 0, 1, 0, 0]
    assert s["repaired"] == 5 and s["clean"] == 0 and s["calls"] == 5


@pytest.mark.parametrize("text,reason", [
    ("I cannot determine the keyframes.", "no_list"),
    ("", "no_list"),
    ("[1, 0]", "too_short"),
    ("[1, -1, 0, 0, 0]", "negative"),
    ("[0.5, 0.5, 0.5, 0.5, 0.5]", "no_list"),
])
def test_rejections_raise_with_text(text, reason):
    s = ParseStats()
    with pytest.raises(ControlPointParseError) as e:
        parse_control_points(text, 5, s)
    assert e.value.text == text and e.value.reason == reason
    assert s["rejected"] == 1 and s[reason] == 1


def test_report_lists_counters():
    s = ParseStats()
    parse_control_points("[0,1,0]", 3, s)
    d = s.as_dict()
    assert d["calls"] == 1 and d["forced_first"] == 1 and set(REPAIRS) <= set(d) and set(REJECTS) <= set(d)
    assert "forced_first=1" in s.report()


# ---- fuzz: model-like answers mixed with garbage; only ControlPointParseError may escape ------------------

_digits = st.one_of(st.lists(st.integers(min_value=0, max_value=1), min_size=0, max_size=22),
                    st.lists(st.integers(min_value=-2, max_value=12), min_size=0, max_size=14))
_prose = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _render(vals, style):
    if style == 0:
        return json.dumps(vals)
    if style == 1:
        return " ".join(map(str, vals))
    if style == 2:
        return ", ".join(map(str, vals))
    if style == 3:
        return "\n".join(f"Frame {i + 1}: {v}" for i, v in enumerate(vals))
    if style == 4:
        return "```\n" + str(vals) + "\n```"
    return "".join(str(v) for v in vals)


_answers = st.one_of(
    st.builds(lambda pre, vals, style, post: f"{pre}{_render(vals, style)}{post}",
              _prose, _digits, st.integers(0, 5), _prose),
    st.text(max_size=200),
    st.text(alphabet="[]0123456789,. -:\nFrameframe`", max_size=120),
)

FUZZ_STATS = ParseStats()


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_answers, T=st.integers(min_value=1, max_value=20))
def test_fuzz_never_crashes_and_outputs_valid_lists(text, T):
    try:
        c = parse_control_points(text, T, FUZZ_STATS)
    except ControlPointParseError as e:
        assert e.text == text
        return
    assert len(c) == T and set(c) <= {0, 1} and c[0] == 1


def test_fuzz_counts_add_up():
    """Runs after the fuzz test in file order: every call ended clean, repaired or rejected."""
    d = FUZZ_STATS.as_dict()
    if d["calls"] == 0:
        pytest.skip("fuzz test not run in this session")
    assert d["calls"] >= 1000
    assert d["clean"] + d["repaired"] + d["rejected"] == d["calls"]
    assert d["rejected"] == sum(d[r] for r in REJECTS)
    print("fuzz parse counts:", FUZZ_STATS.report())
