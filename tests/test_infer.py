"""coprop infer on the real fixture clips with a tiny run folder built here, and its one-line errors."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image

from coprop import cli
from coprop.infer import infer


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder as coprop.train writes it (config.json + safetensors), with untrained 32 px models."""
    from coprop.models.config import get_config
    from coprop.train.checkpoint import save_weights
    from coprop.train.run import WEIGHTS, build_model, record_stage

    run = tmp_path_factory.mktemp("run") / "tiny"
    cfg = get_config("tiny", image_size=32)
    for stage in ("keyframe", "propagator"):
        model = build_model(stage, cfg)
        save_weights(run / WEIGHTS[stage], model, {"stage": stage, "model": cfg.to_dict()})
        record_stage(run, cfg, stage, {"note": "untrained, built by tests/test_infer.py"})
    return run


def _streams(path):
    with av.open(str(path)) as c:
        return sorted(s.type for s in c.streams)


def test_every_real_clip(real_clips, tiny_run, tmp_path):
    for video in real_clips:
        out = tmp_path / video.stem
        res = infer(video, tiny_run, out, fps=1.0, source="cosine", echo=lambda *_: None)
        T = res["frames"]
        assert T == 5
        pngs = sorted((out / "masks").glob("frame_*.png"))
        assert len(pngs) == T
        with Image.open(pngs[0]) as im:
            with av.open(str(video)) as c:
                vs = c.streams.video[0]
                assert im.size == (vs.codec_context.width, vs.codec_context.height)
            assert set(np.unique(np.asarray(im))) <= {0, 255}
        assert _streams(out / "overlay.mp4") == ["audio", "video"]       # the original sound is kept
        cp = json.loads((out / "control_points.json").read_text())
        assert len(cp["control_points"]) == T and cp["control_points"][0] == 1
        assert cp["segments"][0][0] == 0 and cp["segments"][-1][1] == T
        timings = json.loads((out / "timings.json").read_text())
        assert timings["total_s"] >= timings["segmentation_s"] > 0 and timings["frames"] == T


def test_learned_source_with_training_data(real_clips, tiny_run, tmp_path, synth_root):
    code = cli.main(["infer", str(real_clips[0]), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o"),
                     "--source", "learned", "--train-data", str(synth_root)])
    assert code == 0
    assert json.loads((tmp_path / "o" / "control_points.json").read_text())["source"] == "learned"


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_checkpoint(real_clips, tmp_path, capsys):
    err = _one_line_error(capsys, ["infer", str(real_clips[0]), "--checkpoint", str(tmp_path / "nope"),
                                   "--out", str(tmp_path / "o")])
    assert "nope" in err and "coprop demo" in err


def test_no_audio_track(tiny_run, tmp_path, capsys):
    from coprop.data.media import write_video

    silent = write_video(tmp_path / "silent.mp4", np.zeros((3, 32, 32, 3), np.uint8), fps=1.0)
    err = _one_line_error(capsys, ["infer", str(silent), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o")])
    assert "silent.mp4" in err and "audio" in err


def test_unreadable_file(tiny_run, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    err = _one_line_error(capsys, ["infer", str(bad), "--checkpoint", str(tiny_run), "--out", str(tmp_path / "o")])
    assert "broken.mp4" in err
