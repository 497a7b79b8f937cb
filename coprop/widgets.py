"""A clip viewer for JupyterLab: frame slider, GT and each method's masks, control points, audio, per-frame J.

``Viewer(clip, {"baseline": logits, "Co-Prop": logits}, control_points={...}, per_frame_j={...})`` shows the
interactive widget in JupyterLab; in headless runs (papermill, CI, ``COPROP_HEADLESS``) displaying it renders
``.static()`` instead, a matplotlib figure that survives in the executed notebook and in reports/.
"""
from __future__ import annotations

import io
import textwrap
import wave
from typing import Mapping, Sequence

import numpy as np

from coprop import viz
from coprop.progress import headless


def wav_bytes(waveform, sr: int = 16000) -> bytes:
    """16-bit PCM WAV of a float waveform in [-1, 1] (what an HTML audio element plays)."""
    w = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sr)
        f.writeframes((w * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


class Viewer:
    def __init__(self, clip, predictions: Mapping[str, object],
                 control_points: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
                 per_frame_j: Mapping[str, Sequence[float]] | None = None, max_static_frames: int = 10):
        self.clip = clip
        self.masks = {k: viz.logits_to_masks(v) for k, v in predictions.items()}
        T = clip.num_frames
        for k, m in self.masks.items():
            if len(m) != T:
                raise ValueError(f"prediction {k!r} has {len(m)} frames, the clip has {T}")
        if control_points is not None and not isinstance(control_points, Mapping):
            control_points = {"control points": list(control_points)}
        self.control_points = {k: list(v) for k, v in (control_points or {}).items()}
        self.per_frame_j = {k: np.asarray(v, dtype=float) for k, v in (per_frame_j or {}).items()}
        self.max_static_frames = max_static_frames

    # ------------------------------------------------------------------ headless picture
    def rows(self) -> dict[str, np.ndarray | None]:
        rows: dict[str, np.ndarray | None] = {"frame": None}
        if self.clip.masks is not None:
            gt = self.clip.masks.copy()
            gt[~np.asarray(self.clip.gt_available, dtype=bool)] = 0   # frames without GT show no mask
            rows["GT"] = gt
        rows.update(self.masks)
        return rows

    def static(self, frame_idx: Sequence[int] | None = None):
        """Grid of frames x (frame, GT, methods) with J in the titles, plus control-point and J timelines."""
        import matplotlib.pyplot as plt

        T = self.clip.num_frames
        idx = list(frame_idx) if frame_idx is not None else \
            sorted(set(np.linspace(0, T - 1, min(T, self.max_static_frames)).astype(int).tolist()))
        rows = self.rows()
        extra = int(bool(self.control_points)) + int(bool(self.per_frame_j))
        cell = 1.5
        fig = plt.figure(figsize=(cell * len(idx) + 1.6, cell * len(rows) + 1.8 * extra))
        gs = fig.add_gridspec(len(rows) + extra, len(idx), height_ratios=[cell] * len(rows) + [1.8] * extra,
                              left=1.4 / (cell * len(idx) + 1.6), right=0.99, top=0.95, bottom=0.05,
                              wspace=0.05, hspace=0.35)
        frames = self.clip.frames
        for r, (label, m) in enumerate(rows.items()):
            for c, t in enumerate(idx):
                ax = fig.add_subplot(gs[r, c])
                ax.imshow(frames[t] if m is None else viz.overlay(frames[t], m[t]))
                ax.set_xticks([])
                ax.set_yticks([])
                title = f"t={t}" if r == 0 else ""
                if label in self.per_frame_j and np.isfinite(self.per_frame_j[label][t]):
                    title = f"J={self.per_frame_j[label][t]:.2f}"
                if title:
                    ax.set_title(title, fontsize=7, pad=2)
                if c == 0:
                    ax.set_ylabel(textwrap.fill(label, 16), fontsize=7)
        row = len(rows)
        if self.control_points:
            viz.control_point_timeline(self.control_points, ax=fig.add_subplot(gs[row, :]))
            row += 1
        if self.per_frame_j:
            viz.j_per_frame(self.per_frame_j, next(iter(self.control_points.values()), None),
                            ax=fig.add_subplot(gs[row, :]), title="")
        fig.suptitle(f"{self.clip.name}", fontsize=9)
        return fig

    # ------------------------------------------------------------------ JupyterLab widget
    def _frame_images(self, t: int) -> list[bytes]:
        f = self.clip.frames[t]
        return [_png(f if m is None else viz.overlay(f, m[t])) for m in self.rows().values()]

    def _j_html(self, t: int) -> str:
        if not self.per_frame_j:
            return ""
        cells = "".join(f"<tr><td>{k}</td><td><b>{v[t]:.3f}</b></td><td>{np.nanmean(v):.3f}</td></tr>"
                        for k, v in self.per_frame_j.items())
        return f"<table><tr><th>method</th><th>J (frame {t})</th><th>mean J</th></tr>{cells}</table>"

    def _timeline_png(self, t: int) -> bytes:
        import matplotlib.pyplot as plt

        fig = viz.control_point_timeline(self.control_points or {"(none)": [1] + [0] * (self.clip.num_frames - 1)})
        fig.axes[0].axvline(t, color="#e6194b", lw=2)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    def widget(self):
        import ipywidgets as W

        labels = list(self.rows())
        images = [W.Image(format="png", layout=W.Layout(width="180px")) for _ in labels]
        panels = [W.VBox([W.Label(lb), im]) for lb, im in zip(labels, images)]
        slider = W.IntSlider(value=0, min=0, max=self.clip.num_frames - 1, description="frame",
                             continuous_update=False)
        timeline = W.Image(format="png")
        jbox = W.HTML()
        audio = W.Audio(value=wav_bytes(self.clip.waveform), format="wav", autoplay=False, loop=False)

        def show(change=None):
            t = int(slider.value)
            for im, data in zip(images, self._frame_images(t)):
                im.value = data
            timeline.value = self._timeline_png(t)
            jbox.value = self._j_html(t)

        slider.observe(show, names="value")
        show()
        return W.VBox([W.HTML(f"<b>{self.clip.name}</b>"), slider, W.HBox(panels), timeline, jbox, audio])

    def _ipython_display_(self):
        from IPython.display import display

        if headless():
            import matplotlib.pyplot as plt

            fig = self.static()
            display(fig)
            plt.close(fig)
        else:
            display(self.widget())
