"""The creation step of an autoencoder face swap: put a swapped crop back into its frame.

Creation uses no learning (deck: "extraction -> training -> creation"): the swapped crop is warped back with
the inverse of the alignment matrix, limited to a face-shaped mask, colour-matched to the frame and blended.
Each of those choices is a field of `MergeOptions` (frozen, JSON-serialised into the manifest), because each
leaves its own trace: the mask edge, the blur of the upscaled crop, the colour mismatch the detectors see.

MTCNN gives only five landmarks, so the face region is built from them: the eye line and the eye-to-mouth
axis define a face frame in which brows, cheeks, jaw and chin sit at fixed proportions; their convex hull
(or an ellipse fitted to it) is the mask. Pixels where the final mask is 0 keep the frame's exact bytes.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# Face outline in a frame centred on the eye midpoint: x in eye distances (along the eye line), y in
# eye-to-mouth distances (downwards). Brows sit ~0.4-0.6 above the eyes, the chin ~0.55 below the mouth,
# the cheeks ~1 eye distance from the centre (proportions of the 112 px ArcFace 5-point template).
_OUTLINE = np.array([
    [-0.95, -0.40], [-0.50, -0.60], [0.00, -0.62], [0.50, -0.60], [0.95, -0.40],  # brows
    [1.00, 0.30], [0.90, 0.95], [0.60, 1.35], [0.00, 1.55], [-0.60, 1.35], [-0.90, 0.95], [-1.00, 0.30],  # jaw
], dtype=np.float64)

MASK_KINDS = ("hull", "ellipse", "learned")
COLOUR_MODES = ("none", "reinhard")
BLEND_MODES = ("alpha", "seamless")


@dataclass(frozen=True)
class MergeOptions:
    """How a swapped crop is merged into its frame. Sizes are fractions of the crop side, so they scale."""

    mask: str = "hull"  # hull | ellipse (of the 5-point face outline) | learned (the model's mask head)
    erode: float = 0.03  # erode the mask by this fraction of the crop side (keeps the seam inside the face)
    blur: float = 0.05  # feather: Gaussian sigma as a fraction of the crop side
    colour: str = "reinhard"  # none | reinhard (LAB mean/std transfer inside the mask)
    blend: str = "alpha"  # alpha | seamless (cv2.seamlessClone, then alpha-feathered into the frame)

    def __post_init__(self) -> None:
        for name, value, allowed in (("mask", self.mask, MASK_KINDS), ("colour", self.colour, COLOUR_MODES),
                                     ("blend", self.blend, BLEND_MODES)):
            if value not in allowed:
                raise ValueError(f"MergeOptions.{name} must be one of {allowed}, got {value!r}")
        if not (0.0 <= self.erode < 0.5 and 0.0 <= self.blur < 0.5):
            raise ValueError("erode and blur are fractions of the crop side in [0, 0.5)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MergeOptions":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown MergeOptions keys {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class ColourStats:
    """LAB mean/std of the swapped face and of the frame's face inside the mask (each [3])."""

    src_mean: np.ndarray
    src_std: np.ndarray
    dst_mean: np.ndarray
    dst_std: np.ndarray

    def blend(self, other: "ColourStats", keep: float) -> "ColourStats":
        """keep * self + (1 - keep) * other: an EMA step, for temporally smoothed colour transfer."""
        mix = lambda a, b: keep * a + (1.0 - keep) * b  # noqa: E731
        return ColourStats(mix(self.src_mean, other.src_mean), mix(self.src_std, other.src_std),
                           mix(self.dst_mean, other.dst_mean), mix(self.dst_std, other.dst_std))


@dataclass(frozen=True)
class Merged:
    frame: np.ndarray  # [H,W,3] uint8: the fake frame
    mask: np.ndarray  # [H,W] uint8 0..255: the blend weight actually used (the pixel-level label)
    crop_mask: np.ndarray  # [S,S] float32 0..1: the mask in crop coordinates
    colour: ColourStats | None  # the statistics used (None without colour transfer)


# -- masks -----------------------------------------------------------------------------------------------------

def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """Face outline points from the 5 MTCNN landmarks, in the landmarks' coordinates. [5,2] -> [12,2]"""
    pts = np.asarray(landmarks, np.float64)
    eye_l, eye_r, mouth_l, mouth_r = pts[0], pts[1], pts[3], pts[4]
    centre = (eye_l + eye_r) / 2.0
    u = eye_r - eye_l
    d_eye = float(np.linalg.norm(u)) + 1e-9
    u = u / d_eye
    v = np.array([-u[1], u[0]])  # image y points down, so this is "down the face"
    down = (mouth_l + mouth_r) / 2.0 - centre
    d_mouth = max(float(down @ v), 0.3 * d_eye)  # guards against degenerate (profile) landmarks
    return centre + _OUTLINE[:, :1] * d_eye * u + _OUTLINE[:, 1:] * d_mouth * v


def face_region_mask(landmarks: np.ndarray, size: int, kind: str = "hull") -> np.ndarray:
    """A binary face-shaped mask in a size x size crop from its 5 landmarks (crop coordinates). [S,S] float32"""
    outline = face_outline(landmarks)
    mask = np.zeros((size, size), np.uint8)
    if kind == "hull":
        hull = cv2.convexHull(np.round(outline * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    elif kind == "ellipse":
        (cx, cy), (w, h), angle = cv2.fitEllipse(outline.astype(np.float32))
        cv2.ellipse(mask, ((cx, cy), (w, h), angle), 255, thickness=-1, lineType=cv2.LINE_AA)
    else:
        raise ValueError(f"geometric mask kind must be 'hull' or 'ellipse', got {kind!r}")
    return (mask > 127).astype(np.float32)


def refine_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode, then feather with a Gaussian. The blur is applied to a mask eroded by a further 2 sigma, so the
    feathered edge stays inside the original region: what lies outside it is never touched. [S,S] -> [S,S]"""
    size = mask.shape[0]
    binary = (mask > 0.5).astype(np.uint8)
    sigma = blur * size
    radius = int(round(erode * size + 2.0 * sigma))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        binary = cv2.erode(binary, kernel)
    soft = binary.astype(np.float32)
    if sigma > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
        soft[soft < 1e-3] = 0.0
    return np.clip(soft, 0.0, 1.0) * (mask > 0.5)


# -- colour ----------------------------------------------------------------------------------------------------

def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)


def colour_stats(swapped: np.ndarray, original: np.ndarray, mask: np.ndarray) -> ColourStats:
    """LAB mean/std of both crops where mask > 0.5 (falls back to the whole crop for an empty mask)."""
    sel = mask > 0.5
    if not sel.any():
        sel = np.ones(mask.shape, bool)
    a, b = _lab(swapped)[sel], _lab(original)[sel]  # [K,3]
    return ColourStats(a.mean(0), a.std(0) + 1e-3, b.mean(0), b.std(0) + 1e-3)


def reinhard_transfer(swapped: np.ndarray, stats: ColourStats) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer in LAB: match the swapped face's mean/std to the frame's. uint8"""
    lab = (_lab(swapped) - stats.src_mean) / stats.src_std * stats.dst_std + stats.dst_mean
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


# -- merging ---------------------------------------------------------------------------------------------------

def crop_landmarks(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Frame landmarks -> crop coordinates with a [2,3] frame->crop matrix. [5,2] -> [5,2]"""
    pts = np.asarray(landmarks, np.float64)
    return pts @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def face_region(landmarks: np.ndarray, matrix: np.ndarray, size: int, options: MergeOptions,
                learned_mask: np.ndarray | None = None) -> np.ndarray:
    """The binary face region in crop coordinates that `merge_face` will use. [S,S] float32"""
    if options.mask == "learned":
        if learned_mask is None:
            raise ValueError("MergeOptions(mask='learned') needs the model's mask head output")
        return (np.asarray(learned_mask) > 0.5).astype(np.float32)
    return face_region_mask(crop_landmarks(landmarks, matrix), size, options.mask)


def merge_face(frame: np.ndarray, original: np.ndarray, swapped: np.ndarray, matrix: np.ndarray,
               landmarks: np.ndarray, options: MergeOptions = MergeOptions(),
               learned_mask: np.ndarray | None = None, stats: ColourStats | None = None) -> Merged:
    """Merge `swapped` (the model's output for the crop `original`) into `frame`.

    frame [H,W,3] uint8; original, swapped [S,S,3] uint8; matrix [2,3] frame -> crop; landmarks [5,2] in frame
    pixels; learned_mask [S,S] in 0..1 when options.mask == "learned"; stats: colour statistics to use instead
    of this frame's own (temporal smoothing); pass None to measure them here.
    """
    size = swapped.shape[0]
    region = face_region(landmarks, matrix, size, options, learned_mask)
    soft = refine_mask(region, options.erode, options.blur)  # [S,S]
    face = swapped
    used: ColourStats | None = None
    if options.colour == "reinhard":
        used = stats if stats is not None else colour_stats(swapped, original, region)
        face = reinhard_transfer(swapped, used)

    h, w = frame.shape[:2]
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    warped = cv2.warpAffine(face, inverse, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft, inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha_u8 = np.round(alpha * 255.0).astype(np.uint8)
    alpha = alpha_u8.astype(np.float32) / 255.0  # the saved label is exactly the weight used

    if options.blend == "seamless" and alpha_u8.max() > 0:
        inside = (alpha_u8 > 0).astype(np.uint8) * 255
        x, y, bw, bh = cv2.boundingRect(inside)
        if 3 <= x and 3 <= y and x + bw <= w - 3 and y + bh <= h - 3:  # seamlessClone needs room at the border
            centre = (x + bw // 2, y + bh // 2)
            warped = cv2.seamlessClone(warped, frame, inside, centre, cv2.NORMAL_CLONE)

    a = alpha[:, :, None]
    out = np.clip(frame.astype(np.float32) * (1.0 - a) + warped.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)
    untouched = alpha_u8 == 0
    out[untouched] = frame[untouched]
    return Merged(frame=out, mask=alpha_u8, crop_mask=soft, colour=used)


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> None:
    """A pixel-level label: single-channel uint8 PNG (255 = fully swapped), written atomically."""
    from forensics.data.media import write_bytes_atomic

    if mask.dtype != np.uint8 or mask.ndim != 2:
        raise ValueError(f"expected a uint8 [H,W] mask, got {mask.dtype} {mask.shape}")
    ok, buf = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.tobytes())


def options_json(options: MergeOptions) -> str:
    return json.dumps(options.to_dict(), sort_keys=True)
