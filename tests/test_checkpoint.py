"""Training checkpoints: exact round trip of every state, atomic writes that survive failures, run folders."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from coprop.errors import CopropError, DataError, WeightsError
from coprop.train import checkpoint as ck
from coprop.train.loop import TrainParams, make_scheduler

sys.path.insert(0, str(Path(__file__).parent))
from train_toy import ToyData, ToyNet, toy_loss  # noqa: E402




def _trained(steps: int = 3):
    torch.manual_seed(0)
    model = ToyNet()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = make_scheduler(opt, TrainParams(epochs=2, warmup_steps=2), steps_per_epoch=5)
    data = ToyData()
    for i in range(steps):
        batch = {k: torch.stack([data[j][k] for j in range(i, i + 4)]) for k in ("image", "mask")}
        opt.zero_grad()
        toy_loss(model, batch).backward()
        opt.step()
        sched.step()
    return model, opt, sched, data


def _state(model, opt, sched):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": [ck.rng_state()], "progress": {"epoch": 1, "step_in_epoch": 3}}


def _continue(model, opt, sched, data, steps=3):
    out = []
    for i in range(steps):
        batch = {k: torch.stack([data[j][k] for j in range(i, i + 4)]) for k in ("image", "mask")}
        opt.zero_grad()
        toy_loss(model, batch).backward()   # dropout: consumes the torch RNG
        opt.step()
        sched.step()
        out.append((random.random(), float(np.random.rand()), float(torch.rand(()))))
    return out, {k: v.clone() for k, v in model.state_dict().items()}


def test_round_trip_restores_model_optimizer_scheduler_and_rng(tmp_path):
    model, opt, sched, data = _trained()
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    ck.save_state(tmp_path / "s.safetensors", _state(model, opt, sched))
    expected_draws, expected_w = _continue(model, opt, sched, data)

    fresh, opt2, sched2, _ = _trained(steps=0)
    random.seed(99), np.random.seed(99), torch.manual_seed(99)   # scramble: the checkpoint must restore them
    state = ck.load_state(tmp_path / "s.safetensors")
    fresh.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    ck.set_rng_state(state["rng"][0])
    assert state["progress"] == {"epoch": 1, "step_in_epoch": 3}
    draws, w = _continue(fresh, opt2, sched2, data)
    assert draws == expected_draws
    assert all(torch.equal(w[k], expected_w[k]) for k in w)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_failed_write_mid_file_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, sched, _ = _trained()
    first = ck.save_checkpoint(tmp_path, 2, _state(model, opt, sched))
    before = first.read_bytes()

    def broken(tensors, path, metadata):   # half a file reaches the disk, then the device fails
        ck.save_file(tensors, str(path), metadata=metadata)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "_write_file", broken)
    with pytest.raises(OSError):
        ck.save_checkpoint(tmp_path, 4, _state(model, opt, sched))
    assert ck.list_checkpoints(tmp_path) == [first]
    assert first.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"
    path, state = ck.latest_checkpoint(tmp_path)
    assert path == first and state["progress"]["step_in_epoch"] == 3


def test_file_size_limit_in_subprocess_keeps_previous_checkpoint(tmp_path):
    """RLIMIT_FSIZE makes the real writer fail with EFBIG part-way through the second checkpoint."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import torch
        from coprop.train import checkpoint as ck
        from train_toy import ToyNet
        model = ToyNet(channels=64)
        ck.save_checkpoint({str(tmp_path)!r}, 1, {{"model": model.state_dict(), "tag": "first"}})
        size = ck.checkpoint_path({str(tmp_path)!r}, 1).stat().st_size
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG as an exception, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))
        try:
            ck.save_checkpoint({str(tmp_path)!r}, 2, {{"model": model.state_dict(), "tag": "second"}})
        except Exception as e:
            print("WRITE FAILED", type(e).__name__, e)
            sys.exit(0)
        print("WRITE SUCCEEDED")
        sys.exit(3)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WRITE FAILED" in out.stdout
    files = ck.list_checkpoints(tmp_path)
    assert [f.name for f in files] == ["step-00000001.safetensors"]
    assert ck.load_state(files[0])["tag"] == "first"
    assert not list(tmp_path.glob(".*tmp"))


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path):
    model, opt, sched, _ = _trained()
    ck.save_checkpoint(tmp_path, 2, {"tag": "old", "model": model.state_dict()})
    newest = ck.save_checkpoint(tmp_path, 4, {"tag": "new", "model": model.state_dict()})
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        ck.load_state(newest)
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        path, state = ck.latest_checkpoint(tmp_path)
    assert state["tag"] == "old" and path.name == "step-00000002.safetensors"


def test_keeps_only_newest_and_ignores_temporaries(tmp_path):
    for step in (1, 2, 3):
        ck.save_checkpoint(tmp_path, step, {"step": step}, keep=2)
    (tmp_path / ".step-00000009.safetensors.abc.tmp").write_bytes(b"partial")
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == ["step-00000003.safetensors",
                                                               "step-00000002.safetensors"]
    assert ck.remove_stale_temporaries(tmp_path) == 1


def test_weights_mismatch_names_keys(tmp_path):
    path = ck.save_weights(tmp_path / "w.safetensors", ToyNet(channels=4), {"stage": "toy"})
    with pytest.raises(WeightsError, match=r"w\.safetensors.*shape mismatch"):
        ck.load_weights(path, ToyNet(channels=8))
    assert ck.load_weights(path, ToyNet(channels=4)) == {"stage": "toy"}


# ---------------------------------------------------------------- run folders

def test_load_run_errors_name_the_file_and_what_to_do(tmp_path):
    from coprop.models.config import get_config
    from coprop.train.run import load_run, record_stage

    with pytest.raises(DataError, match="run folder does not exist.*coprop train"):
        load_run(tmp_path / "nope")
    (tmp_path / "r").mkdir()
    with pytest.raises(DataError, match=r"config\.json.*notebooks/03_train_keyframe"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json is unreadable"):
        load_run(tmp_path / "r")
    cfg = get_config("tiny", image_size=64)
    (tmp_path / "r" / "config.json").unlink()
    record_stage(tmp_path / "r", cfg, "keyframe", {"wall_s": 1.0})
    with pytest.raises(DataError, match="no trained weights"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / "keyframe.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match=r"keyframe\.safetensors.*corrupt.*re-train") as e:
        load_run(tmp_path / "r")
    assert isinstance(e.value, CopropError)
    other = get_config("tiny", image_size=64, dim=32)
    with pytest.raises(CopropError, match="another model config"):
        record_stage(tmp_path / "r", other, "baseline", {})


def test_load_run_round_trip(tmp_path):
    from coprop.models.config import get_config
    from coprop.train.run import WEIGHTS, build_model, load_run, record_stage

    cfg = get_config("tiny", image_size=64)
    torch.manual_seed(0)
    kf = build_model("keyframe", cfg)
    ck.save_weights(tmp_path / WEIGHTS["keyframe"], kf, {"stage": "keyframe"})
    record_stage(tmp_path, cfg, "keyframe", {"wall_s": 1.0})
    run = load_run(tmp_path)
    assert run.cfg == cfg and run.stages == ["keyframe"] and run.propagator is None
    assert all(torch.equal(a, b) for a, b in zip(run.keyframe.state_dict().values(), kf.state_dict().values()))
    assert json.loads((tmp_path / "config.json").read_text())["git"].keys() >= {"revision"}
    with pytest.raises(WeightsError, match="no trained propagator"):
        run.require("propagator")


@pytest.mark.slow
def test_cli_trains_a_stage_into_a_run_folder(tmp_path, synth_root, capsys):
    from coprop.cli import main

    run_dir = tmp_path / "run"
    rc = main(["train", "keyframe", "--data-root", str(synth_root), "--subset", "ms3", "--run-dir", str(run_dir),
               "--preset", "smoke", "--epochs", "1", "--max-steps-per-epoch", "1", "--val-limit", "1",
               "--device", "cpu"])
    assert rc == 0
    assert "keyframe.safetensors" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["stages"]["keyframe"]["params"]["max_steps_per_epoch"] == 1
    assert config["data"]["subset"] == "ms3" and config["model"]["num_classes"] == 1
    with pytest.raises(SystemExit):                      # argparse rejects an unknown preset
        main(["train", "keyframe", "--preset", "nope"])
    assert main(["train", "propagator", "--data-root", str(synth_root), "--subset", "s4", "--run-dir",
                 str(tmp_path / "s4"), "--preset", "smoke"]) == 1
    assert "S4's train split annotates frame 0 only" in capsys.readouterr().err
