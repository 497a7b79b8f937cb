"""``coprop run-notebooks``: the command line of the notebook runner."""
from __future__ import annotations

import sys
from pathlib import Path

from coprop import paths
from coprop.cli_args import ArgumentParser, nonneg_int   # usage errors: one line, exit 2, like every coprop command
from coprop.runner.execute import run_notebooks
from coprop.runner.notebooks import declared_parameters, list_notebooks, select
from coprop.runner.parameters import parse_overrides

DESCRIPTION = "Execute notebooks through papermill into ``reports/`` and keep one row per run in ``reports/index.csv``."


def cli(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="coprop run-notebooks", description=DESCRIPTION)
    ap.add_argument("--config", "-f", help="parameter file (configs/smoke.yaml, demo.yaml, paper.yaml)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="notebooks to run, by stem or prefix ('05' or '05_ablations'); commas also split")
    ap.add_argument("--run", help="run name: reports/<notebook>/<notebook>-<run>.ipynb (default: the config's stem)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter for every notebook that declares it (the text is converted to the "
                         "type the notebook declares: str, int, float, bool)")
    ap.add_argument("--notebooks-dir", help="folder of notebooks (default: notebooks/)")
    ap.add_argument("--reports-dir", help="where reports go (default: reports/)")
    ap.add_argument("--workers", type=nonneg_int, default=1,
                    help="notebooks run side by side, each kernel on one thread (default 1: one after another; "
                         "2 on a 2-core machine halves the wall time of many short notebooks)")
    ap.add_argument("--list", action="store_true", help="list notebooks and their parameters, run nothing")
    args = ap.parse_args(argv)
    only = [n for item in (args.only or []) for n in item.split(",") if n]
    if args.list:
        for nb in select(list_notebooks(args.notebooks_dir), only):
            print(nb.stem)
            for name, info in declared_parameters(nb).items():
                print(f"    {name}: {info['inferred_type_name']} = {info['default']}  {info['help']}")
        return 0
    results = run_notebooks(args.config, only, args.run, parse_overrides(args.param), args.notebooks_dir,
                            args.reports_dir, workers=args.workers)
    failed = [r for r in results if r.status != "ok"]
    reports = Path(args.reports_dir) if args.reports_dir else paths.reports_dir()
    print(f"{len(results) - len(failed)}/{len(results)} notebooks ok; reports in {reports}/ "
          f"(index: {reports / 'index.csv'})")
    for r in failed:
        print(f"FAILED {r.notebook}: {r.error}", file=sys.stderr)
    return 1 if failed else 0
