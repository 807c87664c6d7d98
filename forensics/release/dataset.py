"""The release dataset: every starter crop and fakes from every zoo member, all at face resolution (128 px).

Unlike the demo's 64 px set, each fake is made the way its real counterpart was cropped:
  - self-blends are made on the *full frame* (or still) with the frame's own landmarks, then cropped with the
    real crop's alignment matrix (as SBI does), so the blend seam goes through the same resampling as the face;
  - face swaps are merged into full frames and cropped with the real crop's matrix (`generators.faceswap_video`);
  - the 64 px zoo members (CycleGAN, StarGAN v2, StyleGAN2) go through the reals' resize function
    (`generators.data.resize_square`, 64 -> 128 bicubic), and so does a real twin of each: a real crop taken down
    to 64 and back up by the same function. "Upsampled" is then no sign of "fake": small faces in real videos are
    upsampled by the alignment too. A share of the blends and swaps get such a resampled twin as well, so that
    "resampled" says nothing about the label either way.
Each stage writes its own manifest under OUT/<stage>/ and is skipped when that manifest exists (a killed run
redoes at most one stage); OUT/manifest.parquet joins them, paths relative to OUT.

This module is, with `forensics.cli.demo`, a place where `forensics` and `generators` meet: it imports the zoo
inside functions only, and the scan never imports it.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

STAGES = ("zoo", "blend", "faceswap", "resampled", "resampled_fakes")


@dataclass(frozen=True)
class ReleaseDataConfig:
    size: int = 128  # every crop, real and fake
    zoo_fakes: int = 800  # per zoo checkpoint (cyclegan, stargan_v2, stylegan2)
    blends: int = 1600  # self-blends made on full frames
    faceswaps: int = 600  # autoencoder swaps merged into full frames
    low_res: int = 64  # the resolution the resampled twins are taken down to
    fake_twin_fraction: float = 0.5  # of the self-blends and face swaps, given a resampled twin too
    seed: int = 0


def balanced_sources(reals: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` real crops spread over identities by the square root of their size (franck's 4,800 near-identical
    frames would otherwise give most fakes one face), without replacement, deterministic in `seed`."""
    reals = reals.sort_values("sample_id", kind="stable")
    counts = reals.groupby("identity").size()
    weight = np.sqrt(counts.to_numpy(np.float64))
    quota = np.minimum(counts.to_numpy(), np.maximum(1, np.round(n * weight / weight.sum()).astype(int)))
    rng = np.random.default_rng(seed)
    picks = []
    for (identity, group), q in zip(reals.groupby("identity", sort=True), quota):
        picks.append(group.iloc[np.sort(rng.choice(len(group), int(q), replace=False))])
    return pd.concat(picks).sort_values("sample_id", kind="stable").head(n)


def _frames_of(corpus: Path, rows: pd.DataFrame) -> Iterator[tuple[dict, np.ndarray]]:
    """(row, full frame or still) for each crop row: videos decoded once, sequentially, up to the last frame wanted."""
    from forensics.data.media import iter_frames, read_image
    from forensics.data.starter import ASSETS

    video_rows = rows[rows["media"] == "frame"]
    videos = {}
    for vid in video_rows["video_id"].unique():
        files = list((corpus / "videos").glob(f"{vid}.*"))
        if files:
            videos[vid] = files[0]
    for vid, group in video_rows.groupby("video_id", sort=True):
        wanted = {int(r["frame_idx"]): r for r in group.to_dict("records")}
        if vid not in videos:
            continue
        for idx, frame in iter_frames(videos[vid], max_frames=max(wanted) + 1):
            if idx in wanted:
                yield wanted[idx], frame
    for row in rows[rows["media"] == "image"].to_dict("records"):
        source = json.loads(row["postproc"])["source_file"]
        yield row, read_image(ASSETS / source)


def make_frame_blends(corpus: Path, out: Path, n: int, size: int, seed: int, log: Callable[[str], None]) -> pd.DataFrame:
    """`n` self-blends made on full frames with the frame's landmarks, cropped with the real crop's matrix."""
    from forensics.data.manifest import new_row, read_manifest, sha256_file, to_frame, write_manifest
    from forensics.data.media import write_image
    from generators.blend import BlendConfig, mask_to_uint8, self_blend
    from generators.config import config_to_dict
    from generators.faceswap_video import warp_crop
    from generators.merge import write_mask_png

    real = read_manifest(corpus / "manifest.parquet")
    reals = real[(real["label"] == 0) & real["media"].isin(("image", "frame"))]
    sources = balanced_sources(reals, n, seed)
    seed_of = {sid: seed + i for i, sid in enumerate(sources["sample_id"])}
    gen_config = json.dumps({"model": config_to_dict(BlendConfig()), "made_on": "full frame, then cropped"},
                            sort_keys=True)
    rows = []
    for src, frame in _frames_of(corpus, sources):
        post = json.loads(src["postproc"])
        s = seed_of[src["sample_id"]]
        try:
            fake, mask, params = self_blend(frame, np.asarray(post["landmarks"], np.float64), s)
        except ValueError as exc:  # a degenerate face: reported, the run goes on
            log(f"skipped blend of {src['sample_id']}: {exc}")
            continue
        matrix = np.asarray(post["aligned"]["matrix"], np.float64)
        rel = f"fake/blend/{s:08d}.png"
        write_mask_png(out / f"fake/blend/{s:08d}_mask.png", mask_to_uint8(warp_crop(mask, matrix, size)))
        write_image(out / rel, warp_crop(fake, matrix, size))
        rows.append(new_row(
            sample_id=f"blend-{s:08d}", path=rel, sha256=sha256_file(out / rel), label=1, media="image",
            generator="blend", generator_config=gen_config, seed=s, source_id=str(src["sample_id"]),
            group_id=str(src["group_id"]), split=str(src["split"]), identity=str(src["identity"]),
            width=size, height=size, frame_idx=int(src.get("frame_idx", -1)),
            postproc={"aligned": post["aligned"], "mask_path": f"fake/blend/{s:08d}_mask.png",
                      "blend": params}))
    df = to_frame(rows)
    write_manifest(df, out / "manifest.parquet", validate=False)  # sources live in the zoo stage's manifest
    return df


def make_zoo_fakes(corpus: Path, out: Path, ckpts: list[Path], n: int, size: int, seed: int) -> pd.DataFrame:
    """Every real crop copied at `size` and `n` fakes per zoo checkpoint through the same resize (resumable)."""
    from forensics.data.manifest import read_manifest
    from generators.synthesize import SynthOptions, synthesize

    synthesize([str(c) for c in ckpts], corpus / "manifest.parquet", out, SynthOptions(n=n, size=size, seed=seed),
               progress=False)
    return read_manifest(out / "manifest.parquet")


def make_faceswaps(corpus: Path, out: Path, ckpt: Path, n: int) -> pd.DataFrame:
    """Autoencoder swaps merged into their full frames, cropped with the real crop's matrix (fakes only)."""
    from forensics.data.manifest import read_manifest, write_manifest
    from generators.faceswap_video import synthesize_faceswap_images

    staging = out / "staging"
    df = read_manifest(staging / "manifest.parquet") if (staging / "manifest.parquet").exists() else \
        synthesize_faceswap_images(ckpt, corpus / "manifest.parquet", staging, n=n)
    fakes = df[(df["label"] == 1) & (df["media"] != "video")].copy()
    fakes["path"] = [f"staging/{p}" for p in fakes["path"]]
    fakes["postproc"] = [_prefix_paths(p, "staging/") for p in fakes["postproc"]]
    write_manifest(fakes, out / "manifest.parquet", validate=False)  # sources live in the zoo stage's manifest
    return fakes


def _prefix_paths(postproc: str, prefix: str) -> str:
    post = json.loads(postproc or "{}")
    for key in [k for k in post if k.endswith("_path")]:
        post[key] = prefix + post[key]
    return json.dumps(post, sort_keys=True)


def _write_twins(sources: pd.DataFrame, root: Path, out: Path, size: int, low: int) -> list[dict]:
    """For each source row: its crop taken down to `low` px and back up by the resize the zoo fakes went through,
    written under OUT/lowres/, as a row that keeps the source's label, generator, person and split."""
    from forensics.data.manifest import new_row, sha256_file
    from forensics.data.media import read_image, write_image
    from generators.data import resize_square

    keep = ("label", "media", "generator", "generator_config", "seed", "group_id", "split", "identity", "target",
            "video_id", "frame_idx")
    rows = []
    for src in sources.to_dict("records"):
        rel = (PurePosixPath("lowres") / PurePosixPath(src["path"]).name).as_posix()
        write_image(out / rel, resize_square(resize_square(read_image(root / src["path"]), low), size))
        post = {k: v for k, v in json.loads(src["postproc"] or "{}").items() if not k.endswith("_path")}
        post["resample"] = {"via": [low, low], "to": [size, size], "function": "generators.data.resize_square"}
        rows.append(new_row(**{k: src[k] for k in keep if k in src}, sample_id=f"lowres:{src['sample_id']}",
                            path=rel, sha256=sha256_file(out / rel), source_id=str(src["sample_id"]),
                            width=size, height=size, postproc=post))
    return rows


def make_resampled_reals(zoo: pd.DataFrame, zoo_root: Path, out: Path, size: int, low: int, seed: int) -> pd.DataFrame:
    """A real twin for each zoo fake: translations take their own source; sampled fakes (no source) a seeded real."""
    from forensics.data.manifest import to_frame, write_manifest

    reals = zoo[(zoo["label"] == 0) & zoo["media"].isin(("image", "frame"))].set_index("sample_id", drop=False)
    fakes = zoo[zoo["label"] == 1].sort_values("sample_id", kind="stable")
    rng = np.random.default_rng(seed)
    free = rng.permutation(reals.index.to_numpy())
    sources = [s if s in reals.index else free[i % len(free)] for i, s in enumerate(fakes["source_id"])]
    df = to_frame(_write_twins(reals.loc[list(dict.fromkeys(sources))], zoo_root, out, size, low))  # one twin per real
    write_manifest(df, out / "manifest.parquet")
    return df


def make_resampled_fakes(stages: dict[str, pd.DataFrame], root: Path, out: Path, size: int, low: int,
                         fraction: float, seed: int) -> pd.DataFrame:
    """Resampled twins of a seeded `fraction` of the full-resolution fakes (self-blends, face swaps). Without
    them only reals and GAN fakes were ever resampled, and a smooth, GAN-free spectrum meant "real": reals taken
    to 64 px and back scored as more real than the reals themselves (AUC 0.25, shipped bundle v1)."""
    from forensics.data.manifest import to_frame, write_manifest

    rng = np.random.default_rng(seed)
    rows = []
    for stage, df in sorted(stages.items()):
        fakes = df[df["label"] == 1].sort_values("sample_id", kind="stable")
        picked = fakes.iloc[np.sort(rng.choice(len(fakes), int(round(fraction * len(fakes))), replace=False))]
        rows += _write_twins(picked.assign(path=[f"{stage}/{p}" for p in picked["path"]]), root, out, size, low)
    df = to_frame(rows)
    write_manifest(df, out / "manifest.parquet", validate=False)  # sources live in other stages' manifests
    return df


def build_release_dataset(corpus: str | Path, out: str | Path, ckpts: dict[str, Path],
                          cfg: ReleaseDataConfig = ReleaseDataConfig(), log: Callable[[str], None] = print) -> Path:
    """All stages (each skipped once its manifest exists), then OUT/manifest.parquet joining them."""
    from forensics.data.manifest import describe_manifest, merge_manifests, read_manifest, write_manifest

    corpus, out = Path(corpus), Path(out)
    zoo_ckpts = [p for name, p in sorted(ckpts.items()) if name != "faceswap"]
    done = lambda stage: (out / stage / "manifest.parquet").exists()  # noqa: E731
    if not done("zoo"):
        log(f"zoo: every real crop and {cfg.zoo_fakes} fakes each from {', '.join(sorted(set(ckpts) - {'faceswap'}))}")
        make_zoo_fakes(corpus, out / "zoo", zoo_ckpts, cfg.zoo_fakes, cfg.size, cfg.seed)
    if not done("blend"):
        log(f"blend: {cfg.blends} self-blends on full frames")
        make_frame_blends(corpus, out / "blend", cfg.blends, cfg.size, cfg.seed, log)
    if "faceswap" in ckpts and not done("faceswap"):
        log(f"faceswap: {cfg.faceswaps} swaps merged into full frames")
        make_faceswaps(corpus, out / "faceswap", ckpts["faceswap"], cfg.faceswaps)
    zoo = read_manifest(out / "zoo" / "manifest.parquet")
    if not done("resampled"):
        log("resampled: a real twin of each zoo fake through the same 64 -> 128 resize")
        make_resampled_reals(zoo, out / "zoo", out / "resampled", cfg.size, cfg.low_res, cfg.seed)
    if not done("resampled_fakes"):
        log(f"resampled_fakes: a resampled twin of {cfg.fake_twin_fraction:.0%} of the blends and swaps")
        made = {st: read_manifest(out / st / "manifest.parquet") for st in ("blend", "faceswap") if done(st)}
        make_resampled_fakes(made, out, out / "resampled_fakes", cfg.size, cfg.low_res, cfg.fake_twin_fraction,
                             cfg.seed)
    parts = []
    for stage in STAGES:
        if done(stage):
            df = read_manifest(out / stage / "manifest.parquet")
            df["path"] = [f"{stage}/{p}" for p in df["path"]]
            df["postproc"] = [_prefix_paths(p, f"{stage}/") for p in df["postproc"]]
            parts.append(df)
    merged = merge_manifests(parts)
    write_manifest(merged, out / "manifest.parquet")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    counts = describe_manifest(merged)
    log(f"dataset: {counts['rows']} crops; by generator {counts['by_generator']}")
    return out / "manifest.parquet"
