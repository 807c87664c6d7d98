"""What the image-to-image models (CycleGAN, StarGAN v2) share: domains taken from a manifest column, their
training images, target parsing for `translate`, and translation-specific quality measures.

Domains are values of a manifest column (default `identity`): the starter corpus has three people with enough
training crops (pexels_woman, carphone_man, pyfeat_man); CycleGAN takes two of them, StarGAN v2 any number.
A model's config names its domains; an empty tuple means "choose from the data" (the `num_domains` values with
the most real train images, each with at least `min_images`), resolved once in `load_data` and then saved in
the checkpoint's config, so a loaded model knows its domain names.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from forensics.data.manifest import dataset_root, read_manifest, resolve_paths
from forensics.data.media import MediaError, read_image
from generators.data import DataError, resize_square

@dataclass(frozen=True)
class DomainData:
    """Real train images of each domain. images: uint8 [N,3,R,R]; domain: int64 [N] (index into `names`)."""

    names: tuple[str, ...]
    images: torch.Tensor
    domain: torch.Tensor
    sample_ids: tuple[str, ...]
    source_resolution: tuple[int, ...]  # distinct source sizes before resizing (recorded, e.g. (128,))

    def of(self, d: int) -> torch.Tensor:  # uint8 [N_d,3,R,R]
        return self.images[self.domain == d]


def domain_counts(df: pd.DataFrame, column: str, splits: tuple[str, ...] = ("train",)) -> pd.Series:
    """Real image/frame rows per value of `column` in `splits`, most first (ties by name)."""
    if column not in df.columns:
        raise DataError(f"manifest has no column {column!r} to take domains from; columns: {list(df.columns)}")
    rows = df[(df["label"] == 0) & df["split"].isin(splits) & df["media"].isin(("image", "frame"))]
    rows = rows[rows[column].astype(str) != ""]
    counts = rows.groupby(column).size()
    return counts.sort_index().sort_values(ascending=False, kind="stable")


def resolve_domains(df: pd.DataFrame, column: str, domains: Sequence[str], num_domains: int,
                    min_images: int) -> tuple[str, ...]:
    """The model's domains: the named ones (checked to exist with >= 1 train image), or the `num_domains` values
    of `column` with most train images (each >= `min_images`). Errors list what the data holds."""
    counts = domain_counts(df, column)
    if domains:
        if len(domains) != num_domains:
            raise DataError(f"{num_domains} domains needed, {len(domains)} named: {list(domains)}")
        missing = [d for d in domains if d not in counts.index]
        if missing:
            raise DataError(f"domains {missing} have no real train images in column {column!r}; "
                            f"available: {counts.to_dict()}")
        return tuple(str(d) for d in domains)
    eligible = counts[counts >= min_images]
    if len(eligible) < num_domains:
        raise DataError(f"need {num_domains} values of {column!r} with >= {min_images} real train images; "
                        f"the manifest has {counts.to_dict()}")
    return tuple(str(d) for d in eligible.index[:num_domains])


def load_domain_images(manifest: str | os.PathLike, resolution: int, column: str, names: Sequence[str],
                       splits: tuple[str, ...] = ("train",)) -> DomainData:
    """Real images of the named domains in `splits`, centre-cropped and area-resized to `resolution`.

    Rows are sorted by sample_id so the tensor (and hence training) is reproducible; unreadable files are reported
    and skipped."""
    df = read_manifest(manifest)
    if column not in df.columns:
        raise DataError(f"{manifest}: no column {column!r} to take domains from")
    rows = df[(df["label"] == 0) & df["split"].isin(splits) & df["media"].isin(("image", "frame"))
              & df[column].astype(str).isin(list(names))].sort_values("sample_id", kind="stable")
    images: list[np.ndarray] = []
    labels: list[int] = []
    ids: list[str] = []
    sizes: set[int] = set()
    skipped: list[str] = []
    index = {n: i for i, n in enumerate(names)}
    for (_, row), path in zip(rows.iterrows(), resolve_paths(rows, dataset_root(manifest))):
        try:
            rgb = read_image(path)
        except MediaError as exc:
            skipped.append(str(exc))
            continue
        sizes.add(int(min(rgb.shape[:2])))
        images.append(resize_square(rgb, resolution))
        labels.append(index[str(row[column])])
        ids.append(str(row["sample_id"]))
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable images, first: {skipped[0]}")
    if not images:
        raise DataError(f"{manifest}: no readable real images of domains {list(names)} in splits {list(splits)}")
    arr = np.stack(images).transpose(0, 3, 1, 2)  # [N,H,W,3] -> [N,3,H,W]
    return DomainData(names=tuple(names), images=torch.from_numpy(np.ascontiguousarray(arr)),
                      domain=torch.tensor(labels, dtype=torch.int64), sample_ids=tuple(ids),
                      source_resolution=tuple(sorted(sizes)))


def resolve_config_domains(cfg: Any, manifest: str | os.PathLike, num_domains: int) -> Any:
    """`cfg` with its `domains` filled in from the manifest (unchanged when already named and valid)."""
    df = read_manifest(manifest)
    names = resolve_domains(df, cfg.domain_column, cfg.domains, num_domains, cfg.min_domain_images)
    return dataclasses.replace(cfg, domains=names)


def balanced_indices(domain: torch.Tensor, seed: int) -> torch.Tensor:
    """Indices that repeat each domain's items (seeded order) up to the largest domain's count, so uniform
    sampling over items is uniform over domains (StarGAN v2 uses a class-balanced sampler). [K*max_count]"""
    gen = torch.Generator().manual_seed(seed)
    per = [torch.nonzero(domain == d).flatten() for d in range(int(domain.max()) + 1)]
    top = max(len(p) for p in per)
    out = []
    for p in per:
        if len(p) == 0:
            continue
        reps = [p[torch.randperm(len(p), generator=gen)] for _ in range(-(-top // len(p)))]
        out.append(torch.cat(reps)[:top])
    return torch.cat(out)


def target_indices(target: Any, n: int, names: Sequence[str], num_domains: int) -> torch.Tensor:
    """A domain name or index (one for all, or one per image) -> int64 [n]."""
    if target is None:
        raise ValueError(f"translate needs a target domain: a name in {list(names)} or an index < {num_domains}")
    if isinstance(target, torch.Tensor):
        idx = target.to(torch.int64).flatten().cpu()
        idx = idx.expand(n) if idx.numel() == 1 else idx
    else:
        items = [target] * n if isinstance(target, (str, int)) else list(target)
        idx = torch.tensor([_one_index(t, names, num_domains) for t in items], dtype=torch.int64)
    if idx.numel() != n:
        raise ValueError(f"got {idx.numel()} targets for {n} images")
    if (idx < 0).any() or (idx >= num_domains).any():
        raise ValueError(f"target indices must be in [0, {num_domains}), got {idx.tolist()}")
    return idx


def _one_index(t: str | int, names: Sequence[str], num_domains: int) -> int:
    if isinstance(t, str):
        if t not in names:
            from generators.config import did_you_mean

            known = list(names) or "none (domains are resolved from data at training time)"
            raise ValueError(f"unknown target domain {t!r}{did_you_mean(t, list(names))}; model domains: {known}")
        return list(names).index(t)
    return int(t)


def check_images(images: torch.Tensor, resolution: int) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N,3,H,W], got {tuple(images.shape)}")
    if images.shape[-2:] != (resolution, resolution):
        raise ValueError(f"images must be {resolution}x{resolution} (the model's resolution), "
                         f"got {tuple(images.shape[-2:])}; resize first")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0,255] or float [-1,1] -> float32 [-1,1]."""
    return images.float() / 127.5 - 1.0 if images.dtype == torch.uint8 else images.float()


# -- synthesis: which real becomes which fake ------------------------------------------------------------------

def _unit(text: str) -> float:
    """A stable number in [0, 1) per text (same choice on every machine, shard and resume)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def model_domains(model: torch.nn.Module) -> tuple[tuple[str, ...], str]:
    """(domain names, manifest column) of a translator: CycleGAN/StarGAN v2 `domains`, a face swap's identities."""
    cfg = getattr(model, "config", None)
    names = tuple(getattr(model, "domains", ()) or getattr(cfg, "domains", ()) or getattr(cfg, "identities", ()))
    return names, str(getattr(cfg, "domain_column", "identity"))


def style_modes(model: torch.nn.Module) -> tuple[str, ...]:
    """How a translator picks a style: StarGAN v2 ("latent", "reference"); deterministic models ("none",)."""
    return tuple(getattr(model, "style_modes", ("none",)))


@dataclass(frozen=True)
class TranslationPlan:
    """One planned translation: source row, target domain, and the style source (latent seed or reference row)."""

    index: int  # fake number: seed = base seed + index
    seed: int
    source: dict[str, Any]  # the real manifest row
    target: str
    mode: str  # "none" | "latent" | "reference"
    ref: dict[str, Any] | None


def plan_translations(model: torch.nn.Module, real_df: pd.DataFrame, n: int, seed: int) -> list[TranslationPlan]:
    """`n` translations of real image/frame rows. Fake i (seed + i) picks its source, its target (a domain other
    than the source's own) and, for a multi-style model, latent (even i) or reference style (odd i).

    A reference comes from the target domain *in the source's split*, so a fake never mixes pixels of two
    splits; where that split has no image of the target domain the fake falls back to latent style (recorded)."""
    names, column = model_domains(model)
    if len(names) < 2:
        raise ValueError("translator has no domain names (train it with domains resolved from data)")
    reals = real_df[(real_df["label"] == 0) & real_df["media"].isin(("image", "frame"))
                    & real_df["split"].isin(("train", "val", "test"))].sort_values("sample_id", kind="stable")
    if reals.empty:
        raise ValueError("the real manifest has no image/frame reals with a split to translate")
    records = reals.to_dict("records")
    by_split_domain: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        by_split_domain.setdefault((str(r["split"]), str(r.get(column, ""))), []).append(r)
    modes = style_modes(model)
    plans = []
    for i in range(n):
        s = seed + i
        src = records[int(_unit(f"source:{s}") * len(records))]
        own = str(src.get(column, ""))
        choices = [d for d in names if d != own]
        target = choices[int(_unit(f"target:{s}") * len(choices))]
        mode, ref = modes[0], None
        if "reference" in modes and i % 2 == 1:
            pool = by_split_domain.get((str(src["split"]), target), [])
            if pool:
                mode, ref = "reference", pool[int(_unit(f"ref:{s}") * len(pool))]
            else:
                mode = "latent"
        plans.append(TranslationPlan(index=i, seed=s, source=src, target=target, mode=mode, ref=ref))
    return plans


def style_record(plan: TranslationPlan, fell_back: bool = False) -> dict[str, Any]:
    """The style source as recorded in a fake's generator_config."""
    if plan.mode == "latent":
        out: dict[str, Any] = {"mode": "latent", "z_seed": plan.seed}
        if fell_back:
            out["note"] = "no reference of the target domain in the source's split"
        return out
    if plan.mode == "reference":
        return {"mode": "reference", "ref_id": str(plan.ref["sample_id"])}  # type: ignore[index]
    return {"mode": "none"}


def translate_fixed_batch(model: torch.nn.Module, sources: torch.Tensor, targets: list[str], modes: list[str],
                          seeds: list[int], refs: list[torch.Tensor | None], batch: int) -> torch.Tensor:
    """Translate items with per-item style, each mode's items run at exactly `batch` images (padding repeats the
    last item) so an item's bytes do not depend on how items were grouped (conv kernels pick algorithms by
    batch size). sources: uint8/float [N,3,R,R] at the model resolution -> float [N,3,R,R] in [-1,1] on CPU."""
    out = torch.empty(sources.shape, dtype=torch.float32)
    for mode in sorted(set(modes)):
        idx = [i for i, m in enumerate(modes) if m == mode]
        for start in range(0, len(idx), batch):
            chunk = idx[start:start + batch]
            pad = chunk + [chunk[-1]] * (batch - len(chunk))
            x = to_float(sources[pad])
            tgt = [targets[i] for i in pad]
            if mode == "reference":
                ref = torch.stack([to_float(refs[i]) for i in pad])  # type: ignore[arg-type]
                y = model.translate(x, target=tgt, ref=ref)
            elif mode == "latent":
                y = model.translate(x, target=tgt, seed=[seeds[i] for i in pad])
            else:
                y = model.translate(x, target=tgt)
            out[chunk] = y[:len(chunk)].float().cpu()
    return out


def translation_rows(ck: Any, real_df: pd.DataFrame, n: int, seed: int, size: int
                     ) -> list[tuple[dict[str, Any], str, str | None, str]]:
    """Manifest rows for `n` translations by checkpoint `ck` (a GeneratorCheckpoint), each with the real source's
    path, the reference's path (or None) and the style mode. A fake takes its source's split and group_id, so
    the validator's rules (groups in one split, every fake in its source's split) hold by construction."""
    from forensics.data.manifest import new_row
    from generators.config import config_to_dict

    model = ck.model
    sha8 = ck.sha256[:8]
    res = model.resolution
    base = {"model": config_to_dict(ck.config), "train_steps": ck.train_steps,
            "train_seed": ck.info.get("train", {}).get("seed", -1)}
    out = []
    for plan in plan_translations(model, real_df, n, seed):
        src = plan.source
        fell_back = plan.mode == "latent" and "reference" in style_modes(model) and plan.index % 2 == 1
        gen_config = dict(base, style=style_record(plan, fell_back), target=plan.target)
        post: dict[str, Any] = {}
        w = int(src.get("width", -1))
        if w != res:
            post["source_resize"] = {"from": [w, int(src.get("height", -1))], "to": [res, res],
                                     "interp": "area" if w > res else "cubic"}
        if size != res:
            post["resize"] = {"from": [res, res], "to": [size, size], "interp": "area" if size < res else "cubic"}
        row = new_row(sample_id=f"{ck.name}-{sha8}-{plan.seed:08d}", path=f"fake/{ck.name}/{sha8}/{plan.seed:08d}.png",
                      label=1, media="image", generator=ck.name, generator_config=gen_config,
                      checkpoint_sha256=ck.sha256, seed=plan.seed, source_id=str(src["sample_id"]),
                      group_id=str(src["group_id"]), split=str(src["split"]), target=plan.target, postproc=post,
                      width=size, height=size, identity=str(src.get("identity", "")))
        out.append((row, str(src["path"]), None if plan.ref is None else str(plan.ref["path"]), plan.mode))
    return out


def read_at(path: str | os.PathLike, resolution: int) -> torch.Tensor:
    """One image file, centre-cropped and area/cubic-resized to the model resolution. uint8 [3,R,R]"""
    return torch.from_numpy(np.ascontiguousarray(resize_square(read_image(path), resolution).transpose(2, 0, 1)))


def make_translations(model: torch.nn.Module, sources: list[str | os.PathLike], refs: list[str | os.PathLike | None],
                      targets: list[str], modes: list[str], seeds: list[int], batch: int) -> torch.Tensor:
    """Read sources (and references) from disk and translate them. float [N,3,R,R] in [-1,1]"""
    res = model.resolution
    x = torch.stack([read_at(p, res) for p in sources])
    ref_t = [None if r is None else read_at(r, res) for r in refs]
    return translate_fixed_batch(model, x, targets, modes, seeds, ref_t, batch)


# -- quality: does a translation land in its target domain, and does the cycle come back? ---------------------

class DomainClassifier(torch.nn.Module):
    """A small CNN over domains, trained on real train images only: the judge of where a translation landed."""

    def __init__(self, num_domains: int, width: int = 16) -> None:
        super().__init__()
        nn = torch.nn
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1), nn.ReLU(), nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(), nn.Conv2d(4 * w, 4 * w, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_domains))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,R,R] in [-1,1] -> [N,K] logits
        return self.net(x)


def fit_domain_classifier(images: torch.Tensor, domain: torch.Tensor, num_domains: int, steps: int = 300,
                          seed: int = 0) -> DomainClassifier:
    """Seeded Adam on class-balanced batches of real images (uint8 [N,3,R,R]) with flips. Returns eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        clf = DomainClassifier(num_domains)
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    order = balanced_indices(domain, seed)
    for _ in range(steps):
        idx = order[torch.randint(0, len(order), (32,), generator=gen)]
        x = to_float(images[idx])
        flip = torch.rand(x.shape[0], 1, 1, 1, generator=gen) < 0.5
        x = torch.where(flip, x.flip(3), x)
        loss = torch.nn.functional.cross_entropy(clf(x), domain[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return clf.eval()


@torch.no_grad()
def classify(clf: DomainClassifier, images: torch.Tensor) -> torch.Tensor:  # [N,3,R,R] -> int64 [N]
    return torch.cat([clf(to_float(images[i:i + 64])).argmax(1) for i in range(0, len(images), 64)])


def quantise(images: torch.Tensor) -> torch.Tensor:
    """What a PNG would hold: [-1,1] float -> uint8 -> [-1,1] float."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1.0


@torch.no_grad()
def evaluate_translator(model: torch.nn.Module, manifest: str | os.PathLike, clf: DomainClassifier | None = None,
                        per_domain: int = 48, seed: int = 0) -> dict[str, Any]:
    """Translate `per_domain` real images of every domain into every other domain (latent style, seed-fixed) and
    measure: SWD and spectral distance of the translations vs real images of their targets, the cycle
    reconstruction L1 (in [-1,1] units, source -> target -> source), and the share classified as the target
    by a domain classifier trained on the real train split. Sources come from every split (the starter's
    carphone_man has train frames only); the classifier's own held-out accuracy is reported beside it."""
    from generators.quality import spectral_distance, swd

    names, column = model_domains(model)
    res = model.resolution
    train = load_domain_images(manifest, res, column, names, splits=("train",))
    every = load_domain_images(manifest, res, column, names, splits=("train", "val", "test"))
    held = [i for i, s in enumerate(every.sample_ids) if s not in set(train.sample_ids)]
    if clf is None:
        clf = fit_domain_classifier(train.images, train.domain, len(names), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    fakes, reals_of_target, targets, cyc, sources = [], [], [], [], []
    for d_src in range(len(names)):
        pool = every.of(d_src)
        src = pool[torch.randperm(len(pool), generator=gen)[:per_domain]]
        for d_trg in range(len(names)):
            if d_trg == d_src:
                continue
            seeds = [seed * 1_000_003 + d_src * 1000 + d_trg * 100 + i for i in range(len(src))]
            style = {"seed": seeds} if "latent" in style_modes(model) else {}
            fake = quantise(model.translate(to_float(src), target=d_trg, **style).cpu())
            back_style = {"ref": src} if "reference" in style_modes(model) else {}
            rec = model.translate(fake, target=d_src, **back_style).cpu()
            cyc.append((rec - to_float(src)).abs().mean(dim=(1, 2, 3)))
            fakes.append(fake)
            sources.append(to_float(src))
            tpool = every.of(d_trg)
            reals_of_target.append(to_float(tpool[torch.randint(0, len(tpool), (len(src),), generator=gen)]))
            targets.append(torch.full((len(src),), d_trg, dtype=torch.int64))
    fake, real, target = torch.cat(fakes), torch.cat(reals_of_target), torch.cat(targets)
    source = torch.cat(sources)  # the untranslated inputs: how far the target domain was to begin with
    pred = classify(clf, fake)
    per_target = {names[d]: round(float((pred[target == d] == d).float().mean()), 4) for d in range(len(names))}
    held_acc = (round(float((classify(clf, every.images[held]) == every.domain[held]).float().mean()), 4)
                if held else None)
    return {"domains": list(names), "n_translations": int(len(fake)), "seed": seed,
            "swd_x1e3": swd(real, fake, seed), "spectral": spectral_distance(real, fake),
            "cycle_l1": round(float(torch.cat(cyc).mean()), 4),
            "untranslated_sources": {"swd_x1e3": swd(real, source, seed)["mean"],
                                     "spectral_rms": spectral_distance(real, source)["rms"],
                                     "classified_as_target": round(float((classify(clf, source) == target)
                                                                         .float().mean()), 4)},
            "domain_accuracy": round(float((pred == target).float().mean()), 4),
            "domain_accuracy_per_target": per_target,
            "classifier_heldout_real_accuracy": held_acc, "classifier_heldout_n": len(held)}


@torch.no_grad()
def translation_grid(model: torch.nn.Module, manifest: str | os.PathLike, path: str | os.PathLike,
                     per_domain: int = 2, seed: int = 0, mode: str = "latent") -> Any:
    """Rows: `per_domain` real sources of each domain; columns: the source, then its translation into every
    domain (latent style from a fixed seed, or, with mode="reference", the first real of each domain as the
    reference, shown in a top row). Written as a PNG grid (white padding)."""
    from generators.quality import write_grid

    names, column = model_domains(model)
    res = model.resolution
    every = load_domain_images(manifest, res, column, names, splits=("train", "val", "test"))
    gen = torch.Generator().manual_seed(seed)
    k = len(names)
    rows: list[torch.Tensor] = []
    refs = torch.stack([every.of(d)[0] for d in range(k)])  # uint8 [K,3,R,R]
    if mode == "reference":
        rows.append(torch.cat([torch.ones(1, 3, res, res), to_float(refs)]))  # blank corner, then references
    for d_src in range(k):
        pool = every.of(d_src)
        for j in torch.randperm(len(pool), generator=gen)[:per_domain].tolist():
            x = to_float(pool[j:j + 1]).expand(k, -1, -1, -1)
            tgt = list(range(k))
            if mode == "reference":
                out = model.translate(x, target=tgt, ref=refs)
            elif "latent" in style_modes(model):
                out = model.translate(x, target=tgt, seed=[seed] * k)
            else:
                out = model.translate(x, target=tgt)
            rows.append(torch.cat([x[:1], out.cpu()]))
    return write_grid(torch.cat(rows), path, nrow=k + 1)
