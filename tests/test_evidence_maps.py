"""Where-maps of a face: Grad-CAM of the shipped bundle's CNN and the noise residual, on a real aligned crop."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensics.data.faces import FaceDetector, align_face
from forensics.data.media import read_image
from forensics.data.starter import ASSETS

BUNDLE = ASSETS.parent / "bundle"


def _decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "PNG does not decode"
    return img


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """Real aligned faces at the bundle's size: biden.jpg, astronaut.png, grace_hopper.jpg (on this last one, a
    black-and-white photo the CNN scores 0.004, no part of the face raises the fake logit).  # [3,128,128,3] uint8"""
    detector = FaceDetector()
    out = []
    for name in ("biden.jpg", "astronaut.png", "grace_hopper.jpg"):
        image = read_image(ASSETS / name)
        out.append(align_face(image, detector.detect([image])[0][0], size=128, margin=0.25).crop)
    return np.stack(out)


@pytest.fixture(scope="module")
def bundle():
    from forensics.bundle import load_bundle

    return load_bundle(BUNDLE)


# ------------------------------------------------------------------------------------------ Grad-CAM


def test_gradcam_map_is_a_finite_unit_map_that_varies(bundle, crops) -> None:
    from forensics.evidence.gradcam import GradCamExplainer

    with GradCamExplainer.from_bundle(bundle) as explainer:
        heat = explainer.explain(crops[:2])
    assert heat.shape == (2, 128, 128) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0 and heat.max() <= 1.0
    assert heat[0].max() - heat[0].min() > 0.1  # biden: a map that varies (which faces raise the fake logit depends on the bundle)


def test_gradcam_leaves_the_cnn_and_grad_mode_alone(bundle, crops) -> None:
    import torch

    from forensics.evidence.gradcam import GradCamExplainer

    cnn = bundle.detectors["cnn"]
    before = cnn.predict_proba(crops)
    hooks_before = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in cnn.model_.modules())
    state_before = {k: v.clone() for k, v in cnn.model_.state_dict().items()}
    for grad_mode in (False, True):
        torch.set_grad_enabled(grad_mode)
        try:
            explainer = GradCamExplainer.from_bundle(bundle)
            explainer.explain(crops)
            assert torch.is_grad_enabled() is grad_mode
        finally:
            torch.set_grad_enabled(True)
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in cnn.model_.modules()) == hooks_before == 0
    assert all(p.grad is None for p in cnn.model_.parameters())
    assert all(torch.equal(v, state_before[k]) for k, v in cnn.model_.state_dict().items())
    np.testing.assert_array_equal(cnn.predict_proba(crops), before)
    explainer.close()
    assert sum(len(m._forward_hooks) for m in explainer.model.modules()) == 0  # the copy's hooks are gone too


def test_gradcam_tail_graph_gives_the_models_own_output(bundle, crops) -> None:
    """The cheap graph (only the last block recorded) computes exactly the CNN's logit."""
    import torch

    from forensics.evidence.gradcam import GradCamExplainer

    cnn = bundle.detectors["cnn"]
    explainer = GradCamExplainer.from_bundle(bundle)
    x = cnn.to_tensor(crops, torch.device("cpu"))
    with torch.no_grad():
        np.testing.assert_allclose(explainer.model(x).numpy(), cnn.model_(x).numpy(), rtol=1e-5, atol=1e-5)


def test_gradcam_sections_name_their_overlay_and_take_no_stance(bundle, crops) -> None:
    from forensics.evidence.gradcam import GradCamExplainer, gradcam_sections

    explainer = GradCamExplainer.from_bundle(bundle)
    sections = gradcam_sections(explainer, crops, ["face-1", "face-2", "face-3"])
    assert [s.fields["asset"] for s in sections] == ["face-1-gradcam.png", "face-2-gradcam.png", "face-3-gradcam.png"]
    assert sections[0].fields["empty"] is False  # which other faces raise the fake logit depends on the bundle
    for s in sections:
        if s.fields["empty"]:
            assert s.fields["heat_in_face"] is None  # an empty map has no heat to share out
    for s in [s for s in sections if not s.fields["empty"]]:
        assert s.signal is None and set(s.assets) == {s.fields["asset"]}
        assert _decode(s.assets[s.fields["asset"]]).shape == (128, 128, 3)
        assert s.fields["layer"].endswith("blocks.6") and s.fields["map_cells"] == [4, 4]
        assert 0.0 <= s.fields["heat_in_face"] <= 1.0
        assert 0 <= s.fields["peak"]["x"] < 128 and 0 <= s.fields["peak"]["y"] < 128
        assert s.fields["peak"]["region"] in ("left_eye", "right_eye", "nose", "mouth", "face_other", "outside_face")


def test_gradcam_sections_report_bad_input_instead_of_raising(bundle) -> None:
    from forensics.evidence.gradcam import GradCamExplainer, gradcam_sections

    explainer = GradCamExplainer.from_bundle(bundle)
    (section,) = gradcam_sections(explainer, np.zeros((1, 128, 128, 3), np.float32), ["face-1"])
    assert section.fields["error"].startswith("face-1: ") and section.signal.stance == "no information"


# ------------------------------------------------------------------------------------------ noise residual


def test_noise_residual_of_a_real_face_is_measured_and_takes_no_stance(crops) -> None:
    from forensics.evidence.noise import RATIO_HIGH, RATIO_LOW, noise_residual_section

    section = noise_residual_section(crops[0], "face-1")
    f = section.fields
    assert f["asset"] == "face-1-noise.png" and set(section.assets) == {"face-1-noise.png"}
    assert _decode(section.assets["face-1-noise.png"]).shape == (128, 128, 3)
    assert f["face_energy"] > 0 and f["border_energy"] > 0
    assert f["ratio"] == pytest.approx(f["face_energy"] / f["border_energy"], rel=1e-5)
    assert RATIO_LOW <= f["ratio"] <= RATIO_HIGH and section.signal.stance == "no information"


def test_a_smooth_face_on_a_noisy_background_suggests_manipulation(crops, rng) -> None:
    """The face ellipse blurred (a face with no noise of its own) and the surroundings given strong noise."""
    from forensics.evidence.noise import RATIO_LOW, noise_residual_section
    from forensics.evidence.overlay import face_ellipse_mask

    crop = crops[0].astype(np.float32)
    face = face_ellipse_mask(128)
    crop[face] = cv2.GaussianBlur(crop, (7, 7), 3.0)[face]
    crop[~face] += rng.normal(0.0, 12.0, size=crop[~face].shape)
    section = noise_residual_section(np.clip(crop, 0, 255).astype(np.uint8), "face-1")
    assert section.fields["ratio"] < RATIO_LOW
    assert section.signal.stance == "suggests manipulation" and "less noise" in section.signal.reason


def test_noise_section_on_a_flat_border_or_bad_crop_gives_no_information(rng) -> None:
    from forensics.evidence.noise import noise_residual_section
    from forensics.evidence.overlay import face_ellipse_mask

    crop = np.full((128, 128, 3), 90, np.uint8)
    crop[face_ellipse_mask(128)] = rng.integers(0, 256, (int(face_ellipse_mask(128).sum()), 3), dtype=np.uint8)
    flat = noise_residual_section(crop, "face-1")
    assert flat.fields["ratio"] is None and flat.signal.stance == "no information"
    bad = noise_residual_section(np.zeros((128, 128), np.uint8), "face-2")
    assert bad.fields["error"].startswith("face-2: ") and bad.signal.stance == "no information" and not bad.assets
