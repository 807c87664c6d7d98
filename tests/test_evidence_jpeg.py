"""The JPEG history section on files whose history the test itself made: one save, two saves, no JPEG, a cut file."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.data.media import read_image
from forensics.evidence.double_jpeg import (MODEL_PATH, DoubleJpegModel, block_dct, double_jpeg,
                                            double_jpeg_threshold, feature_names, first_digit_probabilities,
                                            load_model)
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


def _luma_and_table(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        table = np.array(im.quantization[0])
        im.draft("L", None)
        return np.asarray(im), table


def _jpeg(rgb: np.ndarray, q: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=q)
    return buf.getvalue()


def test_score_separates_single_and_double_on_the_luma(source: np.ndarray) -> None:
    single = double_jpeg(*_luma_and_table(_jpeg(source, 85)))
    double = double_jpeg(*_luma_and_table(_jpeg(np.asarray(Image.open(io.BytesIO(_jpeg(source, 55)))), 85)))
    assert 0.0 <= single.score < double.score <= 1.0 and double.q1_quality is not None
    assert 0.0 <= single.fit_score < double.fit_score <= 1.0


def test_shipped_model_matches_the_features_and_scores_in_range(source: np.ndarray) -> None:
    model = load_model()
    assert model is not None and set(model.names) <= set(feature_names()) and "fit_score" in model.names
    assert 0.0 < model.threshold < 1.0 and np.all(model.scale > 0)
    r = double_jpeg(*_luma_and_table(_jpeg(source, 80)))
    assert r.features.shape == (len(feature_names()),) and 0.0 <= r.score <= 1.0
    assert r.score == pytest.approx(model.probability(r.features))


def test_first_save_at_the_higher_quality_scores_above_the_single_save(source: np.ndarray) -> None:
    """The hard case (q1 > q2): q90 then q70 ranks above one q70 save, though it stays below the threshold
    here (the benchmark catches 57% of such files at 5% false alarms on the fit part)."""
    single = double_jpeg(*_luma_and_table(_jpeg(source, 70)))
    double = double_jpeg(*_luma_and_table(_jpeg(np.asarray(Image.open(io.BytesIO(_jpeg(source, 90)))), 70)))
    assert single.score < double.score and single.score < double_jpeg_threshold()


def test_model_with_other_features_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.json"
    data = json.loads(MODEL_PATH.read_text())
    data["feature_names"] = data["feature_names"][:-1] + ["a_feature_this_module_never_computes"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="model.json"):
        DoubleJpegModel.from_json(json.loads(bad.read_text()), str(bad))


def test_first_digits_of_values() -> None:
    values = np.array([0, 1, -1, 12, -19, 230, 9] * 10)  # 60 non-zero values
    p = first_digit_probabilities(values)
    assert p.shape == (9,) and p[0] == pytest.approx(4 / 6) and p[1] == pytest.approx(1 / 6)
    assert p[8] == pytest.approx(1 / 6) and np.isnan(first_digit_probabilities(values[:7])).all()
