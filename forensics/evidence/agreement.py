"""The agreement table: every signal about one file side by side, and conflicts flagged, never averaged away.

Rows are the bundle's detectors (each one's own verdict on the file's faces or tracks), the temporal model,
then every evidence section that takes a stance (metadata, JPEG history, C2PA, noise, spectrum, mask). Each
row has a stance from `forensics.evidence.section` (suggests manipulation / no sign / no information) and
the reason. A conflict is at least one row suggesting manipulation while another shows no sign; the table
names both sides. The fused probability is shown as its own row but is not a signal of its own (it is made
from the detectors' rows), so it never takes part in a conflict.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN as NO_SIGN_VERDICT
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Signal

_STANCE_OF_VERDICT = {LIKELY_MANIPULATED: SUGGESTS_MANIPULATION, NO_SIGN_VERDICT: NO_SIGN,
                      INCONCLUSIVE: NO_INFORMATION}


def _unit_detectors(unit: Mapping[str, Any]) -> Mapping[str, Any]:
    """A still face keeps its detectors under `scores`, a video track directly (its mean over frames)."""
    return unit["scores"]["detectors"] if "scores" in unit else unit.get("detectors", {})


def detector_signal(name: str, units: Sequence[Mapping[str, Any]]) -> Signal:
    """One detector over a file's faces/tracks: the most suspicious unit speaks for the file."""
    scored = [(u["id"], _unit_detectors(u)[name]) for u in units if name in _unit_detectors(u)]
    if not scored:
        return Signal(NO_INFORMATION, "no face scored")
    unit_id, worst = max(scored, key=lambda s: s[1]["probability"])
    stance = _STANCE_OF_VERDICT[worst["verdict"]]
    if stance == NO_SIGN and len(scored) > 1:
        return Signal(NO_SIGN, f"all {len(scored)} faces: no sign (highest P(fake) {worst['probability']:.2f}, "
                               f"{unit_id})")
    return Signal(stance, f"{unit_id}: P(fake) {worst['probability']:.2f}, {worst['verdict']}")


def temporal_signal(units: Sequence[Mapping[str, Any]]) -> Signal | None:
    """Tracks' temporal scores; None for a still image (no row)."""
    tracks = [u for u in units if u.get("kind") == "track"]
    if not tracks:
        return None
    available = [u for u in tracks if u["temporal"]["available"]]
    if not available:
        return Signal(NO_INFORMATION, tracks[0]["temporal"]["reason"])
    unit = max(available, key=lambda u: u["temporal"]["video_probability"])
    t = unit["temporal"]
    what = "flicker alone" if t.get("video_score") == "temporal" else "frames + flicker"
    text = (f"{unit['id']}: temporal P(fake) {t['probability']:.2f}, video ({what}) P(fake) "
            f"{t['video_probability']:.2f}, {t['verdict']}")
    if not t.get("decides", True):  # measured not to beat the frames: shown, takes no stance
        return Signal(NO_INFORMATION, f"{text} (not used for the verdict: {t.get('decides_why', '')})")
    return Signal(_STANCE_OF_VERDICT.get(t.get("verdict", ""), NO_INFORMATION), text)


def _verb(names: Sequence[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


def agreement_table(entry: Mapping[str, Any], detectors: Sequence[str],
                    evidence: Mapping[str, Signal | None]) -> dict[str, Any]:
    """`entry`: the file's scan.json entry (faces/tracks scored); `evidence`: section name -> its signal."""
    units = entry.get("faces") or []
    rows: list[dict[str, str]] = []
    for name in detectors:
        rows.append({"signal": name, "kind": "detector", **detector_signal(name, units).to_dict()})
    temporal = temporal_signal(units)
    if temporal is not None:
        rows.append({"signal": "temporal", "kind": "detector", **temporal.to_dict()})
    for name, signal in evidence.items():
        if signal is not None:
            rows.append({"signal": name, "kind": "evidence", **signal.to_dict()})
    suggest = [r["signal"] for r in rows if r["stance"] == SUGGESTS_MANIPULATION]
    clean = [r["signal"] for r in rows if r["stance"] == NO_SIGN]
    fused = None
    if entry.get("verdict") is not None:
        p = entry.get("probability")
        fused = {"verdict": entry["verdict"], "probability": p,
                 "note": "made from the detector rows; not counted as a signal of its own"}
    conflict = bool(suggest and clean)
    if conflict:
        summary = (f"signals disagree: {', '.join(suggest)} {_verb(suggest, 'suggests', 'suggest')} manipulation; "
                   f"{', '.join(clean)} {_verb(clean, 'shows', 'show')} no sign")
    elif suggest:
        summary = (f"{', '.join(suggest)} {_verb(suggest, 'suggests', 'suggest')} manipulation; "
                   "no signal shows the opposite")
    elif clean:
        summary = f"no signal suggests manipulation ({', '.join(clean)}: no sign)"
    else:
        summary = "no signal takes a stance"
    return {"rows": rows, "conflict": conflict, "suggests_manipulation": suggest, "no_sign": clean,
            "fused": fused, "summary": summary}
