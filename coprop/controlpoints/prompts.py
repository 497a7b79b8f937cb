"""RCPG prompts (paper §3.2): the templates are data in prompts.yaml; this module only fills them in.

Variants (paper Table 2b):
  '1-step'             one user turn: describe + category + keyframe definition + output instruction.
  '3-step'             Q1 describe the audio, Q2 name its category, Q3 the output instruction.
  '3-step+retrieval'   as '3-step', and Q3 first lists k training clips of the named category with their GT
                       control-point lists (retrieval.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from coprop.errors import ConfigError

VARIANTS = ("1-step", "3-step", "3-step+retrieval")
DEFAULT_PATH = Path(__file__).with_name("prompts.yaml")
_REQUIRED = ("describe", "category", "category_hint", "keyframe_definition", "instruction", "examples_header",
             "example_line", "one_step", "final")

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
        "twelve": "twelfth"}


def number_word(n: int) -> str:
    """English cardinal for 0..99 ('ten', 'twenty-one'); digits beyond."""
    if 0 <= n < 20:
        return _ONES[n]
    if 20 <= n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else "-" + _ONES[ones])
    return str(n)


def ordinal_word(n: int) -> str:
    """English ordinal for 1..99 ('tenth', 'twenty-first'); '101st'-style digits beyond."""
    if not 1 <= n < 100:
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}"
    word = number_word(n)
    head, _, last = word.rpartition("-")
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return f"{head}-{last}" if head else last


def format_list(c: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in c) + "]"


@dataclass
class Example:
    """One retrieved training clip: its name, category and GT control points."""

    name: str
    category: str
    control_points: list[int]


@dataclass
class PromptSet:
    """The templates of one prompts.yaml. ``templates`` may be edited in place (e.g. from a notebook)."""

    templates: dict
    path: Path | None = None
    synonyms: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PromptSet":
        path = Path(path) if path else DEFAULT_PATH
        if not path.is_file():
            raise ConfigError(f"{path}: prompt template file not found (copy coprop/controlpoints/prompts.yaml)")
        data = yaml.safe_load(path.read_text()) or {}
        missing = [k for k in _REQUIRED if not isinstance(data.get(k), str)]
        if missing:
            raise ConfigError(f"{path}: prompt templates missing or not text: {', '.join(missing)}")
        synonyms = data.pop("synonyms", {}) or {}
        return cls(templates=data, path=path, synonyms={str(k): str(v) for k, v in synonyms.items()})

    def _fill(self, key: str, T: int, **kw) -> str:
        ctx = {"T": T, "T_word": number_word(T), "T_ordinal": ordinal_word(T)}
        ctx.update(kw)
        try:
            return self.templates[key].format(**ctx).strip()
        except (KeyError, IndexError) as e:
            where = f"{self.path}: " if self.path else ""
            raise ConfigError(f"{where}template {key!r} uses an unknown placeholder {e}") from None

    def describe(self, T: int) -> str:
        return self._fill("describe", T)

    def category(self, T: int, known: Sequence[str] = ()) -> str:
        hint = self._fill("category_hint", T, names=", ".join(known)) if known else ""
        return self._fill("category", T, category_hint=hint)

    def instruction(self, T: int) -> str:
        return self._fill("instruction", T)

    def examples(self, T: int, category: str, examples: Sequence[Example]) -> str:
        if not examples:
            return ""
        lines = [self._fill("examples_header", T, category=category)]
        lines += [self._fill("example_line", T, i=i + 1, name=ex.name, category=ex.category,
                             control_points=format_list(ex.control_points)) for i, ex in enumerate(examples)]
        return "\n".join(lines) + "\n"

    def one_step(self, T: int, known: Sequence[str] = ()) -> str:
        return self._fill("one_step", T, describe=self.describe(T), category=self.category(T, known),
                          keyframe_definition=self._fill("keyframe_definition", T), instruction=self.instruction(T))

    def final(self, T: int, category: str = "", examples: Sequence[Example] = ()) -> str:
        return self._fill("final", T, examples=self.examples(T, category, examples),
                          keyframe_definition=self._fill("keyframe_definition", T), instruction=self.instruction(T))

    def dialogue(self, variant: str, T: int, known: Sequence[str] = (), category: str = "<category>",
                 examples: Sequence[Example] = ()) -> list[str]:
        """The user turns of a variant, for display; model answers come between them."""
        check_variant(variant)
        if variant == "1-step":
            return [self.one_step(T, known)]
        ex = examples if variant == "3-step+retrieval" else ()
        return [self.describe(T), self.category(T, known), self.final(T, category, ex)]


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown RCPG variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant
