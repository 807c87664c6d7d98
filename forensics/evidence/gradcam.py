"""Grad-CAM of the bundle's CNN on aligned faces: where in the face the "fake" logit draws its evidence from.

Uses the maintained pytorch-grad-cam (`GradCAM`), not a hand-written copy. The explainer works on its own deep
copy of the CNN with frozen weights, so the bundle's model used for scoring never carries a hook, never
accumulates a gradient and gives the same scores before and after; torch's grad mode is switched on only
inside `explain` and restored after it. Only the last block and the head are recorded for autograd
(`_tail_graph`), which makes the backward pass cheap. Target layer: the last block of the timm backbone (`blocks[-1]`,
stride 32: a 128 px face gives a 4x4 map, upsampled to the crop), target: the single "fake" logit.

A map is an explanation, not a stance: every section's signal is None.

Section "gradcam" fields (one section per face):
    face            the face's name (e.g. "face-1"), as given by the caller
    asset           "<face>-gradcam.png": the map over the crop (`overlay.overlay_png`)
    layer           the target layer, e.g. "efficientnet_lite0 blocks.6"
    target          what the map explains ("fake logit")
    map_cells       [h, w] the map's native resolution before upsampling
    peak            {"x", "y"} crop pixels of the map's maximum, "region": left_eye / right_eye / nose / mouth /
                    face_other / outside_face (`overlay.face_region_at`)
    heat_in_face    fraction of the map's total heat inside the face ellipse (`overlay.face_ellipse_mask`;
                    the ellipse covers 0.28 of a crop, so a map spread evenly gives ~0.28)
    empty           true when no part of the face raises the fake logit (ReLU leaves nothing: the map is all 0)
    error           only on failure: "<face>: reason"
"""
from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from forensics.evidence.overlay import face_ellipse_mask, face_region_at, overlay_png
from forensics.evidence.section import NO_INFORMATION, Section, Signal

SECTION = "gradcam"


def _round(x: float) -> float:
    return float(f"{x:.6g}")


class GradCamExplainer:
    """Load once per scan (`from_bundle`), then `explain(crops)` per file. `close()` drops the hooks of the copy."""

    def __init__(self, detector: Any, margin: float = 0.25) -> None:
        """detector: a fitted `forensics.detectors.cnn.CNNDetector` (its `model_` is copied, never modified)."""
        from pytorch_grad_cam import GradCAM

        if not hasattr(detector, "model_"):
            raise ValueError("Grad-CAM needs a fitted CNN detector (no model_)")
        self.detector = detector
        self.margin = margin
        model = copy.deepcopy(detector.model_)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)  # no weight gradients: the map needs only the target layer's gradient
        self.model = _tail_graph(model)
        self.layer = f"{detector.model_name} blocks.{len(model.blocks) - 1}"
        self._cam = GradCAM(model=self.model, target_layers=[model.blocks[-1]])

    @classmethod
    def from_bundle(cls, bundle: Any) -> GradCamExplainer:
        """The explainer of a bundle's "cnn" detector; ValueError when the bundle has none."""
        if "cnn" not in bundle.detectors:
            raise ValueError(f"{bundle.root}: the bundle has no cnn detector to explain")
        return cls(bundle.detectors["cnn"], margin=bundle.face_margin)

    def explain(self, crops: np.ndarray, batch: int = 16) -> np.ndarray:
        """Grad-CAM of the fake logit per crop, each scaled to [0, 1] (all 0 when nothing raises the logit).
        # [N,S,S,3] uint8 -> [N,S,S] float32"""
        import torch
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"crops must be uint8 [N,S,S,3], got {crops.dtype} {crops.shape}")
        size = crops.shape[1:3]
        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode(False), torch.enable_grad():
            for i in range(0, len(crops), batch):
                x = self.detector.to_tensor(crops[i:i + batch], device)  # [n,3,H,W], the detector's own preprocessing
                heat = self._cam(input_tensor=x, targets=[ClassifierOutputTarget(0)] * len(x))  # [n,H,W]
                self._cam.outputs = None  # drop the retained graph now, not at the next call
                self._cam.activations_and_grads.clear()
                out.extend(_resize(h, size) for h in heat)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, *size), np.float32)

    def map_cells(self, size: int) -> list[int]:
        """Native [h, w] of the target layer's map for a crop of `size` (stride 32 for efficientnet)."""
        side = int(self.detector.input_size or size)
        return [int(np.ceil(side / 32)), int(np.ceil(side / 32))]

    def close(self) -> None:
        """Remove the hooks from the copy (the bundle's model never had any)."""
        self._cam.activations_and_grads.release()

    def __enter__(self) -> GradCamExplainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tail_graph(model: Any) -> Any:
    """Wrap a timm EfficientNet so that autograd records only its last block and head: the stem and earlier
    blocks run under no_grad and their output becomes the graph's leaf. Grad-CAM needs only the gradient at
    the last block's output, which the tail alone determines, so the map is the same as with the full graph
    and the backward pass is a fraction of the cost. Outputs equal `model(x)`."""
    import torch

    class TailGraph(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,H,W] -> [N,1]
            net = self.net
            with torch.no_grad():
                feats = net.blocks[:-1](net.bn1(net.conv_stem(x)))  # [N,C,h,w]
            feats.requires_grad_(True)
            return net.forward_head(net.bn2(net.conv_head(net.blocks[-1](feats))))

    return TailGraph(model)


def _resize(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H,W] -> [size] bilinear, clipped to [0, 1] (the crop may differ from the CNN's input size)."""
    heat = np.nan_to_num(np.asarray(heat, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if heat.shape != tuple(size):
        heat = cv2.resize(heat, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(heat, 0.0, 1.0)


def gradcam_fields(heat: np.ndarray, name: str, layer: str, cells: list[int], margin: float = 0.25) -> dict[str, Any]:
    """The JSON fields of one face's map (see the module docstring).  # heat [S,S] in [0,1]"""
    size = heat.shape[0]
    total = float(heat.sum())
    ys, xs = np.nonzero(heat >= heat.max() - 1e-4)  # the plateau at the maximum (flat near the crop's edges)
    y, x = int(round(float(ys.mean()))), int(round(float(xs.mean())))
    inside = float(heat[face_ellipse_mask(size, margin)].sum())
    return {
        "face": name,
        "asset": f"{name}-gradcam.png",
        "layer": layer,
        "target": "fake logit",
        "map_cells": cells,
        "peak": {"x": int(x), "y": int(y), "region": face_region_at(x + 0.5, y + 0.5, size, margin)},
        "heat_in_face": _round(inside / total) if total > 0 else None,
        "empty": bool(total <= 0),
    }


def gradcam_sections(explainer: GradCamExplainer, crops: np.ndarray, names: list[str]) -> list[Section]:
    """One "gradcam" section per face: the fields above and `<name>-gradcam.png`. Never raises: a failure gives
    sections with fields["error"] and Signal NO_INFORMATION.  # crops [N,S,S,3] uint8"""
    if len(crops) != len(names):
        raise ValueError(f"{len(crops)} crops but {len(names)} names")
    try:
        heats = explainer.explain(crops)  # [N,S,S]
    except Exception as exc:  # noqa: BLE001 - a map must never stop a scan; the error is reported in the section
        return [Section(SECTION, {"face": n, "error": f"{n}: Grad-CAM failed ({type(exc).__name__}: {exc})"},
                        signal=Signal(NO_INFORMATION, "Grad-CAM could not be computed")) for n in names]
    cells = explainer.map_cells(crops.shape[1])
    return [Section(SECTION, gradcam_fields(h, n, explainer.layer, cells, explainer.margin),
                    {f"{n}-gradcam.png": overlay_png(c, h)}, None)
            for c, h, n in zip(crops, heats, names)]
