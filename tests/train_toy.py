"""A tiny model, dataset and loss for the training-infrastructure tests (checkpoint, resume, kill, DDP).

Deliberately uses dropout and per-sample random augmentation, so a resume that restored the wrong RNG
state or data position would change the final weights.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coprop.train.order import sample_rng


class ToyNet(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.drop = nn.Dropout(0.3)
        self.conv2 = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.drop(F.relu(self.conv1(x))))


class ToyData(torch.utils.data.Dataset):
    """n images with a square 'object' to segment; flips drawn per (seed, epoch, index)."""

    def __init__(self, n: int = 24, size: int = 16, seed: int = 0):
        g = np.random.default_rng(1234)
        self.images = g.normal(size=(n, 3, size, size)).astype(np.float32)
        self.masks = np.zeros((n, size, size), np.float32)
        for i in range(n):
            y, x = g.integers(0, size // 2, 2)
            self.masks[i, y:y + size // 2, x:x + size // 2] = 1
            self.images[i, 0] += 2 * self.masks[i]
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img, m = self.images[i], self.masks[i]
        if sample_rng(self.seed, self.epoch, i).random() < 0.5:
            img, m = img[..., ::-1], m[..., ::-1]
        return {"image": torch.from_numpy(img.copy()), "mask": torch.from_numpy(m.copy())}


def toy_loss(model, batch):
    return F.binary_cross_entropy_with_logits(model(batch["image"])[:, 0], batch["mask"])


def toy_eval(model):
    data = ToyData()
    x = torch.from_numpy(data.images)
    pred = model(x)[:, 0] > 0
    gt = torch.from_numpy(data.masks) > 0
    inter = (pred & gt).sum().item()
    union = (pred | gt).sum().item()
    return {"J": inter / max(union, 1)}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_toy(out_dir, epochs=3, batch_size=4, checkpoint_every=2, seed=0, resume=True, on_step_end=None,
            step_sleep=0.0, evaluate=True, max_steps_per_epoch=None):
    """Build, train and return (FitResult). Used in-process and from subprocess scripts."""
    import time

    from coprop.train.loop import TrainParams, fit, seed_everything

    seed_everything(seed)
    model = ToyNet()

    def loss_fn(m, b):
        if step_sleep:
            time.sleep(step_sleep)
        return toy_loss(m, b)

    p = TrainParams(epochs=epochs, batch_size=batch_size, lr=3e-3, checkpoint_every=checkpoint_every, seed=seed,
                    resume=resume, scheduler="cosine", warmup_steps=2,
                    max_steps_per_epoch=max_steps_per_epoch)
    return fit(model, ToyData(seed=seed), loss_fn, p, out_dir, "toy", evaluate=toy_eval if evaluate else None,
               on_step_end=on_step_end)


if __name__ == "__main__":
    # python train_toy.py OUT_DIR [STEP_SLEEP]: train and write the final weights to OUT_DIR/final.safetensors
    from coprop.train.checkpoint import save_weights

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    res = run_toy(out, step_sleep=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    save_weights(out / "final.safetensors", res.model, {"resumed_from": res.resumed_from})
