"""Read a T-long 0/1 control-point list out of whatever text an LLM answered.

Accepted forms (searched in this order; the first form that yields numbers wins):
  1. "Frame k: v" lines (``Frame 3: 1``, ``frame 3 = 0``, ``第3帧: 1``); numbering may start at 0 or 1.
  2. Bracketed lists: Python/JSON lists (``[1, 0, 0]``, ``["1","0"]``, ``[1 0 0]``). When several lists
     appear (models echo the prompt's examples), the LAST list with exactly T numbers is taken, else the
     last numeric list.
  3. Bare digit runs: ``1 0 0 1``, ``1,0,0,1`` (single digits separated by spaces/commas), or one
     compact 0/1 word such as ``1000100000``; the last run with T numbers, else the last run.
Code fences and prose around the numbers are ignored.

Repair rules (each applied repair is counted in ``ParseStats``; these are the ONLY repairs; applied in the
order R1, R3, R2, R4, so padding never creates a label change):
  R1 ``truncated``   more than T values: keep the first T.
  R2 ``padded``      fewer than T values but at least ceil(T/2): pad with 0 (no change claimed).
                     Fewer than ceil(T/2) values is rejected (``too_short``): the answer does not cover
                     most of the clip, so guessing the rest would be invention.
  R3 ``labels``      any value > 1: the paper's own instruction asks for "the categories of these frames",
                     so such a list is read as per-frame category labels and converted to control points
                     (1 where the label differs from the previous frame's). Negative values are rejected
                     (``negative``).
  R4 ``forced_first`` c[0] != 1: set c[0] = 1 (frame 0 always starts a segment).
Anything else raises ``ControlPointParseError`` carrying the offending text.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from coprop.errors import CopropError

REPAIRS = ("truncated", "padded", "labels", "forced_first")
REJECTS = ("no_list", "too_short", "negative")


class ControlPointParseError(CopropError):
    """The text holds no usable control-point list. ``.text`` is the offending answer, ``.reason`` a REJECTS key."""

    def __init__(self, text: str, T: int, reason: str, detail: str = ""):
        self.text = text
        self.T = T
        self.reason = reason
        shown = text if len(text) <= 300 else text[:300] + "..."
        msg = f"cannot read a {T}-frame control-point list ({reason}{': ' + detail if detail else ''}) from {shown!r}"
        super().__init__(msg)


@dataclass
class ParseStats:
    """Counts of parses, clean parses, each repair, each rejection and the sources' fallbacks."""

    counts: Counter = field(default_factory=Counter)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)

    def as_dict(self) -> dict[str, int]:
        keys = ("calls", "clean", "repaired") + REPAIRS + ("rejected",) + REJECTS
        out = {k: int(self.counts.get(k, 0)) for k in keys}
        out.update({k: int(v) for k, v in self.counts.items() if k not in out})
        return out

    def merge(self, other: "ParseStats") -> "ParseStats":
        self.counts.update(other.counts)
        return self

    def report(self) -> str:
        d = self.as_dict()
        parts = [f"{k}={v}" for k, v in d.items() if v or k in ("calls", "clean", "rejected")]
        return "parse: " + ", ".join(parts)


_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*")
_FRAME_LINE = re.compile(r"(?:\bframe|第)\s*#?\s*(\d{1,4})\s*(?:帧)?\s*(?:[:=：]|->|is\b)\s*(-?\d+(?:\.0+)?)\b", re.I)
_BRACKET = re.compile(r"[\[(]([^\[\]()]*)[\])]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LIST_BODY = re.compile(r"""^[\s,;'"\-\d.]*$""")
_DIGIT_RUN = re.compile(r"(?<![\w.\-])(-?\d(?:\s*[,;]\s*-?\d|\s+-?\d)+)(?![\w.])")
_COMPACT = re.compile(r"(?<![\w.])([01]{2,})(?![\w.])")


def _numbers(body: str) -> list[int] | None:
    toks = _NUMBER.findall(body)
    if not toks:
        return None
    out = []
    for tok in toks:
        if len(tok) > 12:  # not a frame flag or a label id; keeps int()/float() away from huge strings
            return None
        if "." in tok:
            v = float(tok)
            if not v.is_integer():
                return None
            out.append(int(v))
        else:
            out.append(int(tok))
    return out


def _pick(cands: list[list[int]], T: int) -> list[int] | None:
    if not cands:
        return None
    exact = [c for c in cands if len(c) == T]
    return exact[-1] if exact else cands[-1]


def _from_frame_lines(text: str) -> list[int] | None:
    pairs = [(int(i), m) for i, m in _FRAME_LINE.findall(text)]
    if not pairs:
        return None
    vals = {}
    for i, v in pairs:
        if len(v) > 12:
            return None
        vals.setdefault(i, int(float(v)))
    base = min(vals)
    if base > 1:
        return None
    n = max(vals) - base + 1
    return [vals.get(base + k, 0) for k in range(n)]


def extract_values(text: str, T: int) -> list[int] | None:
    """The raw integer list the text states (before repair), or None when it states none."""
    text = _FENCE.sub(" ", text)
    got = _from_frame_lines(text)
    if got is not None:
        return got
    lists = []
    for body in _BRACKET.findall(text):
        if _LIST_BODY.match(body):
            nums = _numbers(body)
            if nums:
                lists.append(nums)
    got = _pick(lists, T)
    if got is not None:
        return got
    runs = [nums for nums in (_numbers(r) for r in _DIGIT_RUN.findall(text)) if nums]
    runs += [[int(ch) for ch in w] for w in _COMPACT.findall(text)]
    return _pick(runs, T)


def labels_to_control_points(labels: list) -> list[int]:
    """Per-frame labels -> 1 where the label differs from the previous frame's (and at frame 0)."""
    return [1] + [int(labels[t] != labels[t - 1]) for t in range(1, len(labels))]


def parse_control_points(text: str, T: int, stats: ParseStats | None = None) -> list[int]:
    """The T-long 0/1 list with c[0] = 1 stated by ``text``; repairs per the module docstring, else raises."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    stats = stats if stats is not None else ParseStats()
    stats.add("calls")
    text = "" if text is None else str(text)

    def reject(reason: str, detail: str = ""):
        stats.add("rejected")
        stats.add(reason)
        raise ControlPointParseError(text, T, reason, detail)

    vals = extract_values(text, T)
    if vals is None:
        reject("no_list", "no list of integers found")
    if any(v < 0 for v in vals):
        reject("negative", f"values {vals}")
    if len(vals) < math.ceil(T / 2):
        reject("too_short", f"{len(vals)} values for {T} frames")
    repairs = []
    if len(vals) > T:
        vals = vals[:T]
        repairs.append("truncated")
    if any(v > 1 for v in vals):  # labels are converted before padding so padding never adds a change
        vals = labels_to_control_points(vals)
        repairs.append("labels")
    if len(vals) < T:
        vals = vals + [0] * (T - len(vals))
        repairs.append("padded")
    if vals[0] != 1:
        vals[0] = 1
        repairs.append("forced_first")
    for r in repairs:
        stats.add(r)
    stats.add("repaired" if repairs else "clean")
    return vals
