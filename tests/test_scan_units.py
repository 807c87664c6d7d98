"""The scan's parts on their own: discovery by content, JPEG quality from quantization tables, the journal's
crash rules, the abstention rules, and the streaming tracker against the data layer's tracker."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN
from forensics.scan.discover import discover, sniff
from forensics.scan.quality import estimate_jpeg_quality, jpeg_quality
from forensics.scan.results import Journal, ResultsError, load_results, merge_journals, read_journal, shard_path
from forensics.scan.verdict import AbstainRules, calibrated_jpeg_floor, decide, face_verdict, file_verdict
from tests.test_scan_helpers import STARTER


def _jpeg(path: Path, quality: int, size: int = 64) -> Path:
    rng = np.random.default_rng(quality)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path, quality=quality)
    return path


# ------------------------------------------------------------------------------------------ discovery


def test_discover_expands_folders_globs_and_reports_what_named_nothing(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/2.jpg", "b/1.png", "a.mp4", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("mine")  # the scan's own output is never scanned
    (tmp_path / "b" / "loop").symlink_to(tmp_path, target_is_directory=True)  # a folder loop must not hang
    found = discover([str(tmp_path), str(tmp_path / "a.mp4"), str(tmp_path / "nope.jpg"), str(tmp_path / "*.zzz")],
                     exclude=out)
    names = [c.path.relative_to(tmp_path).as_posix() for c in found if c.error is None]
    assert names == ["a.mp4", "c.txt", "b/1.png", "b/2.jpg"]  # each folder sorted, files before subfolders; no duplicate
    errors = {c.path.name: c.error for c in found if c.error}
    assert errors == {"nope.jpg": "file does not exist", "*.zzz": f"no file matches the pattern {str(tmp_path / '*.zzz')!r}"}
    globbed = discover([str(tmp_path / "b" / "*.png")])
    assert [c.path.name for c in globbed] == ["1.png"] and globbed[0].error is None


def test_sniff_reads_the_kind_from_content_and_notes_a_mismatch(tmp_path: Path) -> None:
    png_as_jpg = tmp_path / "photo.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    png_as_jpg.write_bytes(buf.getvalue())
    s = sniff(png_as_jpg)
    assert (s.kind, s.format) == ("image", "png") and "says jpeg but the content is PNG image" in s.mismatch
    video_as_bin = tmp_path / "clip.bin"
    video_as_bin.write_bytes((STARTER / "single_face.mp4").read_bytes()[:4096])
    s = sniff(video_as_bin)
    assert (s.kind, s.format) == ("video", "isobmff") and "not a media extension" in s.mismatch
    assert sniff(STARTER / "face_noface.mov").mismatch is None  # QuickTime brand in a .mov: no note
    text = tmp_path / "notes.jpg"
    text.write_text("hello, this is text\n")
    assert (sniff(text).kind, sniff(text).description) == ("unknown", "text")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert sniff(empty).description == "empty file"
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (8, 8)).save(gif)
    assert (sniff(gif).kind, sniff(gif).format, sniff(gif).mismatch) == ("image", "gif", None)


# ------------------------------------------------------------------------------------------ quality


@pytest.mark.parametrize("quality", [12, 30, 50, 75, 95])
def test_jpeg_quality_is_recovered_from_the_quantization_tables(tmp_path: Path, quality: int) -> None:
    est = jpeg_quality(_jpeg(tmp_path / "q.jpg", quality))
    assert est["quality"] == quality and est["exact"]


def test_jpeg_quality_of_non_standard_tables_is_approximate_and_png_has_none(tmp_path: Path) -> None:
    with Image.open(_jpeg(tmp_path / "q.jpg", 80)) as im:
        tables = {k: list(v) for k, v in im.quantization.items()}
    tables[0][5] += 7  # a table no libjpeg quality produces
    est = estimate_jpeg_quality(tables)
    assert est["quality"] == 80 and not est["exact"] and est["mean_abs_error"] > 0
    assert jpeg_quality(STARTER / "astronaut.png") is None


# ------------------------------------------------------------------------------------------ journal


def _record(key: str, n: int = 0) -> dict:
    return {"key": key, "state": None, "file": {"path": key, "n": n}, "custody": {}}


def test_journal_drops_a_torn_last_line_and_refuses_damage_before_it(tmp_path: Path) -> None:
    path = tmp_path / "results.rank000-of-001.jsonl"
    j = Journal(path)
    j.append(_record("/a"))
    j.append(_record("/b"))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"key": "/c", "fi')  # what a kill during a write leaves
    assert [r["key"] for r in read_journal(path)[0]] == ["/a", "/b"]
    Journal(path).append(_record("/c"))  # reopening cuts the torn tail first
    assert [r["key"] for r in read_journal(path)[0]] == ["/a", "/b", "/c"]
    assert path.read_bytes().count(b"\n") == 3
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"garbage", *lines[1:]]))
    with pytest.raises(ResultsError, match="line 2 is damaged"):
        read_journal(path)


def test_journals_merge_into_one_record_per_file(tmp_path: Path) -> None:
    Journal(shard_path(tmp_path, 0, 2)).append(_record("/a", 1))
    Journal(shard_path(tmp_path, 1, 2)).append(_record("/b", 1))
    Journal(shard_path(tmp_path, 1, 2)).append(_record("/a", 2))  # redone after a resume: the later one wins
    merged = merge_journals(tmp_path, ["/b", "/a"])
    assert [r["key"] for r in read_journal(merged)[0]] == ["/b", "/a"]
    assert load_results(tmp_path)["/a"]["file"]["n"] == 2
    assert not list(tmp_path.glob("results.rank*"))


# ------------------------------------------------------------------------------------------ verdicts


def _face(fused: float, verdict: str, dets: dict[str, str]) -> dict:
    return {"detectors": {n: {"score": 0.5, "probability": 0.5, "verdict": v} for n, v in dets.items()},
            "probability": fused, "verdict": verdict, "detectors_disagree": False}


def test_abstention_rules_each_give_their_reason() -> None:
    rules, band = AbstainRules(min_face=40, heavy_jpeg_quality=30), (0.2, 0.8)
    agree = {"cnn": LIKELY_MANIPULATED, "dct": LIKELY_MANIPULATED}
    assert face_verdict(_face(0.95, LIKELY_MANIPULATED, agree), 120, 90, rules, band) == (LIKELY_MANIPULATED, [])
    v, r = face_verdict(_face(0.95, LIKELY_MANIPULATED, agree), 25, 90, rules, band)
    assert v == INCONCLUSIVE and r == ["face too small: 25 px < 40 px"]
    v, r = face_verdict(_face(0.95, LIKELY_MANIPULATED, agree), 120, 20, rules, band)
    assert v == INCONCLUSIVE and r[0].startswith("heavily compressed: JPEG quality ~20 < 30")
    split = {"cnn": LIKELY_MANIPULATED, "dct": NO_SIGN}
    v, r = face_verdict(_face(0.5, NO_SIGN, split), 120, None, rules, band)
    assert v == INCONCLUSIVE and r == ["detectors disagree: cnn says likely manipulated, dct says no sign of manipulation"]
    v, r = decide(INCONCLUSIVE, 0.5, band, {"cnn": INCONCLUSIVE}, [])
    assert v == INCONCLUSIVE and r[0].startswith("inconclusive band: calibrated probability 0.500")


def test_file_verdict_from_its_faces() -> None:
    clean = {"id": "face 1", "verdict": NO_SIGN, "probability": 0.1, "reasons": []}
    fake = {"id": "face 2", "verdict": LIKELY_MANIPULATED, "probability": 0.97, "reasons": []}
    small = "face too small: 20 px < 40 px"
    unsure = {"id": "face 3", "verdict": INCONCLUSIVE, "probability": 0.5, "reasons": [small]}
    assert file_verdict([clean, fake, unsure], "x") == (LIKELY_MANIPULATED, 0.97, ["face 2: likely manipulated (p = 0.970)"])
    assert file_verdict([clean], "x") == (NO_SIGN, 0.1, [])
    assert file_verdict([clean, unsure], "x") == (INCONCLUSIVE, 0.5, [f"face 3: {small}"])
    assert file_verdict([], "no face found in the image") == (INCONCLUSIVE, None, ["no face: no face found in the image"])


def test_heavy_compression_floor_is_the_bundles_lowest_calibrated_jpeg() -> None:
    assert calibrated_jpeg_floor({"calibration_set": {"perturbations": ["none", "jpeg75", "jpeg30", "blur1"]}}) == 30
    assert calibrated_jpeg_floor({}) == 50


# ------------------------------------------------------------------------------------------ tracker


@pytest.fixture(scope="module")
def detector():
    from forensics.data.faces import FaceDetector

    return FaceDetector()


def test_streaming_tracker_matches_the_data_layers_tracker(detector, monkeypatch) -> None:
    """Chunked detection + linking + interpolation gives the faces `track_video` gives on the same frames."""
    import forensics.scan.faces as scan_faces
    from forensics.data.faces import track_video
    from forensics.data.media import iter_frames
    from forensics.scan.faces import FaceFinder, VideoFaceTracker

    path = STARTER / "single_face.mp4"  # 640x360: detection runs at full size, as in track_video
    reference = track_video(path, detector, every=4, max_frames=11)
    monkeypatch.setattr(scan_faces, "MAX_KEYFRAMES_PER_CHUNK", 2)  # chunk boundaries inside 11 frames
    tracker = VideoFaceTracker(FaceFinder(detector, 640), every=4, size=128, margin=0.25)
    frames = [af for chunk in tracker.run(iter_frames(path, max_frames=11)) for af in chunk]
    assert [af.index for af in frames] == sorted(reference) == list(range(11))
    keyframes = {af.index for af in frames if any(ff.keyframe for ff in af.faces)}
    assert keyframes == {0, 4, 8, 10}  # every 4th and the last
    for af in frames:
        assert len(af.faces) == len(reference[af.index]) == 1
        np.testing.assert_allclose(af.faces[0].face.box, reference[af.index][0].box, atol=0.05)
        assert af.faces[0].track == 0 and af.faces[0].crop.shape == (128, 128, 3)


def test_detection_on_a_downscaled_copy_finds_the_same_face(detector) -> None:
    from forensics.data.media import read_image
    from forensics.scan.faces import FaceFinder

    img = read_image(STARTER / "grace_hopper.jpg")  # 512x600
    full = FaceFinder(detector, 4096).detect([img])[0]
    small = FaceFinder(detector, 300).detect([img])[0]
    assert len(full) == len(small) == 1
    # Boxes and landmarks come back in full-image pixels (a wrong scale would be off by half the face); MTCNN
    # itself moves them by a few percent between pyramid scales.
    assert np.abs(full[0].box - small[0].box).max() < 0.08 * full[0].size
    assert np.abs(full[0].landmarks - small[0].landmarks).max() < 0.05 * full[0].size


# ------------------------------------------------------------------------------------------ prefetch


def test_prefetch_keeps_order_raises_the_producers_error_and_closes_it_on_early_stop() -> None:
    from forensics.scan.prefetch import prefetch

    assert list(prefetch(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise OSError("stream broke")

    got = []
    with pytest.raises(OSError, match="stream broke"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    for item in prefetch(endless()):
        if item == 3:
            break
    assert closed == [True]


def test_a_suspicious_segment_keeps_a_track_from_a_clean_verdict() -> None:
    from forensics.scan.verdict import aggregate, segment_reason

    clean_then_fake = np.r_[np.full(95, 0.05), np.full(5, 0.97)]  # [100] a swap in the last 5 frames
    agg = aggregate(clean_then_fake, k=5)
    assert agg["mean"] == pytest.approx(0.0960) and agg["topk_mean"] == pytest.approx(0.97) and agg["k"] == 5
    assert agg["median"] == pytest.approx(0.05) and agg["max"] == pytest.approx(0.97)
    reasons = segment_reason(agg, (0.2, 0.8), NO_SIGN)
    assert reasons and reasons[0].startswith("suspicious segment: the top 5 frames average 0.970 > 0.800")
    v, r = decide(NO_SIGN, agg["mean"], (0.2, 0.8), {"cnn": NO_SIGN}, reasons)
    assert v == INCONCLUSIVE and r == reasons
    assert segment_reason(aggregate(np.full(100, 0.05), k=5), (0.2, 0.8), NO_SIGN) == []
    assert segment_reason(agg, (0.2, 0.8), LIKELY_MANIPULATED) == []
