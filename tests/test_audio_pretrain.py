"""Pre-training of the tiny audio encoder on the synthetic schedule: targets per audio window, a loadable file."""
from __future__ import annotations

import numpy as np
import torch

from coprop.data.clip import Clip, avsbench_frame_times
from coprop.models.audio_encoder import build_audio_encoder
from coprop.models.config import get_config
from coprop.train.audio_pretrain import frames_and_targets, pretrain_audio_encoder, window_targets


def _clip(events):
    T = 3
    return Clip(np.zeros((T, 8, 8, 3), np.uint8), np.zeros(16000 * T, np.float32), avsbench_frame_times(T),
                meta={"name": "c", "events": events})


def test_window_targets_follow_the_schedule_and_its_overlap_rule():
    cats = ["dog", "drum", "piano"]
    # dog until 1.0 s, then drum; piano joins at 2.85 s (only 0.03 s inside frame 2's window [1.92, 2.88))
    y = window_targets(_clip([[0.0, 1.0, ["dog"]], [1.0, 2.85, ["drum"]], [2.85, 3.0, ["drum", "piano"]]]), cats)
    assert y.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    # frame 1's window [0.96, 1.92) holds dog for 0.04 s only: below MIN_OVERLAP_S, not counted
    assert window_targets(Clip(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(16000, np.float32),
                               avsbench_frame_times(1), meta={"name": "x"}), cats) is None


def test_pretrained_encoder_learns_a_separable_toy_task_and_loads_by_config(tmp_path):
    rng = np.random.default_rng(0)
    n = 64
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    x = rng.normal(-8, 0.3, (n, 1, 96, 64)).astype(np.float32)
    x[y[:, 1] > 0, :, 40:60] += 6.0              # class 1: a loud band
    cfg = get_config("tiny", image_size=64)
    path = tmp_path / "audio.safetensors"
    res = pretrain_audio_encoder(cfg, x, y, path, steps=60, batch_size=16, lr=3e-3, val=(x, y))
    assert res["val_f1"] > 0.9 and path.is_file()
    enc = build_audio_encoder(cfg.replace(audio_weights=str(path)))
    from safetensors.torch import load_file

    saved = load_file(str(path))
    assert all(torch.equal(enc.state_dict()[k], v) for k, v in saved.items())


def test_frames_and_targets_skips_clips_without_a_schedule():
    from coprop.train.data import PreparedClip

    p = PreparedClip("c", np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 1, 96, 64), np.float32),
                     np.zeros((3, 8, 8), np.uint8), np.ones(3, bool), [1, 0, 0])
    x, y = frames_and_targets([p, p], [_clip([[0.0, 3.0, ["dog"]]]), Clip(
        np.zeros((3, 8, 8, 3), np.uint8), np.zeros(48000, np.float32), avsbench_frame_times(3), meta={})], ["dog"])
    assert x.shape == (3, 1, 96, 64) and y.tolist() == [[1], [1], [1]]
