"""The model bundle: everything `forensics scan` needs to score a face, as one folder of safetensors + JSON.

    bundle.json                 format, face alignment settings, detectors with their calibration, fusion,
                                decision band, training record
    detectors/<name>/           one saved detector each (config.json + weights.safetensors, `forensics.detectors`)
    MODEL_CARD.md               what it was trained on, its figures, its known failure modes

Scoring a batch of aligned face crops gives, per face, every detector's raw score and calibrated P(fake), each
detector's own three-way verdict, a fused P(fake) (a stacked logistic regression over the detectors' calibrated
logits, fitted on post-processed validation faces) and the fused verdict from the bundle's decision band.
Nothing here imports the generator zoo; loading never unpickles anything.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.calibration import NO_SIGN, LIKELY_MANIPULATED, Calibrator, DecisionBand, score_logit

FORMAT = "forensics-bundle/1"
BUNDLE_FILE = "bundle.json"
OOD_DETECTOR = "cnn"  # the detector whose embedding the out-of-distribution guard measures


class BundleError(ValueError):
    """A bundle folder that cannot be used; the message names the folder and the reason."""


@dataclass(frozen=True)
class Fusion:
    """P(fake) = sigmoid(intercept + sum_i coef_i * logit(calibrated P_i(fake)))."""

    detectors: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float

    def predict(self, calibrated: dict[str, np.ndarray]) -> np.ndarray:
        z = np.full(len(next(iter(calibrated.values()))), self.intercept, np.float64)
        for name, c in zip(self.detectors, self.coef):
            z += c * score_logit(calibrated[name])
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def fit(cls, calibrated: dict[str, np.ndarray], labels: np.ndarray) -> "Fusion":
        from sklearn.linear_model import LogisticRegression

        names = tuple(sorted(calibrated))
        x = np.stack([score_logit(calibrated[n]) for n in names], axis=1)  # [N, D]
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, np.asarray(labels).astype(np.int64))
        return cls(detectors=names, coef=tuple(float(c) for c in lr.coef_[0]), intercept=float(lr.intercept_[0]))

    def to_dict(self) -> dict[str, Any]:
        return {"method": "stacked-logistic", "detectors": list(self.detectors), "coef": list(self.coef),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fusion":
        if len(data["detectors"]) != len(data["coef"]):
            raise ValueError("fusion record: one coefficient per detector expected")
        return cls(tuple(data["detectors"]), tuple(float(c) for c in data["coef"]), float(data["intercept"]))


@dataclass
class FaceScores:
    """Scores of N faces. Per-detector arrays are [N]; verdicts are strings."""

    raw: dict[str, np.ndarray]
    calibrated: dict[str, np.ndarray]
    detector_verdicts: dict[str, list[str]]
    fused: np.ndarray
    verdicts: list[str]
    disagree: list[bool] = field(default_factory=list)
    ood_distance: np.ndarray | None = None  # [N] the OOD guard's distance, when the bundle has a guard
    ood_threshold: float | None = None
    ood_faceness: np.ndarray | None = None  # [N] the guard's O-Net face probability
    ood_faceness_threshold: float | None = None
    attribution: list[dict[str, Any]] | None = None  # per face: which generator, when the bundle has an attributor

    def face(self, i: int) -> dict[str, Any]:
        """One face as a JSON-able record: every detector's own score, never only the fused one."""
        record = {
            "detectors": {n: {"score": float(self.raw[n][i]), "probability": float(self.calibrated[n][i]),
                              "verdict": self.detector_verdicts[n][i]} for n in self.raw},
            "probability": float(self.fused[i]),
            "verdict": self.verdicts[i],
            "detectors_disagree": bool(self.disagree[i]),
        }
        if self.ood_distance is not None and self.ood_threshold is not None:
            d = float(self.ood_distance[i])
            f, f_min = float(self.ood_faceness[i]), float(self.ood_faceness_threshold)
            record["ood"] = {"distance": d, "threshold": self.ood_threshold, "faceness": f, "faceness_threshold": f_min,
                             "flagged": d > self.ood_threshold or f < f_min}
        if self.attribution is not None:
            record["attribution"] = self.attribution[i]
        return record


@dataclass
class FittedCalibration:
    """Per-detector calibrations and bands, the fusion and its band: everything between raw scores and verdicts."""

    calibrators: dict[str, Calibrator]
    bands: dict[str, DecisionBand]
    fusion: Fusion
    decision: DecisionBand

    def apply(self, raw: dict[str, np.ndarray]) -> FaceScores:
        """Raw detector scores ([N] each) -> calibrated probabilities, every detector's verdict, the fused verdict."""
        calibrated = {n: self.calibrators[n].predict(raw[n]) for n in raw}
        per_det = {n: self.bands[n].verdicts(calibrated[n]).tolist() for n in raw}
        fused = self.fusion.predict(calibrated)
        verdicts = self.decision.verdicts(fused).tolist()
        disagree = [
            LIKELY_MANIPULATED in {per_det[n][i] for n in raw} and NO_SIGN in {per_det[n][i] for n in raw}
            for i in range(len(fused))
        ]
        return FaceScores(raw, calibrated, per_det, fused, verdicts, disagree)

    def to_dict(self) -> dict[str, Any]:
        """The layout of a benchmark's calibration.json (without its `method`/`fitted_on` record)."""
        return {"detectors": {n: {"calibration": c.to_dict(), "decision": self.bands[n].to_dict()}
                              for n, c in self.calibrators.items()},
                "fusion": self.fusion.to_dict(), "decision": self.decision.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FittedCalibration":
        dets = data["detectors"]
        return cls({n: Calibrator.from_dict(d["calibration"]) for n, d in dets.items()},
                   {n: DecisionBand(**d["decision"]) for n, d in dets.items()},
                   Fusion.from_dict(data["fusion"]), DecisionBand(**data["decision"]))


class ModelBundle:
    """A loaded bundle. `score(crops)` for aligned face crops at `face_size`."""

    def __init__(self, root: Path, meta: dict[str, Any], detectors: dict[str, Any],
                 calibration: FittedCalibration, ood: Any | None = None, attributor: Any | None = None,
                 video_model: Any | None = None) -> None:
        self.root = root
        self.meta = meta
        self.detectors = detectors
        self.calibration = calibration
        self.ood = ood  # forensics.bundle.ood.OODGuard, measured on the "cnn" detector's embedding
        self.attributor = attributor  # forensics.attribution.GeneratorAttributor
        self.video_model = video_model  # forensics.video.model.VideoModel: temporal detector, fusion, video band
        # forensics.runtime.select_runtime: detector name -> its ONNX predictor, and the mask head's; empty: torch
        self.predictors: dict[str, Any] = {}
        self.mask_runner: Any | None = None
        self.runtime = "torch"

    @property
    def scorer(self) -> str:
        """What the fused verdict uses: "fused", or the one detector the release recipe chose instead."""
        return str((self.meta.get("release") or {}).get("scorer", "fused"))

    @property
    def bands(self) -> dict[str, DecisionBand]:
        return self.calibration.bands

    @property
    def fusion(self) -> Fusion:
        return self.calibration.fusion

    @property
    def decision(self) -> DecisionBand:
        return self.calibration.decision

    @property
    def face_size(self) -> int:
        return int(self.meta["face"]["size"])

    @property
    def face_margin(self) -> float:
        return float(self.meta["face"]["margin"])

    @property
    def sha256(self) -> str:
        return bundle_sha256(self.root)

    def score(self, crops: np.ndarray) -> FaceScores:
        """Score aligned face crops.  # [N,S,S,3] uint8 -> FaceScores with [N] arrays"""
        raw, embeddings = {}, None
        for name, det in self.detectors.items():
            det = self.predictors.get(name, det)  # the ONNX file's predictor when the runtime is onnx
            if name == OOD_DETECTOR and self.ood is not None:  # the guard's embedding: same forward pass as the score
                raw[name], embeddings = det.predict_with_embedding(crops)
            else:
                raw[name] = det.predict_proba(crops)
        scores = self.calibration.apply(raw)
        if self.ood is not None:
            from forensics.bundle.ood import faceness

            scores.ood_distance, scores.ood_threshold = self.ood.distance(embeddings), float(self.ood.threshold)
            scores.ood_faceness, scores.ood_faceness_threshold = faceness(crops), float(self.ood.faceness_threshold)
        if self.attributor is not None:
            proba, atypical = self.attributor.scores(crops)
            names = self.attributor.decide(proba, atypical)
            scores.attribution = [{"generator": str(n), "probability": float(p.max()),
                                   "probabilities": {c: float(v) for c, v in zip(self.attributor.classes_, p)}}
                                  for n, p in zip(names, proba)]
        return scores


def bundle_sha256(root: str | Path) -> str:
    """One hash over every file of the bundle (relative path + content, sorted): the model's identity in a report."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def save_bundle(out: str | Path, detectors: dict[str, Any], calibration: FittedCalibration,
                face: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write a bundle folder: every detector saved in its own format, the rest in bundle.json."""
    from forensics.data.media import write_bytes_atomic

    out = Path(out)
    entries = []
    for name, det in sorted(detectors.items()):
        det.save(out / "detectors" / name)
        entries.append({"name": name, "path": f"detectors/{name}",
                        "calibration": calibration.calibrators[name].to_dict(),
                        "decision": calibration.bands[name].to_dict()})
    meta = {"format": FORMAT, "face": dict(face), "detectors": entries, "fusion": calibration.fusion.to_dict(),
            "decision": calibration.decision.to_dict(), **(extra or {})}
    write_bytes_atomic(out / BUNDLE_FILE, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return out


def load_bundle(root: str | Path) -> ModelBundle:
    """Load and check a bundle; a missing file, a path or symlink leading out of the folder, a corrupt or pickled
    weights file, or an inconsistent record raises BundleError naming it, before any tensor is used."""
    import forensics.detectors as registry
    from forensics.bundle.verify import check_bundle_tree, detector_folder
    from forensics.modelfiles import CheckpointError, check_finite_numbers, read_json_object

    root = Path(root)
    path = root / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{root}: not a model bundle (no {BUNDLE_FILE})")
    check_bundle_tree(root)
    try:
        meta = read_json_object(path, what="bundle record")
    except CheckpointError as exc:
        raise BundleError(str(exc)) from None
    if meta.get("format") != FORMAT:
        raise BundleError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    missing = [k for k in ("detectors", "fusion", "decision", "face") if k not in meta]
    if missing:
        raise BundleError(f"{path}: bundle record lacks {missing}")
    if not isinstance(meta["detectors"], list) or not meta["detectors"]:
        raise BundleError(f"{path}: 'detectors' must be a non-empty list")
    try:
        for key in ("fusion", "decision", "face"):
            check_finite_numbers(path, meta[key], key)
        for i, entry in enumerate(meta["detectors"]):
            check_finite_numbers(path, entry.get("calibration") if isinstance(entry, dict) else None,
                                 f"detectors[{i}].calibration")
            check_finite_numbers(path, entry.get("decision") if isinstance(entry, dict) else None,
                                 f"detectors[{i}].decision")
        detectors, calibrators, bands = {}, {}, {}
        for entry in meta["detectors"]:
            name, det_dir = detector_folder(root, entry, path)
            try:
                detectors[name] = registry.load(det_dir)
            except (CheckpointError, FileNotFoundError, TypeError) as exc:
                raise BundleError(f"detector {name!r} of bundle {root}: {exc}") from None
            calibrators[name] = Calibrator.from_dict(entry["calibration"])
            bands[name] = DecisionBand(**entry["decision"])
        calibration = FittedCalibration(calibrators, bands, Fusion.from_dict(meta["fusion"]),
                                        DecisionBand(**meta["decision"]))
        face = meta["face"]
        int(face["size"]), float(face["margin"])
    except BundleError:
        raise
    except CheckpointError as exc:
        raise BundleError(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError, FileNotFoundError, OSError) as exc:
        raise BundleError(f"{path}: broken bundle ({type(exc).__name__}: {exc})") from None
    used = calibration.fusion.detectors
    if set(used) != set(detectors):
        raise BundleError(f"{path}: fusion uses {sorted(used)} but the bundle has {sorted(detectors)}")
    return ModelBundle(root, meta, detectors, calibration, _load_ood(root, meta, detectors, path),
                       _load_attributor(root, meta, path), _load_video_model(root, meta, path))


def _part_folder(root: Path, meta: dict[str, Any], key: str, path: Path) -> str | None:
    """The folder bundle.json names for an optional part (`"<key>": "<folder>"`), None when absent; a name that
    is not a string or leads out of the bundle is refused."""
    from forensics.bundle.verify import is_inside

    rel = meta.get(key)
    if rel is None:
        return None
    if not isinstance(rel, str) or not is_inside(root.resolve(), root / rel):
        raise BundleError(f"{path}: '{key}' must name a folder inside the bundle, got {rel!r}")
    return rel


def _load_video_model(root: Path, meta: dict[str, Any], path: Path) -> Any | None:
    """The bundle's video model (`"temporal": "<folder>"`), checked like every model file."""
    from forensics.modelfiles import CheckpointError
    from forensics.video.model import VideoModel

    rel = _part_folder(root, meta, "temporal", path)
    if rel is None:
        return None
    try:
        return VideoModel.load(root / rel)
    except (CheckpointError, FileNotFoundError, TypeError, ValueError) as exc:
        raise BundleError(f"temporal model of bundle {root}: {exc}") from None


def _load_attributor(root: Path, meta: dict[str, Any], path: Path) -> Any | None:
    """The bundle's generator attributor (`"attribution": "<folder>"`), frequency features only (no model of its
    own to reference), checked like every model file."""
    from forensics.attribution import GeneratorAttributor, parse_features
    from forensics.modelfiles import CheckpointError

    rel = _part_folder(root, meta, "attribution", path)
    if rel is None:
        return None
    try:
        attributor = GeneratorAttributor.load(root / rel)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise BundleError(f"attributor of bundle {root}: {exc}") from None
    if "cnn" in parse_features(attributor.features):
        raise BundleError(f"{root / rel}: a bundle's attributor must not reference a CNN outside the bundle")
    return attributor


def _load_ood(root: Path, meta: dict[str, Any], detectors: dict[str, Any], path: Path) -> Any | None:
    """The bundle's out-of-distribution guard (`"ood": "<folder>"` in bundle.json), checked like every model file."""
    from forensics.bundle.ood import OODGuard
    from forensics.modelfiles import CheckpointError

    rel = _part_folder(root, meta, "ood", path)
    if rel is None:
        return None
    if OOD_DETECTOR not in detectors or not hasattr(detectors[OOD_DETECTOR], "predict_with_embedding"):
        raise BundleError(f"{path}: an OOD guard needs the {OOD_DETECTOR!r} detector's embedding")
    try:
        guard = OODGuard.load(root / rel)
    except (CheckpointError, FileNotFoundError) as exc:
        raise BundleError(f"OOD guard of bundle {root}: {exc}") from None
    if guard.mean.shape[0] != getattr(detectors[OOD_DETECTOR].model_, "num_features", guard.mean.shape[0]):
        raise BundleError(f"{root / rel}: its embedding size does not match the {OOD_DETECTOR!r} detector's")
    return guard
