"""`coprop run-notebooks -p NAME=VALUE`: the text is converted to the type the notebook declares (issue 11 item 6)."""
from __future__ import annotations

import json

import nbformat
import pytest

from coprop import runner
from coprop.errors import ConfigError

PARAMS = '''seeds: str = "0"  # training seeds, comma-separated
area_floor: float = 0.01  # smallest area share
epochs: int = 2  # passes over the data
headless: bool = False  # no widgets
extra = None  # untyped: read as YAML
label: str = "x"  # papermill skips this line (two '=': empty = none), its annotation still types it
output_dir: str = "reports/_scratch/p"  # artefacts'''

WRITE = '''import json
from pathlib import Path
Path(output_dir).mkdir(parents=True, exist_ok=True)
(Path(output_dir) / "metrics.json").write_text(json.dumps({"seeds": seeds, "area_floor": area_floor, "epochs": epochs,
    "headless": headless, "label": label}))'''


@pytest.fixture
def nb(tmp_path):
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    book.cells = [params, nbformat.v4.new_code_cell(WRITE)]
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "20_types.ipynb"
    nbformat.write(book, path)
    return path


def _resolve(nb, *items):
    return runner.resolve_parameters([nb], {"defaults": {}}, [nb], runner.parse_overrides(items))[nb]


def test_text_is_converted_to_the_declared_type(nb):
    p = _resolve(nb, "seeds=1", "area_floor=1e-3", "epochs=3", "headless=true", "label=7", "extra=[1, 2]")
    assert p["seeds"] == "1" and type(p["seeds"]) is str        # a str parameter keeps 1 as "1"
    assert p["area_floor"] == 0.001 and isinstance(p["area_floor"], float)
    assert p["epochs"] == 3 and type(p["epochs"]) is int
    assert p["headless"] is True and _resolve(nb, "headless=False")["headless"] is False
    assert p["label"] == "7"                                     # typed by its annotation though papermill skips it
    assert p["extra"] == [1, 2]                                  # untyped: YAML, as before
    assert _resolve(nb, "seeds=0,1,2")["seeds"] == "0,1,2" and _resolve(nb, "seeds=")["seeds"] == ""
    assert _resolve(nb, "area_floor=2")["area_floor"] == 2.0


@pytest.mark.parametrize("item, example", [("epochs=1.5", "-p epochs=3"), ("epochs=abc", "-p epochs=3"),
                                           ("area_floor=tiny", "-p area_floor=1e-3"),
                                           ("headless=maybe", "-p headless=true")])
def test_impossible_conversion_is_one_line_with_a_working_example(nb, item, example):
    with pytest.raises(ConfigError) as info:
        _resolve(nb, item)
    msg = str(info.value)
    assert "\n" not in msg and example in msg and "20_types" in msg and item.split("=")[0] in msg


def test_quoting_shown_for_text_with_spaces(nb):
    with pytest.raises(ConfigError, match=r"-p 'epochs=two passes'"):
        _resolve(nb, "epochs=two passes")


def test_parameter_file_values_are_checked_not_converted(nb):
    with pytest.raises(ConfigError, match="expects str, got int 1"):
        runner.resolve_parameters([nb], {"defaults": {"seeds": 1}}, [nb])
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        runner.parse_overrides(["seeds"])


def test_cli_passes_typed_values_into_the_notebook(nb, tmp_path):
    reports = tmp_path / "reports"
    code = runner.cli(["--notebooks-dir", str(nb.parent), "--reports-dir", str(reports), "--run", "t",
                       "-p", "seeds=1", "-p", "area_floor=1e-3", "-p", "epochs=3", "-p", "headless=false"])
    assert code == 0
    metrics = json.loads((reports / "20_types" / "t" / "metrics.json").read_text())
    assert metrics == {"seeds": "1", "area_floor": 0.001, "epochs": 3, "headless": False, "label": "x"}
