"""The parameters each notebook runs with: a parameter file's ``defaults:`` and per-notebook sections, then
``-p NAME=VALUE`` overrides, merged and checked against what the notebook declares before anything runs.

``-p`` values are text, typed by the notebook that receives them: a ``str`` parameter keeps ``-p seeds=1`` as
``"1"``, a ``float`` reads ``1e-3``, an ``int`` reads ``3``, a ``bool`` reads ``true``/``false``. Parameters the
notebook does not type are read as YAML scalars. Values from a parameter file are YAML already and are checked,
not converted.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Iterable

import yaml

from coprop.errors import ConfigError
from coprop.runner.notebooks import declared_parameters

_TYPE_CHECKS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
# what a working -p looks like for each declared type, shown when a conversion is impossible
_EXAMPLES = {"int": "3", "float": "1e-3", "bool": "true", "str": "some text"}


class CommandLineText(str):
    """A ``-p`` value as typed on the command line; converted to the declared type of each notebook."""


def parse_overrides(items: Iterable[str]) -> dict[str, CommandLineText]:
    """``-p key=value`` pairs -> {key: text}; the text is typed later, per notebook, by ``convert``.

    Raises ConfigError for an item without '='."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"-p {item!r}: expected NAME=VALUE, e.g. -p seed=3")
        k, v = item.split("=", 1)
        out[k.strip()] = CommandLineText(v)
    return out


def convert(name: str, text: str, want: str, notebook: str) -> Any:
    """The command-line ``text`` of parameter ``name`` as the type ``want`` that ``notebook`` declares
    ('int' | 'float' | 'str' | 'bool'; anything else: the text read as a YAML scalar).

    Raises ConfigError (one line, with a ``-p`` that works) when the text cannot be that type."""
    s = text.strip()
    try:
        if want == "str":
            return str(text)
        if want == "int":
            return int(s)   # '3', '-3', '1_000'; '1.5' and '1e3' are refused rather than rounded
        if want == "float":
            return float(s)
        if want == "bool":
            return _BOOLS[s.lower()]
        return yaml.safe_load(text) if text != "" else ""
    except (ValueError, KeyError, yaml.YAMLError):
        pass
    example = shlex.quote(f"{name}={_EXAMPLES.get(want, 'VALUE')}")
    hint = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(want, "a YAML value")
    raise ConfigError(f"-p {shlex.quote(f'{name}={text}')}: {notebook} declares {name!r} as {want}, and "
                      f"{text!r} is not {hint}; for example -p {example}")


def resolve_parameters(notebooks: list[Path], config: dict[str, dict[str, Any]], all_notebooks: list[Path],
                       overrides: dict[str, Any] | None = None) -> dict[Path, dict[str, Any]]:
    """Merge defaults, the notebook's section and command-line overrides; reject every unknown name up front.

    A name under ``defaults`` (or given with ``-p``) only has to be declared by some notebook in the folder: it
    is passed to the notebooks that declare it. A name under a notebook's own section must be declared by it.
    ``CommandLineText`` overrides (from ``parse_overrides``) are converted to each notebook's declared type;
    every other value must already have that type. Raises ConfigError listing every problem found.
    """
    declared = {nb: declared_parameters(nb) for nb in all_notebooks}
    stems = {nb.stem: nb for nb in all_notebooks}
    problems = []
    for section in config:
        if section != "defaults" and section not in stems:
            problems.append(f"section {section!r} names no notebook (have {sorted(stems)})")
    shared = dict(config.get("defaults", {}))
    shared.update(overrides or {})
    everyone = set().union(*(d.keys() for d in declared.values())) if declared else set()
    for name in shared:
        if name not in everyone:
            problems.append(f"parameter {name!r} is declared by no notebook")
    resolved: dict[Path, dict[str, Any]] = {}
    for nb in notebooks:
        params = {k: v for k, v in shared.items() if k in declared[nb]}
        for k, v in config.get(nb.stem, {}).items():
            if k not in declared[nb]:
                problems.append(f"{nb.stem}: unknown parameter {k!r} (declared: {sorted(declared[nb])})")
            params[k] = v
        for k, v in (overrides or {}).items():
            if k in declared[nb]:
                params[k] = v
        for k, v in params.items():
            want = (declared[nb].get(k) or {}).get("inferred_type_name", "None")
            if isinstance(v, CommandLineText):
                try:
                    params[k] = v = convert(k, v, want, nb.stem)
                except ConfigError as e:
                    problems.append(str(e))
                    continue
            ok = _TYPE_CHECKS.get(want)
            if ok and not (isinstance(v, ok) and not (want != "bool" and isinstance(v, bool))):
                problems.append(f"{nb.stem}: parameter {k!r} expects {want}, got {type(v).__name__} {v!r}")
        resolved[nb] = params
    if problems:
        raise ConfigError("rejected before running anything: " + "; ".join(problems))
    return resolved
