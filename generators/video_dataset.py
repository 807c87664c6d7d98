"""The fake video dataset: from every real video with a face, short clips of real and fake video, with manifest
rows per video, per clip and per frame, split by source video.

For each real video of the corpus (a `media=video` row with an identity), the first `max_seconds` are cut into
clips of `clip_seconds` (at most `max_clips`, spread over the video); a clip where the face is missing in more
than `1 - min_face_fraction` of its frames is left out (reported): a "fake" without a swapped face would be a
mislabelled real. Each clip then exists in several *kinds*, all made frame by frame from the same decoded frames
and encoded by the same writer and codec (`forensics.data.media.write_video`, mp4v), so the codec is never the
signal:

- `real`: the source frames, re-encoded;
- `faceswap_<variant>` (naive, jittered, smoothed; `generators.faceswap_video`): the face swapped onto another
  identity the model knows;
- `cyclegan`, `stargan_v2`: the aligned face translated into another identity (StarGAN v2 with one latent
  style per source video, as a tool would keep it) and pasted back through the face swap's merge step (mask,
  colour transfer, blend; `generators.merge`);
- `blend`: a self-blend of the face (`generators.blend`, one parameter draw per source video), when that
  module is present.

Rows: one `media=video` row per (kind, source video) for the kind's clips concatenated (one file), one
`media=video` row per clip (postproc `clip`: frame range and fps; its `video_id` is the clip's own id, so
frame scores aggregate per clip), and `media=frame` rows for every `frame_every`-th frame of a clip: the 128 px
crop of the *decoded* clip, aligned with the source's landmarks (the same matrix for every kind), so a fake
frame and its real frame differ only by the manipulation. Every row made from a source video has that video
row's `group_id` (one per source video, or per footage when the corpus groups several videos of it) and its
split: nothing of one video is in two splits.

Resumable: the unit of work is one (kind, source video); its rows are merged into the manifest (atomically)
when it is done, and a rerun skips units whose rows are present with their files intact.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from forensics.data.faces import Face, FaceDetector, align_face
from forensics.data.manifest import dataset_root, new_row, read_manifest, sha256_file
from forensics.data.media import iter_frames, probe_video, write_bytes_atomic, write_image, write_video
from forensics.video.clips import Clip, clip_ranges, iter_clips
from forensics.video.tracks import detect_faces
from generators.checkpoint import GeneratorCheckpoint, load_generator, read_model_json
from generators.faceswap_video import CODEC, FaceSwapper, _gen_config, _save_manifest, landmark_sequence, variant
from generators.merge import MergeOptions, merge_face

MANIFEST = "manifest.parquet"
FrameFn = Callable[[list[np.ndarray], list[np.ndarray | None]], list[np.ndarray]]  # frames, landmarks -> frames


@dataclass(frozen=True)
class VideoDatasetOptions:
    """What is made from each real video; recorded in every fake row's generator_config."""

    clip_seconds: float = 2.0
    max_seconds: float | None = 20.0  # per source video: bounds the cost of a long video
    max_clips: int | None = 10  # per source video, spread over its first max_seconds
    min_face_fraction: float = 0.8  # a clip needs a face in this share of its frames
    swap_variants: tuple[str, ...] = ("naive", "jittered", "smoothed")
    frame_every: int = 6  # a frame row for every k-th frame of a clip
    detect_every: int = 1  # MTCNN on the source: every frame (per-frame extraction, as face-swap tools do)
    detect_max_side: int = 480  # MTCNN on frames shrunk to this longer side (cost; landmarks scaled back)
    blend: bool = True  # self-blended clips when generators.blend exists
    crop_size: int = 128
    crop_margin: float = 0.25
    split: str = "corpus"  # corpus: the source video row's split | videos: reassigned per source video
    seed: int = 0
    merge: MergeOptions = field(default_factory=MergeOptions)

    def __post_init__(self) -> None:
        if self.split not in ("corpus", "videos"):
            raise ValueError(f"split must be 'corpus' or 'videos', got {self.split!r}")
        if not 0.0 < self.min_face_fraction <= 1.0 or self.frame_every < 1:
            raise ValueError("min_face_fraction must be in (0, 1] and frame_every >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["swap_variants"] = list(self.swap_variants)
        return d


def _unit(text: str) -> float:
    """A stable number in [0, 1) per text: the same choice on every machine and rerun."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def pick_target(names: Sequence[str], identity: str, key: str) -> str:
    """Another identity than the source's, chosen by a stable hash of `key` (a model that knows the source
    identity maps it to one of the others; an unknown identity can go to any)."""
    choices = [n for n in names if n != identity]
    if not choices:
        raise ValueError(f"no target identity other than {identity!r} in {list(names)}")
    return choices[int(_unit(key) * len(choices))]


# -- source tracks -----------------------------------------------------------------------------------------------

def source_faces(path: Path, clips: Sequence[Clip], detector: FaceDetector, every: int,
                 max_side: int | None) -> dict[int, Face]:
    """The main (largest) face per frame of the clips, MTCNN on every `every`-th frame, interpolated between."""
    out: dict[int, Face] = {}
    for clip, frames in iter_clips(path, clips):
        idx = list(range(clip.start, clip.start + len(frames)))
        faces, _ = detect_faces(frames, idx, detector, every, max_side)
        out.update({i: max(f, key=lambda x: x.size) for i, f in faces.items() if f})
    return out


def _faces_json(faces: dict[int, Face]) -> dict[str, Any]:
    return {str(i): {"box": np.round(f.box, 3).tolist(), "score": round(float(f.score), 5),
                     "landmarks": np.round(f.landmarks, 3).tolist()} for i, f in sorted(faces.items())}


def _faces_from_json(d: dict[str, Any]) -> dict[int, Face]:
    return {int(i): Face(np.asarray(v["box"], np.float64), float(v["score"]), np.asarray(v["landmarks"], np.float64))
            for i, v in d.items()}


def cached_source_faces(out: Path, video_id: str, path: Path, clips: Sequence[Clip], detector: FaceDetector,
                        every: int, max_side: int | None) -> dict[int, Face]:
    """`source_faces`, stored in OUT/tracks/<video>.json keyed by the clips it covers (MTCNN runs once)."""
    cache = out / "tracks" / f"{video_id}.json"
    key = {"clips": [c.to_dict() for c in clips], "every": every, "max_side": max_side, "sha256": sha256_file(path)}
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return _faces_from_json(saved["faces"])
    faces = source_faces(path, clips, detector, every, max_side)
    write_bytes_atomic(cache, json.dumps({"key": key, "faces": _faces_json(faces)}).encode())
    return faces


# -- kinds: how a clip's frames become fake -----------------------------------------------------------------------

@dataclass
class Kind:
    """One way of making a clip: a name, the manifest generator, its config record and the frame function."""

    name: str  # e.g. real, faceswap_naive, cyclegan
    generator: str  # manifest generator column ("real" for the re-encoded source)
    target: str
    frames: FrameFn
    ck: GeneratorCheckpoint | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Unique per checkpoint: kind name + the checkpoint's sha256 prefix."""
        return self.name if self.ck is None else f"{self.name}-{self.ck.sha256[:8]}"


def _swap_frames(swapper: FaceSwapper, marks: dict[int, np.ndarray], colour_smoothing: float) -> Callable:
    """Per-frame face swap with landmarks already jittered / smoothed for the variant (see faceswap_video)."""
    def run(frames: list[np.ndarray], idx: list[int]) -> list[np.ndarray]:
        out, stats = [], None
        for i, frame in zip(idx, frames):
            if i not in marks:
                out.append(frame)
                continue
            use = None
            if colour_smoothing > 0 and swapper.merge.colour == "reinhard":
                own = swapper.frame_stats(frame, marks[i])
                stats = own if stats is None else stats.blend(own, colour_smoothing)
                use = stats
            out.append(swapper.swap_frame(frame, marks[i], use).merged.frame)
        return out
    return run


def _translate_frames(ck: GeneratorCheckpoint, target: str, faces: dict[int, Face], style_seed: int,
                      opts: VideoDatasetOptions) -> Callable:
    """Per-frame image-to-image fake: align the face like the corpus, translate at the model's resolution,
    bring it back to the crop size and merge it into the frame like a face swap."""
    model, res = ck.model, int(ck.model.resolution)

    @torch.no_grad()
    def run(frames: list[np.ndarray], idx: list[int]) -> list[np.ndarray]:
        have = [k for k, i in enumerate(idx) if i in faces]
        if not have:
            return list(frames)
        aligned = [align_face(frames[k], faces[idx[k]], size=opts.crop_size, margin=opts.crop_margin) for k in have]
        small = np.stack([cv2.resize(a.crop, (res, res), interpolation=cv2.INTER_AREA) for a in aligned])
        x = torch.from_numpy(small.transpose(0, 3, 1, 2).copy())  # uint8 [N,3,R,R]
        if "latent" in getattr(model, "style_modes", ()):
            y = model.translate(x, target=target, seed=[style_seed] * len(have))  # one style for the whole video
        else:
            y = model.translate(x, target=target)
        rgb = ((y.permute(0, 2, 3, 1).cpu().numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        out = list(frames)
        for k, a, t in zip(have, aligned, rgb):
            big = cv2.resize(t, (opts.crop_size, opts.crop_size), interpolation=cv2.INTER_CUBIC)
            out[k] = merge_face(frames[k], a.crop, big, a.matrix, faces[idx[k]].landmarks, opts.merge).frame
        return out
    return run


def _blend_frames(faces: dict[int, Face], seed: int) -> Callable | None:
    try:
        from generators.blend import apply_blend, sample_blend_params
    except ImportError:
        return None
    params = sample_blend_params(seed)  # one draw per source video: the same blend on every frame

    def one(frame: np.ndarray, i: int) -> np.ndarray:
        if i not in faces:
            return frame
        try:
            return apply_blend(frame, faces[i].landmarks, params)[0]
        except ValueError as exc:  # a degenerate face: the frame stays real, and says so
            print(f"blend: frame {i} left unchanged ({exc})")
            return frame

    def run(frames: list[np.ndarray], idx: list[int]) -> list[np.ndarray]:
        return [one(f, i) for f, i in zip(frames, idx)]
    return run


def make_kinds(ckpts: Sequence[GeneratorCheckpoint], video_id: str, identity: str, faces: dict[int, Face],
               opts: VideoDatasetOptions) -> list[Kind]:
    """Every kind of clip made from one source video (its real re-encode first)."""
    kinds = [Kind("real", "real", "", lambda frames, idx: list(frames))]
    for ck in ckpts:
        if ck.name == "faceswap":
            target = pick_target(ck.config.identities, identity, f"faceswap:{video_id}")
            tracks = {i: [f] for i, f in faces.items()}
            for name in opts.swap_variants:
                v = variant(name, seed=opts.seed)
                swapper = FaceSwapper(ck.model, target, opts.merge)
                kinds.append(Kind(f"faceswap_{name}", "faceswap", target,
                                  _swap_frames(swapper, landmark_sequence(tracks, v), v.colour_smoothing), ck,
                                  {"video": v.to_dict()}))
        elif ck.name in ("cyclegan", "stargan_v2"):
            names = tuple(ck.config.domains)
            target = pick_target(names, identity, f"{ck.name}:{video_id}")
            style = int(_unit(f"style:{video_id}:{opts.seed}") * 2**31)
            kinds.append(Kind(ck.name, ck.name, target, _translate_frames(ck, target, faces, style, opts), ck,
                              {"style": {"mode": "latent", "z_seed": style} if ck.name == "stargan_v2" else {"mode": "none"},
                               "merge": opts.merge.to_dict()}))
        else:
            raise ValueError(f"{ck.path}: a {ck.name} checkpoint makes no per-frame video fakes "
                             "(use faceswap, cyclegan or stargan_v2)")
    if opts.blend:
        fn = _blend_frames(faces, int(_unit(f"blend:{video_id}:{opts.seed}") * 2**31))
        if fn is not None:
            kinds.append(Kind("blend", "blend", "", fn, None, {"blend": "generators.blend.apply_blend, one draw per video"}))
    return kinds


# -- one (kind, source video) ----------------------------------------------------------------------------------

def _crop(frame: np.ndarray, face: Face, opts: VideoDatasetOptions) -> np.ndarray:
    return align_face(frame, face, size=opts.crop_size, margin=opts.crop_margin).crop


def make_kind_rows(kind: Kind, vrow: dict[str, Any], src: Path, clips: Sequence[Clip], faces: dict[int, Face],
                   out: Path, opts: VideoDatasetOptions, split: str) -> list[dict[str, Any]]:
    """Write one kind's clips, its concatenated video and its frame crops for one source video; return the rows."""
    vid, label = str(vrow["video_id"]), int(kind.generator != "real")
    base = f"{'real' if not label else 'fake'}/videos/{kind.tag}/{vid}"
    group = str(vrow["group_id"])  # the corpus' unit of splitting (clips of the same footage share one)
    gen_config = (_gen_config(kind.ck, kind.target, kind.config) if kind.ck is not None
                  else json.dumps(kind.config, sort_keys=True))
    common = dict(label=label, generator=kind.generator, group_id=group, split=split, identity=str(vrow["identity"]),
                  target=kind.target, generator_config=gen_config if label else "{}",
                  checkpoint_sha256=kind.ck.sha256 if kind.ck is not None else "", seed=opts.seed if label else -1)
    rows: list[dict[str, Any]] = []

    def clip_frames() -> Iterator[np.ndarray]:
        for clip, frames in iter_clips(src, clips):
            idx = list(range(clip.start, clip.start + len(frames)))
            made = kind.frames(frames, idx)
            clip_id = f"{kind.tag}:{vid}:c{clip.index:03d}"
            rel = f"{base}/c{clip.index:03d}.mp4"
            write_video(out / rel, made, clip.fps, CODEC)
            decoded = [f for _, f in iter_frames(out / rel)]  # crops come from what a viewer decodes
            post = {"clip": clip.to_dict(), "source_video": vrow["sample_id"], "fake_type": kind.name,
                    "codec": CODEC, "frames": len(decoded),
                    "frames_with_face": sum(i in faces for i in idx)}
            rows.append(new_row(sample_id=clip_id, path=rel, sha256=sha256_file(out / rel), media="video",
                                source_id=f"real:{vid}:c{clip.index:03d}" if label else "", video_id=clip_id,
                                width=made[0].shape[1], height=made[0].shape[0], postproc=post, **common))
            for k, i in enumerate(idx):
                if k % opts.frame_every or i not in faces or k >= len(decoded):
                    continue
                frel = f"{base}/c{clip.index:03d}_f{i:05d}.png"
                write_image(out / frel, _crop(decoded[k], faces[i], opts))
                rows.append(new_row(sample_id=f"{kind.tag}:{vid}:f{i:05d}", path=frel, sha256=sha256_file(out / frel),
                                    media="frame", frame_idx=i, video_id=clip_id, width=opts.crop_size,
                                    height=opts.crop_size, source_id=f"real:{vid}:f{i:05d}" if label else "",
                                    postproc={"clip": clip.index, "fake_type": kind.name, "crop": "source landmarks",
                                              "aligned": {"size": opts.crop_size, "margin": opts.crop_margin}},
                                    **common))
            yield from made

    full = f"{base}/video.mp4"
    n = write_video(out / full, clip_frames(), clips[0].fps, CODEC)
    info = probe_video(out / full)
    rows.append(new_row(sample_id=f"{kind.tag}:{vid}", path=full, sha256=sha256_file(out / full), media="video",
                        source_id=f"real:{vid}" if label else "", video_id=f"{kind.tag}:{vid}", width=info.width,
                        height=info.height, postproc={"clips": [c.index for c in clips], "frames": n, "codec": CODEC,
                                                      "source_video": vrow["sample_id"], "fake_type": kind.name,
                                                      "concatenated_clips": True}, **common))
    return rows


# -- the dataset -------------------------------------------------------------------------------------------------

def _done_units(out: Path) -> set[tuple[str, str]]:
    """(kind tag, video id) units whose rows are all present with intact files."""
    if not (out / MANIFEST).exists():
        return set()
    df = read_manifest(out / MANIFEST)
    done = set()
    ids = df["sample_id"].str.split(":")
    for (tag, vid), part in df.assign(tag=ids.str[0], vid=ids.str[1]).groupby(["tag", "vid"]):
        whole = part[(part["media"] == "video") & (part["sample_id"] == f"{tag}:{vid}")]
        if len(whole) and all((out / p).exists() and sha256_file(out / p) == s
                              for p, s in zip(part["path"], part["sha256"])):
            done.add((str(tag), str(vid)))
    return done


def video_splits(videos: pd.DataFrame, opts: VideoDatasetOptions) -> dict[str, str]:
    """Split per source video: the corpus row's (default), or, with split="videos", reassigned by a seeded hash
    over the source videos (60/20/20 of the videos, at least one in val and test when there are three)."""
    if opts.split == "corpus":
        return dict(zip(videos["video_id"].astype(str), videos["split"].astype(str)))
    order = sorted(videos["video_id"].astype(str), key=lambda v: _unit(f"split:{opts.seed}:{v}"))
    n = len(order)
    n_test = max(1, round(0.2 * n)) if n >= 3 else 0
    n_val = max(1, round(0.2 * n)) if n >= 3 else 0
    return {v: ("test" if k < n_test else "val" if k < n_test + n_val else "train") for k, v in enumerate(order)}


def synthesize_video_dataset(ckpts: Sequence[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike,
                             videos: Sequence[str] | str = "all", options: VideoDatasetOptions = VideoDatasetOptions(),
                             device: str = "cpu", log: Callable[[str], None] = print) -> pd.DataFrame:
    """Build (or resume) the clip dataset in `out` from the real videos of manifest `data`. -> its manifest"""
    out, root = Path(out), dataset_root(data)
    real = read_manifest(data)
    vrows = real[(real["media"] == "video") & (real["label"] == 0) & (real["identity"].astype(str) != "")]
    if videos != "all":
        wanted = list(videos)
        missing = sorted(set(wanted) - set(vrows["video_id"]))
        if missing:
            raise ValueError(f"{data}: no real video with a face has video_id {missing}; "
                             f"have {sorted(vrows['video_id'])}")
        vrows = vrows[vrows["video_id"].isin(wanted)]
    for c in ckpts:
        kind = read_model_json(c)["generator"]
        if kind not in ("faceswap", "cyclegan", "stargan_v2"):
            raise ValueError(f"{c}: a {kind} checkpoint makes no per-frame video fakes (use faceswap, cyclegan "
                             "or stargan_v2)")
    loaded = [load_generator(c, device) for c in ckpts]
    split_of = video_splits(vrows, options)
    detector = FaceDetector(min_score=0.9)
    done = _done_units(out)
    df = read_manifest(out / MANIFEST) if (out / MANIFEST).exists() else pd.DataFrame()
    for vrow in vrows.sort_values("video_id").to_dict("records"):
        vid, src = str(vrow["video_id"]), root / vrow["path"]
        started = time.perf_counter()
        info = probe_video(src)
        clips = clip_ranges(info.frame_count, info.fps, options.clip_seconds, options.max_seconds, options.max_clips)
        faces = cached_source_faces(out, vid, src, clips, detector, options.detect_every, options.detect_max_side)
        kept = [c for c in clips if sum(i in faces for i in range(c.start, c.stop)) >= options.min_face_fraction * c.frames]
        if not kept:
            log(f"  {vid}: no clip with a face in {options.min_face_fraction:.0%} of its frames (of {len(clips)}); skipped")
            continue
        for kind in make_kinds(loaded, vid, str(vrow["identity"]), faces, options):
            if (kind.tag, vid) in done:
                continue
            rows = make_kind_rows(kind, vrow, src, kept, faces, out, options, split_of[vid])
            df = _save_manifest(rows, out)
        log(f"  {vid} ({split_of[vid]}): {len(kept)} of {len(clips)} clips kept, "
            f"{time.perf_counter() - started:.1f} s")
    if not len(df):
        raise ValueError(f"{data}: no real video with a face to make clips from")
    return df
