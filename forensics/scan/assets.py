"""Pictures for the report, written beside it as plain files: a thumbnail with face boxes coloured by score,
each scored face's aligned crop (lossless PNG: the exact pixels the detectors saw), and a video's timeline.

Colour: the fused probability on a green (0) - yellow - red (1) scale, the same in thumbnails and timelines.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from forensics.data.media import encode_png


def score_colour(p: float | None) -> tuple[int, int, int]:
    """RGB for a probability: green (0) -> yellow (0.5) -> red (1); grey when there is no score."""
    if p is None or not np.isfinite(p):
        return (150, 150, 150)
    p = float(np.clip(p, 0.0, 1.0))
    if p <= 0.5:
        return (int(round(510 * p)), 170, 40)
    return (230, int(round(170 * (2 - 2 * p))), 40)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def score_hex(p: float | None) -> str:
    return _hex(score_colour(p))


@dataclass(frozen=True)
class BoxLabel:
    box: np.ndarray  # [4] x1, y1, x2, y2 in full-image pixels
    label: str
    probability: float | None


def thumbnail(image: np.ndarray, boxes: Sequence[BoxLabel], side: int = 480) -> np.ndarray:
    """The image scaled to `side` px on its long side with each face's box and label drawn.  # [H,W,3] -> [h,w,3]"""
    s = min(1.0, side / max(image.shape[:2]))
    size = (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s)))
    thumb = image if s == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    thumb = np.ascontiguousarray(thumb.copy())
    width = max(2, round(max(thumb.shape[:2]) / 240))
    for b in boxes:
        x1, y1, x2, y2 = (np.asarray(b.box, np.float64) * s).round().astype(int)
        colour = score_colour(b.probability)
        cv2.rectangle(thumb, (x1, y1), (x2, y2), colour, width)
        scale = max(0.4, width / 4)
        (tw, th), base = cv2.getTextSize(b.label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else y2 + th + 3
        cv2.rectangle(thumb, (x1, ty - th - 2), (x1 + tw + 4, ty + base), colour, -1)
        cv2.putText(thumb, b.label, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return thumb


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes for a report picture (thumbnails only; face crops stay lossless)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def crop_png(crop: np.ndarray) -> bytes:
    return encode_png(crop)


@dataclass(frozen=True)
class TimelineSeries:
    """One track's per-frame probabilities for the timeline."""

    track: int
    times: np.ndarray  # [T] seconds
    fused: np.ndarray  # [T]
    detectors: dict[str, np.ndarray]  # name -> [T] calibrated probability


def timeline_png(series: Sequence[TimelineSeries], band: tuple[float, float], duration_s: float,
                 no_face_times: np.ndarray, marked_times: Sequence[float], title: str,
                 flicker_times: Sequence[float] = ()) -> bytes:
    """Per-frame fused probability of every track over time (top) and every detector's (bottom), the
    decision band shaded, frames without a face as a grey rug, the listed top frames marked, and the frames
    whose flicker drives a temporal score above 0.5 as purple ticks on top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    low, high = band
    for ax in (top, bottom):
        ax.axhspan(0.0, low, color="#2ca02c", alpha=0.08, lw=0)
        ax.axhspan(low, high, color="#ffbf00", alpha=0.15, lw=0)
        ax.axhspan(high, 1.0, color="#d62728", alpha=0.08, lw=0)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3, lw=0.5)
    for s in series:
        top.plot(s.times, s.fused, lw=1.2, marker=".", ms=2.5, label=f"track {s.track + 1}")
    if len(no_face_times):
        top.plot(no_face_times, np.full(len(no_face_times), -0.03), "|", color="grey", ms=6, label="no face")
    for t in marked_times:
        top.axvline(t, color="#d62728", lw=0.8, ls=":")
    if len(flicker_times):
        top.plot(flicker_times, np.full(len(flicker_times), 1.03), "v", color="#9467bd", ms=5, label="flicker")
    top.set_ylabel("fused P(fake)")
    top.set_title(title, fontsize=10)
    if series or len(no_face_times):
        top.legend(loc="upper right", fontsize=7, ncol=4)
    styles = ["-", "--", ":", "-."]
    names = sorted({n for s in series for n in s.detectors})
    for i, name in enumerate(names):
        for j, s in enumerate(series):
            if name in s.detectors:
                bottom.plot(s.times, s.detectors[name], lw=0.9, ls=styles[i % len(styles)], color=f"C{i}",
                            label=name if j == 0 else None)
    bottom.set_ylabel("per detector")
    bottom.set_xlabel("time (s)")
    bottom.set_xlim(0, max(duration_s, 1e-3))
    if names:
        bottom.legend(loc="upper right", fontsize=7, ncol=len(names))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
