"""Builders shared by the ONNX tests: a toy bundle with every part the export handles (a CNN, both frequency
detectors, an OOD guard on the CNN's embedding, a mask head), and the comparison of two runtimes' scores."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from forensics.bundle.model import FaceScores

SHIPPED = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "bundle"
TOL = 1e-4


def build_full_toy_bundle(out: Path, size: int = 64) -> Path:
    """spectral + dct + cnn (scratch efficientnet_lite0, one epoch) on toy textures, with an OOD guard and a tiny
    mask head (random weights: its masks mean nothing, its arithmetic is what the tests compare)."""
    from forensics.bundle.build import build_bundle_from_arrays
    from forensics.bundle.model import load_bundle
    from forensics.bundle.ood import OODGuard
    from forensics.detectors import toydata
    from forensics.evidence.mask_model import MaskNetConfig, build_mask_net, save_mask_net

    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.concatenate([toydata.real_images(rng, n, size), toydata.fake_images(rng, n, size, "nearest")])
        return images, np.array([0] * n + [1] * n)

    train, val = split(24), split(12)
    build_bundle_from_arrays(out, train, (*val, [f"v{i}" for i in range(len(val[1]))]),
                             {"spectral": {}, "dct": {},
                              "cnn": {"weights": "scratch", "epochs": 1, "batch_size": 16, "device": "cpu"}},
                             perturbations=("jpeg50",), face={"size": size, "margin": 0.25}, log=lambda m: None)
    _, emb = load_bundle(out).detectors["cnn"].predict_with_embedding(val[0])
    ids = np.array([f"p{i % 3}" for i in range(len(emb))])
    OODGuard.fit(emb, ids, ["p0", "p1", "p2"], dims=4, k=3).save(out / "ood")
    meta = json.loads((out / "bundle.json").read_text())
    meta["ood"] = "ood"
    (out / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    config = MaskNetConfig(depth=2, decoder=(16, 8), weights="scratch", size=size)
    save_mask_net(out / "mask_head", build_mask_net(config, load_pretrained=False), config,
                  extra={"rule": {"pixel_threshold": 0.5, "area_threshold": 0.4}})
    return out


def copy_bundle(src: Path, dst: Path) -> Path:
    """A copy without any earlier export (the tests make their own)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("onnx"))
    return dst


def probe_faces(size: int, n: int = 12, seed: int = 3) -> np.ndarray:
    """Noise, smooth and flat crops plus starter faces resized to `size`.  # -> [N,size,size,3] uint8"""
    import cv2

    from forensics.data.media import read_image

    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    crops[1] = cv2.GaussianBlur(crops[0], (0, 0), 3)
    crops[2] = 90
    starter = SHIPPED.parent / "starter"
    names = ("obama.jpg", "biden.jpg", "single_face.jpg", "grace_hopper.jpg")[: max(0, n - 3)]
    for i, name in enumerate(names, start=3):
        img = read_image(starter / name)
        side = min(img.shape[:2])
        crops[i] = cv2.resize(img[:side, :side], (size, size), interpolation=cv2.INTER_AREA)
    return crops


def assert_same_scores(a: FaceScores, b: FaceScores, tol: float = TOL) -> None:
    """Same structure, same verdicts, every number within `tol`."""
    assert set(a.raw) == set(b.raw) and set(a.calibrated) == set(b.calibrated)
    for name in a.raw:
        assert np.max(np.abs(a.raw[name] - b.raw[name])) <= tol, name
        assert np.max(np.abs(a.calibrated[name] - b.calibrated[name])) <= tol, name
        assert a.detector_verdicts[name] == b.detector_verdicts[name], name
    assert np.max(np.abs(a.fused - b.fused)) <= tol
    assert a.verdicts == b.verdicts and a.disagree == b.disagree
    assert (a.ood_distance is None) == (b.ood_distance is None)
    if a.ood_distance is not None:
        scale = max(1.0, float(np.max(np.abs(a.ood_distance))))
        assert np.max(np.abs(a.ood_distance - b.ood_distance)) <= tol * scale
        assert a.ood_threshold == b.ood_threshold
    assert (a.attribution is None) == (b.attribution is None)
    if a.attribution is not None:
        assert [x["generator"] for x in a.attribution] == [x["generator"] for x in b.attribution]
    for i in range(len(a.fused)):
        fa, fb = a.face(i), b.face(i)
        assert fa.keys() == fb.keys() and fa["verdict"] == fb["verdict"]
