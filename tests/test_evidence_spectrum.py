"""A face's azimuthal spectrum against the shipped bundle's real-face band."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from forensics.data.starter import ASSETS
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION
from forensics.evidence.spectrum import (
    REFERENCE_FILE,
    SpectrumReference,
    face_spectra,
    load_spectrum_reference,
    spectrum_section,
)

BUNDLE = ASSETS.parent / "bundle"


@pytest.fixture(scope="module")
def reference() -> SpectrumReference:
    ref = load_spectrum_reference(BUNDLE)
    assert ref is not None, f"{BUNDLE / REFERENCE_FILE} is missing"
    return ref


@pytest.fixture(scope="module")
def real_crop() -> np.ndarray:
    """A real aligned face at the bundle's size, found and aligned as the scan does.  # [128,128,3] uint8"""
    from forensics.data.faces import FaceDetector, align_face
    from forensics.data.media import read_image

    image = read_image(ASSETS / "biden.jpg")
    return align_face(image, FaceDetector().detect([image])[0][0], size=128, margin=0.25).crop


def test_reference_matches_the_spectral_detectors_curve(reference: SpectrumReference) -> None:
    import forensics.bundle as bundle_mod

    meta = json.loads((BUNDLE / bundle_mod.BUNDLE_FILE).read_text())
    spectral = json.loads((BUNDLE / "detectors" / "spectral" / "config.json").read_text())["params"]
    assert reference.n_bins == spectral["n_bins"] and reference.normalize == spectral["normalize"]
    assert reference.face_size == meta["face"]["size"]
    assert reference.n >= 1000 and len(reference.manifest_sha256) == 64 and "build_spectrum_reference" in reference.command
    curve = face_spectra(np.zeros((1, 128, 128, 3), np.uint8) + 128, reference.n_bins, reference.normalize)
    assert curve.shape == (1, reference.p5.size)
    width = reference.p95 - reference.p5
    assert (width >= 0).all() and (width[1:] > 0).all()  # bin 0 (DC) is the min-max maximum of every curve


def test_nearest_neighbour_upsampled_noise_leaves_the_band(reference: SpectrumReference) -> None:
    """A strong periodic high-frequency pattern: 64 px noise upsampled 2x by pixel repetition."""
    small = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    crop = cv2.resize(small, (128, 128), interpolation=cv2.INTER_NEAREST)
    section = spectrum_section(crop, "face-1", reference)
    assert section.signal.stance == SUGGESTS_MANIPULATION, section.signal.reason
    assert section.fields["high_freq_outside"] >= 0.5
    assert section.fields["max_high_freq_excursion"] >= 1.0
    hf = section.fields["high_freq_from"]
    assert any(b >= hf for b in section.fields["bins_outside"])


def test_a_real_face_mostly_stays_in_the_band(reference: SpectrumReference, real_crop: np.ndarray) -> None:
    section = spectrum_section(real_crop, "face-1", reference)
    assert section.signal.stance == NO_SIGN, section.signal.reason
    # biden.jpg is a photo, unlike the video frames most of the band comes from: its curve grazes the band's edge
    # in many bins, but never by more than a fraction of a band width.
    assert section.fields["max_excursion"] < 0.5
    png = section.assets["face-1-spectrum.png"]
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and max(img.shape[:2]) <= 512
    assert spectrum_section(real_crop, "face-1", reference).assets == section.assets  # same curve, same bytes
    bare = spectrum_section(real_crop, "face-1", reference, plot=False)
    assert not bare.assets and "asset" not in bare.fields and bare.signal == section.signal


def test_old_bundles_and_bad_crops_give_no_information(tmp_path, reference: SpectrumReference) -> None:
    assert load_spectrum_reference(tmp_path) is None
    section = spectrum_section(np.zeros((128, 128, 3), np.uint8), "face-1", None)
    assert section.signal.stance == NO_INFORMATION and "face-1" in section.fields["error"]
    wrong_size = spectrum_section(np.zeros((64, 64, 3), np.uint8), "face-2", reference)
    assert wrong_size.signal.stance == NO_INFORMATION and wrong_size.fields["error"].startswith("face-2: ")
    broken = tmp_path / REFERENCE_FILE
    broken.parent.mkdir()
    broken.write_text('{"format": "forensics-spectrum-reference/1", "n_bins": 3}')
    with pytest.raises(ValueError, match="spectrum.json"):
        load_spectrum_reference(tmp_path)
