"""Every number on a coprop command is checked while parsing: one argparse-style line on stderr, exit 2."""
from __future__ import annotations

import argparse

import pytest

from coprop.cli import main as coprop_main
from coprop.cli_args import ArgumentParser, float_range, fraction, int_range, nonneg_float, positive_int

EVAL = ["evaluate", "preds", "--data-root", "root", "--subset", "s4", "--split", "test", "--out", "o"]
BAD = [
    (["synth", "--preset", "smoke", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["train", "keyframe", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got '0'"),
    (["train", "keyframe", "--batch-size", "two"], "argument --batch-size: must be an integer >= 1, got 'two'"),
    (["train", "keyframe", "--lr", "nan"], "argument --lr: must be a number > 0, got 'nan'"),
    (["train", "keyframe", "--lr=-1e-3"], "argument --lr: must be a number > 0, got '-1e-3'"),
    (["train", "keyframe", "--checkpoint-every", "-5"], "argument --checkpoint-every: must be an integer >= 0"),
    (["train", "keyframe", "--val-limit", "0"], "argument --val-limit: must be an integer >= 1"),
    (["demo", "--threads", "-2"], "argument --threads: must be an integer >= 0, got '-2'"),
    ([*EVAL, "--fbatch", "0"], "argument --fbatch: must be an integer >= 1, got '0'"),
    ([*EVAL, "--alignment-k", "1.5"], "argument --alignment-k: must be an integer >= 0, got '1.5'"),
    (["check-data"], "the following arguments are required: root"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_bad_number_is_one_line_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        coprop_main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"coprop {argv[0]}: error: ") and message in err[0]


def test_types_accept_and_refuse():
    assert positive_int("3") == 3 and nonneg_float("0") == 0.0 and fraction("1") == 1.0
    assert int_range(1, 10)("10") == 10 and float_range(0.5)("0.5") == 0.5
    for typ, text in ((positive_int, "0"), (positive_int, "1.0"), (fraction, "1.01"), (fraction, "inf"),
                      (nonneg_float, "-0.1"), (int_range(1, 10), "11"), (float_range(hi=2), "3")):
        with pytest.raises(argparse.ArgumentTypeError):
            typ(text)


def test_help_still_prints_full_usage(capsys):
    ap = ArgumentParser(prog="coprop x")
    ap.add_argument("--n", type=positive_int, help="how many")
    with pytest.raises(SystemExit) as e:
        ap.parse_args(["--help"])
    assert e.value.code == 0 and "how many" in capsys.readouterr().out
