"""The fuzzed bad-input corpus (issue #14): each fix it led to, shown on the smallest file that needs it; the
fixed cases through every media reader (fast); the full corpus through every command (slow)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.data.importers import import_dataset
from forensics.data.manifest import read_manifest
from forensics.data.media import (MediaError, encode_png, printable, read_image, read_image_by_content,
                                  read_media_size, write_image)
from forensics.reliability.fuzz import (MUST_FAIL, NOT_A_FILE, build_bad_corpus, png_claiming, restore_permissions,
                                        starter_dir)
from forensics.reliability.fuzz_run import bundle_detector, names_file, run_fuzz
from forensics.scan.decode import iter_video
from forensics.scan.discover import discover, sniff

BAD_NAME = os.fsdecode(b"bad-\xff-name.jpg")  # not UTF-8: Python keeps the byte as a surrogate


def _forensics(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forensics", *args], capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def _png(path: Path, side: int = 32, seed: int = 0) -> Path:
    write_image(path, np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))
    return path


# ------------------------------------------------------------------------------------------ fixes, one each


def test_a_png_header_claiming_60000x60000_is_refused_by_every_reader(tmp_path: Path) -> None:
    """read_media_size let Pillow's DecompressionBombError (not an OSError) out: `data import` crashed."""
    bomb = tmp_path / "huge.png"
    bomb.write_bytes(png_claiming(60000, 60000))
    for reader in (read_media_size, read_image, read_image_by_content):
        with pytest.raises(MediaError, match="huge.png"):
            reader(bomb)
    result = import_dataset(_png(tmp_path / "ok.png").parent, "folder")
    assert result.failures and result.failures[0][0].endswith("huge.png")


def test_import_refuses_an_image_whose_header_is_fine_but_pixels_are_cut(tmp_path: Path) -> None:
    """The import read only the header, so a truncated image entered the dataset and failed later in training."""
    data = encode_png(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    _png(tmp_path / "ok.png")
    result = import_dataset(tmp_path, "folder")
    assert list(read_manifest(tmp_path / "manifest.parquet")["path"]) == ["ok.png"]
    assert [p for p, _ in result.failures] == [str(tmp_path / "cut.png")]


def test_import_accounts_for_links_hidden_and_other_files(tmp_path: Path) -> None:
    """Symlinks made two rows of one file (or crashed when they led outside); hidden and non-media files and
    links to folders vanished without a word."""
    data = tmp_path / "data"
    _png(data / "a.png")
    (data / "link.png").symlink_to("a.png")
    (data / "out.png").symlink_to(_png(tmp_path / "elsewhere.png"))
    _png(data / ".hidden.png")
    (data / "notes.txt").write_text("case notes")
    (data / "loop").symlink_to(data, target_is_directory=True)
    result = import_dataset(data, "folder")
    assert list(read_manifest(data / "manifest.parquet")["path"]) == ["a.png"]
    failures = dict(result.failures)
    assert "a file of the dataset" in failures[str(data / "link.png")]
    assert "outside the dataset root" in failures[str(data / "out.png")]
    assert sorted(Path(p).name for p, _ in result.ignored) == [".hidden.png", "loop", "notes.txt"]


def test_import_cli_prints_a_non_utf8_name_and_refuses_a_folder_without_media(tmp_path: Path) -> None:
    """Printing a name that is not UTF-8 raised UnicodeEncodeError; an import with nothing usable ended in a
    traceback instead of a message and exit status 2."""
    _png(tmp_path / "d" / "ok.png")
    (tmp_path / "d" / BAD_NAME).write_bytes((starter_dir() / "franck_01829.jpg").read_bytes())
    done = _forensics("data", "import", str(tmp_path / "d"), "--layout", "folder")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"bad-\\xff-name.jpg: the file name is not valid UTF-8" in done.stderr
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.jpg").write_text("not a picture")
    refused = CliRunner().invoke(app, ["data", "import", str(tmp_path / "e")])
    assert refused.exit_code == 2 and "no readable media" in refused.output


def test_predict_reports_a_fifo_a_folder_and_a_non_utf8_name(tmp_path: Path) -> None:
    """`detect predict` crashed on a name that is not UTF-8, losing every later file's line."""
    photo = (starter_dir() / "franck_01829.jpg").read_bytes()
    (tmp_path / BAD_NAME).write_bytes(photo)
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "ok.jpg").write_bytes(photo)
    names = [BAD_NAME, "fifo.jpg", "folder.jpg", "ok.jpg"]
    done = _forensics("detect", "predict", str(bundle_detector()), *[str(tmp_path / n) for n in names])
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    scored = [line.split(b"\t")[0] for line in done.stdout.splitlines()]
    assert scored == [os.fsencode(tmp_path) + b"/bad-\\xff-name.jpg", os.fsencode(tmp_path / "ok.jpg")]
    assert b"fifo.jpg\terror\t" in done.stderr and b"folder.jpg: is a folder, not a file" in done.stderr


def test_media_refuses_a_fifo_and_a_self_link_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "self.png").symlink_to("self.png")
    with pytest.raises(MediaError, match="fifo.png: not a regular file"):
        read_image(tmp_path / "fifo.png")
    with pytest.raises(MediaError, match="self.png: broken symbolic link"):
        read_image(tmp_path / "self.png")


def test_scan_keeps_a_symlink_and_its_target(tmp_path: Path) -> None:
    """Discovery kept one of two names of a file (by its real path): the other vanished from the report."""
    _png(tmp_path / "b.png")
    (tmp_path / "a.png").symlink_to("b.png")
    found = discover([str(tmp_path), str(tmp_path / "b.png")])
    assert [c.path.name for c in found] == ["a.png", "b.png"]


# ------------------------------------------------------------------------------------------ the corpus


def test_the_corpus_is_seeded_and_holds_every_kind(tmp_path: Path) -> None:
    first = build_bad_corpus(tmp_path / "a", seed=3, n=90)
    second = build_bad_corpus(tmp_path / "b", seed=3, n=90)
    try:
        assert len(first) == 90 and [c.mutation for c in first] == [c.mutation for c in second]
        same = [c.path.read_bytes() == d.path.read_bytes() for c, d in zip(first, second)
                if c.path.is_file() and not c.path.is_symlink() and c.mutation != "chmod 000"]
        assert all(same) and len(same) > 70
        kinds = " | ".join(c.mutation for c in first)
        for kind in ("zero bytes", "random bytes", "HTML named .jpg", "60000x60000", "rgb16.png", "cmyk.jpg",
                     "progressive.jpg", "animated.gif", "px3x2.png", "remuxed to .mov", "audio stream only",
                     "no packets", "symlink loop", "chmod 000", "non-ASCII", "dangling", "like.jpg", "truncate@",
                     "flip"):
            assert kind in kinds, kind
    finally:
        restore_permissions(first + second)


def _decode_like_the_scan(path: Path) -> None:
    """The scan's readers: content sniffing, then the image or video decoder it picks (faces not searched)."""
    sniffed = sniff(path)
    if sniffed.kind == "image":
        read_image_by_content(path)
    elif sniffed.kind == "video":
        _, frames = iter_video(path, max_frames=2)
        for _ in frames:
            pass
    else:
        raise MediaError(path, f"not media ({sniffed.description})")


def test_fixed_cases_through_every_reader(tmp_path: Path) -> None:
    """~60 entries (one of each kind) through the readers of predict, scan and import, in-process: only
    MediaError, always naming the file; nothing that must fail decodes; the import accounts for every file."""
    cases = build_bad_corpus(tmp_path / "corpus", seed=0, n=0)
    try:
        assert len(cases) >= 55
        for case in cases:
            for reader in (read_image, _decode_like_the_scan):
                if case.expect == NOT_A_FILE or not case.path.is_file():
                    continue  # the scan reports these before decoding; read_image is checked below
                try:
                    reader(case.path)
                except MediaError as exc:
                    assert names_file(str(exc), case), str(exc)
                else:
                    assert case.expect != MUST_FAIL, f"{case.mutation} decoded by {reader.__name__}"
            if not case.path.is_file():
                with pytest.raises(MediaError, match="not a regular file|is a folder|broken symbolic link"):
                    read_image(case.path)
        result = import_dataset(tmp_path / "corpus", "folder", tmp_path / "corpus.parquet")
        rows = {str(tmp_path / p) for p in read_manifest(tmp_path / "corpus.parquet")["path"]}
        said = {printable(p) for p, _ in result.failures + result.ignored}
        files = [c for c in cases if c.expect != NOT_A_FILE]
        missing = [c.mutation for c in files if str(c.path) not in rows and printable(c.path) not in said]
        assert missing == []
        assert not any(c.expect == MUST_FAIL and str(c.path) in rows for c in cases)
    finally:
        restore_permissions(cases)


@pytest.mark.slow
def test_500_fuzzed_files_through_every_command(tmp_path: Path) -> None:
    """The issue's figure: 500 entries through scan (library + CLI), detect predict, data import and describe:
    0 crashes, 0 unaccounted, every reason names its file."""
    cases = build_bad_corpus(tmp_path / "corpus", seed=0, n=500)
    try:
        tally = run_fuzz(tmp_path / "corpus", cases, tmp_path / "work", max_frames=2, timeout=900)
    finally:
        restore_permissions(cases)
    assert tally.corpus_entries == 500
    problems = {c.command: c.examples for c in tally.commands if not c.ok}
    for c in tally.commands:
        assert c.unaccounted == 0 and c.reasons_without_name == 0, (c.command, c.examples)
        assert c.crashes == 0, (c.command, c.examples)
    assert tally.ok, problems
