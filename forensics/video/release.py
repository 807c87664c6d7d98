"""Train a bundle's video model on the clip dataset (`generators.video_dataset`), measured the scan's way.

Every clip, clean and after H.264 CRF 23 / CRF 35, goes through what the scan does to a video: its face tracker
(MTCNN every `every` frames, tracked between), the bundle's per-frame scores, and the track segmenter; the
clip's main segment gives one row: the mean frame probability, the flicker features, label, fake type and
source video (cached per clip and condition in WORK/segments, so a killed run resumes).

The model learns from the source videos of the corpus's train and val splits. Among them, leave one source
video out: the temporal detector is trained on the other videos; the fusion of frame mean and temporal score is
fitted on out-of-fold scores of those other videos; every clip of the held-out video is scored by models that
never saw it. The video band is fitted on those scores so that the worst source video's false-positive rate is
bounded; the shipped models are refitted on all training videos. The test split's videos (whose people the
bundle never saw) are scored by the shipped models only: the figures a scan of new media would get.

The bundle's own image detectors were trained on frames of the train and val videos, so for their clips the
frame score is not out of sample: only the test videos measure the whole chain.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.video.features import TRACK_FEATURES
from forensics.video.model import FRAMES_INPUT, FUSED, TEMPORAL_INPUT, VIDEO_SCORES, VideoModel, face_is_measurable

CONDITIONS = ("none", "crf23", "crf35")
MEASURE_VERSION = "m2"  # in the measurement cache's key: m2 rows record the segment's face side


@dataclass(frozen=True)
class VideoModelConfig:
    every: int = 10  # the scan's default keyframe spacing (ScanSettings.every)
    segment_seconds: float = 2.0  # the clip length of the dataset
    face_px: int = 64  # the face's width in the flicker window
    min_face_side: float = 64.0  # smaller faces would be upscaled into that window: no temporal score for them
    conditions: tuple[str, ...] = CONDITIONS
    features: tuple[str, ...] = TRACK_FEATURES
    C: float = 1.0  # temporal detector
    fusion_C: float = 0.3  # two inputs, fitted on a few hundred clips: regularised
    target_fpr: float = 0.05
    target_fnr: float = 0.05
    min_reals_per_video: int = 10
    train_splits: tuple[str, ...] = ("train", "val")  # source videos the shipped model learns from; the rest test it
    seed: int = 0


def build_clip_dataset(data: str | Path, out: str | Path, log: Callable[[str], None] = print) -> Path:
    """The clip dataset (`generators.video_dataset`; resumed when partly there): 2 s clips, at most 6 per real
    video of the corpus spread over the whole video, the three face-swap variants, CycleGAN and StarGAN v2
    per-frame translations and self-blends of each. -> its manifest"""
    from forensics.cli.demo import committed_checkpoints
    from generators.video_dataset import VideoDatasetOptions, synthesize_video_dataset

    out = Path(out)
    opts = VideoDatasetOptions(clip_seconds=2.0, max_seconds=None, max_clips=6, split="corpus", seed=0)
    zoo = committed_checkpoints()
    synthesize_video_dataset([zoo[n] for n in ("faceswap", "cyclegan", "stargan_v2")], data, out, "all", opts,
                             log=lambda m: log(m.strip()))
    return out / "manifest.parquet"


def clip_table(manifest: str | Path) -> pd.DataFrame:
    """One row per clip of a clip dataset: id, file, label, fake type, clip index, fps, source video, split."""
    from forensics.data.manifest import read_manifest

    df = read_manifest(manifest)
    clips = df[(df["media"] == "video") & df["postproc"].str.contains('"clip"')].copy()
    post = clips["postproc"].map(json.loads)
    clips["fake_type"] = post.map(lambda p: p["fake_type"])
    clips["clip_index"] = post.map(lambda p: p["clip"]["index"])
    clips["fps"] = post.map(lambda p: p["clip"]["fps"])
    clips["source"] = clips["group_id"].str.removeprefix("video:")
    return clips[["sample_id", "path", "label", "generator", "fake_type", "clip_index", "fps", "source",
                  "split"]].reset_index(drop=True)


def clip_segments(frames: list[np.ndarray], fps: float, bundle: Any, finder: Any, cfg: VideoModelConfig) -> list[Any]:
    """The scan's tracker, per-frame scores and segmenter over one decoded clip -> its segments."""
    from forensics.scan.faces import VideoFaceTracker
    from forensics.scan.temporal import feed_chunk
    from forensics.video.segments import TrackSegmenter, segment_length

    tracker = VideoFaceTracker(finder, cfg.every, bundle.face_size, bundle.face_margin)
    segmenter = TrackSegmenter(segment_length(cfg.segment_seconds, fps), cfg.face_px)
    segments = []
    for chunk in tracker.run(iter(enumerate(frames))):
        crops = [ff.crop for af in chunk for ff in af.faces]
        fused = bundle.score(np.stack(crops)).fused if crops else np.zeros(0)
        segments += feed_chunk(segmenter, chunk, fused)
    return segments + segmenter.finish_all()


def _row_of(segments: list[Any]) -> dict[str, Any] | None:
    """The clip's main segment (the longest; the first of equals) as a row, None without one."""
    if not segments:
        return None
    main = max(segments, key=lambda s: (s.frame_idx.size, -s.frame_idx[0]))
    return {"frames": int(main.frame_idx.size), FRAMES_INPUT: main.frames_mean, "face_side": round(main.face_side, 2),
            **{k: (float(v) if np.isfinite(v) else None) for k, v in main.features.items()}}


def frame_scores_key(bundle: Any) -> str:
    """A hash of what sets the bundle's per-frame probabilities (its detectors' files, calibration, fusion and
    scorer), not of the video model attached later: the measurement cache's key."""
    import hashlib

    digest = hashlib.sha256(json.dumps({k: bundle.meta.get(k) for k in ("detectors", "fusion", "decision", "face")}
                                       | {"scorer": bundle.scorer}, sort_keys=True).encode())
    for path in sorted(p for p in (bundle.root / "detectors").rglob("*") if p.is_file()):
        digest.update(path.relative_to(bundle.root).as_posix().encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def measure_clips(clips: pd.DataFrame, root: Path, work: Path, bundle: Any, cfg: VideoModelConfig,
                  log: Callable[[str], None]) -> pd.DataFrame:
    """One row per (clip, condition) with a segment; cached per clip and condition in WORK/segments/<key>/, the
    key naming the bundle's frame scorer and how the features are measured (spacing, segment, face size)."""
    from forensics.data.faces import FaceDetector
    from forensics.data.media import iter_frames, write_bytes_atomic
    from forensics.scan.faces import FaceFinder
    from forensics.scan.settings import ScanSettings
    from forensics.video.codec import perturb_video

    key = f"{frame_scores_key(bundle)}-every{cfg.every}-{cfg.segment_seconds:g}s-{cfg.face_px}px-{MEASURE_VERSION}"
    settings = ScanSettings(every=cfg.every)
    finder = FaceFinder(FaceDetector(min_score=settings.min_detection_score), settings.detect_side, settings.min_face)
    rows, missing, computed, started = [], [], 0, time.perf_counter()
    for k, clip in enumerate(clips.to_dict("records")):
        frames = None
        for cond in cfg.conditions:
            cache = work / "segments" / key / f"{clip['sample_id'].replace(':', '_')}__{cond}.json"
            if cache.exists():
                row = json.loads(cache.read_text())
            else:
                if frames is None:
                    frames = [f for _, f in iter_frames(root / clip["path"])]
                row = _row_of(clip_segments(perturb_video(frames, float(clip["fps"]), cond), float(clip["fps"]),
                                            bundle, finder, cfg))
                write_bytes_atomic(cache, (json.dumps(row) + "\n").encode())
                computed += 1
            if row is None:
                missing.append(f"{clip['sample_id']} [{cond}]")
                continue
            rows.append({**clip, "cond": cond, **row})
        if (k + 1) % 20 == 0:
            log(f"measured {k + 1}/{len(clips)} clips ({computed} clip-conditions computed, "
                f"{time.perf_counter() - started:.0f} s)")
    if missing:
        log(f"no temporal segment in {len(missing)} clip-conditions (left out): {missing[:6]}")
    table = pd.DataFrame(rows)
    for name in cfg.features:  # a feature missing on a clip (too few detections for jitter) is NaN, imputed later
        table[name] = pd.to_numeric(table[name], errors="coerce")
    return table


def _fit_temporal(table: pd.DataFrame, cfg: VideoModelConfig) -> Any:
    from forensics.detectors.temporal import TemporalDetector

    return TemporalDetector(",".join(cfg.features), C=cfg.C, target_fpr=cfg.target_fpr, seed=cfg.seed).fit(
        table[list(cfg.features)], table["label"].to_numpy())


def _fit_fusion(inputs: pd.DataFrame, labels: np.ndarray, cfg: VideoModelConfig) -> Any:
    from forensics.video.fusion import FusionModel

    return FusionModel((FRAMES_INPUT, TEMPORAL_INPUT), C=cfg.fusion_C, target_fpr=cfg.target_fpr,
                       seed=cfg.seed).fit(inputs, labels)


def out_of_fold_temporal(table: pd.DataFrame, cfg: VideoModelConfig) -> pd.Series:
    """Each source video's temporal scores from a detector trained on the other videos."""
    out = pd.Series(np.nan, index=table.index)
    for v in sorted(table["source"].unique()):
        held = table["source"] == v
        out[held] = _fit_temporal(table[~held], cfg).predict_proba(table.loc[held, list(cfg.features)])
    return out


def leave_one_video_out(table: pd.DataFrame, cfg: VideoModelConfig) -> pd.DataFrame:
    """Temporal and fused scores of every clip from models that never saw its source video."""
    out = table[["sample_id", "label", "fake_type", "source", "split", "cond", FRAMES_INPUT]].copy()
    out[TEMPORAL_INPUT], out[FUSED] = np.nan, np.nan
    for v in sorted(table["source"].unique()):
        held = (table["source"] == v).to_numpy()
        rest = table[~held]
        inner = rest[[FRAMES_INPUT]].assign(**{TEMPORAL_INPUT: out_of_fold_temporal(rest, cfg)})
        fusion = _fit_fusion(inner, rest["label"].to_numpy(), cfg)
        temporal = _fit_temporal(rest, cfg).predict_proba(table.loc[held, list(cfg.features)])
        out.loc[held, TEMPORAL_INPUT] = temporal
        out.loc[held, FUSED] = fusion.predict_proba(table.loc[held, [FRAMES_INPUT]].assign(**{TEMPORAL_INPUT: temporal}))
    return out


def video_band(lovo: pd.DataFrame, score: str, cfg: VideoModelConfig) -> Any:
    """The video band on one score's leave-one-video-out values: `high` bounds the worst source video's
    false-positive rate (videos with at least `min_reals_per_video` real clips), as the shipped band does."""
    from forensics.calibration import DecisionBand

    return DecisionBand.fit_worst_group(lovo["label"].to_numpy(), lovo[score].to_numpy(), lovo["source"].to_numpy(),
                                        cfg.target_fpr, cfg.target_fnr, min_reals=cfg.min_reals_per_video)


def choose_video_score(lovo: pd.DataFrame, cfg: VideoModelConfig = VideoModelConfig()) -> dict[str, Any]:
    """Which video score the model ships, and does it beat the frame mean alone, leave one video out?

    Each candidate (the fusion, the temporal score alone) and the frame mean get a band fitted on their own
    leave-one-video-out scores the way the shipped band is (`video_band`); they are compared on what a verdict
    does with it: the share of fake clips, over every condition, called *likely manipulated*. The pooled AUC
    breaks ties (and is recorded): a score can rank clips better overall and still be useless at the band, when
    one video's reals score as high as the fakes (bundle v3: the temporal score's AUC 0.712 beat the fusion's
    0.708, but carphone_pristine's real clips score 0.99 on it, so its band caught 13% of fakes, the fusion's 17%)."""
    from forensics.metrics import roc_auc

    y = lovo["label"].to_numpy()
    scores = (FRAMES_INPUT, *VIDEO_SCORES)
    auc = {s: round(roc_auc(y, lovo[s].to_numpy()), 4) for s in scores}
    likely = {s: round(float((lovo.loc[y == 1, s] > video_band(lovo, s, cfg).high).mean()), 4) for s in scores}
    best = max(VIDEO_SCORES, key=lambda s: (likely[s], auc[s], s == FUSED))
    wins = (likely[best], auc[best]) > (likely[FRAMES_INPUT], auc[FRAMES_INPUT])
    other = next(s for s in VIDEO_SCORES if s != best)
    what = "fused score" if best == FUSED else "temporal score alone"
    return {"decides": bool(wins), "video_score": best, "lovo_auc": auc, "lovo_likely_rate": likely,
            "why": (f"leave one video out, at a band bounding the worst video's false-positive rate, the {what} calls "
                    f"{likely[best]:.1%} of fake clips likely manipulated (AUC {auc[best]:.4f}; the {other} score "
                    f"{likely[other]:.1%}, AUC {auc[other]:.4f}): it {'beats' if wins else 'does not beat'} the frame "
                    f"mean's {likely[FRAMES_INPUT]:.1%} (AUC {auc[FRAMES_INPUT]:.4f})")}


def fit_video_model(table: pd.DataFrame, cfg: VideoModelConfig) -> tuple[VideoModel, pd.DataFrame]:
    """The shipped video model (refitted on every video; its video score the fusion or the temporal score,
    whichever won leave one video out; band from those scores; deciding only where it beats the frames) and the
    leave-one-video-out scores."""
    lovo = leave_one_video_out(table, cfg)
    y = table["label"].to_numpy()
    temporal = _fit_temporal(table, cfg)
    # The shipped fusion stacks on out-of-fold temporal scores: the leave-one-video-out ones, already computed.
    fusion = _fit_fusion(table[[FRAMES_INPUT]].assign(**{TEMPORAL_INPUT: lovo[TEMPORAL_INPUT].to_numpy()}), y, cfg)
    choice = choose_video_score(lovo, cfg)
    band = video_band(lovo, choice["video_score"], cfg)
    model = VideoModel(temporal, fusion, band, cfg.every, cfg.segment_seconds, cfg.face_px, choice["decides"],
                       record={"config": asdict(cfg), "clips": int(len(table)), "choice": choice,
                               "fusion_weights": fusion.weights(), "temporal_weights": temporal.weights()},
                       video_score=choice["video_score"], min_face_side=cfg.min_face_side)
    return model, lovo


def _set_video_model(bundle_dir: Path, folder: str | None) -> None:
    from forensics.bundle.model import BUNDLE_FILE
    from forensics.data.media import write_bytes_atomic

    meta = json.loads((bundle_dir / BUNDLE_FILE).read_text())
    meta.pop("temporal", None)
    if folder is not None:
        meta["temporal"] = folder
    write_bytes_atomic(bundle_dir / BUNDLE_FILE, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def detach_from_bundle(bundle_dir: Path, folder: str = "temporal") -> None:
    """Remove a bundle's video model (a retrain replaces it; an old or broken one must not block loading)."""
    import shutil

    _set_video_model(bundle_dir, None)
    shutil.rmtree(bundle_dir / folder, ignore_errors=True)


def attach_to_bundle(bundle_dir: Path, model: VideoModel, folder: str = "temporal") -> None:
    """Write the model into the bundle folder and name it in bundle.json."""
    import shutil

    shutil.rmtree(bundle_dir / folder, ignore_errors=True)
    model.save(bundle_dir / folder)
    _set_video_model(bundle_dir, folder)


def score_rows(model: VideoModel, rows: pd.DataFrame) -> pd.DataFrame:
    """The shipped model's temporal and fused scores of measured rows (clips it was not fitted on)."""
    out = rows[["sample_id", "label", "fake_type", "source", "split", "cond", FRAMES_INPUT]].copy()
    temporal, fused, _ = model.score_segments(rows[list(model.temporal.feature_names)].to_dict("records"),
                                              rows[FRAMES_INPUT].to_numpy())
    return out.assign(**{TEMPORAL_INPUT: temporal, FUSED: fused})


def split_small_faces(rows: pd.DataFrame, min_face_side: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured rows -> (those whose face passes the face-size guard, the others), each reindexed."""
    keep = rows["face_side"].map(lambda side: face_is_measurable(side, min_face_side)).to_numpy(bool)
    return rows[keep].reset_index(drop=True), rows[~keep].reset_index(drop=True)


def measure_with_frame_bundles(clips: pd.DataFrame, root: Path, work: Path, bundle_dir: Path,
                               frame_bundles: dict[str, Path], cfg: VideoModelConfig,
                               log: Callable[[str], None]) -> pd.DataFrame:
    """`measure_clips`, each source video's frames scored by its fold bundle where it has one (out of fold), by
    the bundle itself otherwise; the `frames_from` column says which."""
    from forensics.bundle.model import load_bundle

    parts = []
    scorer_of = clips["source"].map(lambda s: str(frame_bundles.get(s, bundle_dir)))
    for path, group in clips.groupby(scorer_of, sort=True):
        label = "bundle" if Path(path) == bundle_dir else f"out of fold ({Path(path).name} held out)"
        log(f"measuring {sorted(group['source'].unique())}: frames scored by {path} ({label})")
        parts.append(measure_clips(group, root, work, load_bundle(path), cfg, log).assign(frames_from=label))
    return pd.concat(parts, ignore_index=True)


def train_video_model(bundle_dir: str | Path, videos: str | Path, work: str | Path,
                      cfg: VideoModelConfig = VideoModelConfig(), log: Callable[[str], None] = print,
                      release: str | Path | None = None) -> tuple[VideoModel, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Measure the clips with the bundle, fit the video model on the `train_splits` source videos, score the
    others with it, attach it to the bundle. With `release` (the bundle's release run folder), each training
    video's frames are scored by the fold detectors that never saw its person (`forensics.video.out_of_fold`), so
    the fusion and the band are fitted on frame scores as out of sample as the temporal ones.
    -> (model, measured rows, leave-one-video-out scores of the training videos, the shipped model's scores of
    the held-out videos)"""
    from forensics.data.manifest import dataset_root, read_manifest
    from forensics.video.out_of_fold import frame_bundles, video_identities

    bundle_dir, work = Path(bundle_dir), Path(work)
    detach_from_bundle(bundle_dir)  # the frame scores do not depend on it; a retrain replaces it
    clips = clip_table(videos)
    clips["identity"] = clips["source"].map(video_identities(clips, read_manifest(videos)))
    log(f"{len(clips)} clips from {clips['source'].nunique()} source videos "
        f"({clips.drop_duplicates('source').set_index('source')['split'].to_dict()}), conditions {list(cfg.conditions)}")
    scorers: dict[str, Path] = {}
    if release is not None:
        people = clips[clips["split"].isin(cfg.train_splits) & clips["identity"].notna()]
        scorers = frame_bundles(bundle_dir, release, dict(zip(people["source"], people["identity"])), work)
        log(f"out-of-fold frame scores for {sorted(scorers)}; the bundle scores the rest")
    measured = measure_with_frame_bundles(clips, dataset_root(videos), work, bundle_dir, scorers, cfg, log)
    table, small = split_small_faces(measured, cfg.min_face_side)
    if len(small):
        log(f"left out {len(small)} clip-conditions whose face is under {cfg.min_face_side:g} px (no temporal score "
            f"for them in a scan either): median face {small.groupby('source')['face_side'].median().round(0).to_dict()}")
    training = table["split"].isin(cfg.train_splits).to_numpy()
    model, lovo = fit_video_model(table[training].reset_index(drop=True), cfg)
    model.record["frames_from"] = table[training].drop_duplicates("source").set_index("source")["frames_from"].to_dict()
    model.record["left_out_small_faces"] = small.groupby("source").size().to_dict()
    held = score_rows(model, table[~training]) if (~training).any() else lovo.iloc[:0]
    attach_to_bundle(bundle_dir, model)
    measured.to_parquet(work / "clips.parquet", index=False)
    lovo.to_parquet(work / "lovo.parquet", index=False)
    held.to_parquet(work / "held_out.parquet", index=False)
    log(f"video model: trained on {int(training.sum())} clip-conditions of {sorted(table[training]['source'].unique())}; "
        f"held out {sorted(table[~training]['source'].unique())}")
    return model, table, lovo, held


def bench_bundle_video(bundle_dir: str | Path, videos: str | Path, out: str | Path, cfg: VideoModelConfig | None = None,
                       log: Callable[[str], None] = print) -> tuple[Any, pd.DataFrame]:
    """Score every clip of a clip dataset with a bundle's shipped video model (no fitting): the clips measured
    the scan's way (cached in OUT/segments), then frame mean, temporal and fused scores. -> (model, scores)"""
    from dataclasses import replace

    from forensics.bundle.model import BundleError, load_bundle
    from forensics.data.manifest import dataset_root

    bundle = load_bundle(bundle_dir)
    model = bundle.video_model
    if model is None:
        raise BundleError(f"{bundle_dir}: the bundle has no video model (train one: forensics detect video-model)")
    cfg = replace(cfg or VideoModelConfig(), every=model.every, segment_seconds=model.segment_seconds,
                  face_px=model.face_px)
    table = measure_clips(clip_table(videos), dataset_root(videos), Path(out), bundle, cfg, log)
    table, small = split_small_faces(table, model.min_face_side)
    if len(small):
        log(f"left out {len(small)} clip-conditions whose face is under {model.min_face_side:g} px")
    return model, score_rows(model, table)
