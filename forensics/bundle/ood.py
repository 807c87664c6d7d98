"""The out-of-distribution guard: a face unlike every face the bundle was calibrated on gets no verdict.

A calibrated probability only means something for inputs like the calibration set. The guard measures how far
a crop's CNN embedding (the bundle CNN's pre-logit features, L2-normalised, projected on the calibration set's
first principal axes, plus its distance off those axes) lies from its `k` nearest calibration faces. The threshold is set *leave one identity
out*: each large identity's faces are measured against the reference faces of the other identities only, so a
person the model never saw is not called out-of-distribution merely for being new; the threshold is the worst
such identity's `quantile` (clean and post-processed copies alike). A crop farther than that (a non-face, a
drawing, a face far outside the training conditions) is *inconclusive* with the reason.

Measured on the starter corpus, that distance alone does not separate non-faces from unseen people (the few
training videos differ so much that a new person is as far as a street scene), so a second, measured rule
joins it: *faceness*, MTCNN's O-Net face probability on the crop's central face region (the network the scan
already runs, weights from facenet-pytorch's wheel). Its threshold is a low quantile of the real calibration
faces' faceness, clean and post-processed. A face is out of distribution when either rule fires.

Stored in the bundle as `ood/config.json` + `ood/weights.safetensors` (PCA mean and axes, reference points).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "forensics-ood/1"
REASON = "out of distribution: unlike every face the bundle was calibrated on"


def _normalise(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, np.float64)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _knn_mean(points: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean Euclidean distance of each point to its k nearest reference points.  # [N,d],[M,d] -> [N]"""
    out = np.empty(len(points))
    for i in range(0, len(points), 512):
        p = points[i:i + 512]
        d2 = (p ** 2).sum(1)[:, None] + (reference ** 2).sum(1)[None, :] - 2.0 * p @ reference.T
        d2 = np.maximum(d2, 0.0)
        kk = min(k, reference.shape[0])
        out[i:i + 512] = np.sqrt(np.partition(d2, kk - 1, axis=1)[:, :kk]).mean(1)
    return out


def _project(x: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Coordinates on the principal axes plus the distance off them: a point that differs from the calibration
    faces only in directions they never vary in must still be far.  # [N,D] -> [N,d+1]"""
    centred = x - mean
    z = centred @ axes.T
    residual = np.linalg.norm(centred - z @ axes, axis=1, keepdims=True)
    return np.concatenate([z, residual], axis=1)


FACE_REGION = 0.7  # the central share of an aligned crop (margin 0.25) that O-Net sees, like an MTCNN box


def faceness(crops: np.ndarray, region: float = FACE_REGION) -> np.ndarray:
    """MTCNN O-Net's face probability of each aligned crop's central region.  # [N,S,S,3] uint8 -> [N]"""
    import torch
    import torch.nn.functional as F

    onet = _onet()
    s = crops.shape[1]
    m = int(round(s * (1 - region) / 2))
    x = torch.from_numpy(np.ascontiguousarray(crops[:, m:s - m, m:s - m])).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(48, 48), mode="area")
    with torch.inference_mode():
        return onet((x - 127.5) * 0.0078125)[2][:, 1].double().numpy()  # the scaling MTCNN's own stages use


_ONET = None


def _onet():
    global _ONET
    if _ONET is None:
        from forensics.data.faces import FaceDetector

        _ONET = FaceDetector()._model().onet.eval()
    return _ONET


@dataclass
class OODGuard:
    mean: np.ndarray  # [D]
    axes: np.ndarray  # [d, D]
    reference: np.ndarray  # [M, d+1] projected calibration faces (their last column: distance off the axes)
    k: int
    threshold: float
    record: dict[str, Any]
    faceness_threshold: float = 0.0  # O-Net face probability below this: not like a calibration face

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return _project(_normalise(embeddings), self.mean, self.axes)  # [N,d+1]

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """kNN distance of each embedding to the reference faces.  # [N,D] -> [N]"""
        return _knn_mean(self.project(embeddings), self.reference, self.k)

    def flags(self, embeddings: np.ndarray, face_probability: np.ndarray | None = None) -> np.ndarray:
        far = self.distance(embeddings) > self.threshold  # [N] bool
        return far if face_probability is None else far | (np.asarray(face_probability) < self.faceness_threshold)

    def fit_faceness(self, real_crops: np.ndarray, quantile: float = 0.005) -> "OODGuard":
        """Set the faceness threshold at the `quantile` of real calibration faces (clean and post-processed)."""
        values = faceness(real_crops)
        self.faceness_threshold = float(np.quantile(values, quantile))
        self.record.update(faceness_quantile=quantile, faceness_region=FACE_REGION,
                           faceness_real_faces=int(values.size))
        return self

    @classmethod
    def fit(cls, embeddings: np.ndarray, identities: np.ndarray, fold_identities: list[str], dims: int = 32,
            k: int = 10, quantile: float = 0.99, max_reference: int = 3000, seed: int = 0) -> "OODGuard":
        """Reference = a seeded subsample of `embeddings` [N,D] (calibration faces, clean and post-processed);
        threshold = the largest, over `fold_identities`, of the `quantile` of that identity's distances to the
        reference faces of the other identities."""
        x = _normalise(embeddings)
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        axes = vt[:dims]
        z = _project(x, mean, axes)
        ids = np.asarray(identities).astype(str)
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(z), min(max_reference, len(z)), replace=False))
        per_identity = {}
        for name in fold_identities:
            own = ids == name
            others = keep[~own[keep]]
            if own.any() and others.size:
                per_identity[name] = float(np.quantile(_knn_mean(z[own], z[others], k), quantile))
        if not per_identity:
            raise ValueError("OOD guard: no identity to set the threshold on")
        threshold = max(per_identity.values())
        record = {"k": k, "dims": dims, "quantile": quantile, "reference_faces": int(keep.size),
                  "leave_one_identity_out_quantiles": {n: round(v, 6) for n, v in per_identity.items()}}
        return cls(mean.astype(np.float32), axes.astype(np.float32), z[keep].astype(np.float32), k, threshold, record)

    def save(self, directory: str | Path) -> Path:
        import json

        from safetensors.numpy import save as st_save

        from forensics.data.media import write_bytes_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(directory / "weights.safetensors", st_save(
            {"mean": self.mean, "axes": self.axes, "reference": self.reference}, metadata={"format": FORMAT}))
        config = {"format": FORMAT, "k": self.k, "threshold": self.threshold,
                  "faceness_threshold": self.faceness_threshold, "record": self.record}
        write_bytes_atomic(directory / "config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "OODGuard":
        """Checked like every model file: JSON object, safetensors header, finite values, consistent shapes."""
        from forensics.modelfiles import CheckpointError, check_finite_numbers, read_json_object, read_safetensors

        directory = Path(directory)
        config = read_json_object(directory / "config.json", required=("format", "k", "threshold"), what="OOD guard")
        if config["format"] != FORMAT:
            raise CheckpointError(f"{directory / 'config.json'}: format {config['format']!r}, expected {FORMAT!r}")
        check_finite_numbers(directory / "config.json",
                             [config["k"], config["threshold"], config.get("faceness_threshold", 0.0)], "thresholds")
        tensors, _ = read_safetensors(directory / "weights.safetensors")
        missing = {"mean", "axes", "reference"} - set(tensors)
        if missing:
            raise CheckpointError(f"{directory / 'weights.safetensors'}: lacks {sorted(missing)}")
        mean, axes, ref = tensors["mean"], tensors["axes"], tensors["reference"]
        if not (mean.ndim == 1 and axes.ndim == 2 and ref.ndim == 2 and axes.shape[1] == mean.shape[0]
                and ref.shape[1] == axes.shape[0] + 1 and ref.shape[0] >= 1):
            raise CheckpointError(f"{directory / 'weights.safetensors'}: shapes mean {mean.shape}, axes {axes.shape}, "
                                  f"reference {ref.shape} do not fit together")
        k = int(config["k"])
        if k < 1:
            raise CheckpointError(f"{directory / 'config.json'}: k must be >= 1, got {k}")
        return cls(mean, axes, ref, k, float(config["threshold"]), dict(config.get("record", {})),
                   float(config.get("faceness_threshold", 0.0)))
