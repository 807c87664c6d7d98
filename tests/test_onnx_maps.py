"""The fast path's other two parts: Grad-CAM and error-level maps only where a face or file is not clearly clean
(unless --all-maps), and files read ahead (hash, sniff, decode in a pool, faces found one window ahead)
with the same results and the same order as reading them one by one."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN
from forensics.scan import maps
from forensics.scan.discover import Candidate
from tests.test_scan_helpers import STARTER


def test_only_faces_with_a_clean_verdict_are_clearly_clean() -> None:
    units = [{"verdict": NO_SIGN}, {"verdict": INCONCLUSIVE}, {"verdict": LIKELY_MANIPULATED}]
    assert maps.face_maps(units, all_maps=False) == [False, True, True]
    assert maps.face_maps(units, all_maps=True) == [True, True, True]
    assert maps.file_ela(units[:1], all_maps=False) is False
    assert maps.file_ela(units, all_maps=False) is True
    assert maps.file_ela([], all_maps=False) is True  # no face: nothing is clearly clean
    assert maps.file_ela(units[:1], all_maps=True) is True


def test_face_sections_draw_grad_cam_only_where_asked(monkeypatch) -> None:
    import forensics.evidence.gradcam as gradcam
    from forensics.evidence.section import Section
    from forensics.scan.evidence import EvidenceKit, face_sections

    calls = []

    def fake_sections(explainer, crops, names):
        calls.append((len(crops), list(names)))
        return [Section("gradcam", {"face": n, "asset": f"{n}-gradcam.png"}, {f"{n}-gradcam.png": b"png"})
                for n in names]

    monkeypatch.setattr(gradcam, "gradcam_sections", fake_sections)
    kit = EvidenceKit(gradcam=object(), mask_head=None, spectrum_reference=None)
    crops = np.zeros((3, 32, 32, 3), np.uint8)
    out = face_sections(kit, crops, ["face-1", "face-2", "face-3"], "x.jpg", maps=[False, True, False])
    assert calls == [(1, ["face-2"])]
    by_face = [{s.name: s for s in sections}["gradcam"] for sections in out]
    assert by_face[1].assets and "skipped" not in by_face[1].fields
    for s in (by_face[0], by_face[2]):
        assert s.assets == {} and s.signal is None and "--all-maps" in s.fields["skipped"]
    calls.clear()
    face_sections(kit, crops, ["face-1", "face-2", "face-3"], "x.jpg")  # no choice given: every face
    assert calls == [(3, ["face-1", "face-2", "face-3"])]


def test_jpeg_history_without_the_error_level_map_keeps_everything_else(tmp_path) -> None:
    from forensics.data.media import read_image
    from forensics.evidence.jpeg import jpeg_history_section

    rgb = read_image(STARTER / "astronaut.png")
    path = tmp_path / "a.jpg"
    Image.fromarray(rgb).save(path, "JPEG", quality=80)
    full = jpeg_history_section(path, rgb)
    lean = jpeg_history_section(path, rgb, skip_ela=lambda: "not wanted here")
    assert "ela.png" in full.assets and lean.assets == {}
    assert lean.fields["ela"] == {"skipped": "not wanted here"}
    assert {k: v for k, v in lean.fields.items() if k != "ela"} == {k: v for k, v in full.fields.items() if k != "ela"}
    assert lean.signal == full.signal
    assert "ela.png" in jpeg_history_section(path, rgb, skip_ela=lambda: None).assets


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Path:
    from tests.test_scan_helpers import build_toy_bundle

    return build_toy_bundle(tmp_path_factory.mktemp("maps") / "toy")


def test_the_scan_leaves_the_error_level_map_out_of_clearly_clean_photos_only(small_bundle, tmp_path,
                                                                            monkeypatch) -> None:
    from forensics.scan.pipeline import run_scan
    from forensics.scan.settings import ScanSettings

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(STARTER / "obama.jpg", folder / "face.jpg")
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 300, 3), (90, 140, 220), np.uint8)).save(buf, "JPEG", quality=90)
    (folder / "sky.jpg").write_bytes(buf.getvalue())

    def scan(out: str, **settings) -> dict:
        run_scan([str(folder)], tmp_path / out, small_bundle, ScanSettings(**settings), progress=False,
                 log=lambda m: None)
        return {f["name"]: f for f in json.loads((tmp_path / out / "scan.json").read_text())["files"]}

    monkeypatch.setattr(maps, "clearly_clean", lambda unit: True)  # as if every face came out clean
    lean = scan("lean")
    assert lean["face.jpg"]["faces"] and "skipped" in lean["face.jpg"]["evidence"]["jpeg"]["ela"]
    assert not any(p.endswith("ela.png") for p in lean["face.jpg"]["evidence"]["jpeg"]["pictures"])
    assert "image" in lean["sky.jpg"]["evidence"]["jpeg"]["ela"]  # no face: not clearly clean
    full = scan("full", all_maps=True)
    assert "image" in full["face.jpg"]["evidence"]["jpeg"]["ela"]
    assert any(p.endswith("ela.png") for p in full["face.jpg"]["evidence"]["jpeg"]["pictures"])
    monkeypatch.undo()
    default = scan("default")
    assert all(f["status"] == "analysed" for f in default.values())
    face = default["face.jpg"]
    assert ("skipped" in face["evidence"]["jpeg"]["ela"]) == all(u["verdict"] == NO_SIGN for u in face["faces"])
    for name in ("lean", "full", "default"):  # the report renders a skipped map as a section too
        assert "JPEG history and error levels" in (tmp_path / name / "report.html").read_text()


def test_files_read_ahead_in_batches_come_in_order_with_the_same_faces(tmp_path) -> None:
    """Photos, a missing file, a text file and a named non-file: the same order, the same errors, and bit for bit
    the faces a search of each photo alone finds (a resumed scan must give the bytes of an uninterrupted one)."""
    from forensics.data.faces import FaceDetector
    from forensics.scan.batching import read_ahead, read_ahead_files
    from forensics.scan.faces import FaceFinder
    from forensics.scan.settings import ScanSettings

    shutil.copy(STARTER / "obama.jpg", tmp_path / "a.jpg")
    shutil.copy(STARTER / "obama2.jpg", tmp_path / "b.jpg")
    shutil.copy(STARTER / "obama.jpg", tmp_path / "c.jpg")
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    candidates = [Candidate(tmp_path / "a.jpg", "x"), Candidate(tmp_path / "gone.jpg", "x"),
                  Candidate(tmp_path / "b.jpg", "x"), Candidate(tmp_path / "notes.jpg", "x"),
                  Candidate(tmp_path / "nothing*", "x", error="no file matches"), Candidate(tmp_path / "c.jpg", "x")]

    class Ctx:  # what read_ahead_files needs of a ScanContext
        finder = FaceFinder(FaceDetector(), 480, 40)
        settings = ScanSettings()

    got = list(read_ahead_files(candidates, Ctx(), batch=4))
    assert [c.path.name for c, _ in got] == [c.path.name for c in candidates]
    by_name = {c.path.name: pre for c, pre in got}
    assert by_name["nothing*"] is None
    assert "does not exist" in by_name["gone.jpg"].error
    assert by_name["notes.jpg"].sniffed.kind == "unknown" and by_name["notes.jpg"].decoded is None
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        pre = by_name[name]
        assert pre.before is not None and pre.sniffed.kind == "image" and pre.decoded.faces
        assert pre.timer.cpu_seconds["detect"] > 0 and pre.timer.seconds["hash"] > 0
        alone = Ctx.finder.detect([read_ahead(Candidate(tmp_path / name, "x"), decode=True,
                                              max_pixels=Ctx.settings.max_pixels).decoded.rgb])[0]
        assert len(alone) == len(pre.decoded.faces)
        for f, g in zip(alone, pre.decoded.faces):
            assert np.array_equal(f.box, g.box) and np.array_equal(f.landmarks, g.landmarks)  # bit for bit
