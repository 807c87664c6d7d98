"""The agreement table: each signal's stance side by side, conflicts flagged, the fused score never counted."""
from __future__ import annotations

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN as NO_SIGN_VERDICT
from forensics.evidence.agreement import agreement_table, detector_signal, temporal_signal
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Signal


def still(face_id: str, **detectors: tuple[float, str]) -> dict:
    return {"id": face_id, "kind": "still",
            "scores": {"detectors": {n: {"score": 0.0, "probability": p, "verdict": v}
                                     for n, (p, v) in detectors.items()}}}


def test_the_most_suspicious_face_speaks_for_each_detector() -> None:
    units = [still("face 1", cnn=(0.1, NO_SIGN_VERDICT)), still("face 2", cnn=(0.9, LIKELY_MANIPULATED))]
    signal = detector_signal("cnn", units)
    assert signal.stance == SUGGESTS_MANIPULATION and "face 2" in signal.reason
    assert detector_signal("dct", units).stance == NO_INFORMATION  # no face has a dct score
    inconclusive = detector_signal("cnn", [still("face 1", cnn=(0.5, INCONCLUSIVE))])
    assert inconclusive.stance == NO_INFORMATION


def test_a_conflict_names_both_sides_and_the_fused_row_takes_no_part() -> None:
    entry = {"faces": [still("face 1", cnn=(0.95, LIKELY_MANIPULATED), dct=(0.05, NO_SIGN_VERDICT))],
             "verdict": INCONCLUSIVE, "probability": 0.5}
    table = agreement_table(entry, ["cnn", "dct"], {"c2pa": Signal(NO_INFORMATION, "no manifest"),
                                                    "container": None})
    assert table["conflict"] is True
    assert table["suggests_manipulation"] == ["cnn"] and table["no_sign"] == ["dct"]
    assert [r["signal"] for r in table["rows"]] == ["cnn", "dct", "c2pa"]  # no stance, no row
    assert "cnn" in table["summary"] and "dct" in table["summary"]
    assert table["fused"]["verdict"] == INCONCLUSIVE


def test_agreeing_signals_are_no_conflict() -> None:
    entry = {"faces": [still("face 1", cnn=(0.9, LIKELY_MANIPULATED))], "verdict": LIKELY_MANIPULATED,
             "probability": 0.9}
    table = agreement_table(entry, ["cnn"], {"metadata": Signal(SUGGESTS_MANIPULATION, "generator tag")})
    assert table["conflict"] is False and table["suggests_manipulation"] == ["cnn", "metadata"]
    empty = agreement_table({"faces": [], "verdict": None}, ["cnn"], {})
    assert empty["conflict"] is False and empty["fused"] is None
    assert empty["rows"][0]["stance"] == NO_INFORMATION


def test_tracks_without_a_temporal_model_say_so_and_stills_get_no_temporal_row() -> None:
    track = {"id": "track 1", "kind": "track", "detectors": {},
             "temporal": {"available": False, "probability": None, "reason": "no temporal model in bundle"}}
    signal = temporal_signal([track])
    assert signal is not None and signal.stance == NO_INFORMATION and "no temporal model" in signal.reason
    assert temporal_signal([still("face 1")]) is None
    assert NO_SIGN != NO_SIGN_VERDICT  # the table's "no sign" is a stance, not the detectors' verdict string
