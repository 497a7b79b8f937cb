"""Argument types and a parser shared by every ``coprop`` command, so each bad number gets one clear line.

Use ``ArgumentParser`` from here instead of ``argparse.ArgumentParser``: a usage error is then ONE line on
stderr, ``coprop train: error: argument --epochs: must be an integer >= 1, got '0'``, and exit status 2
(argparse's code for usage errors); ``--help`` still prints the full usage. The ``type=`` helpers below
reject bad numbers while parsing, before any data is read or any model is built:

    ap.add_argument("--fps", type=positive_float)        # > 0
    ap.add_argument("--seed", type=nonneg_int)           # >= 0
    ap.add_argument("--tau", type=fraction)              # 0 <= x <= 1
    ap.add_argument("--size", type=int_range(1, 4096))   # inclusive bounds

Numbers must be finite: ``nan`` and ``inf`` are refused by every float type.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose usage errors are one line (``PROG: error: MESSAGE``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def _checked(kind: type, what: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    def parse(text: str):
        value = _number(text, kind, what)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _checked(int, "an integer >= 1", lambda v: v >= 1)
nonneg_int = _checked(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _checked(float, "a number > 0", lambda v: v > 0)
nonneg_float = _checked(float, "a number >= 0", lambda v: v >= 0)
fraction = _checked(float, "a number between 0 and 1", lambda v: 0 <= v <= 1)
open_fraction = _checked(float, "a number > 0 and < 1", lambda v: 0 < v < 1)


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer type with inclusive bounds (None: unbounded on that side)."""
    what = ("an integer" + (f" >= {lo}" if lo is not None and hi is None else "")
            + (f" <= {hi}" if hi is not None and lo is None else "")
            + (f" from {lo} to {hi}" if lo is not None and hi is not None else ""))
    return _checked(int, what, lambda v: (lo is None or v >= lo) and (hi is None or v <= hi))


def float_range(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """A finite float type with inclusive bounds (None: unbounded on that side)."""
    what = ("a number" + (f" >= {lo:g}" if lo is not None and hi is None else "")
            + (f" <= {hi:g}" if hi is not None and lo is None else "")
            + (f" from {lo:g} to {hi:g}" if lo is not None and hi is not None else ""))
    return _checked(float, what, lambda v: (lo is None or v >= lo) and (hi is None or v <= hi))
