"""Pre-training of the tiny audio encoder as a frame-level sound classifier (the stand-in for VGGish's AudioSet
pre-training, paper 4.2).

The paper's models hear through VGGish, pre-trained to tell sound classes apart before any segmentation
training. The tiny CPU config has no such weights, so its models had to learn to hear and to segment at once
from the segmentation loss alone. This stage gives the tiny encoder the same head start on the training split:
every training frame's log-mel example is classified (multi-label, binary cross-entropy) into the categories
audible in its 0.96 s window -- read from the synthetic benchmark's sounding schedule, so it only applies where
that schedule exists. The encoder's weights are written as a file that ``ModelConfig.audio_weights`` points at;
every model of the suite then starts its audio encoder from it (and keeps training it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

HOP_S = 0.96          # VGGish example hop: frame k's window is [0.96 k, 0.96 (k + 1)) s
MIN_OVERLAP_S = 0.1   # a source audible for less than this in a window does not count for it


def window_targets(clip, categories: Sequence[str]) -> np.ndarray | None:
    """float32 [T, C]: 1 where category c sounds for at least MIN_OVERLAP_S in frame t's audio window (the
    synthetic schedule ``clip.meta['events']``: [t0, t1, [names]] in seconds); None without a schedule."""
    events = clip.meta.get("events")
    if events is None:
        return None
    out = np.zeros((clip.num_frames, len(categories)), np.float32)
    index = {c: i for i, c in enumerate(categories)}
    for k in range(clip.num_frames):
        a, b = HOP_S * k, HOP_S * (k + 1)
        for t0, t1, names in events:
            if min(t1, b) - max(t0, a) >= MIN_OVERLAP_S:
                for n in names:
                    out[k, index[n]] = 1.0
    return out


class _Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, dim: int, num_classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(2 * dim, num_classes)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        tokens, pooled = self.encoder(logmel)
        return self.head(torch.cat([pooled, tokens.max(1).values], -1))


def pretrain_audio_encoder(cfg, audio: np.ndarray, targets: np.ndarray, path: str | Path, steps: int = 400,
                           batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                           val: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Train ``cfg``'s tiny audio encoder on log-mel examples ``audio`` float32 [N,1,96,64] with multi-hot
    ``targets`` [N,C]; write its weights (TinyAudioEncoder keys) to ``path`` (safetensors, atomically) and return
    {loss, val_f1 (micro F1 at 0.5 on ``val`` = (audio, targets)), seconds}. Deterministic for a seed."""
    from safetensors.torch import save_file

    from coprop.io import atomic_path
    from coprop.models.audio_encoder import TinyAudioEncoder
    from coprop.models.common import cpu_layout

    if cfg.audio_encoder != "tiny":
        raise ValueError(f"only the tiny audio encoder is pre-trained here (config has {cfg.audio_encoder!r})")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    enc = TinyAudioEncoder(cfg.dim, cfg.audio_tokens)
    net = cpu_layout(_Classifier(enc, cfg.dim, targets.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)   # linear warm-up, then cosine decay to 1 % of lr
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: (i + 1) / warm if i < warm else
                                              0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (i - warm) / max(1, steps - warm))))
    rng = np.random.default_rng([seed, 77])
    loss_fn = nn.BCEWithLogitsLoss()
    x_all, y_all = torch.from_numpy(audio), torch.from_numpy(targets)
    net.train()
    losses = []
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x_all), batch_size))
        loss = loss_fn(net(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    net.eval()
    out: dict[str, Any] = {"loss": float(np.mean(losses[-20:])), "steps": steps}
    if val is not None and len(val[0]):
        with torch.no_grad():
            pred = torch.cat([net(torch.from_numpy(val[0][i:i + 256])) for i in range(0, len(val[0]), 256)]) > 0
        y = torch.from_numpy(val[1]) > 0.5
        tp = float((pred & y).sum())
        out["val_f1"] = 2 * tp / max(1.0, float(pred.sum() + y.sum()))
    tensors = {k: v.detach().contiguous() for k, v in enc.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp))
    out["seconds"] = time.perf_counter() - t0
    return out


def frames_and_targets(prepared: Sequence, clips: Sequence, categories: Sequence[str]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Stack the log-mel examples of every frame of ``prepared`` clips whose raw ``clips`` have a schedule,
    with their window targets: (float32 [N,1,96,64], float32 [N,C])."""
    xs, ys = [], []
    for p, c in zip(prepared, clips):
        y = window_targets(c, categories)
        if y is not None:
            xs.append(p.audio)
            ys.append(y)
    if not xs:
        return np.zeros((0, 1, 96, 64), np.float32), np.zeros((0, len(categories)), np.float32)
    return np.concatenate(xs), np.concatenate(ys)
