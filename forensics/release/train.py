"""Training and scoring for the release recipe: one model set per identity fold, then the final models.

Each fold's detectors train on every working row outside the fold and score the fold's rows, clean and under
each perturbation of the sweep: those out-of-fold scores are what calibration, the decision band and the fusion
choice are fitted on, so no threshold is ever set on scores of a person the model trained on. The final models
train on every working row (once per seed for the CNN) and score the held-out test rows.

Every model is saved as soon as it is trained and every score table as soon as it is written
(OUT/models/<tag>/<detector>, OUT/scores/<tag>.parquet): a killed run resumes at the first missing one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.augment import CLEAN, perturb_batch, stable_seed


def load_crops(rows: pd.DataFrame, root: Path) -> np.ndarray:
    """Every row's crop, in row order (the release dataset is one size).  # -> [N,S,S,3] uint8"""
    from forensics.data.media import read_image

    return np.stack([read_image(root / p) for p in rows["path"]])


def score_perturbed(detectors: Mapping[str, Any], images: np.ndarray, rows: pd.DataFrame,
                    perturbations: Sequence[str], seed: int, tag: str) -> pd.DataFrame:
    """Raw scores of every detector on `images`, clean and perturbed (each copy seeded by its sample id), as a
    long table (sample_id, detector, perturbation, score, model)."""
    tables = []
    for pert in (CLEAN, *perturbations):
        batch = images if pert == CLEAN else perturb_batch(
            images, pert, [stable_seed(f"{s}:{pert}", seed) for s in rows["sample_id"]])[0]
        for name, det in detectors.items():
            tables.append(pd.DataFrame({"sample_id": rows["sample_id"].to_numpy(), "detector": name,
                                        "perturbation": pert, "score": det.predict_proba(batch), "model": tag}))
    return pd.concat(tables, ignore_index=True)


def fit_or_load(name: str, params: Mapping[str, Any], path: Path, images: np.ndarray, labels: np.ndarray,
                log: Callable[[str], None]) -> Any:
    """A detector trained on (images, labels) and saved to `path`, or loaded from there if a run already did."""
    import time

    import forensics.detectors as registry

    if (path / "config.json").exists():
        return registry.load(path)
    t0 = time.perf_counter()
    det = registry.create(name, **dict(params)).fit(images, labels)
    det.save(path)
    log(f"trained {path.parent.name}/{name} on {len(labels)} faces in {time.perf_counter() - t0:.0f}s")
    return det


def write_table(df: pd.DataFrame, path: Path) -> None:
    """A score table, atomically (a killed run never leaves half of one under the final name)."""
    import io

    from forensics.data.media import write_bytes_atomic

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_bytes_atomic(path, buf.getvalue())


def run_folds(rows: pd.DataFrame, images: np.ndarray, detectors: Mapping[str, Mapping[str, Any]],
              perturbations: Sequence[str], out: Path, seed: int, log: Callable[[str], None],
              fold_identity: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Out-of-fold raw scores for every working row (`rows` has `fold` and `carries` columns, as `select_rows`
    gives them, and no held-out rows).

    A fold's models also train without the fakes that carry the fold's identity (`folds.carried_identities`): a
    translation into that person, a face swap onto them, a sample of a GAN that learned them. A model trained on
    those and on none of the person's reals learns "looks like this person = fake"."""
    from forensics.release.folds import carries

    labels = rows["label"].to_numpy(np.int64)
    tables = []
    for fold in sorted(rows["fold"].unique()):
        table_path = out / "scores" / f"fold{fold}.parquet"
        if table_path.exists():
            table = pd.read_parquet(table_path)
            tables.append(table[table["sample_id"].isin(rows["sample_id"])])
            continue
        inside = (rows["fold"] == fold).to_numpy()
        train = ~inside & ~carries(rows["carries"], (fold_identity or {}).get(int(fold), "\0"))
        held = ", ".join(sorted(rows.loc[inside & (labels == 0), "identity"].astype(str).unique()))
        log(f"fold {fold}: training without {held} ({int(train.sum())} faces), scoring its {int(inside.sum())}")
        models = {name: fit_or_load(name, {**params, **({"seed": seed} if name == "cnn" else {})},
                                    out / "models" / f"fold{fold}" / name, images[train], labels[train], log)
                  for name, params in detectors.items()}
        table = score_perturbed(models, images[inside], rows[inside], perturbations, seed, f"fold{fold}")
        write_table(table, table_path)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def run_final(rows: pd.DataFrame, images: np.ndarray, test_rows: pd.DataFrame, test_images: np.ndarray,
              detectors: Mapping[str, Mapping[str, Any]], seeds: Sequence[int], perturbations: Sequence[str],
              out: Path, log: Callable[[str], None]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Final models on every working row: the CNN once per seed, the linear detectors once (their fit does not
    depend on a seed). Returns test scores (clean and perturbed for the first seed, clean for the others) and the
    first seed's models."""
    labels = rows["label"].to_numpy(np.int64)
    tables, first = [], {}
    for k, seed in enumerate(seeds):
        names = list(detectors) if k == 0 else [n for n in detectors if n == "cnn"]
        tag = f"final-seed{seed}"
        models = {name: fit_or_load(name, {**detectors[name], **({"seed": seed} if name == "cnn" else {})},
                                    out / "models" / tag / name, images, labels, log) for name in names}
        if k == 0:
            first = models
        table_path = out / "scores" / f"{tag}.parquet"
        if table_path.exists():
            tables.append(pd.read_parquet(table_path))
            continue
        # the other seeds are only compared with the first on clean faces (the seed spread)
        table = score_perturbed(models, test_images, test_rows, perturbations if k == 0 else (), seeds[0], tag)
        write_table(table, table_path)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), first


def wide_scores(table: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """Long score table -> one row per (sample_id, perturbation), one column per detector."""
    part = table if model is None else table[table["model"] == model]
    return part.pivot_table(index=["sample_id", "perturbation"], columns="detector", values="score",
                            aggfunc="first").reset_index()


def perturbed_copies(images: np.ndarray, rows: pd.DataFrame, perturbations: Sequence[str], seed: int) -> np.ndarray:
    """`images` clean, then under each perturbation (each copy seeded by its sample id, as everywhere in the
    recipe).  # [N,S,S,3] -> [(1+P)N,S,S,3]"""
    copies = [images] + [perturb_batch(images, p, [stable_seed(f"{s}:{p}", seed) for s in rows["sample_id"]])[0]
                         for p in perturbations]
    return np.concatenate(copies)


def embeddings_of(model: Any, images: np.ndarray, rows: pd.DataFrame, perturbations: Sequence[str],
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CNN embeddings of `images` clean and under `perturbations`, with each row's sample index.  # [M,D], [M]"""
    copies = perturbed_copies(images, rows, perturbations, seed)
    return model.predict_with_embedding(copies)[1], np.tile(np.arange(len(images)), 1 + len(perturbations))
