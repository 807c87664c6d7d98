"""Self-blended images as a zoo member that needs no training (`blend`).

A self-blended image (SBI; Shiohara & Yamasaki, CVPR 2022) is a real face blended onto itself: a copy of the
face (the *source*) gets small colour, sharpness and geometric changes and is alpha-blended back through a
deformed, feathered face mask. Nothing about identity or any generator's fingerprint is involved, only the
blending boundary every face swap leaves, so a detector trained on these learns that boundary (Face X-ray,
Li et al. 2020, makes the same point and uses the blend mask as a pixel-level label; so do we).

Choices made here (SBI picks which of source and target is changed; we always change the source):
  * The target is the untouched input, so the fake equals the input byte for byte wherever the mask is 0 and
    the mask is an exact pixel label. Colour shifts are drawn symmetric around 0 and the frequency step is
    blur, down-up resampling or sharpening, so "inside brighter/blurrier" and "inside darker/sharper" (what
    changing the target would give) both occur.
  * MTCNN gives five landmarks, not dlib's 68/81: the face region is `generators.merge.face_outline` (brows,
    cheeks, jaw and chin at fixed proportions of the eye line and eye-to-mouth axis), with the brow points
    lifted by a random fraction of the brow-to-chin height (a forehead, as SBI's 81-point hull has), every
    outline point jittered, the filled hull elastically deformed, dilated or eroded, Gaussian-feathered and
    scaled by a blend ratio drawn from {0.25, 0.5, 0.75, 1, 1, 1} (a full blend is the likeliest).
  * Mask and geometry sizes are fractions of the face size (the outline's bounding-box side), so one draw fits
    a 64 px aligned crop and a face in a 1080p frame; the sharpness step is in pixels, the scale at which a
    detector sees it. Work happens in a region around the face only.

`self_blend(image, landmarks, seed, config)` is the pure function; `sample_blend_params` + `apply_blend` split
it so a manifest row's recorded parameters replay the same bytes. The rest of the module makes `blend` a
registry member (`SPEC`: `translate` on aligned crops, with the alignment template as landmarks) and plans /
renders its fakes for `forensics synth --generator blend`.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from generators.merge import face_outline

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import torch

FREQUENCY_KINDS = ("blur", "downscale", "sharpen")
MIN_FACE_PX = 8  # below this the outline, feather and elastic field have no room: refused
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # a full blend is three times as likely as each partial one


@dataclass(frozen=True)
class BlendConfig:
    """Ranges the per-fake parameters are drawn from. Sizes are fractions of the face size unless they say px."""

    resolution: int = 64  # only for `translate` (aligned crops of this side); `self_blend` takes any image
    margin: float = 0.25  # only for `translate`: the alignment margin that places the five template landmarks
    # source colour: RGB offset (0..255 units) and HSV change each with probability p_*, brightness/contrast always
    p_rgb_shift: float = 0.5
    rgb_shift: float = 12.0  # per channel ~ U[-x, x]
    p_hsv: float = 0.5
    hue_shift: float = 5.0  # degrees ~ U[-x, x]
    saturation: float = 0.15  # saturation x U[1-x, 1+x]
    brightness: float = 0.06  # offset ~ U[-x, x] of the full range
    contrast: float = 0.1  # gain ~ U[1-x, 1+x] around the region's mean
    # source sharpness: one of FREQUENCY_KINDS, uniformly
    frequency: tuple[str, ...] = FREQUENCY_KINDS
    blur_sigma: tuple[float, float] = (0.4, 1.0)  # px: the trace is in pixels, whatever the face size
    downscale: tuple[float, float] = (1.25, 2.0)  # down by this factor (area), back up (bilinear)
    sharpen: tuple[float, float] = (0.3, 1.0)  # unsharp-mask amount (sigma 1 px)
    # source geometry, about the face centre
    scale: float = 0.05  # x U[1-x, 1+x]
    translate: float = 0.03  # shift x ~ U[-x, x] face sizes, y ~ U[-x/2, x/2]
    # mask
    forehead: tuple[float, float] = (0.0, 0.25)  # brow points lifted by this fraction of brow-to-chin height
    landmark_jitter: float = 0.02  # outline points moved by N(0, x^2)
    elastic_alpha: float = 0.03  # largest elastic displacement
    elastic_grid: int = 9  # random control points per side of a 2-face-size square (smoothness of the field)
    morph: float = 0.04  # dilate (> 0) or erode (< 0) by a radius ~ U[-x, x]
    feather: tuple[float, float] = (0.01, 0.04)  # Gaussian sigma of the edge
    blend_ratios: tuple[float, ...] = BLEND_RATIOS

    def __post_init__(self) -> None:
        bad = [k for k in self.frequency if k not in FREQUENCY_KINDS]
        if bad or not self.frequency:
            raise ValueError(f"BlendConfig.frequency must be a non-empty subset of {FREQUENCY_KINDS}, "
                             f"got {self.frequency}")
        for name in ("blur_sigma", "downscale", "sharpen", "forehead", "feather"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"BlendConfig.{name} must be a range 0 <= lo <= hi, got {(lo, hi)}")
        if self.downscale[0] < 1:
            raise ValueError(f"BlendConfig.downscale factors must be >= 1, got {self.downscale}")
        if not self.blend_ratios or not all(0 < r <= 1 for r in self.blend_ratios):
            raise ValueError(f"BlendConfig.blend_ratios must be in (0, 1], got {self.blend_ratios}")
        if not (0 <= self.p_rgb_shift <= 1 and 0 <= self.p_hsv <= 1):
            raise ValueError("BlendConfig probabilities must be in [0, 1]")
        if self.elastic_grid < 2:
            raise ValueError(f"BlendConfig.elastic_grid needs >= 2 control points per side, got {self.elastic_grid}")
        if min(self.scale, self.contrast, self.saturation) >= 1 or self.resolution < 8:
            raise ValueError("BlendConfig.scale, contrast and saturation must be < 1 and resolution >= 8")


# The presets differ only in the crop side `translate` expects; the blending ranges are the same everywhere.
PRESETS: dict[str, BlendConfig] = {
    "tiny": BlendConfig(resolution=32),
    "small": BlendConfig(resolution=64),
    "paper": BlendConfig(resolution=380),  # SBI trains EfficientNet-B4 on 380 px face crops
}


# -- parameters ------------------------------------------------------------------------------------------------

def sample_blend_params(seed: int, config: BlendConfig = BlendConfig()) -> dict[str, Any]:
    """Every random choice of one self-blend, drawn from `seed` alone (JSON-able; `apply_blend` replays it)."""
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    rgb = [u(-config.rgb_shift, config.rgb_shift) for _ in range(3)] if rng.random() < config.p_rgb_shift else None
    hsv = ({"hue_deg": u(-config.hue_shift, config.hue_shift),
            "saturation": u(1 - config.saturation, 1 + config.saturation)} if rng.random() < config.p_hsv else None)
    colour = {"rgb_shift": rgb, "hsv": hsv, "brightness": u(-config.brightness, config.brightness),
              "contrast": u(1 - config.contrast, 1 + config.contrast)}
    kind = str(config.frequency[int(rng.integers(len(config.frequency)))])
    value = u(*{"blur": config.blur_sigma, "downscale": config.downscale, "sharpen": config.sharpen}[kind])
    geometry = {"scale": u(1 - config.scale, 1 + config.scale),
                "translate": [u(-config.translate, config.translate), u(-config.translate / 2, config.translate / 2)]}
    mask = {"forehead": u(*config.forehead),
            "jitter": (rng.normal(0.0, config.landmark_jitter, (12, 2)) if config.landmark_jitter > 0
                       else np.zeros((12, 2))).tolist(),
            "elastic": {"seed": int(rng.integers(2**31)), "alpha": u(0.0, config.elastic_alpha),
                        "grid": config.elastic_grid},
            "morph": u(-config.morph, config.morph), "feather": u(*config.feather),
            "blend_ratio": float(config.blend_ratios[int(rng.integers(len(config.blend_ratios)))])}
    return {"seed": int(seed), "source": {"colour": colour, "frequency": {"kind": kind, "value": value},
                                          "geometry": geometry}, "mask": mask}


# -- the mask --------------------------------------------------------------------------------------------------

def _outline(landmarks: np.ndarray, mask_params: dict[str, Any]) -> tuple[np.ndarray, float]:
    """The deformed face outline [12,2] (image coords) and the face size in px (side of the base outline's box)."""
    base = face_outline(landmarks)  # [12,2]: 5 brow points, then cheeks, jaw and chin
    face_size = float(np.ptp(base, axis=0).max())
    pts = base.copy()
    pts[:5] += mask_params["forehead"] * (base[2] - base[8])  # brow centre minus chin: "up", brow-to-chin long
    pts += np.asarray(mask_params["jitter"], np.float64) * face_size
    return pts, face_size


def _elastic(binary: np.ndarray, elastic: dict[str, Any], centre: np.ndarray, face_size: float) -> np.ndarray:
    """Warp a 0/1 mask by a smooth random displacement field (largest shift alpha face sizes). [h,w] float32

    The field is a grid of random control points on a square of two face sizes centred on the face, interpolated
    bicubically: it is fixed to the face, not to the pixel grid, so one draw deforms the mask the same way at
    any resolution and on every frame of a moving face."""
    alpha_px = elastic["alpha"] * face_size
    if alpha_px < 0.5:
        return binary
    g = int(elastic["grid"])
    knots = np.random.default_rng(elastic["seed"]).uniform(-1, 1, (2, g, g)).astype(np.float32)  # [2,G,G]
    h, w = binary.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx = (((xx - centre[0]) / (2 * face_size) + 0.5) * (g - 1)).astype(np.float32)  # pixel -> control grid
    gy = (((yy - centre[1]) / (2 * face_size) + 0.5) * (g - 1)).astype(np.float32)
    dx, dy = (cv2.remap(k, gx, gy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE) * alpha_px for k in knots)
    warped = cv2.remap(binary, xx + dx, yy + dy, cv2.INTER_LINEAR, borderValue=0.0)
    return (warped > 0.5).astype(np.float32)


def _blend_mask(shape: tuple[int, int], outline: np.ndarray, mask_params: dict[str, Any], centre: np.ndarray,
                face_size: float) -> np.ndarray:
    """Hull -> elastic -> dilate/erode -> feather -> x blend ratio, quantised to the uint8 weight really used."""
    binary = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(outline * 16).astype(np.int32))
    cv2.fillConvexPoly(binary, hull, 1, lineType=cv2.LINE_8, shift=4)
    soft = _elastic(binary.astype(np.float32), mask_params["elastic"], centre, face_size)
    radius = int(round(abs(mask_params["morph"]) * face_size))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        soft = (cv2.dilate if mask_params["morph"] > 0 else cv2.erode)(soft, kernel)
    sigma = mask_params["feather"] * face_size
    if sigma > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    weight = np.round(np.clip(soft, 0, 1) * mask_params["blend_ratio"] * 255.0)
    return (weight / 255.0).astype(np.float32)  # the saved uint8 label is exactly the weight used


# -- the source ------------------------------------------------------------------------------------------------

def _recolour(rgb: np.ndarray, colour: dict[str, Any]) -> np.ndarray:
    """RGB offset, hue/saturation change, brightness/contrast. uint8 [h,w,3] -> float32 [h,w,3] in 0..255"""
    x = rgb.astype(np.float32)
    if colour["rgb_shift"] is not None:
        x = x + np.asarray(colour["rgb_shift"], np.float32)
    if colour["hsv"] is not None:
        hsv = cv2.cvtColor(np.clip(x, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # float: H in degrees, S, V in 0..1
        hsv[..., 0] = np.mod(hsv[..., 0] + colour["hsv"]["hue_deg"], 360.0)
        hsv[..., 1] = np.clip(hsv[..., 1] * colour["hsv"]["saturation"], 0.0, 1.0)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    mean = float(x.mean())
    return (x - mean) * colour["contrast"] + mean + colour["brightness"] * 255.0


def _resharpen(x: np.ndarray, frequency: dict[str, Any]) -> np.ndarray:
    """Blur, down-up resampling or unsharp masking. float32 [h,w,3] -> float32 [h,w,3]"""
    kind, value = frequency["kind"], frequency["value"]
    if kind == "blur":
        return cv2.GaussianBlur(x, (0, 0), value)
    if kind == "downscale":
        h, w = x.shape[:2]
        small = cv2.resize(x, (max(1, round(w / value)), max(1, round(h / value))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "sharpen":
        return x + value * (x - cv2.GaussianBlur(x, (0, 0), 1.0))
    raise ValueError(f"unknown frequency kind {kind!r}; expected one of {FREQUENCY_KINDS}")


def _make_source(roi: np.ndarray, source: dict[str, Any], centre: np.ndarray, face_size: float) -> np.ndarray:
    """The changed copy of the face region: colour, then sharpness, then scale/shift about the face centre."""
    x = _resharpen(_recolour(roi, source["colour"]), source["frequency"])
    x = np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
    s = source["geometry"]["scale"]
    tx, ty = (np.asarray(source["geometry"]["translate"]) * face_size).tolist()
    matrix = np.array([[s, 0.0, (1 - s) * centre[0] + tx], [0.0, s, (1 - s) * centre[1] + ty]])
    h, w = roi.shape[:2]
    return cv2.warpAffine(x, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


# -- the blend -------------------------------------------------------------------------------------------------

def _check_inputs(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"self_blend needs an RGB uint8 [H,W,3] image, got "
                         f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise ValueError(f"self_blend needs five finite (x, y) landmarks [5,2] (eyes, nose, mouth corners), "
                         f"got shape {pts.shape}")
    return pts


def apply_blend(image: np.ndarray, landmarks: np.ndarray, params: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Replay one self-blend from its parameters (as `sample_blend_params` or a manifest row recorded them).

    image [H,W,3] uint8; landmarks [5,2] (x, y) in image pixels, order eyes, nose, mouth corners. Returns the fake
    [H,W,3] uint8, the blend weight [H,W] float32 in 0..1 (multiples of 1/255), and the parameters plus a
    `derived` record (face size, region, coverage). The fake equals `image` wherever the weight is 0."""
    pts = _check_inputs(image, landmarks)
    outline, face_size = _outline(pts, params["mask"])
    if face_size < MIN_FACE_PX:
        raise ValueError(f"face too small or landmarks degenerate: face size {face_size:.1f} px < {MIN_FACE_PX} "
                         f"(landmarks {np.round(pts, 1).tolist()})")
    m = params["mask"]
    # room around the outline for the elastic shift, dilation and the feather's tail (4 sigma), plus the shift
    pad = math.ceil((m["elastic"]["alpha"] + max(m["morph"], 0.0) + 4 * m["feather"] + 0.1) * face_size) + 4
    h, w = image.shape[:2]
    x0, y0 = np.floor(outline.min(0)).astype(int) - pad
    x1, y1 = np.ceil(outline.max(0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"the face (landmarks {np.round(pts, 1).tolist()}) lies outside the {w}x{h} image")
    offset = np.array([x0, y0], np.float64)
    roi = image[y0:y1, x0:x1]  # [h',w',3]
    centre = outline.mean(0) - offset
    weight = _blend_mask(roi.shape[:2], outline - offset, m, centre, face_size)  # [h',w']
    if not weight.any():
        raise ValueError(f"empty blend mask for landmarks {np.round(pts, 1).tolist()} (face size {face_size:.1f} px)")
    source = _make_source(roi, params["source"], centre, face_size)
    a = weight[:, :, None]
    blended = np.clip(np.floor(roi.astype(np.float32) * (1 - a) + source.astype(np.float32) * a + 0.5), 0, 255)
    blended = blended.astype(np.uint8)
    blended[weight == 0] = roi[weight == 0]  # untouched pixels keep their exact bytes
    fake = image.copy()
    fake[y0:y1, x0:x1] = blended
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = weight
    changed = (fake != image).any(axis=2)
    if not changed.any():  # an unchanged image must never be labelled fake
        raise ValueError(f"the self-blend changed no pixel (seed {params.get('seed')}); face size {face_size:.1f} px")
    derived = {"face_size_px": round(face_size, 3), "region": [x0, y0, x1, y1],
               "mask_fraction": round(float((mask > 0).mean()), 6),
               "changed_fraction": round(float(changed.mean()), 6)}
    return fake, mask, {**{k: v for k, v in params.items() if k != "derived"}, "derived": derived}


def self_blend(image: np.ndarray, landmarks: np.ndarray, seed: int, config: BlendConfig = BlendConfig()
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A self-blended fake of `image` (RGB uint8 [H,W,3]) whose face has five `landmarks` [5,2] in image pixels.

    Returns (fake uint8 [H,W,3], mask float32 [H,W] in 0..1, params); pixels where mask == 0 are the input's
    bytes. Same seed, same bytes. Raises ValueError naming the problem for bad input or a degenerate face."""
    return apply_blend(image, landmarks, sample_blend_params(seed, config))


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """The blend weight as the uint8 label saved to PNG (exact: the weight is a multiple of 1/255). [H,W]"""
    return np.round(np.asarray(mask, np.float32) * 255.0).astype(np.uint8)


# -- the registry member ---------------------------------------------------------------------------------------

def _translator_class():
    import torch

    class SelfBlendTranslator(torch.nn.Module):
        """`translate` for aligned face crops: each crop is self-blended with the alignment template's five points
        as landmarks (`forensics.data.faces.template_points`), item i with seed + i. No weights; `target` and
        `ref` are accepted for the ImageTranslator protocol and ignored (a self-blend has no target)."""

        def __init__(self, config: BlendConfig) -> None:
            super().__init__()
            self.config = config
            self.resolution = config.resolution

        @torch.no_grad()
        def translate(self, images: torch.Tensor, target: Any = None, seed: int | None = None,
                      ref: torch.Tensor | None = None) -> torch.Tensor:  # [N,3,R,R] in [-1,1] -> same
            from forensics.data.faces import template_points
            from generators.quality import to_uint8

            first = 0 if seed is None else int(seed)
            fakes = []
            for i, rgb in enumerate(to_uint8(images)):  # [H,W,3] uint8
                landmarks = template_points(rgb.shape[0], self.config.margin)
                fakes.append(self_blend(rgb, landmarks, first + i, self.config)[0])
            out = torch.from_numpy(np.stack(fakes)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            return out.to(images.device)

    return SelfBlendTranslator


def build_generator(config: BlendConfig) -> "torch.nn.Module":
    return _translator_class()(config)


def build_task(config: BlendConfig) -> Any:
    raise ValueError("blend needs no training: make its fakes with `forensics synth --generator blend --data ...`")


def _spec():
    from generators.base import ModelSpec

    return ModelSpec(name="blend", kind="translation", config_cls=BlendConfig, presets=PRESETS,
                     build_generator=build_generator, build_task=build_task,
                     summary="Self-blended images (Shiohara & Yamasaki 2022): a real face blended onto itself "
                             "through a deformed, feathered mask; no training (synth --generator blend).")


SPEC = _spec()


# -- datasets (`forensics synth --generator blend`) ------------------------------------------------------------

def crop_landmarks_of(row: dict[str, Any]) -> np.ndarray | None:
    """The five landmarks of a real crop in its own pixels, from the starter's postproc (frame landmarks and the
    frame->crop alignment matrix); None when the row does not record them. [5,2]"""
    from generators.merge import crop_landmarks

    try:
        post = json.loads(row.get("postproc") or "{}")
        landmarks, matrix = post["landmarks"], post["aligned"]["matrix"]
    except (KeyError, TypeError, ValueError):
        return None
    return crop_landmarks(np.asarray(landmarks, np.float64), np.asarray(matrix, np.float64))


def landmarks_after_resize(landmarks: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """Where points land after `generators.data.resize_square` (centre square crop, then resize; cv2 maps pixel
    centres, x' = (x + 0.5) * scale - 0.5). [5,2] -> [5,2]"""
    h, w = shape
    s = min(h, w)
    offset = np.array([(w - s) // 2, (h - s) // 2], np.float64)
    return (np.asarray(landmarks, np.float64) - offset + 0.5) * (size / s) - 0.5


def _unit(seed: int) -> float:
    """A number in [0, 1) from the seed alone (picks the source; same on every shard and resume)."""
    return float(np.random.default_rng([seed, 0x5B1]).random())


def blend_rows(real_df: "pd.DataFrame", n: int, seed: int, size: int, config: BlendConfig = BlendConfig()
               ) -> list[tuple[dict[str, Any], str]]:
    """Planned manifest rows for `n` blend fakes, each with its real source's path. Fake i uses seed + i, which
    alone picks its source among the real image/frame crops that record landmarks; the fake takes the source's
    split, group and identity. Reals without landmarks are reported, not used."""
    from forensics.data.manifest import SPLITS, new_row
    from generators.config import config_to_dict

    reals = real_df[(real_df["label"] == 0) & real_df["media"].isin(("image", "frame"))
                    & real_df["split"].isin(SPLITS)].sort_values("sample_id", kind="stable")
    records = [(r, lm) for r in reals.to_dict("records") if (lm := crop_landmarks_of(r)) is not None]
    if len(records) < len(reals):
        missing = sorted(set(reals["sample_id"]) - {r["sample_id"] for r, _ in records})
        print(f"blend: {len(missing)} of {len(reals)} real crops record no landmarks/alignment in postproc and are "
              f"not used as sources (first: {missing[:3]})")
    if n > 0 and not records:
        raise ValueError("blend: no real image/frame crop with a split records its landmarks (postproc 'landmarks' "
                         "+ 'aligned.matrix', as `forensics data starter` writes them); nothing to blend")
    gen_config = json.dumps({"model": config_to_dict(config)}, sort_keys=True)
    rows = []
    for i in range(n):
        s = seed + i
        src, landmarks = records[int(_unit(s) * len(records))]
        rows.append((new_row(
            sample_id=f"blend-{s:08d}", path=f"fake/blend/{s:08d}.png", label=1, media="image", generator="blend",
            generator_config=gen_config, seed=s, source_id=str(src["sample_id"]), group_id=str(src["group_id"]),
            split=str(src["split"]), identity=str(src.get("identity", "")), width=size, height=size,
            postproc={"mask_path": f"fake/blend/{s:08d}_mask.png", "source_landmarks": landmarks.tolist()}),
            str(src["path"])))
    return rows


def render_blend_row(out: str | os.PathLike, row: dict[str, Any], source_rgb: np.ndarray, size: int
                     ) -> dict[str, Any]:
    """Make one planned blend fake: its source real crop (uint8 [H,W,3], as read) through the reals' own resize
    (`resize_square`), self-blended with the row's seed and config; writes the mask PNG, then the fake PNG.
    Returns the row with its sha256 and, in postproc, every parameter and the landmarks used: `apply_blend(
    resized real, postproc["landmarks"], postproc["blend"])` replays the fake."""
    from forensics.data.manifest import sha256_file
    from forensics.data.media import write_image
    from generators.config import config_from_dict
    from generators.data import resize_square
    from generators.merge import write_mask_png

    post = json.loads(row["postproc"])
    config = config_from_dict(BlendConfig, json.loads(row["generator_config"])["model"])
    landmarks = np.asarray(post["source_landmarks"], np.float64)
    h, w = source_rgb.shape[:2]
    if (w, h) != (size, size):  # the same resize, and the same record, as the real copy (synthesize._resize_note)
        side = max(w, h)
        post["resize"] = {"from": [side, side], "to": [size, size], "interp": "area" if size < side else "cubic"}
        source_rgb = resize_square(source_rgb, size)
        landmarks = landmarks_after_resize(landmarks, (h, w), size)
    try:
        fake, mask, params = self_blend(source_rgb, landmarks, int(row["seed"]), config)
    except ValueError as exc:
        raise ValueError(f"{row['sample_id']} from {row['source_id']}: {exc}") from None
    post.update(blend=params, landmarks=landmarks.tolist(), mask_fraction=params["derived"]["mask_fraction"])
    out = Path(out)
    write_mask_png(out / post["mask_path"], mask_to_uint8(mask))  # mask first: a written fake implies its mask
    write_image(out / row["path"], fake)
    return dict(row, postproc=json.dumps(post, sort_keys=True), sha256=sha256_file(out / row["path"]))


__all__ = ["BlendConfig", "PRESETS", "SPEC", "apply_blend", "blend_rows", "crop_landmarks_of", "landmarks_after_resize",
           "mask_to_uint8", "render_blend_row", "sample_blend_params", "self_blend"]
