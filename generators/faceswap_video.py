"""Creation with a trained face swap: fake frames and fake videos with manifest rows, and their flicker.

Per frame (the deepfakes pipeline): landmarks from the tracker -> aligned crop -> the model's window -> the
target identity's decoder -> merged back into the frame (generators.merge). Every frame is processed on its own,
so MTCNN's landmark noise, the per-frame colour statistics and the decoder's sensitivity to small alignment
changes show up as flicker. `VideoSwapOptions` records the knobs that make more or less of it:

- `landmark_jitter`: extra per-frame landmark noise (a careless extractor);
- `landmark_smoothing`: a zero-lag EMA (forward, then backward) of the landmarks over time: steadier alignment;
- `colour_smoothing`: an EMA of the colour-transfer statistics instead of each frame's own.

Real and fake videos are written by the same writer with the same codec and fps (forensics.data.media), and the
real source is re-encoded too, so the container is never the signal. Per-frame fake rows are 128 px aligned
crops made with the same matrix as the real crop of that frame (when the corpus has it), so a fake frame row and
its real source row differ only by the swap; the swap mask is stored beside each fake as a pixel-level label.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
import torch

from forensics.data.faces import Face, FaceDetector, align_face, track_video
from forensics.data.manifest import (
    dataset_root,
    merge_manifests,
    new_row,
    read_manifest,
    sha256_file,
    to_frame,
    write_manifest,
)
from forensics.data.media import iter_frames, probe_video, read_image, write_image, write_video
from generators.checkpoint import GeneratorCheckpoint, load_generator
from generators.config import config_to_dict
from generators.faceswap import FaceSwapAutoencoder, FaceSwapConfig, compose_affine, crop_to_model_matrix, model_window
from generators.merge import (
    ColourStats,
    MergeOptions,
    Merged,
    colour_stats,
    face_region,
    merge_face,
    write_mask_png,
)

CODEC = "mp4v"  # the one codec for real and fake videos here (forensics.data.media.write_video's default)
MANIFEST = "manifest.parquet"


class NoFaceError(ValueError):
    """A video in which the tracker found no face: there is nothing to swap."""


@dataclass(frozen=True)
class VideoSwapOptions:
    """How a video is swapped frame by frame; serialised into every row it produces."""

    variant: str = "naive"
    landmark_jitter: float = 0.0  # per-frame landmark noise std, in eye distances
    landmark_smoothing: float = 0.0  # EMA weight of the past for landmarks (0: off); run forward and backward
    colour_smoothing: float = 0.0  # EMA weight of the past for colour statistics (0: each frame's own)
    detect_every: int = 1  # MTCNN on every k-th frame, interpolated between (1: per-frame detection)
    max_frames: int | None = None
    merge: MergeOptions = field(default_factory=MergeOptions)
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.0 <= self.landmark_smoothing < 1.0 and 0.0 <= self.colour_smoothing < 1.0):
            raise ValueError("smoothing weights must be in [0, 1)")
        if self.landmark_jitter < 0 or self.detect_every < 1:
            raise ValueError("landmark_jitter must be >= 0 and detect_every >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Named variants: the per-frame pipeline, a careless one, and the hard low-flicker one.
VARIANTS: dict[str, VideoSwapOptions] = {
    "naive": VideoSwapOptions(variant="naive"),
    "jittered": VideoSwapOptions(variant="jittered", landmark_jitter=0.03),
    "smoothed": VideoSwapOptions(variant="smoothed", landmark_smoothing=0.75, colour_smoothing=0.9),
}


def variant(name: str, max_frames: int | None = None, seed: int = 0) -> VideoSwapOptions:
    if name not in VARIANTS:
        raise ValueError(f"unknown video variant {name!r}; choose one of {sorted(VARIANTS)}")
    return replace(VARIANTS[name], max_frames=max_frames, seed=seed)


# -- one frame -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SwappedFrame:
    merged: Merged
    crop_matrix: np.ndarray  # [2,3] frame -> align_size crop (the corpus alignment of the landmarks used)
    model_matrix: np.ndarray  # [2,3] frame -> model input
    original: np.ndarray  # [R,R,3] the model's input window
    swapped: np.ndarray  # [R,R,3] the decoder's output


class FaceSwapper:
    """A loaded face-swap model bound to a target identity and merge options."""

    def __init__(self, model: FaceSwapAutoencoder, target: str, merge: MergeOptions = MergeOptions()) -> None:
        self.model = model.eval()
        self.config: FaceSwapConfig = model.config
        self.target = target
        self.target_index = model.identity_index(target)
        self.merge = merge
        if merge.mask == "learned" and not self.config.mask_head:
            raise ValueError("MergeOptions(mask='learned') needs a model trained with mask_head=True")

    def prepare(self, frame: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Align like the corpus, then cut the model window. -> (input [R,R,3], frame->crop, frame->model)"""
        cfg = self.config
        face = Face(box=np.zeros(4), score=1.0, landmarks=np.asarray(landmarks, np.float64))
        aligned = align_face(frame, face, size=cfg.align_size, margin=cfg.align_margin)
        return model_window(aligned.crop, cfg), aligned.matrix, compose_affine(crop_to_model_matrix(cfg), aligned.matrix)

    @torch.no_grad()
    def decode(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """[R,R,3] uint8 -> (swapped [R,R,3] uint8, mask [R,R] float or None)."""
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))[None].float() / 127.5 - 1.0
        rgb, mask = self.model.swap(x, self.target_index)
        out = ((rgb[0].permute(1, 2, 0).cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        return out, (mask[0, 0].cpu().numpy() if mask is not None else None)

    def swap_frame(self, frame: np.ndarray, landmarks: np.ndarray, stats: ColourStats | None = None) -> SwappedFrame:
        window, crop_m, model_m = self.prepare(frame, landmarks)
        swapped, learned = self.decode(window)
        merged = merge_face(frame, window, swapped, model_m, landmarks, self.merge, learned, stats)
        return SwappedFrame(merged, crop_m, model_m, window, swapped)

    def frame_stats(self, frame: np.ndarray, landmarks: np.ndarray) -> ColourStats:
        """This frame's own colour statistics (for temporal smoothing)."""
        window, _, model_m = self.prepare(frame, landmarks)
        swapped, learned = self.decode(window)
        region = face_region(landmarks, model_m, window.shape[0], self.merge, learned)
        return colour_stats(swapped, window, region)


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The corpus' crop operation (align_face's warp, borders reflected) for an image or its mask: a crop that
    reaches past the frame edge shows reflected (possibly swapped) pixels, and its mask must say so."""
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (size, size), flags=interp,
                          borderMode=cv2.BORDER_REFLECT101)


# -- landmark sequences ----------------------------------------------------------------------------------------

def main_face(faces: Sequence[Face]) -> Face | None:
    """The video's subject: the largest face (as the starter corpus picks it)."""
    return max(faces, key=lambda f: f.size) if faces else None


def smooth_landmarks(seq: dict[int, np.ndarray], weight: float) -> dict[int, np.ndarray]:
    """Zero-lag EMA over consecutive frame indices: forward, then backward over the result. A gap restarts it."""
    if weight <= 0 or not seq:
        return dict(seq)
    idx = sorted(seq)
    runs: list[list[int]] = [[idx[0]]]
    for i in idx[1:]:
        if i - runs[-1][-1] == 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    out: dict[int, np.ndarray] = {}
    for run in runs:
        pts = np.stack([seq[i] for i in run])  # [T,5,2]
        for order in (range(len(run)), range(len(run) - 1, -1, -1)):
            acc = None
            for t in order:
                acc = pts[t] if acc is None else weight * acc + (1.0 - weight) * pts[t]
                pts[t] = acc
        out.update({i: pts[k] for k, i in enumerate(run)})
    return out


def landmark_sequence(tracks: dict[int, list[Face]], options: VideoSwapOptions) -> dict[int, np.ndarray]:
    """Per-frame landmarks of the main face after the variant's jitter and smoothing. {frame_idx: [5,2]}"""
    seq = {i: main_face(f).landmarks.copy() for i, f in tracks.items() if main_face(f) is not None}
    if options.landmark_jitter > 0:
        rng = np.random.default_rng(options.seed)
        for i in sorted(seq):
            eye = float(np.linalg.norm(seq[i][1] - seq[i][0]))
            seq[i] = seq[i] + rng.normal(0.0, options.landmark_jitter * eye, size=(5, 2))
    return smooth_landmarks(seq, options.landmark_smoothing)


# -- one video -------------------------------------------------------------------------------------------------

@dataclass
class VideoResult:
    frames: int
    faces: int
    no_face_frames: list[int]
    crops: dict[int, tuple[np.ndarray, np.ndarray]]  # frame_idx -> (fake crop [A,A,3], crop mask [A,A] uint8)


def swap_video_frames(swapper: FaceSwapper, video: str | os.PathLike, tracks: dict[int, list[Face]],
                      options: VideoSwapOptions, crop_matrices: dict[int, np.ndarray] | None = None,
                      result: VideoResult | None = None) -> Iterator[np.ndarray]:
    """Yield the fake frames of `video` in order (frames without a face pass through unchanged). When `result`
    is given it collects, per frame, the fake's aligned crop and mask (with `crop_matrices[idx]` when given,
    the real corpus crop's matrix, else the alignment of the landmarks used)."""
    marks = landmark_sequence(tracks, options)
    size = swapper.config.align_size
    stats: ColourStats | None = None
    for idx, frame in iter_frames(video, max_frames=options.max_frames):
        if result is not None:
            result.frames += 1
        if idx not in marks:
            if result is not None:
                result.no_face_frames.append(idx)
            yield frame
            continue
        use_stats = None
        if options.colour_smoothing > 0 and options.merge.colour == "reinhard":
            own = swapper.frame_stats(frame, marks[idx])
            stats = own if stats is None else stats.blend(own, options.colour_smoothing)
            use_stats = stats
        out = swapper.swap_frame(frame, marks[idx], use_stats)
        if result is not None:
            result.faces += 1
            m = (crop_matrices or {}).get(idx)
            if m is None:
                face = main_face(tracks[idx])
                m = align_face(frame, face, size=size, margin=swapper.config.align_margin).matrix
            crop = warp_crop(out.merged.frame, m, size)
            mask = warp_crop(out.merged.mask, m, size)  # same border rule as the crop: reflected frames reflect
            result.crops[idx] = (crop, mask)
        yield out.merged.frame


def video_tracks(video: str | os.PathLike, detect_every: int = 1, max_frames: int | None = None,
                 detector: FaceDetector | None = None) -> dict[int, list[Face]]:
    """MTCNN tracks of a video (the corpus detector settings)."""
    return track_video(video, detector or FaceDetector(min_score=0.9), every=detect_every, max_frames=max_frames)


# -- datasets --------------------------------------------------------------------------------------------------

def _gen_config(ck: GeneratorCheckpoint, target: str, extra: dict[str, Any]) -> str:
    return json.dumps({"model": config_to_dict(ck.config), "target": target, "train_steps": ck.train_steps,
                       "train_seed": ck.info.get("train", {}).get("seed", -1), **extra}, sort_keys=True)


def _other(cfg: FaceSwapConfig, identity: str) -> str:
    if identity not in cfg.identities:
        raise ValueError(f"identity {identity!r} is not one of the model's {list(cfg.identities)}")
    return cfg.identities[1 - cfg.identities.index(identity)]


def _real_copy_row(row: dict[str, Any], out: Path, root: Path) -> dict[str, Any]:
    """A real crop copied into the dataset as real/<path>.png (the zoo's convention), unchanged."""
    rel = (PurePosixPath("real") / PurePosixPath(row["path"]).with_suffix(".png")).as_posix()
    dst = out / rel
    if not dst.exists():
        write_image(dst, read_image(root / row["path"]))
    return dict(row, path=rel, sha256=sha256_file(dst))


def _save_manifest(rows: list[dict[str, Any]], out: Path) -> pd.DataFrame:
    """Merge new rows into OUT/manifest.parquet (identical rows collapse; a changed row is a conflict)."""
    frames = [to_frame(rows)]
    if (out / MANIFEST).exists():
        old = read_manifest(out / MANIFEST)
        frames.append(old[~old["sample_id"].isin({r["sample_id"] for r in rows})])
    df = merge_manifests(frames)
    write_manifest(df, out / MANIFEST)
    return df


def _frames_by_video(real: pd.DataFrame) -> dict[str, str]:
    """video_id -> manifest path of its video row."""
    vids = real[real["media"] == "video"]
    return dict(zip(vids["video_id"], vids["path"]))


def synthesize_faceswap_images(ckpt: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, n: int,
                               seed: int = 0, merge: MergeOptions = MergeOptions(), device: str = "cpu") -> pd.DataFrame:
    """`n` swapped frames (half per direction A->B, B->A) from real corpus frames whose source video is in the
    manifest: the full merged frame, its mask, and the 128 px crop with the real crop's own matrix (the row's
    file). Sources are a seeded sample of each identity's frames. Returns the dataset manifest."""
    ck = load_generator(ckpt, device)
    cfg: FaceSwapConfig = ck.config
    out, root = Path(out), dataset_root(data)
    real = read_manifest(data)
    video_path = _frames_by_video(real)
    rows: list[dict[str, Any]] = []
    sha8 = ck.sha256[:8]
    for k, source_identity in enumerate(cfg.identities):
        target = _other(cfg, source_identity)
        swapper = FaceSwapper(ck.model, target, merge)
        pool = real[(real["label"] == 0) & (real["identity"] == source_identity) & (real["media"] == "frame")
                    & real["video_id"].isin(video_path.keys())].sort_values("sample_id", kind="stable")
        count = n // 2 + (n % 2 if k == 0 else 0)
        if pool.empty or count == 0:
            continue
        picks = pool.iloc[np.sort(np.random.default_rng(seed + k).choice(len(pool), min(count, len(pool)), replace=False))]
        for vid, group in picks.groupby("video_id", sort=True):
            wanted = {int(r["frame_idx"]): r for r in group.to_dict("records")}
            last = max(wanted)
            for idx, frame in iter_frames(root / video_path[vid], max_frames=last + 1):
                if idx not in wanted:
                    continue
                src = wanted[idx]
                post = json.loads(src["postproc"])
                crop_m = np.asarray(post["aligned"]["matrix"], np.float64)
                res = swapper.swap_frame(frame, np.asarray(post["landmarks"], np.float64))
                base = f"fake/faceswap/{sha8}/images/{src['sample_id'].replace(':', '_')}_to_{target}"
                crop = warp_crop(res.merged.frame, crop_m, cfg.align_size)
                crop_mask = warp_crop(res.merged.mask, crop_m, cfg.align_size)
                write_image(out / f"{base}.png", crop)
                write_image(out / f"{base}_frame.png", res.merged.frame)
                write_mask_png(out / f"{base}_mask.png", crop_mask)
                write_mask_png(out / f"{base}_frame_mask.png", res.merged.mask)
                rows.append(_real_copy_row(src, out, root))
                # The swapped frames of one clip form a fake video of their own: sharing the source's video_id
                # would pool real and fake frames into one "video" when scores are aggregated per video.
                rows.append(new_row(
                    sample_id=f"faceswap-{sha8}-{src['sample_id']}-to-{target}", path=f"{base}.png",
                    sha256=sha256_file(out / f"{base}.png"), label=1, media="frame", generator="faceswap",
                    generator_config=_gen_config(ck, target, {"merge": merge.to_dict()}),
                    checkpoint_sha256=ck.sha256, seed=seed, source_id=src["sample_id"], group_id=src["group_id"],
                    split=src["split"], target=target, identity=source_identity, width=cfg.align_size,
                    height=cfg.align_size, frame_idx=idx, video_id=f"{vid}__faceswap_to_{target}_{sha8}",
                    postproc={"aligned": post["aligned"], "mask_path": f"{base}_mask.png",
                              "merged_frame_path": f"{base}_frame.png", "frame_mask_path": f"{base}_frame_mask.png",
                              "mask_fraction": round(float((crop_mask > 0).mean()), 5)}))
    return _save_manifest(rows, out)


def synthesize_faceswap_video(ckpt: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
                              video_id: str, options: VideoSwapOptions, device: str = "cpu",
                              tracks: dict[int, list[Face]] | None = None) -> pd.DataFrame:
    """One fake video (every frame swapped to the other identity) + its re-encoded real source, both through
    `write_video` with the same codec and fps; per-frame fake crop rows with masks; the video rows."""
    ck = load_generator(ckpt, device)
    cfg: FaceSwapConfig = ck.config
    out, root = Path(out), dataset_root(data)
    real = read_manifest(data)
    vrow = real[(real["media"] == "video") & (real["video_id"] == video_id)]
    if vrow.empty:
        raise ValueError(f"{data}: no video row with video_id {video_id!r}")
    vrow = vrow.iloc[0].to_dict()
    target = _other(cfg, vrow["identity"])
    src_path = root / vrow["path"]
    info = probe_video(src_path)
    if tracks is None:
        tracks = video_tracks(src_path, options.detect_every, options.max_frames)
    frames = real[(real["media"] == "frame") & (real["video_id"] == video_id) & (real["label"] == 0)]
    by_idx = {int(r["frame_idx"]): r for r in frames.to_dict("records")}
    crop_ms = {i: np.asarray(json.loads(r["postproc"])["aligned"]["matrix"], np.float64) for i, r in by_idx.items()}

    sha8 = ck.sha256[:8]
    fake_vid = f"{video_id}__faceswap_{options.variant}_{sha8}"
    rows: list[dict[str, Any]] = []
    # the real source, re-encoded with the fake's writer and settings
    real_rel = f"real/videos/{video_id}.mp4"
    if not (out / real_rel).exists():
        write_video(out / real_rel, (f for _, f in iter_frames(src_path, max_frames=options.max_frames)), info.fps, CODEC)
    n_real = probe_video(out / real_rel).frame_count
    rows.append(new_row(
        sample_id=f"{vrow['sample_id']}:reencoded", path=real_rel, sha256=sha256_file(out / real_rel), label=0,
        media="video", source_id=vrow["sample_id"], group_id=vrow["group_id"], split=vrow["split"],
        identity=vrow["identity"], video_id=video_id, width=info.width, height=info.height,
        postproc={"reencoded": {"codec": CODEC, "fps": round(info.fps, 6), "writer": "forensics.data.media.write_video",
                                "max_frames": options.max_frames}, "frame_count": n_real}))

    result = VideoResult(0, 0, [], {})
    swapper = FaceSwapper(ck.model, target, options.merge)
    fake_rel = f"fake/faceswap/{sha8}/videos/{fake_vid}.mp4"
    written = write_video(out / fake_rel, swap_video_frames(swapper, src_path, tracks, options, crop_ms, result),
                          info.fps, CODEC)
    if result.faces == 0:  # an unchanged video must never be labeled fake
        (out / fake_rel).unlink(missing_ok=True)
        raise NoFaceError(f"{src_path}: no face in any of its {result.frames} frames; no fake video made")
    gen_config = _gen_config(ck, target, {"video": options.to_dict()})
    for idx, (crop, mask) in sorted(result.crops.items()):
        src = by_idx.get(idx)
        base = f"fake/faceswap/{sha8}/frames/{fake_vid}/f{idx:05d}"
        write_image(out / f"{base}.png", crop)
        write_mask_png(out / f"{base}_mask.png", mask)
        if src is not None:
            rows.append(_real_copy_row(src, out, root))
        rows.append(new_row(
            sample_id=f"faceswap-{sha8}-{options.variant}-{video_id}:f{idx:05d}", path=f"{base}.png",
            sha256=sha256_file(out / f"{base}.png"), label=1, media="frame", generator="faceswap",
            generator_config=gen_config, checkpoint_sha256=ck.sha256, seed=options.seed,
            source_id=src["sample_id"] if src is not None else "",
            group_id=src["group_id"] if src is not None else vrow["group_id"],
            split=src["split"] if src is not None else vrow["split"], target=target, identity=vrow["identity"],
            width=cfg.align_size, height=cfg.align_size, frame_idx=idx, video_id=fake_vid,
            postproc={"mask_path": f"{base}_mask.png", "crop": "real crop matrix" if src is not None else "tracked",
                      "mask_fraction": round(float((mask > 0).mean()), 5)}))
    rows.append(new_row(
        sample_id=f"faceswap-{sha8}-{options.variant}-video:{video_id}", path=fake_rel,
        sha256=sha256_file(out / fake_rel), label=1, media="video", generator="faceswap", generator_config=gen_config,
        checkpoint_sha256=ck.sha256, seed=options.seed, source_id=f"{vrow['sample_id']}:reencoded",
        group_id=vrow["group_id"], split=vrow["split"], target=target, identity=vrow["identity"], video_id=fake_vid,
        width=info.width, height=info.height,
        postproc={"source_video": vrow["sample_id"], "codec": CODEC, "fps": round(info.fps, 6), "frame_count": written,
                  "frames_with_face": result.faces, "frames_without_face": result.no_face_frames[:50],
                  "real_reencoded": real_rel}))
    return _save_manifest(rows, out)


def synthesize_faceswap(ckpts: Sequence[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike, n: int,
                        seed: int = 0, videos: Sequence[str] = (), variants: Sequence[str] = ("naive",),
                        max_frames: int | None = None, device: str = "cpu") -> pd.DataFrame:
    """`forensics synth` for face-swap checkpoints: `n` merged-frame fakes per checkpoint, plus, for each video id
    in `videos`, one fake video per variant. Single process; a dataset folder of its own (its reals are the
    corpus' 128 px crops, which the other generators' synthesis resizes)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RuntimeError("face-swap synthesis runs in one process; launch it without torchrun")
    df = pd.DataFrame()
    for ckpt in ckpts:
        if n > 0:
            df = synthesize_faceswap_images(ckpt, data, out, n, seed=seed, device=device)
        for vid in videos:
            real = read_manifest(data)
            vrow = real[(real["media"] == "video") & (real["video_id"] == vid)]
            if vrow.empty:
                raise ValueError(f"{data}: no video row with video_id {vid!r}")
            tracks = video_tracks(dataset_root(data) / vrow.iloc[0]["path"], 1, max_frames)
            for name in variants:
                try:
                    df = synthesize_faceswap_video(ckpt, data, out, vid, variant(name, max_frames, seed), device,
                                                   tracks)
                except NoFaceError as exc:  # reported, and the batch goes on with the next video
                    print(f"skipped: {exc}")
                    break
    return df
