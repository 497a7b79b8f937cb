"""Build a tiny AVSBench-layout tree by hand (not with the synthetic generator), with its expected contents.

Used by the reader, check-data and bad-input tests. Frames are 32 wide x 24 high so that a transposed
read would show; PNG content is exact, JPEG content approximate.
"""
from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

W, H = 32, 24
SR = 16000
AVSS_CLASSES = ["background", "accordion", "dog", "cat", "man"]


def frame_image(seed: int, t: int) -> np.ndarray:
    """A frame whose pixels encode (seed, t) and position."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([(x * 7 + t * 20) % 256, (y * 9 + seed * 30) % 256, np.full_like(x, 10 * t + seed)], -1)
    return img.astype(np.uint8)


def box_mask(t: int, value: int = 1) -> np.ndarray:
    m = np.zeros((H, W), dtype=np.int64)
    m[2 + t: 10 + t, 3 + 2 * t: 15 + 2 * t] = value
    return m


def tone(seconds: float, freq: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, 1) if channels > 1 else x


def write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    write_png(path, (mask * 255).astype(np.uint8))


def write_wav(path: Path, data: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)


def palette_rgb(ids: np.ndarray) -> np.ndarray:
    """VOC palette colours written out independently of coprop (bit interleaving of the class id)."""
    out = np.zeros((*ids.shape, 3), dtype=np.uint8)
    for cls in np.unique(ids):
        r = g = b = 0
        for j in range(8):
            r |= ((int(cls) >> (3 * j)) & 1) << (7 - j)
            g |= ((int(cls) >> (3 * j + 1)) & 1) << (7 - j)
            b |= ((int(cls) >> (3 * j + 2)) & 1) << (7 - j)
        out[ids == cls] = (r, g, b)
    return out


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def build_tree(root: Path) -> dict:
    """Write S4 (2 clips), MS3 (2 clips) and AVSS (3 clips) under ``root``; return what each clip holds."""
    root = Path(root)
    exp: dict = {"s4": {}, "ms3": {}, "avss": {}}

    # ---- S4: a train clip (first mask only, pkl log-mel too) and a test clip (5 masks, stereo wav)
    s4 = root / "Single-source"
    write_csv(s4 / "s4_meta_data.csv", ["name", "start", "category", "split"],
              [["s4clipA", 0, "dog", "train"], ["s4clipB", 3, "cat", "test"]])
    for seed, (name, cat, split, channels) in enumerate([("s4clipA", "dog", "train", 1),
                                                         ("s4clipB", "cat", "test", 2)]):
        n_gt = 1 if split == "train" else 5
        for t in range(5):
            write_png(s4 / f"s4_data/visual_frames/{split}/{cat}/{name}/{name}_{t + 1}.png", frame_image(seed, t))
            if t < n_gt:
                write_mask_png(s4 / f"s4_data/gt_masks/{split}/{cat}/{name}/{name}_{t + 1}.png", box_mask(t))
        wav = tone(5.0, 440 + 100 * seed, channels=channels)
        write_wav(s4 / f"s4_data/audio_wav/{split}/{cat}/{name}.wav", wav)
        exp["s4"][name] = dict(category=cat, split=split, seed=seed, n_gt=n_gt, wav=wav)
    import torch

    pkl = torch.arange(5 * 96 * 64, dtype=torch.float32).reshape(5, 1, 96, 64) / 1000.0
    path = s4 / "s4_data/audio_log_mel/train/dog/s4clipA.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(pkl.requires_grad_(True), f)
    exp["s4"]["s4clipA"]["pkl"] = pkl.detach().numpy()

    # ---- MS3: header 'video_id' (no 'name' column), frames named {name}.mp4_{k}.png with no split folder
    ms3 = root / "Multi-sources"
    write_csv(ms3 / "ms3_meta_data.csv", ["video_id", "split"], [["ms3vidA", "train"], ["ms3vidB", "val"]])
    for seed, (name, split) in enumerate([("ms3vidA", "train"), ("ms3vidB", "val")], start=5):
        for t in range(5):
            write_png(ms3 / f"ms3_data/visual_frames/{name}/{name}.mp4_{t + 1}.png", frame_image(seed, t))
            # the val clip has an empty-GT frame, as real MS3 does
            mask = box_mask(t) if not (split == "val" and t == 2) else np.zeros((H, W), np.int64)
            write_mask_png(ms3 / f"ms3_data/gt_masks/{split}/{name}/{name}_{t + 1}.png", mask)
        wav = tone(5.0, 300 + 50 * seed)
        write_wav(ms3 / f"ms3_data/audio_wav/{split}/{name}.wav", wav)
        exp["ms3"][name] = dict(split=split, seed=seed, wav=wav)

    # ---- AVSS: v1s train (first label only, rgb), v1m val (labels_semantic only), v2 test (10 frames, 10 s)
    avss = root / "AVSS"
    avss.mkdir(parents=True, exist_ok=True)
    (avss / "label2idx.json").write_text(json.dumps({n: i + 1 for i, n in enumerate(AVSS_CLASSES)}))
    rows = [["vid1", "uid_s", "dog", "train", "v1s"], ["vid2", "uid_m", "cat", "val", "v1m"],
            ["vid3", "uid_v2", "man", "test", "v2"]]
    write_csv(avss / "metadata.csv", ["vid", "uid", "a_obj", "split", "label"], rows)
    for seed, (vid, uid, aobj, split, label) in enumerate(rows, start=10):
        T = 10 if label == "v2" else 5
        n_gt = 1 if (label == "v1s" and split == "train") else T
        cdir = avss / label / uid
        ids = []
        for t in range(T):
            img = frame_image(seed, t)
            (cdir / "frames").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(cdir / "frames" / f"{t}.jpg", quality=95)
            lab = box_mask(t % 5, value=1 + (t + seed) % (len(AVSS_CLASSES) - 1))
            lab[-3:, -3:] = 4
            ids.append(lab)
            if t < n_gt:
                if label == "v1m":
                    write_png(cdir / "labels_semantic" / f"{t}.png", lab.astype(np.uint8))
                else:
                    write_png(cdir / "labels_rgb" / f"{t}.png", palette_rgb(lab))
        wav = tone(T * 1.0, 500 + 20 * seed)
        write_wav(cdir / "audio.wav", wav)
        exp["avss"][uid] = dict(vid=vid, a_obj=aobj, split=split, label=label, seed=seed, T=T, n_gt=n_gt,
                                labels=np.stack(ids), wav=wav)
    return exp
