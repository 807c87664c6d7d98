"""`forensics detect export BUNDLE --onnx`: the bundle's networks and linear detectors as ONNX files inside it.

    BUNDLE/onnx/<name>.onnx     cnn (outputs "logit" [N] and the pre-logit "embedding" [N,D]), dct and spectral
                                (output "probability" [N]), mask_head (output "mask" [N,S,S])
    BUNDLE/onnx/export.json     format, opset, the torch / onnx / onnxruntime versions, and per model: its file's
                                sha256 and size, its input and outputs, the hash of the source it was made from
                                (the detector's or the mask head's folder) and the largest difference from the
                                torch / numpy path measured on probe crops at export time

Every model is checked after it is written: onnxruntime runs it on seeded probe crops (noise, flat grey, black,
smooth gradients) and its outputs must equal the torch / numpy path's within `TOLERANCE` (probabilities and mask
pixels absolutely, the CNN's embedding relative to its largest value); a model that does not
(or cannot be expressed) is left out and listed under `not_exported` with the reason, and keeps running on its
own runtime. Exporting changes the bundle's file hash (it has more files), not its scores.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from forensics.runtime.graphs import GRAPHS, OPSET

FOLDER = "onnx"
RECORD = "export.json"
FORMAT = "forensics-onnx/1"
TOLERANCE = 1e-4  # on probabilities, mask pixels, and embeddings relative to their scale
MASK_FOLDER = "mask_head"


def source_sha256(folder: Path) -> str:
    """The hash of a detector's (or the mask head's) folder: an export is stale once it changes."""
    from forensics.bundle.model import bundle_sha256

    return bundle_sha256(folder)


def probe_crops(h: int, w: int, n: int = 6, seed: int = 0) -> np.ndarray:
    """Seeded crops covering the numeric corners: noise, flat grey, near-black noise, white, and two smooth
    gradients. (Not an all-black crop: its spectral profile is flat, so the min-max step divides rounding noise by
    zero on either runtime and its value means nothing. Nor a bare linear ramp: its spectrum is zero off the two
    axes, so the log spectrum there is rounding noise too, and it differed by 4e-4 between two machines' FFTs;
    the ramp carries faint noise, as any smooth photo does.)  # -> [n,h,w,3] uint8"""
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    crops[1], crops[3] = 128, 255
    crops[2] = rng.integers(0, 4, (h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.stack([xx * 253 // max(1, w - 1), yy * 253 // max(1, h - 1), (xx + yy) * 126 // max(1, h + w - 2)], -1)
    crops[4] = (ramp + rng.integers(0, 3, (h, w, 3))).astype(np.uint8)
    if n > 5:
        crops[5] = (crops[0].astype(np.int32) // 4 + crops[4] // 2).astype(np.uint8)
    return crops


def _cnn_module(det: Any):
    """The CNN detector as one module: uint8 NHWC crops at its fitted size -> (logit [N], embedding [N,D]),
    the same arithmetic as `CNNDetector.to_tensor` + `_forward` (float32, no AMP)."""
    import copy

    import torch
    import torch.nn.functional as F

    class CNNGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = copy.deepcopy(det.model_).float().cpu().to(memory_format=torch.contiguous_format).eval()
            self.register_buffer("mean", torch.tensor(det.mean_, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(det.std_, dtype=torch.float32).view(1, 3, 1, 1))
            self.input_size = det.input_size

        def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = crops.permute(0, 3, 1, 2).float() / 255.0
            x = (x - self.mean) / self.std  # [N,3,H,W]
            if self.input_size and x.shape[-1] != self.input_size:
                x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            emb = self.model.forward_head(self.model.forward_features(x), pre_logits=True)  # [N,D]
            return self.model.get_classifier()(emb).squeeze(1), emb

    return CNNGraph().eval()


def _mask_module(head: Any):
    """The mask head's network: uint8 NHWC crops -> per-pixel P(blended) [N,S,S] (`mask_train.predict_masks`)."""
    import copy

    import torch

    class MaskGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = copy.deepcopy(head.net).float().cpu().eval()

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            x = crops.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # mask_model.to_input
            return torch.sigmoid(self.net(x))[:, 0]

    return MaskGraph().eval()


def _trace(module: Any, side: tuple[int, int], outputs: list[str]) -> bytes:
    """torch.onnx.export (the TorchScript exporter: no onnxscript needed) with a dynamic batch axis."""
    import io
    import warnings

    import torch

    buf = io.BytesIO()
    example = torch.zeros((2, side[0], side[1], 3), dtype=torch.uint8)
    axes = {"crops": {0: "n"}, **{o: {0: "n"} for o in outputs}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET, input_names=["crops"],
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)
    return buf.getvalue()


def _run(data: bytes, crops: np.ndarray) -> list[np.ndarray]:
    from forensics.runtime.session import make_session

    return make_session(data).run(None, {"crops": crops})


def _diff(ours: np.ndarray, theirs: np.ndarray, relative: bool = False) -> float:
    """Largest absolute difference; `relative`: over the reference's largest magnitude (at least 1)."""
    a, b = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    return d / max(1.0, float(np.max(np.abs(b)))) if relative and b.size else d


def _cnn_diffs(data: bytes, det: Any, probe: np.ndarray) -> dict[str, float]:
    """How far the ONNX CNN is from torch: P(fake) (what is calibrated), the logit (float32 rounding through the
    network: ~1e-5), and the embedding relative to its scale (what the OOD guard measures)."""
    from scipy.special import expit

    logits, emb = det._forward(probe)
    ol, oe = _run(data, probe)
    return {"probability": _diff(expit(ol.astype(np.float64)), expit(logits)), "logit": _diff(ol, logits),
            "embedding_relative": _diff(oe, emb, relative=True)}


def export_models(bundle: Any) -> tuple[dict[str, tuple[bytes, dict[str, Any]]], dict[str, str]]:
    """({name: (onnx bytes, record)}, {name: why it was not exported}) for a loaded bundle."""
    from forensics.evidence.mask_head import MaskHead

    root = Path(bundle.root)
    made: dict[str, tuple[bytes, dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for name, det in sorted(bundle.detectors.items()):
        h, w = (int(v) for v in det.image_size_)
        probe = probe_crops(h, w)
        try:
            if hasattr(det, "predict_with_embedding") and hasattr(det, "model_"):
                data = _trace(_cnn_module(det), (h, w), ["logit", "embedding"])
                diffs = _cnn_diffs(data, det, probe)
                diff = max(diffs["probability"], diffs["embedding_relative"])
                outputs = {"logit": ["n"], "embedding": ["n", int(det.model_.num_features)]}
            elif det.name in GRAPHS:
                data = GRAPHS[det.name](det).SerializeToString()
                diffs = {"probability": _diff(_run(data, probe)[0], det.predict_proba(probe))}
                diff = diffs["probability"]
                outputs = {"probability": ["n"]}
            else:
                skipped[name] = f"no ONNX form for a {type(det).__name__}: it keeps its own runtime"
                continue
        except Exception as exc:  # noqa: BLE001 - an exporter failure leaves that detector on its own runtime
            skipped[name] = f"export failed ({type(exc).__name__}: {str(exc)[:300]})"
            continue
        if not diff <= TOLERANCE:
            skipped[name] = f"not faithful: differs from its own runtime by {diff:.3g} (> {TOLERANCE}) on probe crops"
            continue
        made[name] = (data, {"kind": "detector", "input": {"name": "crops", "dtype": "uint8", "shape": ["n", h, w, 3]},
                             "outputs": outputs, "source": f"detectors/{name}", "max_abs_diff": diffs})
    head = MaskHead.load(root)
    if head is not None:
        s = int(head.size)
        probe = probe_crops(s, s)
        try:
            from forensics.evidence.mask_train import predict_masks

            data = _trace(_mask_module(head), (s, s), ["mask"])
            diff = _diff(_run(data, probe)[0], predict_masks(head.net, probe))
        except Exception as exc:  # noqa: BLE001
            skipped[MASK_FOLDER] = f"export failed ({type(exc).__name__}: {str(exc)[:300]})"
        else:
            if diff <= TOLERANCE:
                made[MASK_FOLDER] = (data, {"kind": "mask_head", "outputs": {"mask": ["n", s, s]},
                                            "input": {"name": "crops", "dtype": "uint8", "shape": ["n", s, s, 3]},
                                            "source": MASK_FOLDER, "max_abs_diff": {"mask": diff}})
            else:
                skipped[MASK_FOLDER] = f"not faithful: differs from torch by {diff:.3g} (> {TOLERANCE})"
    return made, skipped


def export_bundle(root: str | Path) -> dict[str, Any]:
    """Export a bundle folder's models into `root/onnx/` (replacing an earlier export) and return the record."""
    import shutil

    import onnx
    import onnxruntime
    import torch

    from forensics.bundle.model import load_bundle
    from forensics.data.media import write_bytes_atomic

    root = Path(root)
    bundle = load_bundle(root)
    made, skipped = export_models(bundle)
    folder = root / FOLDER
    if folder.exists():
        shutil.rmtree(folder)  # an earlier export (its record goes with it): never a mix of two exports
    models = {}
    for name, (data, record) in sorted(made.items()):
        file = f"{name}.onnx"
        write_bytes_atomic(folder / file, data)
        models[name] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **record,
                        "source_sha256": source_sha256(root / record["source"])}
    doc = {"format": FORMAT, "opset": OPSET, "tolerance": TOLERANCE,
           "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
           "models": models, "not_exported": skipped,
           "note": "Grad-CAM, the OOD guard's distance, the attributor and the calibration stay in torch / numpy"}
    write_bytes_atomic(folder / RECORD, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return doc
