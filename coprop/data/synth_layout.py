"""How the synthetic benchmark lands on disk: the official AVSBench file layouts (reference/avsbench.md §2).

S4 frames/masks are PNG (objects stored as 255), MS3 likewise with its '.mp4_k' frame names, AVSS frames JPEG
with palette-RGB (labels_rgb) and index (labels_semantic) masks; audio is 16-bit 16 kHz mono wav everywhere.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
import numpy as np

from coprop.data.images import voc_palette  # one palette for the writer and the reader
from coprop.data.synth_clip import Job, Made
from coprop.data.synth_sound import SR




def _save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, compress_level=4)


def _save_jpg(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=92)


def _save_wav(path: Path, wave: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, SR, subtype="PCM_16")


def _write_s4(root: Path, job: Job, m: Made) -> list:
    cat = m.meta()["sounding"][0][0]
    d = root / "s4_data"
    masks = m.binary_masks()
    for k in range(job.num_frames):
        _save_png(d / "visual_frames" / job.split / cat / job.name / f"{job.name}_{k + 1}.png", m.frames[k])
        if job.split != "train" or k == 0:  # S4 train: first frame annotated only
            _save_png(d / "gt_masks" / job.split / cat / job.name / f"{job.name}_{k + 1}.png",
                      (masks[k] * 255).astype(np.uint8))
    _save_wav(d / "audio_wav" / job.split / cat / f"{job.name}.wav", m.waveform)
    return [job.name, 0, cat, job.split]


def _write_ms3(root: Path, job: Job, m: Made) -> list:
    d = root / "ms3_data"
    masks = m.binary_masks()
    for k in range(job.num_frames):
        _save_png(d / "visual_frames" / job.name / f"{job.name}.mp4_{k + 1}.png", m.frames[k])
        _save_png(d / "gt_masks" / job.split / job.name / f"{job.name}_{k + 1}.png", (masks[k] * 255).astype(np.uint8))
    _save_wav(d / "audio_wav" / job.split / f"{job.name}.wav", m.waveform)
    return [job.name, job.split]


def _write_avss(root: Path, job: Job, m: Made) -> list:
    d = root / job.label / job.name
    sem = m.semantic_masks()
    pal = voc_palette(256)
    n_masks = 1 if (job.label == "v1s" and job.split == "train") else job.num_frames
    for k in range(job.num_frames):
        _save_jpg(d / "frames" / f"{k}.jpg", m.frames[k])
        if k < n_masks:
            _save_png(d / "labels_semantic" / f"{k}.png", sem[k].astype(np.uint8))
            _save_png(d / "labels_rgb" / f"{k}.png", pal[sem[k]])
    _save_wav(d / "audio.wav", m.waveform)
    a_obj = "_".join(sorted({c for frame in m.meta()["sounding"] for c in frame})) or "none"
    return [job.name, job.name, 0, 0, a_obj, job.split, job.label]


WRITERS = {"s4": _write_s4, "ms3": _write_ms3, "avss": _write_avss}
CSV_FILES = {
    "s4": ("s4_meta_data.csv", ["name", "start", "category", "split"]),
    "ms3": ("ms3_meta_data.csv", ["video_id", "split"]),
    "avss": ("metadata.csv", ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]),
}


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue())
