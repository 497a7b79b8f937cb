"""coprop infer on the real fixture clips with a tiny run folder built here, and its one-line errors; videos made
here for issue 11: rotated phone video, streaming bound, relative --checkpoint, bad numbers, soundtrack, umask,
synthetic-checkpoint warning."""
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


# ------------------------------------------------------------------------------- issue 11: videos made here
def _make_video(path, size=(160, 96), seconds=3.0, rate=10, audio_rate=16000, layout="mono", rotation=None,
                tones=(440.0, 660.0)):
    """An h264 + aac mp4 made with PyAV: a white band over the left quarter of a black picture; channel c of
    the soundtrack is a sine at tones[c]. ``rotation``: display matrix angle (PyAV convention, -90 = phones'
    "rotate 90 degrees clockwise")."""
    from fractions import Fraction

    W, H = size
    with av.open(str(path), "w") as o:
        vs = o.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        if rotation is not None:
            vs.set_display_rotation(rotation)
        a = o.add_stream("aac", rate=audio_rate, layout=layout)
        img = np.zeros((H, W, 3), np.uint8)
        img[:, : W // 4] = 255
        for i in range(int(seconds * rate)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, rate)
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
        n = int(seconds * audio_rate)
        t = np.arange(n) / audio_rate
        chans = len(av.AudioLayout(layout).channels)
        wav = np.stack([0.3 * np.sin(2 * np.pi * tones[c % len(tones)] * t) for c in range(chans)]).astype(np.float32)
        for s in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wav[:, s:s + 1024]), format="fltp", layout=layout)
            af.sample_rate, af.pts, af.time_base = audio_rate, s, Fraction(1, audio_rate)
            o.mux(a.encode(af))
        o.mux(a.encode(None))
    return path


def test_rotated_phone_video_is_segmented_upright(tiny_run, tmp_path):
    video = _make_video(tmp_path / "phone.mp4", rotation=-90)
    with av.open(str(video)) as c:                             # the file really carries the display matrix
        first = next(c.decode(video=0))
        assert (first.width, first.height, first.rotation) == (160, 96, -90)
    out = tmp_path / "o"
    res = infer(video, tiny_run, out, fps=1.0, source="first-frame", echo=lambda *_: None)
    assert res["frames"] == 3 and res["rotation_degrees"] == -90
    for png in sorted((out / "masks").glob("frame_*.png")):
        with Image.open(png) as im:
            assert im.size == (96, 160)                        # as played: 96 wide, 160 tall
    cp = json.loads((out / "control_points.json").read_text())
    assert cp["rotation_degrees"] == -90 and cp["display_size_wh"] == [96, 160]
    with av.open(str(out / "overlay.mp4")) as c:
        f = next(c.decode(video=0))
        assert (f.width, f.height) == (96, 160) and not f.rotation
        img = f.to_ndarray(format="rgb24").astype(float)
    # turned clockwise, the band over the left quarter lies over the top quarter of the picture as played
    assert img[:30].mean() > 150 and img[50:].mean() < 100


def test_streaming_writes_each_frame_before_decoding_far_ahead():
    from coprop.infer_stream import run_stream

    Q = 2
    written: list[int] = []
    lag = 2 * Q + 3                                             # the bound the module documents

    def frames():
        for k in range(40):
            if k >= lag:
                assert k - lag in written, (k, written[-3:])
            yield k

    stats = run_stream(frames(), lambda k: k * 10, lambda k, r: written.append(k) if r == k * 10 else None,
                       queue_size=Q)
    assert written == list(range(40)) and stats.frames == 40


def test_stream_errors_are_raised_and_stop_the_threads():
    from coprop.infer_stream import run_stream

    def frames():
        yield from range(3)
        raise RuntimeError("decoder broke at 3")

    with pytest.raises(RuntimeError, match="decoder broke at 3"):
        run_stream(frames(), lambda k: k, lambda k, r: None, queue_size=1)

    def bad_write(k, r):
        if k == 5:
            raise OSError("disk full at 5")

    with pytest.raises(OSError, match="disk full at 5"):
        run_stream(iter(range(1000)), lambda k: k, bad_write, queue_size=1)


def test_relative_checkpoint_from_the_current_folder(tiny_run, tmp_path, monkeypatch, capsys):
    import shutil

    from coprop.infer import resolve_checkpoint
    from coprop.paths import repo_root

    video = _make_video(tmp_path / "v.mp4", seconds=2.0)
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work / "myrun")
    monkeypatch.chdir(work)
    for name in ("myrun", "./myrun"):
        assert resolve_checkpoint(name)[0] == work / "myrun"
    assert cli.main(["infer", str(video), "--checkpoint", "myrun", "--out", "o", "--source", "first-frame"]) == 0
    assert (work / "o" / "masks" / "frame_0000.png").is_file()
    err = _one_line_error(capsys, ["infer", str(video), "--checkpoint", "nosuchrun", "--out", "o2"])
    assert str(work / "nosuchrun") in err and str(repo_root() / "nosuchrun") in err


@pytest.mark.parametrize("args, expected", [
    (["--fps", "0"], "argument --fps: must be a number > 0, got '0'"),
    (["--fps", "-1"], "argument --fps: must be a number > 0, got '-1'"),
    (["--max-seconds", "0.5"], "the first frame is taken at 0.938 s at --fps 1"),
    (["--max-seconds", "0.3", "--fps", "2"], "the first frame is taken at 0.469 s at --fps 2"),
])
def test_bad_numbers_exit_2_with_one_line(tmp_path, capsys, args, expected):
    with pytest.raises(SystemExit) as e:
        cli.main(["infer", str(tmp_path / "v.mp4"), "--checkpoint", "x", "--out", str(tmp_path / "o"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


def test_overlay_keeps_the_original_soundtrack(tiny_run, tmp_path):
    video = _make_video(tmp_path / "stereo48k.mp4", seconds=3.0, audio_rate=48000, layout="stereo")
    out = tmp_path / "o"
    infer(video, tiny_run, out, fps=2.0, source="first-frame", echo=lambda *_: None)
    with av.open(str(out / "overlay.mp4")) as c:
        a = c.streams.audio[0]
        assert (a.rate, a.layout.name, len(a.layout.channels)) == (48000, "stereo", 2)
        wav = np.concatenate([f.to_ndarray() for f in c.decode(a)], axis=1)
    assert wav.shape[0] == 2 and abs(wav.shape[1] / 48000 - 3.0) < 0.05
    for ch, tone in enumerate((440.0, 660.0)):                 # each channel keeps its own tone
        spec = np.abs(np.fft.rfft(wav[ch, 4800:-4800]))
        peak = np.argmax(spec) * 48000 / (wav.shape[1] - 9600)
        assert abs(peak - tone) < 5, (ch, peak)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_follow_the_umask(tiny_run, tmp_path, umask, mode):
    import os
    import stat

    video = _make_video(tmp_path / "v.mp4", seconds=2.0)
    old = os.umask(umask)
    try:
        infer(video, tiny_run, tmp_path / "o", fps=1.0, source="first-frame", echo=lambda *_: None)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "o").rglob("*") if p.is_file()]
    assert len(files) == 5                                      # 2 masks, overlay, 2 json
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(mode)}


def test_training_records_that_its_data_is_synthetic(synth_root):
    from coprop.data import open_dataset
    from coprop.train.stages import data_info

    assert data_info(open_dataset(synth_root, "ms3", "train")).description["synthetic"] is True


def test_synthetic_checkpoint_warns_once_on_a_real_video(tiny_run, tmp_path, synth_root):
    import shutil

    from coprop.infer import trained_on_synthetic

    run = tmp_path / "synthrun"
    shutil.copytree(tiny_run, run)
    assert trained_on_synthetic(run, None) is None             # the fixture run records no training data
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"] = {"root": str(synth_root / "Multi-sources"), "subset": "ms3"}
    (run / "config.json").write_text(json.dumps(cfg))
    assert trained_on_synthetic(run, None) is True
    video = _make_video(tmp_path / "v.mp4", seconds=2.0)
    said: list[str] = []
    res = infer(video, run, tmp_path / "o", fps=1.0, source="first-frame", echo=lambda *_: None, warn=said.append)
    assert len(said) == 1 and "synthetic benchmark" in said[0] and "v.mp4" in said[0]
    assert json.loads((tmp_path / "o" / "control_points.json").read_text())["warnings"] == said
    said.clear()
    infer(video, tiny_run, tmp_path / "o2", fps=1.0, source="first-frame", echo=lambda *_: None, warn=said.append)
    assert said == [] and res["frames"] == 2
