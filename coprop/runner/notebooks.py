"""Which notebooks there are, which the user chose, what parameter file they gave, and which parameters each
notebook declares (its ``parameters`` cell)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

from coprop import paths
from coprop.errors import ConfigError


def notebooks_dir() -> Path:
    return Path(os.environ.get("COPROP_NOTEBOOKS", paths.repo_root() / "notebooks"))


def list_notebooks(directory: str | Path | None = None) -> list[Path]:
    """Every executable notebook (``NN_name.ipynb``) in the notebooks folder, in order."""
    directory = Path(directory) if directory else notebooks_dir()
    return sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith((".", "_")))


def select(notebooks: list[Path], only: Iterable[str] | None) -> list[Path]:
    """``only`` entries match a stem exactly or by prefix ('05' selects 05_ablations)."""
    if not only:
        return notebooks
    chosen = []
    for name in only:
        hits = [p for p in notebooks if p.stem == name] or [p for p in notebooks if p.stem.startswith(name)]
        if not hits:
            raise ConfigError(f"--only {name!r} matches no notebook; available: {[p.stem for p in notebooks]}")
        chosen += [p for p in hits if p not in chosen]
    return [p for p in notebooks if p in chosen]


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a parameter file into ``{'defaults': {...}, '<notebook stem>': {...}}``."""
    if path is None:
        return {"defaults": {}}
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameter file not found (see configs/ for smoke.yaml, demo.yaml, paper.yaml)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) or v is None for v in raw.values()):
        raise ConfigError(f"{path}: expected 'defaults:' and one mapping per notebook at the top level")
    cfg = {str(k): dict(v or {}) for k, v in raw.items()}
    cfg.setdefault("defaults", {})
    return cfg


def declared_parameters(nb: Path) -> dict[str, dict[str, Any]]:
    """Parameters of a notebook: papermill's inspection (types, defaults, help) plus every name the
    parameters cell assigns. papermill skips a line holding more than one '=' (e.g. '= ' inside the comment),
    so names are also read with ``ast``; such a parameter is still known, just without type or help."""
    import ast

    import nbformat
    import papermill

    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)   # its "Unable to parse line" warnings are handled below
    try:
        found = dict(papermill.inspect_notebook(str(nb)))
    finally:
        quiet.setLevel(level)
    cell = next((c for c in nbformat.read(str(nb), as_version=4).cells
                 if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is not None:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            tree = None
        for node in (tree.body if tree else []):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else \
                node.targets if isinstance(node, ast.Assign) else []
            # a skipped line's annotation still types it (int/float/str/bool), so -p converts its text
            note = node.annotation if isinstance(node, ast.AnnAssign) else None
            typed = note.id if isinstance(note, ast.Name) and note.id in ("int", "float", "str", "bool") else "None"
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in found:
                    found[t.id] = {"name": t.id, "inferred_type_name": typed, "default": "", "help": ""}
    return found
