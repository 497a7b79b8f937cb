"""Reusing a model suite trained on other data warns (and says which data and what to do)."""
from __future__ import annotations

import json

import pytest

from coprop import experiments as E
from coprop.experiments.suite import warn_other_data


def _suite_json(tmp_path, **over):
    base = tmp_path / "runs" / "seed0"
    base.mkdir(parents=True)
    info = {"data_root": "", "synthetic_preset": "smoke", "subset": "ms3", "data_seed": 0, "suite": "smoke",
            "model_config": "tiny", "seed": 0, **over}
    (base / "suite.json").write_text(json.dumps(info))
    return base, info


def test_other_preset_warns_same_data_does_not(tmp_path, recwarn):
    base, info = _suite_json(tmp_path)
    assert warn_other_data(base, dict(info), echo=lambda *_: None) == []
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    lines = []
    with pytest.warns(UserWarning, match="trained on other data .*synthetic_preset: 'smoke' -> 'demo'"):
        diffs = warn_other_data(base, {**info, "synthetic_preset": "demo"}, echo=lines.append)
    assert diffs == ["synthetic_preset: 'smoke' -> 'demo'"] and "run_dir of its own" in lines[0]


def test_ensure_suite_warns_before_reusing(tmp_path):
    _suite_json(tmp_path)
    with pytest.warns(UserWarning, match="synthetic_preset"):
        E.ensure_suite(tmp_path / "runs", E.Data("", "demo", "ms3", 0), seed=0, only=[], echo=lambda *_: None)


def test_one_parameter_picks_models_and_suite():
    assert E.suite_defaults("", "", E.Data("", "demo")) == ("runs/demo", "demo")
    assert E.suite_defaults("", "", E.Data("", "long")) == ("runs/long", "demo")
    assert E.suite_defaults("", "", E.Data("/data/AVSBench", "smoke")) == ("runs/paper", "paper")
    assert E.suite_defaults("runs/x", "smoke", E.Data("", "demo")) == ("runs/x", "smoke")
