"""coprop's import graph: no circles, and the data layer at the bottom (DESIGN.md §2: dependencies point down the
pipeline; issue 13).

Every ``import`` in every module counts as an edge -- at the top of the file, inside functions and under
``if TYPE_CHECKING:`` alike: a lazy import only moves the moment a dependency is paid, and a type-only import is
still a dependency (the module needs the other to be read); an upward lazy or type-only import is how circles
hide. An edge goes to the module named (``from coprop.a import b`` -> ``coprop.a.b`` when that is a module, else
``coprop.a``); importing a submodule also runs its packages' ``__init__``, but a package importing its own
submodules is not a circle (Python finds the package already in ``sys.modules``), so parent packages are not edges.

The data layer stands on the ground floor only: modules that import nothing of coprop themselves (errors, paths,
io, progress, and cli_args -- the argument types of every ``coprop`` command, ``coprop synth`` and
``coprop check-data`` included).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from coprop.paths import repo_root

PACKAGE = repo_root() / "coprop"
GROUND_FLOOR = {"coprop.errors", "coprop.paths", "coprop.io", "coprop.progress", "coprop.cli_args"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """coprop modules that module ``name`` imports -> the first line that imports each."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        while target and target not in known:     # 'coprop.x.func' -> 'coprop.x'
            target = target.rpartition(".")[0]
        if target and target != name:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "coprop":
                    add(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "coprop":
                continue
            for a in node.names:
                add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    inside = set(cycle)
    edges = [f"{a} -> {b} (line {ln})" for a in cycle for b, ln in sorted(graph[a].items()) if b in inside]
    return "; ".join(edges)


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    """coprop's graph, parsed once for the tests below."""
    return import_graph()


def test_no_import_cycles(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_data_layer_imports_only_the_ground_floor(graph):
    bad = [f"{m} -> {t} (line {ln})" for m, deps in graph.items() if m == "coprop.data" or m.startswith("coprop.data.")
           for t, ln in deps.items()
           if not (t == "coprop.data" or t.startswith("coprop.data.") or t in GROUND_FLOOR)]
    assert not bad, "coprop.data may import only " + ", ".join(sorted(GROUND_FLOOR)) + ":\n" + "\n".join(bad)
    above = [f"{m} -> {t} (line {ln})" for m in GROUND_FLOOR for t, ln in graph[m].items()]
    assert not above, "the ground floor imports nothing of coprop:\n" + "\n".join(above)



# DESIGN.md §2: data <- models <- pipeline <- experiments / reports / notebooks. What each core package may import
# besides itself and the ground floor; the layers above (experiments, reports, runner, demo, infer, cli) are free
# to import anything below them, and the cycle test keeps them from importing each other in a circle.
CORE_MAY_IMPORT = {
    "data": set(),
    "models": {"data"},
    "controlpoints": {"data"},
    "metrics": {"data", "controlpoints"},
    "pipeline": {"data", "models", "controlpoints"},
    "train": {"data", "models", "controlpoints", "metrics"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_dependencies_point_down_the_pipeline(graph):
    floor = {_package(m) for m in GROUND_FLOOR}
    bad = [f"{m} -> {t} (line {ln})" for m, deps in graph.items() if _package(m) in CORE_MAY_IMPORT
           for t, ln in deps.items()
           if _package(t) not in CORE_MAY_IMPORT[_package(m)] | floor | {_package(m)}]
    assert not bad, "an import that points up the pipeline:\n" + "\n".join(bad)

def _graph_of(files: dict[str, str], tmp_path: Path, monkeypatch) -> dict[str, dict[str, int]]:
    """The graph of a package made of ``files`` (path -> source) under tmp_path/coprop."""
    root = tmp_path / "coprop"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setitem(globals(), "PACKAGE", root)
    return import_graph()


def test_the_checker_sees_lazy_relative_and_from_imports(tmp_path, monkeypatch):
    graph = _graph_of({
        "__init__.py": "",
        "a/__init__.py": "from coprop.a.impl import thing\n",
        "a/base.py": "def f():\n    from coprop.a import impl   # lazy, still an edge\n",
        "a/impl.py": "from . import base\nthing = 1\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coprop.b import B  # type-only: an edge\n",
        "b.py": "import coprop.a.base\nfrom ..outside import nothing\n",
    }, tmp_path, monkeypatch)
    assert graph["coprop.a.base"] == {"coprop.a.impl": 2}
    assert graph["coprop.a.impl"] == {"coprop.a.base": 1}
    assert graph["coprop.c"] == {"coprop.b": 3}
    assert graph["coprop.a"] == {"coprop.a.impl": 1}               # a package importing its submodule
    assert graph["coprop.b"] == {"coprop.a.base": 1}
    assert find_cycles(graph) == [["coprop.a.base", "coprop.a.impl"]]


@pytest.mark.parametrize("graph, cycles", [
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {}}, []),
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}, [["a", "b", "c"]]),
])
def test_find_cycles(graph, cycles):
    assert find_cycles(graph) == cycles


def test_registries_by_name_resolve_to_their_implementations():
    """The base modules name their implementations as strings (so the graph above has no edge up to them): each
    string must resolve to a subclass of the base, or a typo would surface only when that name is asked for."""
    from pkgutil import resolve_name

    from coprop.controlpoints import llm, source

    for name, spec in source.REGISTRY.items():
        cls = resolve_name(spec)
        assert issubclass(cls, source.ControlPointSource), spec
        assert cls.name == name, spec
    for kind, spec in llm.REGISTRY.items():
        assert issubclass(resolve_name(spec), llm.LLMBackend), spec
        assert resolve_name(spec).kind == kind, spec
