"""Control-point sources: every way of turning a Clip into its T-long 0/1 list (c[0] = 1) behind one interface.

    src = get_source("learned").fit(train_clips)   # fit() is a no-op for sources that learn nothing
    c = src(clip)                                   # list[int], len T, c[0] == 1
    src.stats                                       # counters (fallbacks, skipped training clips, ...)

  'gt'       annotation of the GT masks (coprop.controlpoints.annotate, paper A.1); the oracle.
  'cosine'   the paper's baseline: frame t is a control point when the cosine similarity of the audio
             embeddings of frames t-1 and t falls below a threshold. Embedding: 'spectrum' (per mel band, mean
             level above the log-mel silence floor of the frame's 0.96 s example) or 'projection' (a fixed
             random projection of the whole example). ``fit`` picks the threshold maximising boundary F1 on the
             training clips' GT (tolerance ``fit_tolerance``).
  'learned'  a small MLP on features of the frame pair (t-1, t) (features.pair_features), trained on GT control
             points of the training split, decision threshold chosen for boundary F1 on the training clips.
             The offline default. When training clips carry meta['sounding'] or meta['category'] it also learns
             a per-frame category classifier: ``.categories(clip) -> list[str]`` (text-guided variant).
  'rcpg'     the LLM (rcpg.RCPGSource): variants '1-step', '3-step', '3-step+retrieval', falling back to the
             learned detector when the backend fails or its answer cannot be parsed.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterable

import numpy as np

from coprop.controlpoints import features as F
from coprop.controlpoints.scoring import boundary_scores
# the interface and the registry live in source.py; re-exported here, where callers have always found them
from coprop.controlpoints.source import SOURCES, ControlPointSource, check_control_points, get_source
from coprop.data.clip import Clip
from coprop.errors import ConfigError

__all__ = ["SOURCES", "ControlPointSource", "CosineSource", "GTSource", "LearnedSource", "check_control_points",
           "frame_labels", "get_source", "training_targets"]


class GTSource(ControlPointSource):
    """Control points annotated from the clip's GT (annotate.clip_control_points): ``annotation='masks'`` applies
    the paper's mask rule (frames without GT are never control points, so S4 train gives [1, 0, ..., 0]);
    'meta' uses the synthetic benchmark's exact sounding schedule. A clip without masks is a DataError."""

    name = "gt"

    def __init__(self, annotation: str = "masks", **annotate_kw):
        super().__init__()
        self.annotation, self.annotate_kw = annotation, annotate_kw

    def __call__(self, clip: Clip) -> list[int]:
        from coprop.controlpoints.annotate import clip_control_points

        c = clip_control_points(clip, source=self.annotation, **self.annotate_kw)
        return check_control_points(c, clip.num_frames, "GT annotation")


def training_targets(clips: Iterable[Clip], gt: GTSource | None = None, stats: Counter | None = None):
    """[(clip, GT control points)] for the training clips that can be annotated (others are counted)."""
    from coprop.errors import CopropError

    gt = gt or GTSource()
    out = []
    for clip in clips:
        try:
            out.append((clip, gt(clip)))
        except CopropError:
            if stats is not None:
                stats["train_skipped_no_gt"] += 1
    return out


@contextlib.contextmanager
def _single_thread():
    """These nets have a few thousand weights: extra intra-op threads only add synchronisation, which on a
    loaded machine costs 30x (measured), so train and predict on one thread and restore the setting after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _best_threshold(scores: list[np.ndarray], gts: list[list[int]], below: bool, tolerance: int,
                    default: float) -> tuple[float, float]:
    """The cut on per-pair scores maximising micro boundary F1; ``below``: a boundary when score < cut."""
    allv = np.concatenate([s for s in scores if len(s)]) if any(len(s) for s in scores) else np.array([])
    if allv.size == 0:
        return default, float("nan")
    u = np.unique(allv)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]])
    if cands.size > 400:
        cands = np.unique(np.quantile(allv, np.linspace(0, 1, 401)))
    best, best_f1 = default, -1.0
    for cut in cands:
        preds = [[1] + [int(v < cut) if below else int(v > cut) for v in s] for s in scores]
        f1 = boundary_scores(preds, gts, tolerance)["f1"]
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(cut), f1
    return best, best_f1


class CosineSource(ControlPointSource):
    name = "cosine"

    def __init__(self, threshold: float = 0.9, embedding: str = "spectrum", fit_threshold: bool = True,
                 fit_tolerance: int = 0):
        super().__init__()
        F.embed(np.zeros((1, 96, 64), np.float32), embedding)  # reject an unknown embedding now
        self.threshold, self.embedding = float(threshold), embedding
        self.fit_threshold, self.fit_tolerance = fit_threshold, int(fit_tolerance)
        self.train_f1 = float("nan")

    def similarities(self, clip: Clip) -> np.ndarray:
        return F.consecutive_similarity(F.embed(F.clip_logmel(clip), self.embedding))

    def fit(self, train_clips: Iterable[Clip]) -> "CosineSource":
        if not self.fit_threshold:
            return self
        pairs = training_targets(train_clips, stats=self.stats)
        sims = [self.similarities(c) for c, _ in pairs]
        self.threshold, self.train_f1 = _best_threshold(sims, [g for _, g in pairs], True, self.fit_tolerance,
                                                        self.threshold)
        self.stats["train_clips"] = len(pairs)
        return self

    def __call__(self, clip: Clip) -> list[int]:
        return [1] + [int(s < self.threshold) for s in self.similarities(clip)]


def frame_labels(clip: Clip) -> list[str] | None:
    """Per-frame category label: synthetic meta['sounding'] (names joined by '+', 'silence' when none),
    else the clip-level meta['category'] on every frame."""
    sounding = clip.meta.get("sounding")
    T = clip.num_frames
    if sounding is not None and len(sounding) == T:
        out = []
        for s in sounding:
            names = [s] if isinstance(s, str) else [str(n) for n in s]
            names = sorted(n for n in names if n)
            out.append("+".join(names) if names else "silence")
        return out
    if clip.meta.get("category"):
        return [str(clip.meta["category"])] * T
    return None


class LearnedSource(ControlPointSource):
    """An MLP (``hidden`` = 0: logistic regression) on standardised pair features, trained full-batch with
    Adam and a positive-class weight (boundaries are rare)."""

    name = "learned"

    def __init__(self, hidden: int = 32, epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-3,
                 seed: int = 0, fit_tolerance: int = 0):
        super().__init__()
        self.hidden, self.epochs, self.lr, self.weight_decay = int(hidden), int(epochs), lr, weight_decay
        self.seed, self.fit_tolerance = int(seed), int(fit_tolerance)
        self.net = None
        self.cat_net = None
        self.class_names: list[str] = []
        self.threshold = 0.5
        self.train_f1 = float("nan")

    def _mlp(self, n_in: int, n_out: int):
        import torch.nn as nn

        if self.hidden <= 0:
            return nn.Linear(n_in, n_out)
        return nn.Sequential(nn.Linear(n_in, self.hidden), nn.ReLU(), nn.Linear(self.hidden, n_out))

    def _train(self, net, x, y, loss_fn):
        import torch

        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        return float(loss.detach())

    def fit(self, train_clips: Iterable[Clip]) -> "LearnedSource":
        with _single_thread():
            return self._fit(list(train_clips))

    def _fit(self, clips: list[Clip]) -> "LearnedSource":
        import torch

        pairs = training_targets(clips, stats=self.stats)
        pairs = [(c, g) for c, g in pairs if c.num_frames > 1]
        if not pairs:
            raise ConfigError("the learned detector needs training clips with GT masks on every frame "
                              f"(got {len(clips)} clips, none usable)")
        torch.manual_seed(self.seed)
        feats = [F.pair_features(F.clip_logmel(c)) for c, _ in pairs]
        x = np.concatenate(feats)
        y = np.concatenate([np.asarray(g[1:], np.float32) for _, g in pairs])
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        xt = torch.from_numpy((x - self.mean) / self.std)
        yt = torch.from_numpy(y)[:, None]
        pos = float(y.sum())
        weight = torch.tensor((len(y) - pos) / pos if pos else 1.0)
        self.net = self._mlp(x.shape[1], 1)
        self.final_loss = self._train(self.net, xt, yt, torch.nn.BCEWithLogitsLoss(pos_weight=weight))
        self.net.eval()
        probs = [self._probs(f) for f in feats]
        self.threshold, self.train_f1 = _best_threshold(probs, [g for _, g in pairs], False, self.fit_tolerance, 0.5)
        self.stats["train_clips"] = len(pairs)
        self._fit_categories(clips)
        return self

    def _fit_categories(self, clips: list[Clip]) -> None:
        import torch

        xs, labels = [], []
        for c in clips:
            lab = frame_labels(c)
            if lab is None:
                continue
            xs.append(F.frame_features(F.clip_logmel(c)))
            labels += lab
        if not labels or len(set(labels)) < 2:
            self.cat_net = None
            return
        self.class_names = sorted(set(labels))
        x = np.concatenate(xs)
        self.cat_mean, self.cat_std = x.mean(0), x.std(0) + 1e-6
        xt = torch.from_numpy((x - self.cat_mean) / self.cat_std)
        yt = torch.tensor([self.class_names.index(n) for n in labels])
        self.cat_net = self._mlp(x.shape[1], len(self.class_names))
        self.cat_loss = self._train(self.cat_net, xt, yt, torch.nn.CrossEntropyLoss())
        self.cat_net.eval()

    def _probs(self, pair_feats: np.ndarray) -> np.ndarray:
        import torch

        if len(pair_feats) == 0:
            return np.zeros(0, np.float32)
        with torch.no_grad(), _single_thread():
            z = self.net(torch.from_numpy((pair_feats - self.mean) / self.std))
        return torch.sigmoid(z)[:, 0].numpy()

    def boundary_probs(self, clip: Clip) -> np.ndarray:
        """[T-1]: probability that frame t (t >= 1) is a control point."""
        if self.net is None:
            raise ConfigError("the learned detector is not trained; call .fit(train_clips) first")
        return self._probs(F.pair_features(F.clip_logmel(clip)))

    def __call__(self, clip: Clip) -> list[int]:
        return [1] + [int(p > self.threshold) for p in self.boundary_probs(clip)]

    def categories(self, clip: Clip) -> list[str]:
        """Per-frame predicted category (training labels: 'a+b' for two sources, 'silence')."""
        import torch

        if self.cat_net is None:
            raise ConfigError("no category classifier: the training clips carried no meta['sounding'] or "
                              "meta['category'] with at least two distinct labels")
        x = F.frame_features(F.clip_logmel(clip))
        with torch.no_grad(), _single_thread():
            idx = self.cat_net(torch.from_numpy((x - self.cat_mean) / self.cat_std)).argmax(-1).tolist()
        return [self.class_names[i] for i in idx]
