"""One video: stream its frames through detection + tracking, score every face of every analysed frame, and
turn the per-frame scores into per-track and per-file verdicts, a timeline and the top suspicious frames.

Per-frame records are kept as columns per track (frame, time, probability, each detector's, box): small
whatever the video's length; the decoded frames themselves never outlive their chunk. Only the crops of the
most suspicious frames (and each track's peak) are kept, for the report.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.calibration import LIKELY_MANIPULATED, NO_SIGN
from forensics.scan.assets import BoxLabel, TimelineSeries, crop_png, encode_jpeg, thumbnail, timeline_png
from forensics.scan.context import Analysis, ScanContext
from forensics.scan.decode import VideoStream, iter_video
from forensics.scan.faces import AnalysedFrame, VideoFaceTracker
from forensics.scan.image import rounded_record, sig
from forensics.scan.prefetch import prefetch
from forensics.scan.quality import face_pixels, sharpness
from forensics.scan.temporal import (feed_chunk, new_segmenter, score_segments, small_face_reason, track_temporal,
                                     unavailable_reason)
from forensics.scan.verdict import (FACE_TOO_SMALL, OUT_OF_DISTRIBUTION, aggregate, decide, file_verdict, ood_reasons,
                                    quality_reasons,
                                    segment_reason)

CANDIDATES_KEPT = 64  # peak faces kept (with crops) to choose the top frames from at the end


@dataclass
class TrackColumns:
    """Per-frame columns of one track, appended in frame order."""

    track: int
    frame: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    keyframe: list[bool] = field(default_factory=list)
    box: list[list[float]] = field(default_factory=list)
    face_px: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    probability: list[float] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    ood: list[bool] = field(default_factory=list)  # the OOD guard flagged the frame's face
    detectors: dict[str, list[float]] = field(default_factory=dict)
    raw: dict[str, list[float]] = field(default_factory=dict)
    peak: tuple[float, int, np.ndarray] | None = None  # (probability, frame, crop) of its most suspicious frame

    def add(self, frame: int, t: float, keyframe: bool, box: np.ndarray, crop: np.ndarray,
            record: dict[str, Any]) -> None:
        p = record["probability"]
        self.frame.append(frame)
        self.time_s.append(round(t, 4))
        self.keyframe.append(keyframe)
        self.box.append([round(float(v), 2) for v in box])
        self.face_px.append(round(face_pixels(box), 1))
        self.sharpness.append(sig(sharpness(crop), 4))
        self.probability.append(p)
        self.verdict.append(record["verdict"])
        self.ood.append(bool(record.get("ood", {}).get("flagged", False)))
        for name, d in record["detectors"].items():
            self.detectors.setdefault(name, []).append(d["probability"])
            self.raw.setdefault(name, []).append(d["score"])
        if self.peak is None or p > self.peak[0]:
            self.peak = (p, frame, crop)


@dataclass(frozen=True)
class Candidate:
    """A frame's most suspicious face, a candidate for the top-frames list."""

    probability: float
    frame: int
    time_s: float
    track: int
    record: dict[str, Any]
    face_px: float
    crop: np.ndarray

    @property
    def order(self) -> tuple[float, int, int]:
        return (-self.probability, self.frame, self.track)


def _ranges(indices: list[int]) -> list[list[int]]:
    """[3,4,5,9] -> [[3,5],[9,9]]: frames without a face, compactly."""
    out: list[list[int]] = []
    for i in indices:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def pick_top_frames(candidates: list[Candidate], n: int, min_gap: int) -> list[Candidate]:
    """The n most suspicious frames at least `min_gap` frames apart (adjacent frames are near duplicates)."""
    chosen: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: c.order):
        if all(abs(c.frame - o.frame) >= min_gap for o in chosen):
            chosen.append(c)
        if len(chosen) == n:
            break
    return sorted(chosen, key=lambda c: c.order)


class VideoAccumulator:
    """Collects what the report needs from the stream of scored chunks."""

    def __init__(self, ctx: ScanContext, stream: VideoStream) -> None:
        self.ctx, self.stream = ctx, stream
        self.tracks: dict[int, TrackColumns] = {}
        self.no_face: list[int] = []
        self.analysed = 0
        self.last_frame = -1
        self.candidates: list[Candidate] = []
        # (peak probability, frame index, frame, boxes): the most suspicious frame, drawn once at the end
        self.thumb: tuple[float, int, np.ndarray, list[BoxLabel]] | None = None
        # flicker segments per track, while the frames are in memory (forensics.scan.temporal)
        self.temporal_reason = unavailable_reason(ctx.bundle, ctx.settings.every)
        self.segmenter = new_segmenter(ctx.bundle, stream.fps) if self.temporal_reason is None else None
        self.segments: dict[int, list[Any]] = {}

    def add_chunk(self, chunk: list[AnalysedFrame]) -> None:
        pairs = [(af, ff) for af in chunk for ff in af.faces]
        scores = self.ctx.score(np.stack([ff.crop for _, ff in pairs])) if pairs else None
        by_frame: dict[int, list[tuple[Any, dict[str, Any]]]] = {}
        for i, (af, ff) in enumerate(pairs):
            assert scores is not None
            record = rounded_record(scores.face(i))
            t = self.stream.time_of(af.index)
            self.tracks.setdefault(ff.track, TrackColumns(ff.track)).add(
                af.index, t, ff.keyframe, ff.face.box, ff.crop, record)
            by_frame.setdefault(af.index, []).append((ff, record))
        if self.segmenter is not None:
            with self.ctx.timer.stage("temporal"):
                self._keep(feed_chunk(self.segmenter, chunk, scores.fused if scores is not None else []))
        for af in chunk:
            self.analysed += 1
            self.last_frame = af.index
            faces = by_frame.get(af.index, [])
            if not faces:
                self.no_face.append(af.index)
                if self.thumb is None:
                    self._set_thumb(-1.0, af, [])
                continue
            ff, record = max(faces, key=lambda fr: (fr[1]["probability"], -fr[0].track))
            self._offer(Candidate(record["probability"], af.index, self.stream.time_of(af.index), ff.track, record,
                                  face_pixels(ff.face.box), ff.crop))
            peak = max(r["probability"] for _, r in faces)
            if self.thumb is None or peak > self.thumb[0]:
                self._set_thumb(peak, af, faces)

    def _keep(self, segments: list[Any]) -> None:
        for seg in segments:
            self.segments.setdefault(seg.track, []).append(seg)

    def finish(self) -> None:
        """Score the segments still open when the video ends."""
        if self.segmenter is not None:
            with self.ctx.timer.stage("temporal"):
                self._keep(self.segmenter.finish_all())

    def _offer(self, c: Candidate) -> None:
        self.candidates.append(c)
        if len(self.candidates) > 2 * CANDIDATES_KEPT:  # prune, keeping a spread of frames to choose from
            gap = max(1, self.ctx.settings.every)
            self.candidates = pick_top_frames(self.candidates, CANDIDATES_KEPT, gap)

    def _set_thumb(self, peak: float, af: AnalysedFrame, faces: list[tuple[Any, dict[str, Any]]]) -> None:
        labels = [BoxLabel(ff.face.box, f"{ff.track + 1}: {r['probability']:.2f}", r["probability"]) for ff, r in faces]
        self.thumb = (peak, af.index, af.frame.copy(), labels)  # the chunk's frames are released after it


def _track_record(cols: TrackColumns, ctx: ScanContext, temporal: dict[str, Any],
                  asset_dir: str) -> tuple[dict[str, Any], bytes]:
    """A track's record; with a temporal record that is `available` and `decides`, its video score (frames and
    flicker fused) decides the track, judged by the video band; otherwise the frame mean with the bundle's band."""
    rules, bundle = ctx.rules, ctx.bundle
    fused = np.asarray(cols.probability)
    px = np.asarray(cols.face_px)
    usable = px >= rules.min_face
    basis = fused[usable] if usable.any() else fused
    agg = aggregate(basis, ctx.settings.topk)
    probability = agg["mean"]
    det = {}
    for name, values in cols.detectors.items():
        v = np.asarray(values)[usable] if usable.any() else np.asarray(values)
        det[name] = {"probability": sig(v.mean()), "max": sig(v.max()),
                     "score": sig(np.asarray(cols.raw[name])[usable if usable.any() else slice(None)].mean()),
                     "verdict": bundle.bands[name].verdict(float(v.mean()))}
    quality = [] if usable.any() else [f"{FACE_TOO_SMALL}: in every frame (median {np.median(px):.0f} px < "
                                       f"{rules.min_face} px)"]
    ood = np.asarray(cols.ood, bool)[usable] if usable.any() else np.asarray(cols.ood, bool)
    if ood.size and ood.mean() > 0.5:
        quality.append(f"{OUT_OF_DISTRIBUTION}: {int(ood.sum())} of {ood.size} frames' faces are unlike every face "
                       "the bundle was calibrated on")
    frames_probability = probability
    model_verdict = bundle.decision.verdict(probability)
    band = ctx.band
    if temporal["available"] and temporal["decides"]:
        probability, model_verdict, band = temporal["video_probability"], temporal["verdict"], tuple(temporal["band"])
    quality += segment_reason(agg, ctx.band, model_verdict)
    verdict, reasons = decide(model_verdict, probability, band, {n: d["verdict"] for n, d in det.items()}, quality)
    assert cols.peak is not None
    name = f"track-{cols.track + 1}.png"
    frames_disagree = sum(1 for i in range(len(cols.frame))
                          if {LIKELY_MANIPULATED, NO_SIGN} <= {bundle.bands[n].verdict(cols.detectors[n][i])
                                                               for n in det})
    record = {
        "id": f"track {cols.track + 1}", "kind": "track", "track": cols.track,
        "frames": len(cols.frame), "detected_frames": int(sum(cols.keyframe)),
        "first_frame": cols.frame[0], "last_frame": cols.frame[-1],
        "start_s": cols.time_s[0], "end_s": cols.time_s[-1],
        "probability": sig(probability), "frames_probability": sig(frames_probability),
        "aggregate": {k: (sig(v) if k != "k" else v) for k, v in agg.items()},
        "detectors": det, "model_verdict": model_verdict, "verdict": verdict, "reasons": reasons,
        "quality": {"face_px_median": round(float(np.median(px)), 1), "usable_frames": int(usable.sum()),
                    "frames_too_small": int((~usable).sum()),
                    "sharpness_median": sig(float(np.median(cols.sharpness)), 4),
                    "frames_detectors_disagree": frames_disagree},
        "temporal": temporal, "peak_frame": cols.peak[1], "crop": f"{asset_dir}/{name}",
        "series": {"frame": cols.frame, "time_s": cols.time_s, "keyframe": cols.keyframe,
                   "probability": cols.probability, "verdict": cols.verdict, "detectors": cols.detectors,
                   "box": cols.box, "face_px": cols.face_px},
    }
    return record, crop_png(cols.peak[2])


def analyse_video(path: str | os.PathLike, ctx: ScanContext, asset_dir: str, fmt: str | None) -> Analysis:
    path = Path(path)
    settings = ctx.settings
    with ctx.timer.stage("decode"):
        stream, frames = iter_video(path, settings.max_frames, settings.max_pixels)
    on_file = None
    if ctx.evidence is not None:  # container facts and C2PA, read in a thread while the frames are analysed
        from forensics.scan.evidence import start_file_sections

        on_file = start_file_sections(path, "video", fmt, None, None)
    acc = VideoAccumulator(ctx, stream)
    tracker = VideoFaceTracker(ctx.finder, settings.every, ctx.bundle.face_size, ctx.bundle.face_margin,
                               timer=ctx.timer)
    chunks: Iterator[list[AnalysedFrame]] = prefetch(tracker.run(frames))  # tracking overlaps scoring
    for chunk in chunks:
        acc.add_chunk(chunk)
    acc.finish()
    fps = stream.fps if stream.fps > 0 else 25.0
    assets: dict[str, bytes] = {}
    units = []
    for t in sorted(acc.tracks):
        with ctx.timer.stage("temporal"):
            segments = acc.segments.get(t, [])
            reason = acc.temporal_reason or small_face_reason(ctx.bundle, segments)
            temporal = track_temporal(ctx.bundle, reason, score_segments(ctx.bundle, segments))
        record, png = _track_record(acc.tracks[t], ctx, temporal, asset_dir)
        units.append(record)
        assets[f"track-{t + 1}.png"] = png
    top = pick_top_frames(acc.candidates, settings.top_frames, max(settings.every, int(round(fps / 2))))
    top_records = []
    for rank, c in enumerate(top, start=1):
        name = f"top-{rank}.png"
        assets[name] = crop_png(c.crop)
        verdict, reasons = decide(c.record["verdict"], c.probability, ctx.band,
                                  {n: d["verdict"] for n, d in c.record["detectors"].items()},
                                  quality_reasons(c.face_px, None, ctx.rules) + ood_reasons(c.record))
        top_records.append({"rank": rank, "frame": c.frame, "time_s": round(c.time_s, 4), "track": c.track,
                            "probability": c.probability, "scores": c.record, "verdict": verdict, "reasons": reasons,
                            "face_px": round(c.face_px, 1), "crop": f"{asset_dir}/{name}"})
    verdict, probability, reasons = file_verdict(units, f"no face found in {acc.analysed} analysed frames (the "
                                                 f"search covers faces of {settings.min_face} px and more)")
    duration = (acc.last_frame + 1) / fps
    with ctx.timer.stage("report"):
        assets["timeline.png"] = timeline_png(
            [TimelineSeries(u["track"], np.asarray(u["series"]["time_s"]), np.asarray(u["series"]["probability"]),
                            {n: np.asarray(v) for n, v in u["series"]["detectors"].items()}) for u in units],
            ctx.band, duration, np.asarray(acc.no_face) / fps, [c.time_s for c in top], path.name,
            flicker_times=[i / fps for u in units for s in u["temporal"]["segments"]
                           if s["temporal_probability"] >= 0.5 for i in s["flicker_frames"]])
        if acc.thumb is not None:
            assets["thumb.jpg"] = encode_jpeg(thumbnail(acc.thumb[2], acc.thumb[3], settings.thumb_side))
    video = {
        "stream": stream.to_dict(), "frames_analysed": acc.analysed, "analysed_duration_s": round(duration, 4),
        "frames_with_face": acc.analysed - len(acc.no_face), "frames_without_face": len(acc.no_face),
        "no_face_frames": _ranges(acc.no_face), "every": settings.every, "max_frames": settings.max_frames,
        "thumbnail_frame": acc.thumb[1] if acc.thumb else None,
        "timeline": f"{asset_dir}/timeline.png", "top_frames": top_records,
    }
    media = {"width": stream.width, "height": stream.height, "jpeg": None}
    fields = {"media": media, "faces": units, "video": video, "verdict": verdict,
              "probability": None if probability is None else sig(probability), "reasons": reasons,
              "thumbnail": f"{asset_dir}/thumb.jpg" if acc.thumb is not None else None, "evidence": {}}
    if ctx.evidence is not None:
        from forensics.scan.evidence import attach_evidence

        assert on_file is not None
        peaks = np.stack([acc.tracks[u["track"]].peak[2] for u in units]) if units else np.zeros((0, 1, 1, 3), np.uint8)
        attach_evidence(fields, assets, asset_dir, ctx.evidence, path, on_file, peaks, ctx.detector_names, ctx.timer,
                        all_maps=ctx.settings.all_maps)
    return Analysis(fields, assets)
