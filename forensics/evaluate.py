"""The benchmark pipeline: manifest -> trained detectors -> scores table -> metrics JSON.

For every detector in the config it trains one model on all generators (scored on the clean test split and
under each robustness perturbation) and, for the cross-generator matrix, one model per generator (reals plus
that generator's fakes; scored on the clean test split). Outputs in `out_dir`:

- `scores.parquet` + `scores.csv`: one row per (sample, detector, train_generators, perturbation) with
  sample_id, detector, train_generators (comma-joined), perturbation ("none" = clean), score (P(fake)),
  label, generator, video_id, identity, threshold (the model's threshold at 5% FPR on clean validation reals),
  and for the models trained on all generators `probability` (calibrated P(fake)) and `verdict` (the
  three-way decision). Detector "fused" is the stacked fusion of the others' calibrated probabilities.
- `calibration.json`: per-detector calibration and decision bands, the fusion and its band, fitted on the
  validation split clean and under every perturbation (`forensics.bundle.fit`); a bundle is made from it.
- `metrics.json`: provenance, config, per-model training record, metrics per (detector, train set,
  perturbation) and per generator with bootstrap CIs, calibrated decisions per perturbation (ECE, FPR on all
  test reals and on reals of identities unseen in training), leave-one-generator-out AUCs, the
  cross-generator AUC matrices, skipped files.
- `models/<detector>__<train>/`: every fitted detector (loadable with `forensics.detectors.load`).

Unreadable files are reported in `skipped` and the run goes on.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensics.augment import CLEAN, PERTURBATIONS, parse_perturbation, perturb_batch, stable_seed
from forensics.bundle.fit import fit_calibration, score_calibration_set
from forensics.decisions import calibrated_decisions

SCORE_COLUMNS = ("sample_id", "detector", "train_generators", "perturbation", "score", "label", "generator",
                 "video_id", "identity", "threshold", "probability", "verdict")
FUSED = "fused"
LOGO_PREFIX = "logo-"  # model tag of a leave-one-generator-out model: "logo-<held-out generator>"
IMAGE_MEDIA = ("image", "frame")
CALIBRATION_FILE = "calibration.json"
DECISION_FPR = DECISION_FNR = 0.05  # the decision band: 5% of validation reals above it, 5% of fakes below
TRAINING_RECORD = "training.json"  # models/<model>/: how the saved model was fitted (reused on resume)


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides a benchmark's numbers (hashed into the report's provenance).

    detector_params: per detector name, explicit hyperparameters for `forensics.detectors.create`.
    cross_generator_detectors: detectors that also get per-generator models (None = all of `detectors`).
    image_size: resize every image to this square size (None = the most common training size).
    max_train_per_class: cap on training (and validation) images per (label, generator), for quick runs.
    calibration: "platt" or "isotonic", fitted on validation faces clean and under `perturbations`.
    logo_detectors: detectors that also get one model per generator left out of training (leave one generator
        out); () = none, None = all of `detectors`."""

    detectors: tuple[str, ...] = ("spectral", "dct", "cnn")
    detector_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    perturbations: tuple[str, ...] = PERTURBATIONS
    cross_generator: bool = True
    cross_generator_detectors: tuple[str, ...] | None = None
    image_size: int | None = None
    max_train_per_class: int | None = None
    calibration: str = "platt"
    logo_detectors: tuple[str, ...] | None = ()
    attribution: bool = True  # also train and measure the generator attributor (which zoo member made a fake)
    n_boot: int = 500
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["detector_params"] = {k: dict(v) for k, v in self.detector_params.items()}
        return d

    def validate(self) -> None:
        import forensics.detectors as registry

        for name in self.detectors:
            registry.get_class(name)
        for name in self.perturbations:
            parse_perturbation(name)
        unknown = set(self.detector_params) - set(self.detectors)
        if unknown:
            raise ValueError(f"detector_params for detectors not in the run: {sorted(unknown)}")


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a config (sorted keys): the same settings give the same hash."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ data


@dataclass
class SplitData:
    """Decoded images of one split with their manifest rows (aligned), plus what could not be read."""

    images: np.ndarray  # [N,H,W,3] uint8
    rows: pd.DataFrame
    skipped: list[dict[str, str]]


def load_images(rows: pd.DataFrame, root: Path, size: tuple[int, int] | None) -> SplitData:
    """Read every row's image; rows that fail are reported in `skipped`, not raised. Images are brought to
    `size` (H, W) when given, else to the most common size among them."""
    from forensics.data.media import MediaError, read_image
    from forensics.detectors.base import resize_image

    images, keep, skipped = [], [], []
    for i, (sid, rel, media) in enumerate(zip(rows["sample_id"], rows["path"], rows["media"])):
        if media not in IMAGE_MEDIA:
            skipped.append({"sample_id": str(sid), "path": str(rel), "error": f"media {media!r} is not scored here"})
            continue
        try:
            images.append(read_image(root / rel))
            keep.append(i)
        except (MediaError, OSError) as exc:
            skipped.append({"sample_id": str(sid), "path": str(rel), "error": str(exc)})
    kept = rows.iloc[keep].reset_index(drop=True)
    if not images:
        return SplitData(np.zeros((0, 1, 1, 3), np.uint8), kept, skipped)
    if size is None:
        shapes = pd.Series([im.shape[:2] for im in images])
        size = tuple(shapes.mode().iloc[0])
    return SplitData(np.stack([resize_image(im, size) for im in images]), kept, skipped)


def cap_per_class(rows: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    """At most `cap` rows per (label, generator), chosen by a seeded permutation (None = keep all)."""
    if cap is None:
        return rows
    parts = [g.sample(n=min(cap, len(g)), random_state=seed) for _, g in rows.groupby(["label", "generator"])]
    return pd.concat(parts).sort_index() if parts else rows


def subset(data: SplitData, generators: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reals plus the fakes of `generators`.  # -> images [M,H,W,3], labels [M]"""
    mask = ((data.rows["label"] == 0) | data.rows["generator"].isin(list(generators))).to_numpy()
    return data.images[mask], data.rows["label"].to_numpy()[mask]


# ------------------------------------------------------------------------------------------------ scoring


def perturbed(images: np.ndarray, rows: pd.DataFrame, perturbation: str, seed: int) -> np.ndarray:
    """A split's images after one evaluation perturbation, each seeded by its sample id (order-independent)."""
    if perturbation == CLEAN or not len(images):
        return images
    return perturb_batch(images, perturbation, [stable_seed(str(s), seed) for s in rows["sample_id"]])[0]


def score_table(raw: np.ndarray, rows: pd.DataFrame, detector_name: str, train_generators: str, perturbation: str,
                threshold: float, probability: np.ndarray | None = None,
                verdict: np.ndarray | None = None) -> pd.DataFrame:
    """Scores of one model on one (perturbed) split as scores-table rows."""
    n = len(rows)
    return pd.DataFrame({
        "sample_id": rows["sample_id"].astype(str).to_numpy(),
        "detector": detector_name,
        "train_generators": train_generators,
        "perturbation": perturbation,
        "score": raw,
        "label": rows["label"].astype(int).to_numpy(),
        "generator": rows["generator"].astype(str).to_numpy(),
        "video_id": rows["video_id"].astype(str).to_numpy() if "video_id" in rows else "",
        "identity": rows["identity"].astype(str).to_numpy() if "identity" in rows else "",
        "threshold": float(threshold),
        "probability": probability if probability is not None else np.full(n, np.nan),
        "verdict": verdict if verdict is not None else np.full(n, None, dtype=object),
    })


def score_rows(detector, images: np.ndarray, rows: pd.DataFrame, detector_name: str, train_generators: str,
               perturbation: str, seed: int) -> pd.DataFrame:
    """Score a split (optionally perturbed) with a fitted detector into scores-table rows."""
    images = perturbed(images, rows, perturbation, seed)
    raw = detector.predict_proba(images) if len(images) else np.zeros(0)
    return score_table(raw, rows, detector_name, train_generators, perturbation, detector.threshold_)


def score_calibrated(models: Mapping[str, Any], fitted, images: np.ndarray, rows: pd.DataFrame, tag: str,
                     perturbations: Sequence[str], seed: int) -> list[pd.DataFrame]:
    """The all-generator models scored with calibrated probabilities and verdicts, plus the fused detector."""
    tables = []
    for pert in (CLEAN, *perturbations):
        batch = perturbed(images, rows, pert, seed)
        scored = fitted.apply({name: det.predict_proba(batch) for name, det in models.items()})
        for name, det in models.items():
            tables.append(score_table(scored.raw[name], rows, name, tag, pert, det.threshold_,
                                      scored.calibrated[name], np.asarray(scored.detector_verdicts[name])))
        if len(models) > 1:
            tables.append(score_table(scored.fused, rows, FUSED, tag, pert, fitted.decision.high, scored.fused,
                                      np.asarray(scored.verdicts)))
    return tables


def leave_one_generator_out(scores: pd.DataFrame, generators: Sequence[str], n_boot: int,
                            seed: int) -> dict[str, Any]:
    """Per detector: AUC (95% CI) of each model trained without generator g on g's test fakes vs all test reals."""
    from forensics.metrics import bootstrap_ci, roc_auc

    out: dict[str, Any] = {}
    clean = scores[(scores["perturbation"] == CLEAN) & scores["train_generators"].str.startswith(LOGO_PREFIX)]
    for det, part in clean.groupby("detector", sort=True):
        per = {}
        for g in generators:
            sel = part[(part["train_generators"] == LOGO_PREFIX + g) & ((part["label"] == 0) | (part["generator"] == g))]
            if sel.empty or sel["label"].nunique() < 2:
                continue
            y, s = sel["label"].to_numpy(), sel["score"].to_numpy()
            per[g] = {"auc": roc_auc(y, s), "auc_ci": list(bootstrap_ci(y, s, "auc", n_boot=n_boot, seed=seed)),
                      "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum())}
        if per:
            out[det] = {"held_out": per, "mean_auc": float(np.mean([v["auc"] for v in per.values()]))}
    return out


def cross_generator_matrix(scores: pd.DataFrame, detector: str, generators: Sequence[str]) -> dict[str, Any]:
    """AUC of each per-generator model (rows) on each generator's test fakes vs all test reals (columns)."""
    from forensics.metrics import roc_auc

    clean = scores[(scores["detector"] == detector) & (scores["perturbation"] == CLEAN)]
    matrix = []
    for train_g in generators:
        part = clean[clean["train_generators"] == train_g]
        row = []
        for test_g in generators:
            sel = part[(part["label"] == 0) | (part["generator"] == test_g)]
            row.append(roc_auc(sel["label"].to_numpy(), sel["score"].to_numpy()) if len(sel) else float("nan"))
        matrix.append(row)
    m = np.array(matrix, dtype=np.float64)
    off = m[~np.eye(len(generators), dtype=bool)] if len(generators) > 1 else np.array([])
    return {"generators": list(generators), "auc": m.tolist(),
            "mean_off_diagonal": float(np.nanmean(off)) if off.size else float("nan"),
            "mean_diagonal": float(np.nanmean(np.diag(m))) if m.size else float("nan")}


def summarize(scores: pd.DataFrame, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Metrics per (detector, train set, perturbation), per generator, with CIs; plus video level if any."""
    from forensics.metrics import aggregate_videos, metrics_by

    records = metrics_by(scores, ["detector", "train_generators", "perturbation"], n_boot=n_boot, seed=seed)
    has_video = "video_id" in scores and (scores["video_id"].astype(str) != "").any()
    if has_video:
        videos = aggregate_videos(scores, how="mean")
        video_records = {(r["detector"], r["train_generators"], r["perturbation"]): r["metrics"]
                         for r in metrics_by(videos, ["detector", "train_generators", "perturbation"],
                                             n_boot=n_boot, seed=seed)}
        for r in records:
            r["video_metrics"] = video_records.get((r["detector"], r["train_generators"], r["perturbation"]))
    return records


# ------------------------------------------------------------------------------------------------ provenance


def provenance(manifest_path: Path, config: BenchConfig) -> dict[str, Any]:
    """Versions, seeds, config hash and the manifest's sha256: enough to tell whether two reports compare."""
    import platform
    import subprocess

    from forensics.data.manifest import sha256_file
    from forensics.detectors.base import versions

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    cfg = config.to_dict()
    return {"versions": versions(), "platform": platform.platform(), "git_commit": commit,
            "seed": config.seed, "config_sha256": config_hash(cfg), "manifest": manifest_path.name,
            "manifest_sha256": sha256_file(manifest_path)}


def _write_json(path: Path, obj: Any) -> None:
    from forensics.data.media import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def write_scores(scores: pd.DataFrame, out_dir: Path) -> None:
    from forensics.data.media import write_bytes_atomic

    write_bytes_atomic(out_dir / "scores.parquet", scores.to_parquet(index=False))
    write_bytes_atomic(out_dir / "scores.csv", scores.to_csv(index=False).encode())


def read_scores(out_dir: str | Path) -> pd.DataFrame:
    out_dir = Path(out_dir)
    pq = out_dir / "scores.parquet"
    return pd.read_parquet(pq) if pq.exists() else pd.read_csv(out_dir / "scores.csv", keep_default_na=False)


# ------------------------------------------------------------------------------------------------ pipeline


def _fit_or_load(name: str, params: Mapping[str, Any], tag: str, generators: Sequence[str], model_dir: Path,
                 resume: bool, train: tuple, val: tuple, log) -> tuple[Any, dict[str, Any]]:
    import forensics.detectors as registry

    record_path = model_dir / TRAINING_RECORD
    if resume and (model_dir / "config.json").exists():
        det = registry.load(model_dir)
        stale = {k: v for k, v in params.items() if det.get_params().get(k) != v}
        if not stale:
            log(f"  loaded {model_dir.name}")
            # the record of the session that fitted it, so a resumed benchmark writes the same metrics
            rec = json.loads(record_path.read_text()) if record_path.exists() else {"resumed": True}
            return det, rec
        log(f"  refitting {model_dir.name}: its saved hyperparameters differ from {stale}")
    t0 = time.perf_counter()
    det = registry.create(name, **dict(params)).fit(train[0], train[1], val[0], val[1])
    seconds = time.perf_counter() - t0
    det.train_generators_ = tag  # recorded in the checkpoint so `evaluate_model` can label its scores
    det.trained_on_ = ",".join(generators)  # the fake generators it saw (a LOGO model's tag names the one it did not)
    log(f"  trained {model_dir.name} in {seconds:.1f}s (n={len(train[1])}, threshold={det.threshold_:.4g})")
    rec = {"seconds": round(seconds, 2), "n_train": int(len(train[1])), "n_val": int(len(val[1])),
           "threshold": float(det.threshold_), "threshold_source": det.threshold_source_}
    if hasattr(det, "history_"):
        rec["history"] = det.history_
        rec["best_epoch"] = det.best_epoch_
    # the record before the model: the model's config.json is what marks the folder complete for a resume
    _write_json(record_path, rec)
    det.save(model_dir)
    # score with the saved model, as a resumed run does: a value that does not round-trip can't move a score
    return registry.load(model_dir), rec


def run_benchmark(manifest_path: str | Path, out_dir: str | Path, config: BenchConfig = BenchConfig(),
                  resume: bool = True, log=print) -> dict[str, Any]:
    """Train, score and summarise every detector of `config` on a manifest with train/val/test splits.

    Returns the metrics dict that is also written to `out_dir/metrics.json` (scores go to `scores.parquet`).
    One writer per `out_dir` (a second run into it is refused while this one lives); a disk fault raises
    OutputWriteError naming the file."""
    from forensics.jobs import output_errors, output_lock, remove_stale_temp_files

    config.validate()
    out_dir = Path(out_dir)
    with output_lock(out_dir, log=log), output_errors(out_dir):
        remove_stale_temp_files(out_dir)  # a killed run's half-written temp files
        return _run_benchmark(Path(manifest_path), out_dir, config, resume, log)


def _run_benchmark(manifest_path: Path, out_dir: Path, config: BenchConfig, resume: bool, log) -> dict[str, Any]:
    from forensics.data.manifest import dataset_root, read_manifest

    df = read_manifest(manifest_path)
    root = dataset_root(manifest_path)
    missing = [s for s in ("train", "test") if not (df["split"] == s).any()]
    if missing:
        raise ValueError(f"{manifest_path}: no rows in split(s) {missing}; assign splits first")
    generators = sorted(df.loc[df["label"] == 1, "generator"].astype(str).unique())
    if not generators:
        raise ValueError(f"{manifest_path}: no fakes (label 1)")
    size = (config.image_size, config.image_size) if config.image_size else None
    train = load_images(cap_per_class(df[df["split"] == "train"], config.max_train_per_class, config.seed), root, size)
    size = tuple(train.images.shape[1:3])
    val = load_images(cap_per_class(df[df["split"] == "val"], config.max_train_per_class, config.seed), root, size)
    test = load_images(df[df["split"] == "test"], root, size)
    log(f"images {size[0]}x{size[1]}: train {len(train.rows)}, val {len(val.rows)}, test {len(test.rows)}; "
        f"generators {generators}")

    all_tag = ",".join(generators)
    cross = config.cross_generator and len(generators) > 1
    cross_dets = config.cross_generator_detectors if config.cross_generator_detectors is not None else config.detectors
    logo_dets = config.detectors if config.logo_detectors is None else config.logo_detectors
    tables, training, all_models = [], {}, {}
    for name in config.detectors:
        params = config.detector_params.get(name, {})
        # (model tag, generators it trains on): all of them, each alone (cross-generator matrix), all but one (LOGO)
        sets = [(all_tag, generators)]
        if cross and name in cross_dets:
            sets += [(g, [g]) for g in generators]
        if len(generators) > 1 and name in logo_dets:
            sets += [(LOGO_PREFIX + g, [o for o in generators if o != g]) for g in generators]
        for tag, gens in sets:
            model_dir = out_dir / "models" / f"{name}__{'all' if tag == all_tag else tag}"
            det, rec = _fit_or_load(name, params, tag, gens, model_dir, resume, subset(train, gens), subset(val, gens),
                                    log)
            training[f"{name}/{tag}"] = rec
            if tag == all_tag:
                all_models[name] = det
            else:
                tables.append(score_rows(det, test.images, test.rows, name, tag, CLEAN, config.seed))

    # Calibration on the validation faces, clean and post-processed; the all-generator models are scored with it.
    val_ids = val.rows["sample_id"].astype(str).tolist()
    cal_set = score_calibration_set(all_models, val.images, val.rows["label"].to_numpy(), val_ids,
                                    config.perturbations, config.seed)
    fitted = fit_calibration(cal_set, config.calibration, DECISION_FPR, DECISION_FNR)
    write_calibration(out_dir / CALIBRATION_FILE, fitted, config, len(val.rows))
    tables += score_calibrated(all_models, fitted, test.images, test.rows, all_tag, config.perturbations, config.seed)
    scores = pd.concat(tables, ignore_index=True)[list(SCORE_COLUMNS)]
    write_scores(scores, out_dir)
    train_identities = set(train.rows.loc[train.rows["label"] == 0, "identity"].astype(str))
    unseen = sorted(set(test.rows.loc[test.rows["label"] == 0, "identity"].astype(str)) - train_identities)
    metrics = {
        "provenance": provenance(manifest_path, config),
        "config": config.to_dict(),
        "generators": generators,
        "all_generators": all_tag,
        "image_size": list(size),
        "counts": {s: {"n": len(d.rows), "real": int((d.rows["label"] == 0).sum()),
                       "fake": int((d.rows["label"] == 1).sum())}
                   for s, d in (("train", train), ("val", val), ("test", test))},
        "training": training,
        "results": summarize(scores, config.n_boot, config.seed),
        "calibrated_decisions": calibrated_decisions(scores, unseen),
        "unseen_identities": unseen,
        "leave_one_generator_out": leave_one_generator_out(scores, generators, config.n_boot, config.seed),
        "cross_generator": {name: cross_generator_matrix(scores, name, generators)
                            for name in config.detectors if cross and name in cross_dets},
        "skipped": train.skipped + val.skipped + test.skipped,
    }
    if config.attribution and len(generators) > 1:
        from forensics.attribution import fit_and_measure, generator_labels

        _, metrics["attribution"] = fit_and_measure(train.images, generator_labels(train.rows), test.images,
                                                    generator_labels(test.rows), out_dir / "models" / "attribution",
                                                    config.seed, val.images, generator_labels(val.rows))
        log(f"attribution: test accuracy {metrics['attribution']['accuracy']:.3f} over {len(test.rows)} faces")
    _write_json(out_dir / "metrics.json", metrics)
    log(f"wrote {out_dir / 'scores.parquet'} ({len(scores)} rows) and {out_dir / 'metrics.json'}")
    return metrics


def write_calibration(path: Path, fitted, config: BenchConfig, n_val: int) -> None:
    """The calibration a bundle is made from: per-detector maps and bands, the fusion and its band."""
    _write_json(path, {
        "method": config.calibration,
        "fitted_on": {"split": "val", "faces": n_val, "perturbations": [CLEAN, *config.perturbations],
                      "rows": n_val * (1 + len(config.perturbations)), "target_fpr": DECISION_FPR,
                      "target_fnr": DECISION_FNR},
        **fitted.to_dict(),
    })


def evaluate_model(model_dir: str | Path, manifest_path: str | Path, out_dir: str | Path,
                   perturbations: Sequence[str] = (), split: str = "test", n_boot: int = 500, seed: int = 0,
                   log=print) -> dict[str, Any]:
    """Score one saved detector on a manifest split, clean and perturbed; write scores + metrics JSON."""
    import forensics.detectors as registry
    from forensics.data.manifest import dataset_root, read_manifest

    for p in perturbations:
        parse_perturbation(p)
    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    det = registry.load(model_dir)
    df = read_manifest(manifest_path)
    rows = df[df["split"] == split] if split != "all" else df
    if rows.empty:
        raise ValueError(f"{manifest_path}: no rows in split {split!r}")
    data = load_images(rows, dataset_root(manifest_path), tuple(det.image_size_))
    cfg_path = Path(model_dir) / "config.json"
    trained_on = json.loads(cfg_path.read_text()).get("fitted", {}).get("train_generators_", Path(model_dir).name)
    tables = [score_rows(det, data.images, data.rows, det.name, str(trained_on), p, seed)
              for p in (CLEAN, *perturbations)]
    scores = pd.concat(tables, ignore_index=True)[list(SCORE_COLUMNS)]
    write_scores(scores, out_dir)
    metrics = {"model": str(Path(model_dir).name), "detector": det.name, "params": det.get_params(),
               "manifest": manifest_path.name, "split": split,
               "results": summarize(scores, n_boot, seed), "skipped": data.skipped}
    _write_json(out_dir / "metrics.json", metrics)
    log(f"wrote {out_dir / 'scores.parquet'} ({len(scores)} rows) and {out_dir / 'metrics.json'}")
    return metrics
