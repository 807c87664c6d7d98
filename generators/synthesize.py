"""Checkpoints x a real manifest -> one labeled dataset: copies of the reals plus fakes, as lossless PNGs at
one resolution, with manifest rows that say exactly how each file was made.

Layout (paths in the manifest are relative to OUT):
    OUT/manifest.parquet
    OUT/real/<the real's original relative path>
    OUT/fake/<generator>/<ckpt-sha[:8]>/<seed>.png

Work items are the reals (image/frame rows) followed by `n` fakes per checkpoint; under `torchrun`, rank r makes
items i with i % world == r and writes its rows to OUT/manifest.rank<r>-of-<world>.parquet (atomically, every
`flush_every` items), then rank 0 merges every shard into OUT/manifest.parquet. A re-run skips items whose PNG
and row already exist (checked by sha256). Fake i of a checkpoint uses seed `seed + i`: its z and noise come
from that seed alone, so the bytes do not depend on batching, sharding or resuming.

An unconditional fake has no real source: it gets its own group_id "<generator>:<sha8>:<seed>" and splits are
assigned over each checkpoint's planned fakes with `assign_group_splits`, in the real manifest's split
proportions (rows of reals per split), before any sharding, so every rank agrees.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from forensics.data.manifest import (
    SPLITS,
    assign_group_splits,
    dataset_root,
    merge_manifests,
    new_row,
    read_manifest,
    sha256_file,
    to_frame,
    write_manifest,
)
from forensics.data.media import read_image, write_image
from generators.checkpoint import GeneratorCheckpoint, load_generator
from generators.config import config_to_dict
from generators.data import resize_square
from generators.quality import to_uint8, write_grid

MANIFEST = "manifest.parquet"


@dataclass(frozen=True)
class SynthOptions:
    n: int  # fakes per checkpoint
    size: int | None = None  # output resolution for reals and fakes; None: the (common) model resolution
    seed: int = 0
    psi: float = 1.0
    cutoff: int | None = None
    noise_mode: str = "random"
    batch: int = 16
    device: str = "cpu"
    split_seed: int = 0
    flush_every: int = 64
    training_free: tuple[str, ...] = ()  # zoo members made without a checkpoint: "blend" (n fakes each)


@dataclass(frozen=True)
class _Item:
    """One planned output file and its manifest row (sha256 filled in once written)."""

    kind: str  # "real" | "fake" | "blend" (a self-blended real, generators.blend)
    row: dict[str, Any]
    source: Path | None = None  # real: the file to copy
    ckpt_index: int = -1  # fake: which checkpoint
    seed: int = -1
    mode: str = ""  # translation fake: style mode ("none" | "latent" | "reference"); "" for sampled fakes
    ref: Path | None = None  # translation fake with reference style: the reference image


def _plan_translations(ck: GeneratorCheckpoint, ck_index: int, real_df: pd.DataFrame, real_root: Path,
                       opts: SynthOptions, size: int) -> list[_Item]:
    """Image-to-image fakes (CycleGAN, StarGAN v2): each translates a real and takes its split and group."""
    from generators.translation import translation_rows

    return [_Item("fake", row, source=real_root / src, ckpt_index=ck_index, seed=int(row["seed"]), mode=mode,
                  ref=None if ref is None else real_root / ref)
            for row, src, ref, mode in translation_rows(ck, real_df, opts.n, opts.seed, size)]


def _resize_note(src: int, dst: int) -> dict[str, Any]:
    return {"resize": {"from": [src, src], "to": [dst, dst], "interp": "area" if dst < src else "cubic"}}


def _real_sizes(df: pd.DataFrame) -> set[int]:
    """Side lengths of the real image/frame crops (known sizes only)."""
    reals = df[(df["label"] == 0) & df["media"].isin(("image", "frame")) & (df["width"] > 0)]
    return {int(v) for v in reals[["width", "height"]].max(axis=1)}


def real_split_fractions(df: pd.DataFrame) -> dict[str, float]:
    """Share of real rows per split, the target proportions for unconditional fakes."""
    reals = df[(df["label"] == 0) & df["split"].isin(SPLITS)]
    if reals.empty:
        raise ValueError("the real manifest has no reals with a split; assign splits first")
    counts = reals.groupby("split").size()
    return {s: float(counts.get(s, 0)) / len(reals) for s in SPLITS}


def _plan_reals(real_df: pd.DataFrame, real_root: Path, size: int) -> list[_Item]:
    items = []
    reals = real_df[(real_df["label"] == 0) & real_df["media"].isin(("image", "frame"))]
    for row in reals.sort_values("sample_id", kind="stable").to_dict("records"):
        src = real_root / row["path"]
        rel = PurePosixPath("real") / PurePosixPath(row["path"]).with_suffix(".png")
        post = json.loads(row["postproc"] or "{}")
        w, h = int(row["width"]), int(row["height"])
        if (w, h) != (size, size):  # recorded even when the source size is unknown (-1)
            post.update(_resize_note(max(w, h), size))
        new = dict(row, path=rel.as_posix(), postproc=json.dumps(post, sort_keys=True), width=size, height=size)
        items.append(_Item("real", new, source=src))
    return items


def _plan_fakes(ck: GeneratorCheckpoint, ck_index: int, opts: SynthOptions, size: int,
                fractions: dict[str, float]) -> list[_Item]:
    sha8 = ck.sha256[:8]
    gen_config = {"model": config_to_dict(ck.config), "psi": opts.psi, "truncation_cutoff": opts.cutoff,
                  "noise_mode": opts.noise_mode, "train_steps": ck.train_steps,
                  "train_seed": ck.info.get("train", {}).get("seed", -1)}
    post = {} if size == ck.model.resolution else _resize_note(ck.model.resolution, size)
    rows = []
    for i in range(opts.n):
        seed = opts.seed + i
        rows.append(new_row(
            sample_id=f"{ck.name}-{sha8}-{seed:08d}", path=f"fake/{ck.name}/{sha8}/{seed:08d}.png", label=1,
            media="image", generator=ck.name, generator_config=json.dumps(gen_config, sort_keys=True),
            checkpoint_sha256=ck.sha256, seed=seed, group_id=f"{ck.name}:{sha8}:{seed}",
            postproc=json.dumps(post, sort_keys=True), width=size, height=size))
    df = assign_group_splits(to_frame(rows), fractions=fractions, seed=opts.split_seed) if rows else to_frame(rows)
    split_of = dict(zip(df["sample_id"], df["split"]))
    return [_Item("fake", dict(r, split=split_of[r["sample_id"]]), ckpt_index=ck_index, seed=r["seed"])
            for r in rows]


def _shard_path(out: Path, rank: int, world: int) -> Path:
    return out / f"manifest.rank{rank:03d}-of-{world:03d}.parquet"


def _existing_rows(out: Path) -> dict[str, dict[str, Any]]:
    """Rows already written by any earlier run (merged manifest or shards) whose file still matches its sha256."""
    frames = [read_manifest(p) for p in sorted(out.glob("manifest*.parquet"))]
    done: dict[str, dict[str, Any]] = {}
    for df in frames:
        for row in df.to_dict("records"):
            f = out / row["path"]
            if row["sha256"] and f.exists() and sha256_file(f) == row["sha256"]:
                done[row["sample_id"]] = row
    return done


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    return rgb if rgb.shape[0] == size and rgb.shape[1] == size else resize_square(rgb, size)


def synthesize_shard(ckpts: Sequence[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike,
                     opts: SynthOptions, rank: int = 0, world: int = 1, progress: bool = True) -> Path:
    """Make this rank's items and write its partial manifest; returns the shard path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = [load_generator(c, opts.device) for c in ckpts]
    swaps = [str(c) for c, ck in zip(ckpts, loaded) if ck.name == "faceswap"]
    if swaps:  # a face swap is merged back into whole frames, not translated crop to crop
        raise ValueError(f"{swaps}: face-swap checkpoints go through generators.faceswap_video "
                         "(synthesize_faceswap / synthesize_faceswap_images), not this crop synthesis")
    unknown = sorted(set(opts.training_free) - {"blend"})
    if unknown:
        raise ValueError(f"{unknown}: the only zoo member made without a checkpoint is 'blend'")
    real_df = read_manifest(data)
    # without checkpoints (blend only), the reals' own size
    resolutions = {ck.model.resolution for ck in loaded} or _real_sizes(real_df)
    size = opts.size or (resolutions.pop() if len(resolutions) == 1 else 0)
    if not size:
        raise ValueError(f"checkpoints (or, without any, the real crops) have different resolutions "
                         f"{sorted(resolutions)}; pass --size")
    fractions = real_split_fractions(real_df)
    items = _plan_reals(real_df, dataset_root(data), size)
    for k, ck in enumerate(loaded):
        if hasattr(ck.model, "translate"):
            items += _plan_translations(ck, k, real_df, dataset_root(data), opts, size)
        else:
            items += _plan_fakes(ck, k, opts, size, fractions)
    if "blend" in opts.training_free:
        from generators.blend import blend_rows

        items += [_Item("blend", row, source=dataset_root(data) / src)
                  for row, src in blend_rows(real_df, opts.n, opts.seed, size)]
    mine = [it for i, it in enumerate(items) if i % world == rank]

    done = _existing_rows(out)
    rows: list[dict[str, Any]] = [done[it.row["sample_id"]] for it in mine if it.row["sample_id"] in done]
    todo = [it for it in mine if it.row["sample_id"] not in done]
    shard = _shard_path(out, rank, world)

    def flush() -> None:
        write_manifest(to_frame(rows), shard)

    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"synth rank {rank}/{world}", dynamic_ncols=True)
    since_flush = 0
    fakes_by_ckpt: dict[int, list[_Item]] = {}
    for it in todo:
        if it.kind == "real":
            assert it.source is not None
            rgb = _resize(read_image(it.source), size)
            rows.append(_write(out, it, rgb))
            since_flush += 1
            if bar is not None:
                bar.update(1)
        elif it.kind == "blend":  # made from its real source, like the real copy (same read and resize)
            from generators.blend import render_blend_row

            assert it.source is not None
            try:
                rows.append(render_blend_row(out, it.row, read_image(it.source), size))
            except ValueError as exc:  # an unreadable source or a degenerate face: reported, the run goes on
                print(f"skipped {it.row['sample_id']}: {exc}")
            since_flush += 1
            if bar is not None:
                bar.update(1)
        else:
            fakes_by_ckpt.setdefault(it.ckpt_index, []).append(it)
        if since_flush >= opts.flush_every:
            flush()
            since_flush = 0
    for k, fakes in fakes_by_ckpt.items():
        ck = loaded[k]
        for start in range(0, len(fakes), opts.batch):
            chunk = fakes[start:start + opts.batch]
            if chunk[0].mode:  # a translator: fakes are made from their real sources
                from generators.translation import make_translations

                imgs = make_translations(ck.model, [it.source for it in chunk], [it.ref for it in chunk],
                                         [it.row["target"] for it in chunk], [it.mode for it in chunk],
                                         [it.seed for it in chunk], opts.batch)
            else:
                imgs = sample_fixed_batch(ck.model, [it.seed for it in chunk], opts.batch, psi=opts.psi,
                                          cutoff=opts.cutoff, noise_mode=opts.noise_mode)
            for it, rgb in zip(chunk, to_uint8(imgs)):
                rows.append(_write(out, it, _resize(rgb, size)))
            since_flush += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            if since_flush >= opts.flush_every:
                flush()
                since_flush = 0
    if bar is not None:
        bar.close()
    flush()
    return shard


def sample_fixed_batch(model: torch.nn.Module, seeds: list[int], batch: int, psi: float = 1.0,
                       cutoff: int | None = None, noise_mode: str = "random") -> torch.Tensor:
    """`sample_seeds` always run at exactly `batch` images (padding with repeats of the last seed).

    Convolution kernels (oneDNN, cuDNN) may pick a different algorithm for a different batch size, which moves
    results by ~1e-6 and can flip a rounding to uint8; a fixed batch keeps a seed's bytes the same however the
    items were sharded or resumed. [len(seeds),3,R,R]"""
    if not seeds:
        raise ValueError("no seeds")
    padded = list(seeds) + [seeds[-1]] * (batch - len(seeds)) if len(seeds) < batch else list(seeds)
    imgs = model.sample_seeds(padded, psi=psi, cutoff=cutoff, noise_mode=noise_mode)  # type: ignore[operator]
    return imgs[:len(seeds)].cpu()


def _write(out: Path, it: _Item, rgb: np.ndarray) -> dict[str, Any]:
    path = out / it.row["path"]
    write_image(path, rgb)
    return dict(it.row, sha256=sha256_file(path))


def merge_shards(out: str | os.PathLike) -> pd.DataFrame:
    """Combine every shard (and an earlier merged manifest) into OUT/manifest.parquet, then drop the shards."""
    out = Path(out)
    shards = sorted(out.glob("manifest.rank*-of-*.parquet"))
    frames = [read_manifest(p) for p in shards]
    if (out / MANIFEST).exists():
        frames.append(read_manifest(out / MANIFEST))
    df = merge_manifests(frames)
    write_manifest(df, out / MANIFEST)
    for p in shards:
        p.unlink()
    return df


def synthesize(ckpts: Sequence[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike,
               opts: SynthOptions, progress: bool = True) -> pd.DataFrame:
    """Single-process synthesis: one shard, then merge. One writer per OUT: a second job into it is refused
    (forensics.jobs.OutputLockedError naming the holder); a disk fault raises OutputWriteError naming the file."""
    from forensics.jobs import output_errors, output_lock, remove_stale_temp_files

    with output_lock(out), output_errors(out):
        remove_stale_temp_files(out)  # a killed run's half-written temp files
        synthesize_shard(ckpts, data, out, opts, 0, 1, progress)
        return merge_shards(out)


def synthesize_distributed(ckpts: Sequence[str | os.PathLike], data: str | os.PathLike, out: str | os.PathLike,
                           opts: SynthOptions, progress: bool = True) -> pd.DataFrame | None:
    """Under torchrun (WORLD_SIZE > 1): shard, barrier, rank 0 merges and returns the manifest; others None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return synthesize(ckpts, data, out, opts, progress)
    import torch.distributed as dist

    from forensics.jobs import output_errors, output_lock, remove_stale_temp_files

    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # synthesis only needs a barrier
    try:
        # rank 0 holds OUT's lock for the whole job; the others start writing only once it has it
        with output_lock(out) if rank == 0 else contextlib.nullcontext(), output_errors(out):
            if rank == 0:
                remove_stale_temp_files(out)
            dist.barrier()
            synthesize_shard(ckpts, data, out, opts, rank, world, progress and rank == 0)
            dist.barrier()
            result = merge_shards(out) if rank == 0 else None
            dist.barrier()
            return result
    finally:
        dist.destroy_process_group()


def sample_to_folder(ckpt: str | os.PathLike, n: int, seed: int, out: str | os.PathLike, psi: float = 1.0,
                     noise_mode: str = "random", device: str = "cpu", batch: int = 32) -> list[Path]:
    """`zoo sample`: PNG i from seed + i (<seed>.png) plus grid.png of them all."""
    ck = load_generator(ckpt, device)
    out = Path(out)
    paths: list[Path] = []
    images = []
    for start in range(0, n, batch):
        seeds = list(range(seed + start, seed + min(start + batch, n)))
        imgs = sample_fixed_batch(ck.model, seeds, batch, psi=psi, noise_mode=noise_mode)
        images.append(imgs)
        for s, rgb in zip(seeds, to_uint8(imgs)):
            p = out / f"{s:08d}.png"
            write_image(p, rgb)
            paths.append(p)
    if images:
        write_grid(torch.cat(images), out / "grid.png")
    return paths
