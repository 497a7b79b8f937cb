"""Helpers shared by the model tests: a two-source synthetic scene, a train-until-J loop, a 1-thread fixture."""
from __future__ import annotations

import pytest
import torch

from coprop.metrics import binary_jaccard
from coprop.models.losses import segmentation_loss


@pytest.fixture
def one_thread():
    """Two OpenMP threads on a loaded 2-core box can be 30x slower than one; training loops run on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def two_source_scene(S: int = 64):
    """One image with a red and a blue disk; two audio examples (low band / high band) each naming one."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    left = (xx - S * 0.28) ** 2 + (yy - S / 2) ** 2 < (S * 0.16) ** 2
    right = (xx - S * 0.72) ** 2 + (yy - S / 2) ** 2 < (S * 0.16) ** 2
    img = torch.rand(3, S, S, generator=g) * 0.3
    img[0][left] += 0.7
    img[2][right] += 0.7
    img = (img - 0.4) / 0.25

    def tone(lo):
        a = torch.full((1, 96, 64), -4.6)
        a[:, :, lo:lo + 10] += 4 + 0.2 * torch.randn(96, 10, generator=g)
        return a

    return img, torch.stack([tone(5), tone(40)]), torch.stack([left, right]).long()


def fit(model, inputs, target, steps, lr=2e-3, check_every=10, goal=0.9):
    """Train until every frame's J > goal (checked in eval mode); returns the last J."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr)
    j = torch.zeros(1)
    for step in range(steps):
        model.train()
        loss = segmentation_loss(model(*inputs), target, model.cfg.num_classes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % check_every == check_every - 1:
            model.eval()
            with torch.no_grad():
                logits = model(*inputs)
            j = binary_jaccard(logits.flatten(0, -4)[:, 0], target.flatten(0, -3))
            if j.min() > goal:
                break
    return j
