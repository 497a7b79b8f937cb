"""A clip viewer for JupyterLab: frame slider, GT and each method's masks, control points, audio, per-frame J.

``Viewer(clip, {"baseline": logits, "Co-Prop": logits}, control_points={...}, per_frame_j={...})`` as a cell's
value shows the live widget in JupyterLab and the classic Notebook; in headless runs (``coprop.progress.headless``:
the runner, papermill, tests, CI) it shows ``.static()`` instead, a matplotlib figure that survives in the executed
notebook. J is shown in % like every table; on a frame whose GT mask is empty J follows AVSBench's rule (the
share of pixels predicted background), and the viewer says so on such frames.
"""
from __future__ import annotations

import html
import io
import textwrap
import wave
from typing import Mapping, Sequence

import numpy as np

from coprop import viz
from coprop.progress import headless

EMPTY_GT_RULE = ("empty GT (nothing sounds): J is the share of pixels predicted background (AVSBench's rule), "
                 "so 100 % means nothing was segmented")
_PAD = "padding:2px 10px"


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


def _hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


class Viewer:
    """Frames x (frame, GT, each method): ``predictions`` maps a label to logits [T,K,H,W] or masks [T,H,W];
    ``control_points`` one 0/1 list of length T (or a mapping of them); ``per_frame_j`` maps labels to [T]
    fractions in [0, 1] (NaN where a frame has no GT). Raises ValueError when a prediction's T differs."""

    def __init__(self, clip, predictions: Mapping[str, object],
                 control_points: Mapping[str, Sequence[int]] | Sequence[int] | None = None,
                 per_frame_j: Mapping[str, Sequence[float]] | None = None, max_static_frames: int = 10,
                 sr: int = 16000):
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
        self.sr = sr

    # ------------------------------------------------------------------ what each frame shows
    def rows(self) -> dict[str, np.ndarray | None]:
        rows: dict[str, np.ndarray | None] = {"frame": None}
        if self.clip.masks is not None:
            gt = self.clip.masks.copy()
            gt[~np.asarray(self.clip.gt_available, dtype=bool)] = 0   # frames without GT show no mask
            rows["GT"] = gt
        rows.update(self.masks)
        return rows

    def gt_state(self, t: int) -> str:
        """'none' (frame not annotated), 'empty' (annotated, nothing sounds) or 'mask'."""
        if self.clip.masks is None or not bool(np.asarray(self.clip.gt_available, dtype=bool)[t]):
            return "none"
        return "empty" if not np.any(self.clip.masks[t]) else "mask"

    def audio_start(self, t: int) -> float:
        """Seconds where frame ``t``'s audio window starts (AVSBench timing: 15/16 s before the frame)."""
        times = np.asarray(self.clip.frame_times, dtype=float)
        return float(max(0.0, times[t] - 15.0 / 16.0)) if len(times) else 0.0

    # ------------------------------------------------------------------ headless picture
    def static(self, frame_idx: Sequence[int] | None = None):
        """Grid of frames x (frame, GT, methods) with J in % in the titles, plus control-point and J timelines."""
        import matplotlib.pyplot as plt

        T = self.clip.num_frames
        idx = list(frame_idx) if frame_idx is not None else \
            sorted(set(np.linspace(0, T - 1, min(T, self.max_static_frames)).astype(int).tolist()))
        rows = self.rows()
        extra = int(bool(self.control_points)) + int(bool(self.per_frame_j))
        cell, left = 1.5, 1.9
        fig = plt.figure(figsize=(cell * len(idx) + left, cell * len(rows) + 1.9 * extra + 0.4))
        gs = fig.add_gridspec(len(rows) + extra, len(idx), height_ratios=[cell] * len(rows) + [1.9] * extra,
                              left=left / (cell * len(idx) + left), right=0.99, top=0.95, bottom=0.06,
                              wspace=0.05, hspace=0.3)
        frames = self.clip.frames
        for r, (label, m) in enumerate(rows.items()):
            for c, t in enumerate(idx):
                ax = fig.add_subplot(gs[r, c])
                ax.imshow(frames[t] if m is None else viz.overlay(frames[t], m[t]))
                ax.set_xticks([])
                ax.set_yticks([])
                title = f"frame {t}" if r == 0 else ""
                if label == "GT" and self.gt_state(t) != "mask":
                    title = "GT empty" if self.gt_state(t) == "empty" else "no GT"
                if label in self.per_frame_j and np.isfinite(self.per_frame_j[label][t]):
                    title = f"J {100 * self.per_frame_j[label][t]:.0f} %"
                if title:
                    ax.set_title(title, fontsize=7, pad=2)
                if c == 0:
                    ax.set_ylabel(textwrap.fill(label, 18), fontsize=7, rotation=0, ha="right", va="center")
        row = len(rows)
        if self.control_points:
            viz.control_point_timeline(self.control_points, ax=fig.add_subplot(gs[row, :]))
            row += 1
        if self.per_frame_j:
            viz.j_per_frame(self.per_frame_j, next(iter(self.control_points.values()), None),
                            ax=fig.add_subplot(gs[row, :]), title="")
        fig.suptitle(f"{self.clip.name} (overlay: {self._legend_text()})", fontsize=8)
        return fig

    # ------------------------------------------------------------------ widget pieces (HTML, so crisp at any width)
    def _legend_text(self) -> str:
        return "cyan = mask, outlined; GT row: the ground truth, method rows: that method's prediction"

    def legend_html(self) -> str:
        """Overlay colours and timeline marks, one line each."""
        sw = "display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 10px;border:1px solid"
        ids = sorted({int(v) for m in self.rows().values() if m is not None for v in np.unique(m) if v})
        if ids and max(ids) > 1:   # semantic masks: one colour per class id present in the clip
            items = "".join(f'<span style="{sw} {_hex(viz.class_color(i))};background:{_hex(viz.class_color(i))}">'
                            f'</span>{html.escape(self._class_name(i))}' for i in ids)
            masks = f"Overlay colours (class of each pixel): {items}"
        else:
            c = _hex(viz.BINARY_COLOR)
            masks = (f'Overlay:<span style="{sw} {c};background:{c}"></span>mask, with its outline — in the GT '
                     "panel the ground-truth sounding object, in a method's panel that method's prediction.")
        marks = ("Timeline: shaded runs are segments (one keyframe, then propagation); a black bar opens each "
                 "segment (a control point); red outline = the frame shown; ∅ = " + EMPTY_GT_RULE + ".")
        return f'<div style="font-size:12px;line-height:1.5">{masks}<br>{html.escape(marks)}</div>'

    def _class_name(self, i: int) -> str:
        names = self.clip.meta.get("class_names")
        if isinstance(names, Mapping) and i in names:
            return str(names[i])
        if isinstance(names, (list, tuple)) and i < len(names):
            return str(names[i])
        return f"class {i}"

    def timeline_html(self, t: int) -> str:
        """Control points per source as an HTML table, one column per frame, the current frame outlined."""
        T = self.clip.num_frames
        step = max(1, int(np.ceil(T / 30)))   # at most ~30 frame numbers in the header
        cur = "box-shadow:inset 0 0 0 2px #e6194b;"
        cell = "height:16px;padding:0;text-align:center;font-size:11px;"
        head = "".join(f'<th style="{cell}{cur if k == t else ""}font-weight:{"bold" if k == t else "normal"}">'
                       f'{k if k % step == 0 or k == t else ""}</th>' for k in range(T))
        gt = {"none": "·", "empty": "∅", "mask": ""}
        body = [f'<tr><th style="{_PAD};text-align:right;font-weight:normal">GT mask</th>' +
                "".join(f'<td style="{cell}{cur if k == t else ""}" title="frame {k}: {self.gt_state(k)}">'
                        f'{gt[self.gt_state(k)]}</td>' for k in range(T)) + "</tr>"]
        for name, cp in self.control_points.items():
            seg, tds = -1, []
            for k in range(T):
                on = k < len(cp) and bool(cp[k])
                seg += int(on or k == 0)
                bg = "#0082c8" if seg % 2 else "#9bd0f0"
                bar = "border-left:3px solid #000;" if on else "border-left:1px solid #fff;"
                tds.append(f'<td style="{cell}{bar}background:{bg};{cur if k == t else ""}" '
                           f'title="frame {k}{": control point" if on else ""}"></td>')
            body.append(f'<tr><th style="{_PAD};text-align:right;font-weight:normal;white-space:nowrap">'
                        f'control points: {html.escape(name)}</th>{"".join(tds)}</tr>')
        return ('<table style="border-collapse:collapse;width:100%;table-layout:fixed">'
                f'<tr><th style="{_PAD};width:14em;text-align:right;font-weight:normal">frame</th>{head}</tr>'
                f'{"".join(body)}</table>')

    def j_html(self, t: int) -> str:
        """Per-frame and clip-mean J of each method in %, padded; the empty-GT rule when it applies."""
        if not self.per_frame_j:
            return ""
        state = self.gt_state(t)
        num = f"{_PAD};text-align:right"
        cells = "".join(
            f'<tr><td style="{_PAD}">{html.escape(k)}</td>'
            f'<td style="{num}"><b>{"—" if not np.isfinite(v[t]) else f"{100 * v[t]:.1f}"}</b></td>'
            f'<td style="{num}">{100 * np.nanmean(v):.1f}</td></tr>' for k, v in self.per_frame_j.items())
        note = {"empty": f"Frame {t}: {EMPTY_GT_RULE}.", "none": f"Frame {t} has no GT annotation: no J.",
                "mask": ""}[state]
        return (f'<table style="border-collapse:collapse;font-size:12px"><tr><th style="{_PAD};text-align:left">'
                f'method</th><th style="{num}">J, frame {t} (%)</th><th style="{num}">mean J over the clip (%)'
                f'</th></tr>{cells}</table>' + (f'<div style="font-size:12px;margin-top:4px">{html.escape(note)}'
                                                 '</div>' if note else ""))

    def audio_from(self, t: int) -> bytes:
        """WAV of the clip's audio from frame ``t``'s window to the end (what the player plays)."""
        return wav_bytes(np.asarray(self.clip.waveform)[int(round(self.audio_start(t) * self.sr)):], self.sr)

    # ------------------------------------------------------------------ JupyterLab widget
    def widget(self):
        """The live viewer: slider, one panel per row (labels wrap to the panel width), legend, HTML timeline,
        J table, audio player that plays from the frame on the slider."""
        import ipywidgets as W

        labels = list(self.rows())
        images = [W.Image(format="png", layout=W.Layout(width="100%", height="auto", object_fit="contain"))
                  for _ in labels]
        head = ("font-size:12px;line-height:1.25;min-height:2.6em;overflow-wrap:anywhere;text-align:center;"
                "display:flex;align-items:flex-end;justify-content:center")
        panels = [W.VBox([W.HTML(f'<div style="{head}">{html.escape(lb)}</div>'), im],
                         layout=W.Layout(min_width="0", width="100%", align_items="stretch"))
                  for lb, im in zip(labels, images)]
        grid = W.GridBox(panels, layout=W.Layout(grid_template_columns=f"repeat({len(panels)}, minmax(0, 1fr))",
                                                 grid_gap="6px", width="100%", max_width="1400px"))
        slider = W.IntSlider(value=0, min=0, max=self.clip.num_frames - 1, description="frame",
                             continuous_update=False, layout=W.Layout(width="min(100%, 40em)"))
        timeline, jbox, where = W.HTML(), W.HTML(), W.HTML()
        audio = W.Audio(format="wav", autoplay=False, loop=False)

        def show(change=None):
            t = int(slider.value)
            f = self.clip.frames[t]
            for im, m in zip(images, self.rows().values()):
                im.value = _png(f if m is None else viz.overlay(f, m[t]))
            timeline.value = self.timeline_html(t)
            jbox.value = self.j_html(t)
            audio.value = self.audio_from(t)
            where.value = (f'<span style="font-size:12px">audio plays from frame {t} '
                           f'({self.audio_start(t):.2f} s)</span>')

        slider.observe(show, names="value")
        show()
        title = W.HTML(f"<b>{html.escape(self.clip.name)}</b> — {self.clip.num_frames} frames")
        return W.VBox([title, slider, grid, W.HTML(self.legend_html()), timeline, jbox,
                       W.HBox([audio, where], layout=W.Layout(align_items="center"))],
                      layout=W.Layout(width="100%"))

    def _ipython_display_(self):
        from IPython.display import display

        if headless():
            import matplotlib.pyplot as plt

            fig = self.static()
            display(fig)
            plt.close(fig)
        else:
            display(self.widget())
