"""Verdicts per face, per track and per file, that abstain when the evidence cannot carry one.

A verdict is one of `forensics.calibration.VERDICTS`. The model's own verdict comes from the bundle's
calibrated decision band; the scan turns it into "inconclusive" (abstains) and says why when:

    no face             nothing to score in the file (or in any analysed frame)
    face too small      the face's box is below `min_face` px: the aligned crop would be an upsampled blur
    heavily compressed  the file's estimated JPEG quality is below the lowest the bundle was calibrated on
    detectors disagree  one detector says "likely manipulated" while another says "no sign of manipulation"
    suspicious segment  (tracks) the track's mean is not above the band, but its top-k frames are: a manipulation
                        in part of a video must not be averaged into a clean verdict
    out of distribution the face is unlike every face the bundle was calibrated on (its OOD guard; tracks: in
                        most usable frames), so the calibrated probability does not apply to it
    inconclusive band   the calibrated probability lies between the band's edges (the model's own abstention)

Each reason is a string that starts with its name and a colon, then the figures ("face too small: 31 px < 40 px").
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN

NO_FACE = "no face"
FACE_TOO_SMALL = "face too small"
HEAVILY_COMPRESSED = "heavily compressed"
DETECTORS_DISAGREE = "detectors disagree"
SUSPICIOUS_SEGMENT = "suspicious segment"
INCONCLUSIVE_BAND = "inconclusive band"
OUT_OF_DISTRIBUTION = "out of distribution"
REASONS = (NO_FACE, FACE_TOO_SMALL, HEAVILY_COMPRESSED, DETECTORS_DISAGREE, SUSPICIOUS_SEGMENT, INCONCLUSIVE_BAND,
           OUT_OF_DISTRIBUTION)
DEFAULT_HEAVY_JPEG_QUALITY = 50


@dataclass(frozen=True)
class AbstainRules:
    min_face: int  # px, longer side of the detection box
    heavy_jpeg_quality: int  # estimated quality below this: heavily compressed

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def calibrated_jpeg_floor(bundle_meta: dict[str, Any]) -> int:
    """The lowest JPEG quality in the bundle's calibration set (`jpeg30` -> 30); below it the calibrated
    probabilities were never checked. Falls back to 50 when the bundle does not say."""
    perts = (bundle_meta.get("calibration_set") or {}).get("perturbations") or []
    qualities = [int(m.group(1)) for p in perts if (m := re.fullmatch(r"jpeg(\d+)", str(p)))]
    return min(qualities) if qualities else DEFAULT_HEAVY_JPEG_QUALITY


def quality_reasons(face_px: float, jpeg_quality: int | None, rules: AbstainRules) -> list[str]:
    reasons = []
    if face_px < rules.min_face:
        reasons.append(f"{FACE_TOO_SMALL}: {face_px:.0f} px < {rules.min_face} px")
    if jpeg_quality is not None and jpeg_quality < rules.heavy_jpeg_quality:
        reasons.append(f"{HEAVILY_COMPRESSED}: JPEG quality ~{jpeg_quality} < {rules.heavy_jpeg_quality}, "
                       "the lowest the model was calibrated on")
    return reasons


def ood_reasons(record: dict[str, Any]) -> list[str]:
    """The OOD guard's reason for one scored face (`FaceScores.face(i)` record), if it flagged the face."""
    ood = record.get("ood")
    if not ood or not ood["flagged"]:
        return []
    why = []
    if ood["distance"] > ood["threshold"]:
        why.append(f"embedding distance {ood['distance']:.3f} > {ood['threshold']:.3f}")
    if ood.get("faceness", 1.0) < ood.get("faceness_threshold", 0.0):
        why.append(f"face probability {ood['faceness']:.3f} < {ood['faceness_threshold']:.3f}")
    return [f"{OUT_OF_DISTRIBUTION}: {' and '.join(why) or 'flagged'}, unlike every face the bundle was calibrated on"]


def _disagreement(detector_verdicts: dict[str, str]) -> str | None:
    said = set(detector_verdicts.values())
    if LIKELY_MANIPULATED in said and NO_SIGN in said:
        parts = ", ".join(f"{n} says {v}" for n, v in sorted(detector_verdicts.items()))
        return f"{DETECTORS_DISAGREE}: {parts}"
    return None


def decide(model_verdict: str, probability: float, band: tuple[float, float], detector_verdicts: dict[str, str],
           quality: list[str]) -> tuple[str, list[str]]:
    """The verdict after the abstention rules, and every reason that applies."""
    reasons = list(quality)
    disagree = _disagreement(detector_verdicts)
    if disagree:
        reasons.append(disagree)
    if reasons:
        return INCONCLUSIVE, reasons
    if model_verdict == INCONCLUSIVE:
        return INCONCLUSIVE, [f"{INCONCLUSIVE_BAND}: calibrated probability {probability:.3f} lies in "
                              f"({band[0]:.3f}, {band[1]:.3f}]"]
    return model_verdict, []


def face_verdict(record: dict[str, Any], face_px: float, jpeg_quality: int | None, rules: AbstainRules,
                 band: tuple[float, float]) -> tuple[str, list[str]]:
    """Verdict of one scored face (`FaceScores.face(i)` record)."""
    det_verdicts = {n: d["verdict"] for n, d in record["detectors"].items()}
    return decide(record["verdict"], record["probability"], band, det_verdicts,
                  quality_reasons(face_px, jpeg_quality, rules) + ood_reasons(record))


def aggregate(probs: np.ndarray, k: int) -> dict[str, float]:
    """Frame probabilities -> `forensics.video.aggregate`'s mean, max, top-k mean and DFDC-style confident mean,
    plus the median. The mean decides a track's verdict (it keeps a long real video's false alarms rare); the
    top-k mean guards against a short manipulated segment (see `segment_reason`).  # [T] -> dict"""
    from forensics.video.aggregate import aggregate_all

    p = np.asarray(probs, np.float64)
    if p.size == 0:
        return {}
    every = aggregate_all(p, k)
    return {"mean": every["mean"], "median": float(np.median(p)), "max": every["max"], "topk_mean": every["topk"],
            "k": int(min(k, p.size)), "confident_mean": every["confident"]}


def segment_reason(agg: dict[str, float], band: tuple[float, float], model_verdict: str) -> list[str]:
    """A track whose top-k frames are above the band while its mean is not cannot be called clean."""
    if model_verdict != LIKELY_MANIPULATED and agg["topk_mean"] > band[1]:
        return [f"{SUSPICIOUS_SEGMENT}: the top {agg['k']} frames average {agg['topk_mean']:.3f} > {band[1]:.3f} "
                f"while the track's mean is {agg['mean']:.3f}"]
    return []


def file_verdict(units: Sequence[dict[str, Any]], no_face_detail: str) -> tuple[str, float | None, list[str]]:
    """A file's verdict from its faces (images) or tracks (videos): any unit likely manipulated makes the file
    so; all units clean make it clean; otherwise inconclusive with the units' reasons."""
    if not units:
        return INCONCLUSIVE, None, [f"{NO_FACE}: {no_face_detail}"]
    probability = max(float(u["probability"]) for u in units)
    likely = [u for u in units if u["verdict"] == LIKELY_MANIPULATED]
    if likely:
        return LIKELY_MANIPULATED, probability, [f"{u['id']}: likely manipulated (p = {u['probability']:.3f})"
                                                 for u in likely]
    if all(u["verdict"] == NO_SIGN for u in units):
        return NO_SIGN, probability, []
    return INCONCLUSIVE, probability, [f"{u['id']}: {r}" for u in units if u["verdict"] == INCONCLUSIVE
                                       for r in u["reasons"]]
