"""The synthetic benchmark: official layouts, read back by the AVSBench reader, deterministic, and a real problem."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from coprop.data import synth
from coprop.data.synth_scene import CATEGORIES, plan_clip, render
from coprop.data.synth_sound import RECIPES, SR, mix


def _smoke_jobs(subset=None):
    jobs = synth._jobs(synth.PRESETS["smoke"], 0)
    return [j for j in jobs if subset is None or j.subset == subset]


def test_official_layout_files(synth_root):
    s4 = synth_root / "Single-source"
    assert (s4 / "s4_meta_data.csv").read_text().splitlines()[0] == "name,start,category,split"
    for job in _smoke_jobs("s4"):
        cat = next(p.name for p in (s4 / "s4_data/visual_frames" / job.split).iterdir()
                   if (p / job.name).is_dir())
        frames = sorted((s4 / "s4_data/visual_frames" / job.split / cat / job.name).iterdir())
        masks = sorted((s4 / "s4_data/gt_masks" / job.split / cat / job.name).iterdir())
        assert [p.name for p in frames] == [f"{job.name}_{k}.png" for k in range(1, 6)]
        assert [p.name for p in masks] == ([f"{job.name}_1.png"] if job.split == "train"
                                           else [f"{job.name}_{k}.png" for k in range(1, 6)])
        assert (s4 / "s4_data/audio_wav" / job.split / cat / f"{job.name}.wav").is_file()
    ms3 = synth_root / "Multi-sources/ms3_data"
    job = _smoke_jobs("ms3")[0]
    assert (ms3 / "visual_frames" / job.name / f"{job.name}.mp4_5.png").is_file()
    assert (ms3 / "gt_masks" / job.split / job.name / f"{job.name}_5.png").is_file()
    avss = synth_root / "AVSS"
    label2idx = json.loads((avss / "label2idx.json").read_text())
    assert label2idx == {n: i + 1 for i, n in enumerate(["background", *CATEGORIES])}
    header = (avss / "metadata.csv").read_text().splitlines()[0]
    assert header == "vid,uid,s_min,s_sec,a_obj,split,label"
    for job in _smoke_jobs("avss"):
        d = avss / job.label / job.name
        assert len(list((d / "frames").glob("*.jpg"))) == job.num_frames == {"v1s": 5, "v1m": 5, "v2": 10}[job.label]
        n = 1 if (job.label, job.split) == ("v1s", "train") else job.num_frames
        assert len(list((d / "labels_rgb").glob("*.png"))) == n == len(list((d / "labels_semantic").glob("*.png")))
    meta = json.loads((synth_root / "Multi-sources" / synth.META).read_text())
    assert set(meta) == {j.name for j in _smoke_jobs("ms3")}
    for m in meta.values():
        assert m["synthetic"] and len(m["sounding"]) == m["num_frames"]
        assert set(m["categories_visible"]) >= {c for f in m["sounding"] for c in f}


def test_palette_is_pascal_voc():
    pal = synth.voc_palette(256)
    assert pal[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert len({tuple(c) for c in pal[:71]}) == 71


@pytest.mark.parametrize("subset", ["s4", "ms3", "avss"])
def test_reader_round_trip(synth_root, subset):
    """The AVSBench reader gives back exactly the masks, audio length and meta the generator made."""
    from coprop.data import open_dataset

    size = synth.PRESETS["smoke"].size
    for split in synth.SPLITS:
        ds = open_dataset(synth_root, subset, split)
        jobs = {j.name: j for j in _smoke_jobs(subset) if j.split == split}
        assert sorted(ds.names) == sorted(jobs)
        for clip in ds:
            job = jobs[clip.name]
            made = synth.make(job, size, 0)
            want = made.semantic_masks() if subset == "avss" else made.binary_masks()
            avail = clip.gt_available
            assert clip.frames.shape == (job.num_frames, size, size, 3)
            assert np.array_equal(clip.masks[avail], want[avail])
            assert avail.sum() == (1 if split == "train" and job.kind == "single" else job.num_frames)
            assert clip.waveform.shape == (job.num_frames * SR,)
            assert clip.meta["synthetic"] is True and clip.meta["sounding"] == made.meta()["sounding"]
            if subset != "avss":  # lossless PNG frames
                assert np.array_equal(clip.frames, made.frames)
            # masks are the union of sounding objects: nothing is marked while nothing sounds
            for t in np.flatnonzero(avail):
                if not clip.meta["sounding"][t]:
                    assert clip.masks[t].max() == 0


def test_deterministic_and_seeded():
    job = _smoke_jobs("ms3")[1]
    a, b, c = synth.make(job, 32, 0), synth.make(job, 32, 0), synth.make(job, 32, 1)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.waveform, b.waveform)
    assert a.meta() == b.meta()
    assert not np.array_equal(a.waveform, c.waveform)


def test_silent_objects_look_exactly_like_sounding_ones():
    plan = plan_clip("multi", 5, np.random.default_rng(3))
    frames1, inst1 = render(plan, 48, np.random.default_rng(7))
    plan.events = [(0.0, 5.0, [i for i in range(len(plan.objects))])]   # now everybody sounds
    frames2, inst2 = render(plan, 48, np.random.default_rng(7))
    assert np.array_equal(frames1, frames2) and np.array_equal(inst1, inst2)


def test_conversions_at_any_instant_and_mixed_windows():
    """Changes fall between frame instants, so some 0.96 s audio windows hold two different sounding states."""
    rng = np.random.default_rng(0)
    plans = [plan_clip("multi", 5, rng) for _ in range(60)]
    bounds = [t0 for p in plans for t0, _, _ in p.events[1:]]
    assert len(bounds) > 20 and not any(float(b).is_integer() for b in bounds)
    mixed = sum(any(0.96 * k < b < 0.96 * (k + 1) for b in (t0 for t0, _, _ in p.events[1:]) for k in range(5))
                for p in plans)
    assert mixed > 10
    states = [tuple(w) for p in plans for _, _, w in p.events]
    assert () in states and any(len(s) == 2 for s in states)   # silences and two sources at once occur
    with_change = sum(bool(synth.Made(p, None, None, None).meta()["conversions"]) for p in plans)
    assert 0.3 < with_change / len(plans) < 0.9


def test_categories_are_recognisable_by_ear_despite_jitter():
    """Nearest-centroid on the mean log-spectrum separates the categories across random draws."""
    def feature(x):
        spec = np.abs(np.fft.rfft(x.reshape(-1, 400) * np.hanning(400), axis=1))
        return np.log(spec[:, :200].reshape(spec.shape[0], 40, 5).mean(axis=(0, 2)) + 1e-4)

    rng = np.random.default_rng(0)
    feats = {c: [feature(RECIPES[c](2 * SR, rng)) for _ in range(4)] for c in CATEGORIES}
    correct = 0
    for c in CATEGORIES:
        for i in range(4):
            cents = {d: np.mean([f for j, f in enumerate(feats[d]) if (d, j) != (c, i)], 0) for d in CATEGORIES}
            correct += min(cents, key=lambda d: np.linalg.norm(feats[c][i] - cents[d])) == c
    assert correct / (4 * len(CATEGORIES)) >= 0.9


def test_mix_silence_is_quiet_and_sources_are_loud():
    wave = mix(4.0, [("dog", [(0.0, 1.5)]), ("siren", [(2.5, 4.0)])], np.random.default_rng(0))
    rms = lambda a, b: float(np.sqrt(np.mean(wave[int(a * SR):int(b * SR)] ** 2)))  # noqa: E731
    assert wave.dtype == np.float32 and wave.shape == (4 * SR,) and np.abs(wave).max() <= 0.95
    # noise floor <= 0.08 * -20 dB; a source >= 0.08 * -11 dB (object -8 dB, span -3 dB): at least 2.8x louder
    assert rms(1.7, 2.3) * 2.5 < min(rms(0.0, 1.5), rms(2.7, 4.0))


def test_long_clips_are_long():
    jobs = synth._jobs(synth.PRESETS["long"], 0)
    job = next(j for j in jobs if j.subset == "ms3")
    assert {j.num_frames for j in jobs if j.subset in ("ms3", "avss")} == {300}
    plan = plan_clip(job.kind, job.num_frames, synth._rng(0, job), change_rate=job.change_rate)
    frames, inst = render(plan, 8, np.random.default_rng(0))   # the 300 s soundtrack is left out: mix is tested above
    assert frames.shape == (300, 8, 8, 3) and inst.shape == (300, 8, 8)
    conversions = synth.Made(plan, None, None, None).meta()["conversions"]
    assert 10 <= len(conversions) <= 60 and max(conversions) > 200   # changes all along the clip (rate 0.1/s)


def test_ensure_generates_once_atomically_and_cli_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COPROP_DATA", str(tmp_path))
    stale = tmp_path / "synthetic-smoke-s0"
    (stale / "Single-source").mkdir(parents=True)            # a half tree from a crash: no manifest
    root = synth.ensure("smoke", 0, progress_bar=False)
    assert root == stale and (root / synth.MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic-smoke-s0"]   # no temp dirs left
    stamp = (root / synth.MANIFEST).stat().st_mtime_ns
    assert synth.resolve_root("", "smoke", 0) == root
    assert (root / synth.MANIFEST).stat().st_mtime_ns == stamp                    # reused, not regenerated
    assert synth.resolve_root(str(tmp_path), "smoke", 0) == tmp_path
    from coprop.errors import ConfigError, DataError

    with pytest.raises(DataError):
        synth.resolve_root(str(tmp_path / "nope"), "smoke", 0)
    with pytest.raises(ConfigError):
        synth.generate(tmp_path / "x", preset="huge")
    assert synth.cli(["--preset", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "Multi-sources" in out and "train   3" in out and "MB on disk" in out
    assert synth.is_synthetic(root) and synth.is_synthetic(root / "AVSS") and not synth.is_synthetic(tmp_path)
    assert os.environ["COPROP_DATA"] == str(tmp_path)


def test_audio_windows_see_the_neighbouring_source():
    events = [[0.0, 1.5, ["dog"]], [1.5, 5.0, ["car"]]]
    w = synth.audio_windows(events, 5)
    assert w[0] == {"mixed": False, "dominant": ["dog"]}
    # frame 1 sits at 1.94 s (GT: car) but its window [0.96, 1.92) is mostly dog
    assert w[1] == {"mixed": True, "dominant": ["dog"]}
    assert [x["dominant"] for x in w[2:]] == [["car"]] * 3


def test_train_splits_scale_alike_and_larger_splits_extend_smaller_ones():
    base = synth.PRESETS["smoke"]
    big = synth.with_train_clips(base, 7)
    assert big.s4["train"] == big.ms3["train"] == sum(big.avss["train"].values()) == 7
    assert (big.s4["test"], big.ms3["val"], big.avss["val"]) == (base.s4["test"], base.ms3["val"], base.avss["val"])
    small_jobs = {(j.subset, j.split, j.name): j for j in synth._jobs(base, 0)}
    shared = [j for j in synth._jobs(big, 0) if (j.subset, j.split, j.name) in small_jobs and j.subset == "ms3"]
    assert len(shared) == len([k for k in small_jobs if k[0] == "ms3"])
    for job in shared[:2]:       # the same name is the same clip, whatever the split size
        a, b = synth.make(job, 32, 0), synth.make(small_jobs[(job.subset, job.split, job.name)], 32, 0)
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.waveform, b.waveform)


def test_parallel_generation_writes_the_same_files(tmp_path, synth_root):
    # the session fixture generates with the default worker count (2 processes on 2 cores); this one serially
    out = synth.generate(tmp_path / "serial", "smoke", 0, progress_bar=False, workers=1)
    for sub in ("Multi-sources/ms3_meta_data.csv", "Multi-sources/" + synth.META, "AVSS/metadata.csv"):
        assert (out / sub).read_bytes() == (synth_root / sub).read_bytes()
    job = _smoke_jobs("ms3")[0]
    rel = f"Multi-sources/ms3_data/visual_frames/{job.name}/{job.name}.mp4_1.png"
    assert (out / rel).read_bytes() == (synth_root / rel).read_bytes()
