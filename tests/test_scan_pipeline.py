"""`forensics scan` end to end on real media (starter stills and a clip, real MTCNN, a trained toy bundle): every
file accounted for, inputs untouched, scan.json valid, the HTML self-contained and rendered by a browser."""
from __future__ import annotations

import builtins
import csv
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.calibration import INCONCLUSIVE, VERDICTS
from forensics.data.manifest import sha256_file
from tests.test_scan_helpers import STARTER, build_toy_bundle, make_media_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, bundle):
    """The folder scanned through the CLI with its files read-only; the inputs' bytes and mtimes before."""
    from forensics.cli import app

    root = tmp_path_factory.mktemp("media")
    files = make_media_folder(root / "case")
    files["video_named_jpg"] = root / "case" / "sub" / "still_or_not.jpg"  # an MP4 under an image extension
    shutil.copy(files["video"], files["video_named_jpg"])
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in files.items()}
    for p in files.values():
        p.chmod(0o444)
    out = root / "out"
    case = str(root / "case")
    writes: list[str] = []  # any Python-level open of an input for writing (Pillow, hashing, sniffing go here)
    reads: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and str(file).startswith(case):
            (writes if set(str(mode)) & set("wax+") else reads).append(f"open({file}, {mode})")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if str(path).startswith(case) and flags & write_flags:
            writes.append(f"os.open({path}, {flags})")
        return real_os_open(path, flags, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", guarded_open)
        mp.setattr(os, "open", guarded_os_open)
        result = CliRunner().invoke(app, ["scan", case, "--out", str(out), "--model", str(bundle), "--every", "5",
                                          "--no-progress"])
    doc = json.loads((out / "scan.json").read_text())
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert len(reads) > 2 * len(files)  # the guard saw the inputs being read (hash, sniff, decode, hash again)
    return result, files, before, out, doc, by_name, writes


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_every_file_is_accounted_for_and_the_exit_code_says_failure(scanned) -> None:
    result, files, _, out, doc, by, _ = scanned
    assert result.exit_code == 1, result.output  # some files failed
    assert sorted(by) == sorted(p.name for p in files.values())
    assert doc["summary"]["files"] == len(files) and doc["summary"]["failed"] == 3 and doc["summary"]["skipped"] == 1
    for role in ("empty", "truncated", "text_as_jpg"):
        f = by[files[role].name]
        assert f["status"] == "failed" and f["verdict"] is None
        assert f["errors"] and all(str(files[role]) in e for e in f["errors"])  # every error names its file
    assert "file is empty (0 bytes)" in by["empty.jpg"]["errors"][0]
    assert "corrupt or truncated image" in by["truncated.jpg"]["errors"][0]
    assert "content: text" in by["notes.jpg"]["errors"][0]
    readme = by["README.txt"]
    assert readme["status"] == "skipped" and "not a supported image or video" in readme["reasons"][0]
    portrait = by["portrait.jpg"]
    assert portrait["status"] == "analysed" and len(portrait["faces"]) == 1 and portrait["verdict"] in VERDICTS
    assert portrait["media"]["jpeg"]["quality"] == 75  # the starter portrait was saved by libjpeg at 75
    face = portrait["faces"][0]
    assert set(face["scores"]["detectors"]) == {"spectral", "dct"}  # every detector's own score, not only the fusion
    assert (out / face["crop"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert by["témoin 2 (copie).JPG"]["status"] == "analysed" and by["témoin 2 (copie).JPG"]["faces"]
    gif = by["portrait_anim.gif"]
    assert gif["status"] == "analysed" and gif["format"] == "gif" and len(gif["faces"]) == 1
    hopper = by["hopper_really_png.jpg"]
    assert hopper["status"] == "analysed" and hopper["format"] == "png" and "content is PNG image" in hopper["notes"][0]
    sky = by["sky.png"]
    assert sky["status"] == "analysed" and sky["verdict"] == INCONCLUSIVE and sky["faces"] == []
    assert sky["reasons"] == ["no face: no face found in the image (the search covers faces of 40 px and more)"]
    assert "failed" in result.output and "report:" in result.output


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_videos_get_tracks_a_timeline_and_top_frames(scanned) -> None:
    _, files, _, out, _, by, _ = scanned
    for name in ("clip.mp4", "still_or_not.jpg"):
        f = by[name]
        assert f["status"] == "analysed" and f["kind"] == "video", f["errors"]
        v = f["video"]
        assert v["frames_analysed"] == 12 and v["every"] == 5
        assert v["frames_with_face"] + v["frames_without_face"] == 12
        assert len(f["faces"]) >= 1 and (out / v["timeline"]).is_file()
        track = f["faces"][0]
        series = track["series"]
        assert len(series["frame"]) == len(series["probability"]) == track["frames"] == len(series["detectors"]["dct"])
        fps = v["stream"]["fps"]
        np.testing.assert_allclose(series["time_s"], np.asarray(series["frame"]) / fps, atol=1e-3)
        assert track["detected_frames"] == sum(series["keyframe"]) and series["keyframe"][0]
        assert track["temporal"] == {"available": False, "probability": None, "video_probability": None,
                                     "reason": "no temporal model in bundle", "segments": []}
        assert 1 <= len(v["top_frames"]) <= 5
        top = v["top_frames"][0]
        assert top["probability"] == max(series["probability"]) and (out / top["crop"]).is_file()
    assert "not a media extension" not in by["clip.mp4"]["notes"]
    assert any("says jpeg but the content is MP4" in n for n in by["still_or_not.jpg"]["notes"])


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_inputs_are_untouched_and_hashed_before_and_after(scanned) -> None:
    _, files, before, _, _, by, writes = scanned
    assert writes == []
    for role, path in files.items():
        data, mtime = before[role]
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime
        assert oct(path.stat().st_mode & 0o777) == oct(0o444)
        f = by[path.name]
        assert f["sha256"] == f["sha256_after"] == sha256_file(path)
        assert f["integrity"]["unchanged"] is True


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_scan_json_validates_and_summary_csv_has_every_file(scanned) -> None:
    from forensics.scan.schema import ScanSchemaError, validate_scan

    _, files, _, out, doc, _, _ = scanned
    validate_scan(doc)
    assert doc["schema"] == "forensics-scan/2" and json.loads((out / "scan.schema.json").read_text())["$defs"]
    custody = doc["custody"]
    assert custody["model"]["sha256"] and custody["settings"]["every"] == 5 and custody["sessions"][0]["finished_utc"]
    assert {c["path"] for c in custody["files"]} == {f["path"] for f in doc["files"] if f["sha256"]}
    broken = json.loads(json.dumps(doc))
    broken["files"][0]["verdict"] = "probably fine"
    del broken["files"][1]["sha256_after"]
    with pytest.raises(ScanSchemaError, match="2 problem"):
        validate_scan(broken)
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in files.values())
    assert {r["status"] for r in rows} == {"analysed", "failed", "skipped"}


class _References(HTMLParser):
    """Every URL-bearing attribute and inline style of a page."""

    URL_ATTRS = {"src", "href", "srcset", "poster", "action", "data", "background", "xlink:href", "formaction"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.URL_ATTRS:
                self.urls.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")

    def handle_data(self, data):
        if self.tags and self.tags[-1] == "style":
            self.styles.append(data)


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_html_report_has_no_external_reference(scanned) -> None:
    _, _, _, out, doc, _, _ = scanned
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "file://" not in html
    parser = _References()
    parser.feed(html)
    assert parser.urls, "the report embeds pictures and in-page links"
    for tag, attr, value in parser.urls:
        if attr == "href":
            assert value.startswith("#"), (tag, attr, value[:80])
        else:
            assert value.startswith("data:image/"), (tag, attr, value[:80])
    assert not any("url(" in s or "@import" in s for s in parser.styles)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<iframe" not in html.lower()
    imgs = [v for t, a, v in parser.urls if t == "img"]
    analysed = [f for f in doc["files"] if f["status"] == "analysed"]
    assert len(imgs) >= len(analysed) + sum(len(f["faces"]) for f in analysed)  # thumbnails + crops at least
    assert all(len(v) > 100 for v in imgs)  # every picture actually embedded
    for f in doc["files"]:
        assert f["name"] in html


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(scanned, tmp_path) -> None:
    from PIL import Image

    _, _, _, out, _, _, _ = scanned
    shot = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", f"--screenshot={shot}",
           (out / "report.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables and pictures, not a blank page
    assert (pixels < 100).mean() > 0.01  # dark text/picture pixels present


@pytest.mark.slow  # shares a ~30 s set-up: a trained toy bundle and a real scan
def test_a_second_scan_into_the_same_folder_needs_resume_and_the_same_settings(tmp_path, bundle) -> None:
    from forensics.scan.pipeline import ScanSetupError, run_scan
    from forensics.scan.settings import ScanSettings

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(STARTER / "grace_hopper.jpg", src / "a.jpg")
    out = tmp_path / "out"
    first = run_scan([str(src)], out, bundle, ScanSettings(), progress=False, log=lambda m: None)
    assert first.analysed == 1
    with pytest.raises(ScanSetupError, match="already holds a scan"):
        run_scan([str(src)], out, bundle, ScanSettings(), progress=False, log=lambda m: None)
    with pytest.raises(ScanSetupError, match="other settings"):
        run_scan([str(src)], out, bundle, ScanSettings(every=3), resume=True, progress=False, log=lambda m: None)
    files_before = json.loads((out / "scan.json").read_text())["files"]
    again = run_scan([str(src)], out, bundle, ScanSettings(), resume=True, progress=False, log=lambda m: None)
    doc = json.loads((out / "scan.json").read_text())
    assert again.analysed == 1 and doc["files"] == files_before and len(doc["custody"]["sessions"]) == 2
    assert len((out / "results.jsonl").read_text().splitlines()) == 1


def test_missing_default_bundle_is_a_clear_error(tmp_path, monkeypatch) -> None:
    import forensics.scan.pipeline as pipeline

    monkeypatch.setattr(pipeline, "default_bundle_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(pipeline.ScanSetupError, match="no model bundle at .*nowhere.*pass --model"):
        pipeline.load_scan_bundle(None)
