"""The JPEG history section on files whose history the test itself made: one save, two saves, no JPEG, a cut file."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.data.media import read_image
from forensics.evidence.double_jpeg import block_dct, double_jpeg
from forensics.evidence.jpeg import jpeg_history_section
from forensics.evidence.jpeg_tables import ijg_table, LUMA_BASE, table_quality
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION

STARTER = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "starter"


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    """A never-JPEG starter image (PNG, 512x512): no earlier compression hides in it."""
    return read_image(STARTER / "astronaut.png")  # [512,512,3]


def save(rgb: np.ndarray, path: Path, quality: int) -> Path:
    Image.fromarray(rgb).save(path, "JPEG", quality=quality)
    return path


@pytest.fixture(scope="module")
def once(source: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(source, tmp_path_factory.mktemp("jpeg") / "once-q75.jpg", 75)


@pytest.fixture(scope="module")
def twice(source: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("jpeg")
    first = save(source, d / "first-q60.jpg", 60)
    return save(read_image(first), d / "twice-q60-q90.jpg", 90)


def test_single_save_reads_quality_standard_tables_and_no_double(once: Path) -> None:
    s = jpeg_history_section(once, read_image(once))
    f = s.fields
    assert s.name == "jpeg" and f["applicable"] and "error" not in f
    assert f["quality"] == 75 and f["standard_tables"] and f["table_kind"] == "standard libjpeg tables"
    assert [t["quality"] for t in f["tables"]] == [75, 75] and all(t["exact"] for t in f["tables"])
    assert f["subsampling"] == "4:2:0" and f["progressive"] is False and f["size"] == [512, 512]
    dc = f["double_compression"]
    assert dc["reliable"] and not dc["detected"] and dc["score"] < dc["threshold"] and dc["q1_estimate"] is None
    assert s.signal is not None and s.signal.stance == NO_SIGN


def test_double_save_is_detected_with_both_qualities(twice: Path) -> None:
    s = jpeg_history_section(twice, read_image(twice))
    dc = s.fields["double_compression"]
    assert s.fields["quality"] == 90 and s.fields["standard_tables"]
    assert dc["detected"] and dc["score"] >= dc["threshold"] and dc["q2"] == 90
    assert abs(dc["q1_estimate"] - 60) <= 5
    assert s.signal is not None and s.signal.stance == SUGGESTS_MANIPULATION
    assert "q2 = 90" in s.signal.reason and "not proof" in s.signal.reason


def test_ela_png_is_small_decodable_and_recorded_with_encoder(once: Path, source: np.ndarray) -> None:
    boxes = np.array([[180.0, 60.0, 320.0, 220.0]])  # the astronaut's face, roughly
    s = jpeg_history_section(once, read_image(once), face_boxes=boxes)
    ela = s.fields["ela"]
    assert ela["image"] == "ela.png" and ela["quality"] == 90
    with Image.open(io.BytesIO(s.assets["ela.png"])) as im:
        assert im.format == "PNG" and max(im.size) <= 512 and im.size == (512, 512)
        assert np.asarray(im).max() > 0  # a re-save changes some pixels
    assert 0 < ela["mean"] <= ela["p99"] and ela["face_ratio"] is not None and ela["face_ratio"] > 0
    assert s.fields["encoder"]["pillow"] and s.fields["encoder"]["libjpeg"]


def test_not_a_jpeg_is_not_applicable() -> None:
    s = jpeg_history_section(STARTER / "astronaut.png", None)
    assert s.fields == {"applicable": False} and s.signal is None and not s.assets


def test_truncated_jpeg_gives_an_error_field_not_an_exception(once: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(once.read_bytes()[: once.stat().st_size // 2])
    s = jpeg_history_section(cut, None)
    assert "error" in s.fields and str(cut) in s.fields["error"]
    assert s.signal is not None and s.signal.stance == NO_INFORMATION


def test_small_image_takes_no_stance(source: np.ndarray, tmp_path: Path) -> None:
    small = save(source[:120, :120].copy(), tmp_path / "small.jpg", 80)
    s = jpeg_history_section(small, None)
    assert not s.fields["double_compression"]["reliable"] and s.signal.stance == NO_INFORMATION


def test_ijg_scale_and_custom_tables() -> None:
    assert table_quality(ijg_table(LUMA_BASE, 50), 0) == {"id": 0, "quality": 50, "exact": True, "mean_abs_error": 0.0}
    custom = ijg_table(LUMA_BASE, 85).copy()
    custom[5] += 3  # one entry off the scale: a camera's or editor's table
    assert table_quality(custom, 0)["exact"] is False


def test_block_dct_matches_opencv() -> None:
    import cv2

    y = np.random.default_rng(0).integers(0, 256, (16, 24)).astype(np.uint8)
    coef = block_dct(y)  # [6,64]
    ref = cv2.dct(y[8:16, 8:16].astype(np.float32) - 128.0).ravel()
    assert coef.shape == (6, 64) and np.allclose(coef[4], ref, atol=1e-3)


def test_score_separates_single_and_double_on_the_luma(source: np.ndarray) -> None:
    def luma_and_table(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        with Image.open(io.BytesIO(data)) as im:
            table = np.array(im.quantization[0])
            im.draft("L", None)
            return np.asarray(im), table

    def jpeg(rgb: np.ndarray, q: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=q)
        return buf.getvalue()

    single = double_jpeg(*luma_and_table(jpeg(source, 85)))
    double = double_jpeg(*luma_and_table(jpeg(np.asarray(Image.open(io.BytesIO(jpeg(source, 55)))), 85)))
    assert 0.0 <= single.score < double.score <= 1.0 and double.q1_quality is not None
