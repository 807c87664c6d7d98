"""The scan's evidence end to end: files built here with known properties go through `run_scan`, and each section
of scan.json and report.html reports the known truth (issue #13's "what it must show").

Fixture builders come from the evidence parts' own tests: the EXIF block with a thumbnail of another picture
(tests.test_evidence_metadata) and a C2PA manifest signed offline by a test certificate chain
(tests.test_evidence_provenance).
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.data.media import read_image
from forensics.evidence.section import NO_INFORMATION, SUGGESTS_MANIPULATION
from forensics.scan.pipeline import run_scan
from forensics.scan.settings import ScanSettings
from tests.test_evidence_metadata import camera_exif, exif_with_thumbnail, save_with_exif, thumbnail_of
from tests.test_evidence_provenance import chain, sign_jpeg  # noqa: F401 - `chain` is a pytest fixture

STARTER = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "starter"
AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

pytestmark = pytest.mark.slow


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, chain: dict[str, bytes]):  # noqa: F811
    folder = tmp_path_factory.mktemp("evidence_in")
    face = read_image(STARTER / "astronaut.png")  # [512,512,3], lossless: its first JPEG save is its first
    other = read_image(STARTER / "franck_01829.jpg")[:, 40:552]
    save_with_exif(folder / "thumb_mismatch.jpg", face, exif_with_thumbnail(camera_exif(), thumbnail_of(other)))
    (folder / "single_q75.jpg").write_bytes(jpeg(face, 75))
    (folder / "double_q60_q90.jpg").write_bytes(jpeg(np.asarray(Image.open(io.BytesIO(jpeg(face, 60)))), 90))
    (folder / "ai_signed.jpg").write_bytes(sign_jpeg(chain, AI_SOURCE))
    shutil.copy(STARTER / "single_face.mp4", folder / "clip.mp4")
    out = tmp_path_factory.mktemp("evidence_out")
    # all_maps: every face's and file's maps (the default draws Grad-CAM and ELA only where a face is not clearly
    # clean: tests/test_onnx_maps.py)
    outcome = run_scan([str(folder)], out, settings=ScanSettings(max_frames=12, all_maps=True), progress=False,
                       log=lambda m: None)
    doc = json.loads((out / "scan.json").read_text())
    return outcome, out, {f["name"]: f for f in doc["files"]}, (out / "report.html").read_text()


def test_every_file_is_analysed_with_its_sections(scanned) -> None:
    outcome, _, files, _ = scanned
    assert outcome.analysed == 5 and outcome.failed == 0
    for name, f in files.items():
        expected = {"agreement", "c2pa"} | ({"container"} if name.endswith(".mp4") else {"metadata", "jpeg"})
        assert set(f["evidence"]) == expected, name
        assert not any("error" in s for s in f["evidence"].values()), name


def test_a_thumbnail_of_another_picture_is_reported_and_suggests_manipulation(scanned) -> None:
    _, out, files, _ = scanned
    metadata = files["thumb_mismatch.jpg"]["evidence"]["metadata"]
    assert metadata["thumbnail"]["compared"] and metadata["thumbnail"]["match"] is False
    assert metadata["signal"]["stance"] == SUGGESTS_MANIPULATION
    assert any(p.endswith("exif-thumbnail.png") and (out / p).read_bytes()[:4] == b"\x89PNG"
               for p in metadata["pictures"])
    rows = {r["signal"]: r for r in files["thumb_mismatch.jpg"]["evidence"]["agreement"]["rows"]}
    assert rows["metadata"]["stance"] == SUGGESTS_MANIPULATION


def test_jpeg_history_tells_single_from_double_compression(scanned) -> None:
    _, out, files, _ = scanned
    single, double = (files[n]["evidence"]["jpeg"] for n in ("single_q75.jpg", "double_q60_q90.jpg"))
    assert single["quality"] == 75 and single["standard_tables"] is True
    assert double["quality"] == 90
    assert single["double_compression"]["detected"] is False and double["double_compression"]["detected"] is True
    assert abs(double["double_compression"]["q1_estimate"] - 60) <= 5
    assert all((out / p).is_file() for p in double["pictures"])  # the ELA map


def test_content_credentials_declaring_ai_generation_are_read_offline(scanned) -> None:
    _, _, files, _ = scanned
    c2pa = files["ai_signed.jpg"]["evidence"]["c2pa"]
    assert c2pa["state"] == "valid-untrusted" and c2pa["declares_ai_generation"] is True
    assert c2pa["signal"]["stance"] == SUGGESTS_MANIPULATION
    plain = files["single_q75.jpg"]["evidence"]["c2pa"]
    assert plain["state"] == "none" and plain["signal"]["stance"] == NO_INFORMATION
    assert "proves nothing" in plain["note"]


def test_every_face_and_track_gets_where_maps_saved_as_png(scanned) -> None:
    _, out, files, _ = scanned
    for name in ("single_q75.jpg", "clip.mp4"):
        units = files[name]["faces"]
        assert units, name
        for unit in units:
            ev = unit["evidence"]
            assert {"gradcam", "noise", "spectrum", "mask"} <= set(ev), name
            for part in ("gradcam", "noise", "mask"):
                (picture,) = ev[part]["pictures"]
                assert (out / picture).read_bytes()[:4] == b"\x89PNG"
            assert len(ev["spectrum"]["curve"]) == ev["spectrum"]["n_bins"]


def test_the_report_shows_the_agreement_table_maps_and_spectra(scanned) -> None:
    _, _, files, html = scanned
    assert html.count("Agreement of all signals") == len(files)
    assert "Grad-CAM (CNN)" in html and "<svg" in html and "Content Credentials (C2PA)" in html
    assert "a missing manifest proves nothing" in html.lower()
