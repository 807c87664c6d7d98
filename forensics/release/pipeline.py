"""`forensics detect release`: the default bundle, trained for real, at face resolution, calibrated across people.

corpus (every frame) -> release dataset (128 px, every zoo member, blends and swaps made on full frames) ->
identity folds -> per fold: detectors trained without that identity, out-of-fold scores clean and perturbed ->
final models (the CNN once per seed) scored on the held-out test people and an unseen Poisson face swap ->
calibration, worst-identity decision band and the fusion-or-single choice on out-of-fold scores -> an
out-of-distribution guard on the CNN's embeddings -> the bundle, its model card and the figures.

Every stage writes its outputs before the next starts and is skipped when they exist, so the command can be
killed and rerun; `log` prints what it is doing and how long each model took.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.augment import PERTURBATIONS
from forensics.release.calibrate import BandRule
from forensics.release.dataset import ReleaseDataConfig

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "bundle"
EXTRAS = ("mask_head", "reference")  # parts of the shipped bundle that do not depend on the detectors


@dataclass(frozen=True)
class ReleaseConfig:
    data: ReleaseDataConfig = ReleaseDataConfig()
    band: BandRule = BandRule()
    min_crops: int = 50  # identities with this many real crops get a fold of their own
    reals_per_identity: int = 600  # real crops per identity in the working set (franck alone has 4,800)
    twins_per_identity: int = 300  # down-and-up resampled real twins per identity
    test_reals_per_identity: int = 600
    poisson_swaps: int = 400  # unseen manipulation, made from test people only
    seeds: tuple[int, ...] = (0, 1, 2)
    cnn_epochs: int = 3
    detectors: tuple[str, ...] = ("cnn", "dct", "spectral")
    perturbations: tuple[str, ...] = PERTURBATIONS
    seed: int = 0
    cnn: dict[str, Any] = field(default_factory=lambda: {"augment": "postproc", "batch_size": 64, "lr": 1e-3})

    def detector_params(self) -> dict[str, dict[str, Any]]:
        linear = {"augment": "postproc"}
        cnn = {**self.cnn, "epochs": self.cnn_epochs, "patience": self.cnn_epochs}
        return {n: (cnn if n == "cnn" else linear) for n in self.detectors}


def _cap(rows: pd.DataFrame, by: str, cap: int, seed: int) -> pd.DataFrame:
    parts = [g if len(g) <= cap else g.sample(cap, random_state=seed) for _, g in rows.groupby(by, sort=True)]
    return pd.concat(parts).sort_values("sample_id", kind="stable") if parts else rows


def select_rows(df: pd.DataFrame, cfg: ReleaseConfig) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, str]]:
    """Working rows (train+val, with their fold), test rows (reals and twins capped per identity) and the large
    identity each fold holds out."""
    from forensics.release.folds import (HELD_OUT, assign_folds, carried_identities, check_folds, fold_identities,
                                         generator_training_people)

    faces = df[df["media"].isin(("image", "frame"))].reset_index(drop=True)
    folds = assign_folds(faces, cfg.min_crops, cfg.seed)
    check_folds(faces, folds)
    faces = faces.assign(fold=folds.to_numpy(), twin=faces["sample_id"].str.startswith("lowres:"),
                         carries=carried_identities(faces, generator_training_people(faces)))

    def capped(part: pd.DataFrame, cap: int) -> pd.DataFrame:
        reals = part[(part["label"] == 0) & ~part["twin"]]
        twins = part[part["twin"] & (part["label"] == 0)]  # fakes, resampled or not, are all kept
        return pd.concat([_cap(reals, "identity", cap, cfg.seed), _cap(twins, "identity", cfg.twins_per_identity, cfg.seed),
                          part[part["label"] == 1]]).sort_values("sample_id", kind="stable").reset_index(drop=True)

    # Fakes made *into* a test-only person (translations to their domain, swaps onto them) would teach the final
    # models that person's appearance as "fake": they leave the working set.
    seen = set(faces.loc[(faces["label"] == 0) & (faces["fold"] != HELD_OUT), "identity"].astype(str))
    test_only = set(faces.loc[(faces["label"] == 0) & (faces["fold"] == HELD_OUT), "identity"].astype(str)) - seen
    into_test = (faces["label"] == 1) & (faces["fold"] != HELD_OUT) & faces["target"].astype(str).isin(test_only)
    faces = faces[~into_test]
    return (capped(faces[faces["fold"] != HELD_OUT], cfg.reals_per_identity),
            capped(faces[faces["fold"] == HELD_OUT], cfg.test_reals_per_identity),
            dict(enumerate(fold_identities(faces, cfg.min_crops))))


def poisson_fakes(test: pd.DataFrame, images: np.ndarray, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` classical Poisson face swaps between test people (another person's face cloned into a test crop): a
    manipulation no training fake was made with."""
    from generators.poisson_swap import poisson_swap

    reals = np.flatnonzero(((test["label"] == 0) & ~test["twin"]).to_numpy())
    ids = test["identity"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    rows, out = [], []
    for i in range(n * 4):
        if len(out) >= n:
            break
        t, s = rng.choice(reals, 2, replace=False)
        if ids[t] == ids[s]:
            continue
        out.append(poisson_swap(images[t], images[s]))
        rows.append({"sample_id": f"poisson-{i:05d}", "label": 1, "generator": "poisson", "identity": ids[t],
                     "fold": -1, "twin": False, "source_id": test["sample_id"].iloc[t]})
    if not out:  # fewer than two test people: no swap between people can be made
        return pd.DataFrame(rows, columns=["sample_id", "label", "generator", "identity", "fold", "twin", "source_id"]), \
            np.zeros((0, *images.shape[1:]), np.uint8)
    return pd.DataFrame(rows), np.stack(out)


def _wide(table: pd.DataFrame, rows: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    from forensics.release.train import wide_scores

    info = rows[["sample_id", "label", "generator", "identity", "fold"]]
    return wide_scores(table, model).merge(info, on="sample_id", how="left")


def non_face_crops(size: int, seed: int) -> np.ndarray:
    """Crops that are not faces: frames of the starter's face-free video, noise, flat grey and a gradient."""
    from forensics.data.media import iter_frames
    from forensics.data.starter import ASSETS
    from generators.data import resize_square

    rng = np.random.default_rng(seed)
    crops = [resize_square(f, size) for i, f in iter_frames(ASSETS / "no_face.mp4", step=15, max_frames=300)]
    crops += [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(4)]
    crops += [np.full((size, size, 3), v, np.uint8) for v in (40, 128, 220)]
    crops.append(np.repeat(np.linspace(0, 255, size, dtype=np.uint8)[None, :, None], size, 0).repeat(3, 2))
    return np.stack(crops)


def fit_attribution(work: pd.DataFrame, images: np.ndarray, test: pd.DataFrame, test_images: np.ndarray, seed: int,
                    out: Path) -> tuple[Any, dict[str, Any]]:
    """Which zoo member made a fake (or real, or unknown), trained on the working set and measured on the test
    people (Poisson swaps are a class it never saw: only "unknown" is right for them)."""
    from forensics.attribution import fit_and_measure, generator_labels

    return fit_and_measure(images, generator_labels(work), test_images, generator_labels(test),
                           out / "models" / "attribution", seed)


def measure_guard(guard: Any, cnn: Any, test: pd.DataFrame, test_images: np.ndarray, seed: int) -> dict[str, Any]:
    """How often the guard fires on test reals (clean and JPEG-30) per identity, and on non-face crops."""
    from forensics.bundle.ood import faceness
    from forensics.release.train import perturbed_copies

    def flags(crops: np.ndarray) -> np.ndarray:
        return guard.flags(cnn.predict_with_embedding(crops)[1], faceness(crops))

    real = (test["label"] == 0).to_numpy()
    crops = perturbed_copies(test_images[real], test[real], ("jpeg30",), seed)
    identity = np.tile(test.loc[real, "identity"].astype(str).to_numpy(), 2)
    flagged = flags(crops)
    return {"threshold": round(guard.threshold, 5), "faceness_threshold": round(guard.faceness_threshold, 5),
            **guard.record, "test_reals_flagged": round(float(flagged.mean()), 4),
            "test_reals_flagged_by_identity": {i: round(float(flagged[identity == i].mean()), 4)
                                               for i in sorted(set(identity))},
            "non_faces_flagged": round(float(flags(non_face_crops(crops.shape[1], seed)).mean()), 4)}


def run_release(data: str | Path, out: str | Path, cfg: ReleaseConfig = ReleaseConfig(),
                log: Callable[[str], None] = print, readme: Path | None = None) -> Path:
    """Run (or resume) the release recipe; returns the bundle folder OUT/bundle. OUT/summary.md holds the
    figures against their targets; with `readme`, the same table replaces the README's release summary."""
    from forensics.bundle.build import DEFAULT_FACE
    from forensics.bundle.model import save_bundle
    from forensics.bundle.ood import OODGuard
    from forensics.cli.demo import committed_checkpoints
    from forensics.data.manifest import read_manifest
    from forensics.data.starter import StarterConfig, build_starter
    from forensics.release.calibrate import choose_scorer
    from forensics.release.card import summary_table, update_readme, write_release_card
    from forensics.release.dataset import build_release_dataset
    from forensics.release.measure import loio_decisions, seed_spread, test_figures
    from forensics.release.train import embeddings_of, load_crops, perturbed_copies, run_final, run_folds

    data, out = Path(data), Path(out)
    started = time.perf_counter()
    stage = lambda name: log(f"[{time.perf_counter() - started:7.1f}s] {name}")  # noqa: E731
    if not (data / "manifest.parquet").exists():
        stage(f"building the full starter corpus into {data}")
        build_starter(data, StarterConfig())
    stage("release dataset (128 px; every zoo member; blends and swaps made on full frames)")
    manifest = build_release_dataset(data, out / "dataset", committed_checkpoints(), cfg.data,
                                     log=lambda m: log(f"          {m}"))
    work, test, fold_identity = select_rows(read_manifest(manifest), cfg)
    root = manifest.parent
    names = sorted(cfg.detectors)
    log(f"          working set {len(work)} faces ({int((work['label'] == 0).sum())} real) in {len(fold_identity)} "
        f"identity folds {list(fold_identity.values())}; test {len(test)} faces")
    images, test_images = load_crops(work, root), load_crops(test, root)
    swaps, swap_images = poisson_fakes(test, test_images, cfg.poisson_swaps, cfg.seed)
    test = pd.concat([test, swaps], ignore_index=True)
    test_images = np.concatenate([test_images, swap_images])

    stage("out-of-fold scores: each identity fold scored by detectors trained without it")
    params = cfg.detector_params()
    oof = _wide(run_folds(work, images, params, cfg.perturbations, out, cfg.seed, log=lambda m: log(f"          {m}"),
                          fold_identity=fold_identity), work)
    stage(f"final models on all {len(work)} working faces (CNN seeds {list(cfg.seeds)}), scored on the test people")
    table, models = run_final(work, images, test, test_images, params, cfg.seeds, cfg.perturbations, out,
                              log=lambda m: log(f"          {m}"))
    test_wide = _wide(table, test, f"final-seed{cfg.seeds[0]}")
    for s in cfg.seeds:
        part = table[(table["model"] == f"final-seed{s}") & (table["detector"] == "cnn")]
        test_wide = test_wide.merge(part[["sample_id", "perturbation", "score"]].rename(columns={"score": f"cnn_seed{s}"}),
                                    on=["sample_id", "perturbation"], how="left")

    stage("calibration, worst-identity band and fusion choice on out-of-fold scores")
    fitted, choice = choose_scorer(oof, names, cfg.band)
    log(f"          scorer: {choice['scorer']} ({choice['why']})")
    figures = {"choice": choice,
               "loio": loio_decisions(oof, names, cfg.band, fold_identity),
               "test": test_figures(test_wide, fitted, names),
               "seeds": seed_spread(test_wide, cfg.seeds) if "cnn" in names else {}}

    stage("out-of-distribution guard on the CNN's embeddings")
    guard = None
    if "cnn" in models:
        emb, index = embeddings_of(models["cnn"], images, work, ("jpeg50", "resize0.5"), cfg.seed)
        guard = OODGuard.fit(emb, work["identity"].astype(str).to_numpy()[index], list(fold_identity.values()),
                             seed=cfg.seed)
        real = (work["label"] == 0).to_numpy()
        guard.fit_faceness(perturbed_copies(images[real], work[real], ("jpeg30", "blur1", "resize0.5"), cfg.seed))
        figures["ood"] = measure_guard(guard, models["cnn"], test, test_images, cfg.seed)
        log(f"          OOD: distance > {guard.threshold:.4f} or face probability < {guard.faceness_threshold:.4f}: "
            f"flags {figures['ood']['test_reals_flagged']:.1%} of test "
            f"reals, {figures['ood']['non_faces_flagged']:.1%} of non-face crops")

    stage("generator attribution (DCT + spectrum head, `postproc`-augmented), measured on the test people")
    attributor, figures["attribution"] = fit_attribution(work, images, test, test_images, cfg.seed, out)
    log(f"          attribution accuracy on test fakes and reals {figures['attribution']['accuracy']:.3f} "
        f"(Poisson swaps, unseen: {figures['attribution']['unknown_rate_by_class'].get('poisson', 0):.1%} 'unknown')")

    stage("writing the bundle")
    bundle = out / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    record = {"release": {"config": json.loads(json.dumps(asdict(cfg), default=str)), "scorer": choice["scorer"],
                          "fusion_choice": choice, "working_faces": int(len(work)), "test_faces": int(len(test)),
                          "fold_identities": list(fold_identity.values())},
              "model_card": "MODEL_CARD.md"}
    if guard is not None:
        record["ood"] = "ood"
    record["attribution"] = "attribution"
    save_bundle(bundle, {n: models[n] for n in names}, fitted, DEFAULT_FACE, record)
    if guard is not None:
        guard.save(bundle / "ood")
    attributor.save(bundle / "attribution")
    for extra in EXTRAS:
        if (SHIPPED / extra).is_dir():
            shutil.copytree(SHIPPED / extra, bundle / extra)
    (out / "metrics.json").write_text(json.dumps(figures, indent=2, sort_keys=True, default=float) + "\n")
    write_release_card(bundle / "MODEL_CARD.md", figures, cfg, work, test)
    shutil.copyfile(bundle / "MODEL_CARD.md", out / "report.md")
    table = summary_table(figures, cfg)
    (out / "summary.md").write_text(table)
    if readme is not None:
        log(f"          {'updated' if update_readme(readme, table) else 'no release-summary markers in'} {readme}")
    stage(f"done: {bundle} (model card {bundle / 'MODEL_CARD.md'})")
    return bundle
