"""Predicted manipulation mask of an aligned face (Face X-ray style head trained on self-blend masks).

The head (`mask_model.py`: efficientnet-lite0 trunk + small decoder, trained by `mask_train.py` via
`benchmarks/train_mask_head.py`) gives, for each pixel of a 128 px aligned crop, the probability that a blend
touched it (the truth it learnt: the self-blend's weight > 0). It ships in the bundle as `mask_head/`
(config.json + weights.safetensors); `MaskHead.load(bundle_root)` returns None when it is absent.

The signal uses the predicted *area* (pixels with p > `pixel_threshold`, as a fraction of the crop): real faces
give a small area, blends the face region. The area rule (`area_threshold`) was fixed on validation reals
(a high percentile of their areas, clean and JPEG'd) and its false-alarm rate measured on test reals (other
people); both travel in the head's config.json and in the section's fields, so the analyst sees the rule and
what it costs. Trained on blends only: a swap that leaves no blending boundary need not light it up, so a
small area is "no sign", never "authentic".

Section "mask" fields (one section per face):
    face               the face's name (e.g. "face-1"), as given by the caller
    asset              "<face>-mask.png": the predicted mask over the crop (`overlay.overlay_png`)
    area_fraction      share of the crop's pixels with p > pixel_threshold
    peak               the largest pixel probability
    pixel_threshold    p above which a pixel counts as predicted blended (0.5)
    area_threshold     the area above which the section suggests manipulation
    real_false_alarm   share of held-out real faces (test split) above area_threshold, as measured at training
    heldout_iou        mean IoU on held-out self-blends (test split, clean), as measured at training
    error              only on failure: "<face>: reason"
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from forensics.evidence.mask_model import MaskNetConfig

SECTION = "mask"
FOLDER = "mask_head"
SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "bundle" / FOLDER


def _round(x: float) -> float:
    return float(f"{x:.6g}")


@dataclass(frozen=True)
class AreaRule:
    """When a predicted mask counts as a sign of manipulation, and what that rule was measured to cost."""

    pixel_threshold: float = 0.5
    area_threshold: float = 1.0  # 1.0: never (a head without a measured rule takes no stance)
    real_false_alarm: float | None = None
    heldout_iou: float | None = None

    @classmethod
    def from_config(cls, doc: dict[str, Any], source: str | Path = "mask head config") -> "AreaRule":
        """The rule in a head's config.json; refused (CheckpointError naming `source`) unless every value is a
        finite number in its range, since a NaN or out-of-range threshold silently changes every verdict."""
        from forensics.modelfiles import CheckpointError

        rule = doc.get("rule", {})
        if not isinstance(rule, dict):
            raise CheckpointError(f"{source}: 'rule' must be a JSON object, got {type(rule).__name__}")
        values: dict[str, float | None] = {}
        for key, default, optional in (("pixel_threshold", 0.5, False), ("area_threshold", 1.0, False),
                                       ("real_false_alarm", None, True), ("heldout_iou", None, True)):
            value = rule.get(key, default)
            if value is None and optional:
                values[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise CheckpointError(f"{source}: rule.{key} must be a number in [0, 1], got {value!r}")
            values[key] = float(value)
        return cls(**values)  # type: ignore[arg-type]


_SHIPPED_RULE: AreaRule | None = None


def shipped_rule() -> AreaRule:
    """The area rule of the shipped head (read once from its config.json); the no-stance rule when it is absent."""
    global _SHIPPED_RULE
    if _SHIPPED_RULE is None:
        cfg = SHIPPED / "config.json"
        _SHIPPED_RULE = AreaRule.from_config(json.loads(cfg.read_text()), cfg) if cfg.is_file() else AreaRule()
    return _SHIPPED_RULE


class MaskHead:
    """A loaded mask head: `predict(crops)` per batch of aligned faces, `section(crop, name)` per face."""

    def __init__(self, net: "torch.nn.Module", config: "MaskNetConfig", rule: AreaRule) -> None:
        self.net = net.eval()
        self.config = config
        self.rule = rule
        self.runner: Any | None = None  # crops -> masks from the bundle's ONNX file (forensics.runtime); None: torch

    @classmethod
    def load(cls, bundle_root: str | Path) -> "MaskHead | None":
        """The head in `<bundle_root>/mask_head` (safetensors + JSON), or None when the bundle has none. A head
        that is there but fails a check (pickle, NaN weights, shapes the config does not describe, bad rule)
        raises forensics.modelfiles.CheckpointError naming the file."""
        from forensics.evidence.mask_model import load_mask_net

        folder = Path(bundle_root) / FOLDER
        if not folder.is_dir():
            return None
        net, config, doc = load_mask_net(folder)  # every file checked first (forensics.modelfiles)
        return cls(net, config, AreaRule.from_config(doc, folder / "config.json"))

    @property
    def size(self) -> int:
        return self.config.size

    def predict(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        """Per-pixel probability of "blended". [N,S,S,3] uint8 -> [N,S,S] float32 in [0, 1]. Crops of another
        side are resized to the head's side and the masks back (the head was trained on 128 px crops)."""
        import cv2

        from forensics.evidence.mask_train import predict_masks

        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
            raise ValueError(f"MaskHead.predict needs square RGB uint8 crops [N,S,S,3], got {crops.dtype} "
                             f"{crops.shape}")
        side = crops.shape[1]

        def run(x: np.ndarray) -> np.ndarray:
            return self.runner(x) if self.runner is not None else predict_masks(self.net, x, batch)

        if side == self.size:
            return run(crops)
        area = cv2.INTER_AREA if side > self.size else cv2.INTER_LINEAR
        resized = np.stack([cv2.resize(c, (self.size, self.size), interpolation=area) for c in crops])
        masks = run(resized)
        return np.stack([np.clip(cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR), 0, 1) for m in masks])

    def section(self, crop: np.ndarray, name: str) -> Section:
        """`mask_section` of one crop with this head's own rule."""
        try:
            mask = self.predict(np.asarray(crop)[None])[0]
        except (ValueError, RuntimeError) as exc:
            return _error(name, str(exc))
        return mask_section(crop, mask, name, self.rule)


def _error(name: str, reason: str) -> Section:
    return Section(SECTION, {"face": name, "error": f"{name}: {reason}"},
                   signal=Signal(NO_INFORMATION, f"{name}: no mask ({reason})"))


def mask_section(crop: np.ndarray, mask: np.ndarray, name: str, rule: AreaRule | None = None) -> Section:
    """The "mask" section of one face: its predicted mask over the crop, the area, and the area rule's stance.

    crop [S,S,3] uint8, mask [S,S] float in [0,1] (`MaskHead.predict`). `rule` defaults to the shipped head's
    (pass `head.rule` when the bundle's head is another one). Never raises: bad input gives an error section."""
    from forensics.evidence.overlay import overlay_png

    rule = rule or shipped_rule()
    try:
        mask = np.asarray(mask, np.float32)
        crop = np.asarray(crop)
        if mask.ndim != 2 or crop.ndim != 3 or mask.shape != crop.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match crop {crop.shape}")
        asset = overlay_png(crop, mask)
    except (ValueError, TypeError) as exc:
        return _error(name, str(exc))
    area = float((mask > rule.pixel_threshold).mean())
    fields = {"face": name, "asset": f"{name}-mask.png", "area_fraction": _round(area),
              "peak": _round(float(mask.max())), "pixel_threshold": _round(rule.pixel_threshold),
              "area_threshold": _round(rule.area_threshold),
              "real_false_alarm": None if rule.real_false_alarm is None else _round(rule.real_false_alarm),
              "heldout_iou": None if rule.heldout_iou is None else _round(rule.heldout_iou)}
    cost = ("" if rule.real_false_alarm is None
            else f"; {100 * rule.real_false_alarm:.1f}% of held-out real faces exceed it")
    if rule.area_threshold < 1.0 and area > rule.area_threshold:
        signal = Signal(SUGGESTS_MANIPULATION,
                        f"{name}: the predicted blend mask covers {100 * area:.1f}% of the face crop, above the "
                        f"{100 * rule.area_threshold:.1f}% real faces rarely reach{cost}")
    elif rule.area_threshold < 1.0:
        signal = Signal(NO_SIGN, f"{name}: the predicted blend mask covers {100 * area:.1f}% of the face crop, "
                                 f"within what real faces give (<= {100 * rule.area_threshold:.1f}%)")
    else:
        signal = Signal(NO_INFORMATION, f"{name}: the mask head has no measured area rule")
    return Section(SECTION, fields, {f"{name}-mask.png": asset}, signal)


__all__ = ["AreaRule", "MaskHead", "mask_section", "shipped_rule"]
