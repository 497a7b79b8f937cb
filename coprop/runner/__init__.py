"""Execute notebooks through papermill into ``reports/`` and keep one row per run in ``reports/index.csv``.

Layout of one run (notebook ``05_ablations``, run name ``demo``)::

    reports/05_ablations/05_ablations-demo.ipynb   executed notebook (outputs kept; the tab names notebook and run)
    reports/05_ablations/demo/           its artefacts: metrics.json, *.csv, *.md, *.png
    reports/05_ablations/demo.running    present only while the run is in flight (a crash leaves it behind)

Parameter files (``configs/*.yaml``) hold a ``defaults:`` mapping applied to every notebook that declares those
parameters, plus one mapping per notebook (keyed by its file stem, e.g. ``05_ablations:``). Every name is checked
against the notebooks' parameters cells (``papermill.inspect_notebook``) before anything runs, so a typo in a
config fails in a second instead of after an hour on a GPU.

Modules, each importing only those above it: ``notebooks`` (discovery, parameter files, declared parameters),
``parameters`` (merging, checking, typing ``-p`` text), ``index`` (index.csv, killed-run markers), ``execute``
(papermill runs), ``cli`` (``coprop run-notebooks``).
"""
from coprop.runner.cli import cli
from coprop.runner.execute import RunResult, describe_failure, run_notebook, run_notebooks
from coprop.runner.index import INDEX_COLUMNS, append_index, git_revision, headline_metrics, read_index, reap_killed
from coprop.runner.notebooks import declared_parameters, list_notebooks, load_config, notebooks_dir, select
from coprop.runner.parameters import CommandLineText, convert, parse_overrides, resolve_parameters

_declared = declared_parameters   # the name tests/test_notebooks.py uses

__all__ = ["INDEX_COLUMNS", "CommandLineText", "RunResult", "append_index", "cli", "convert", "declared_parameters",
           "describe_failure", "git_revision", "headline_metrics", "list_notebooks", "load_config", "notebooks_dir",
           "parse_overrides", "read_index", "reap_killed", "resolve_parameters", "run_notebook", "run_notebooks",
           "select"]
