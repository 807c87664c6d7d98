"""The predicted-mask head: a tiny network learns from a few blends (its loss falls), save/load gives the same
masks, the section reports area and stance from its rule, and the shipped head finds a blend on a face of a
test-split person (not in its training data) and does not flag the same real face. The loader refuses a
pickle, a config that lies about the network, NaN weights and a bad rule, naming the file."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from forensics.data.faces import Face, align_face
from forensics.data.media import read_image
from forensics.data.starter import ASSETS
from forensics.evidence.mask_head import SHIPPED, AreaRule, MaskHead, mask_section
from forensics.evidence.mask_model import PRESETS, build_mask_net, save_mask_net
from forensics.evidence.mask_train import TrainConfig, blend_example, iou, mask_loss, predict_masks, train_mask_net
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION
from forensics.modelfiles import CheckpointError
from generators.merge import crop_landmarks

# MTCNN's five landmarks of the face in 0-f1-su-ph.jpg, as `forensics data starter` recorded them (the starter puts
# this person in the test split: the shipped head never trained on her). Hard-coded so no detector runs here.
PHOTO = "0-f1-su-ph.jpg"
PHOTO_LANDMARKS = np.array([[202.779, 234.714], [327.981, 231.288], [264.911, 284.343], [221.418, 382.933],
                            [306.869, 382.714]])


def aligned_face(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo's face aligned as the scan aligns it (margin 0.25) and its landmarks in crop pixels. [S,S,3], [5,2]"""
    face = Face(box=np.array([150.0, 150.0, 380.0, 440.0]), score=1.0, landmarks=PHOTO_LANDMARKS)
    aligned = align_face(read_image(ASSETS / PHOTO), face, size=size, margin=0.25)
    return aligned.crop, crop_landmarks(PHOTO_LANDMARKS, aligned.matrix)


def fixed_batch(crop: np.ndarray, landmarks: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n blends (seeds 100..) and n copies of the real face with empty masks. [2n,S,S,3], [2n,S,S]"""
    pairs = [blend_example(crop, landmarks, 100 + i) for i in range(n)]
    images = np.stack([p[0] for p in pairs] + [crop] * n)
    masks = np.stack([p[1] for p in pairs] + [np.zeros(crop.shape[:2], np.float32)] * n)
    return images, masks


def loss_on(net, images: np.ndarray, masks: np.ndarray) -> float:
    import torch

    from forensics.evidence.mask_model import to_input

    net.eval()
    with torch.no_grad():
        return float(mask_loss(net(to_input(images)), torch.from_numpy(masks)[:, None]))


def test_tiny_head_learns_from_a_few_blends(tmp_path: Path) -> None:
    import torch

    crop, landmarks = aligned_face(64)
    crops = np.stack([crop, crop[:, ::-1].copy()])  # the face and its mirror image
    marks = np.stack([landmarks, np.column_stack([63 - landmarks[:, 0], landmarks[:, 1]])[[1, 0, 2, 4, 3]]])
    images, masks = fixed_batch(crop, landmarks, 4)
    config = TrainConfig(steps=40, batch=8, epoch_steps=20, augment="none", seed=0)
    torch.manual_seed(config.seed)
    before = loss_on(build_mask_net(PRESETS["tiny"]), images, masks)  # the same initial weights training starts from
    net, state = train_mask_net(tmp_path / "run", crops, marks, PRESETS["tiny"], config, log=lambda s: None)
    after = loss_on(net, images, masks)
    assert state["step"] == 40 and [e["end_step"] for e in state["epochs"]] == [20, 40]
    assert after < 0.9 * before, (before, after)  # seeded: 1.37 -> 1.11 when written
    # the run folder is a finished checkpoint: asking again resumes at the end and trains nothing more
    again, state2 = train_mask_net(tmp_path / "run", crops, marks, PRESETS["tiny"], config, log=lambda s: None)
    assert state2["epochs"] == state["epochs"]
    np.testing.assert_array_equal(predict_masks(again, images), predict_masks(net, images))


def test_save_load_round_trip_gives_identical_masks(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(3)
    net = build_mask_net(PRESETS["tiny"])
    net.train()
    with torch.no_grad():  # move BatchNorm's running statistics off their defaults, so they must be saved too
        net(torch.randn(4, 3, 64, 64) * 2)
    rule = {"pixel_threshold": 0.5, "area_threshold": 0.2, "real_false_alarm": 0.01, "heldout_iou": 0.6}
    save_mask_net(tmp_path / "mask_head", net, PRESETS["tiny"], extra={"rule": rule})
    assert MaskHead.load(tmp_path / "absent") is None
    head = MaskHead.load(tmp_path)
    assert head is not None and head.rule == AreaRule(**rule)
    crop, _ = aligned_face(64)
    crops = np.stack([crop, crop[::-1].copy()])
    np.testing.assert_array_equal(head.predict(crops), predict_masks(net, crops))
    other = head.predict(np.stack([cv2.resize(crop, (96, 96))]))  # another side: resized in and back out
    assert other.shape == (1, 96, 96) and 0.0 <= other.min() and other.max() <= 1.0
    with pytest.raises(ValueError, match="uint8"):
        head.predict(crops.astype(np.float32))
    config = json.loads((tmp_path / "mask_head" / "config.json").read_text())
    assert config["format"] == "mask-head/1" and config["net"]["depth"] == 2


def test_mask_section_area_stance_and_errors() -> None:
    crop, _ = aligned_face(128)
    rule = AreaRule(pixel_threshold=0.5, area_threshold=0.1, real_false_alarm=0.02, heldout_iou=0.7)
    square = np.zeros((128, 128), np.float32)
    square[32:96, 32:96] = 0.9  # a quarter of the crop
    flagged = mask_section(crop, square, "face-1", rule)
    assert flagged.name == "mask" and flagged.signal.stance == SUGGESTS_MANIPULATION
    assert flagged.fields["area_fraction"] == 0.25 and flagged.fields["peak"] == pytest.approx(0.9)
    assert flagged.fields["asset"] == "face-1-mask.png" and flagged.fields["real_false_alarm"] == 0.02
    assert flagged.assets["face-1-mask.png"].startswith(b"\x89PNG")
    assert "2.0% of held-out real faces" in flagged.signal.reason
    json.dumps(flagged.fields)
    quiet = mask_section(crop, square * 0.5, "face-1", rule)  # p 0.45 everywhere: nothing over the threshold
    assert quiet.signal.stance == NO_SIGN and quiet.fields["area_fraction"] == 0.0
    assert mask_section(crop, square, "face-1", AreaRule()).signal.stance == NO_INFORMATION  # no measured rule
    bad = mask_section(crop, square[:64], "face-2", rule)
    assert bad.signal.stance == NO_INFORMATION and bad.fields["error"].startswith("face-2: ") and not bad.assets
    nan = mask_section(crop, np.full((128, 128), np.nan, np.float32), "face-3", rule)
    assert "error" in nan.fields


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="no mask head shipped in forensics/assets/bundle")
def test_shipped_head_finds_a_blend_on_an_unseen_face() -> None:
    head = MaskHead.load(SHIPPED.parent)
    assert head is not None and head.size == 128
    crop, landmarks = aligned_face(128)
    fakes, truths = zip(*(blend_example(crop, landmarks, seed) for seed in (1, 2, 3)))
    masks = head.predict(np.stack([*fakes, crop]))  # [4,128,128]
    ious = iou(masks[:3] > head.rule.pixel_threshold, np.stack(truths) > 0)
    real_area = float((masks[3] > head.rule.pixel_threshold).mean())
    assert ious.mean() > 0.2, ious
    # The shipped head paints real faces too (mean area 0.33 on test reals, reports/evidence/mask_head.md), so the
    # bar for the real face is its own rule: not flagged. Seeded: areas 0.39 real vs 0.37-0.42 blends when written.
    assert real_area <= head.rule.area_threshold, (real_area, head.rule.area_threshold)
    section = head.section(crop, "face-1")
    assert section.fields["area_fraction"] == pytest.approx(real_area, abs=1e-6)
    assert section.signal.stance == NO_SIGN and section.fields["asset"] == "face-1-mask.png"


def tiny_head_folder(root: Path) -> Path:
    """A saved tiny head (seeded) in root/mask_head, with a measured-looking rule."""
    import torch

    torch.manual_seed(5)
    rule = {"pixel_threshold": 0.5, "area_threshold": 0.2, "real_false_alarm": 0.01, "heldout_iou": 0.6}
    return save_mask_net(root / "mask_head", build_mask_net(PRESETS["tiny"]), PRESETS["tiny"], extra={"rule": rule})


def test_loader_refuses_a_pickle_posing_as_weights(tmp_path: Path) -> None:
    import torch

    folder = tiny_head_folder(tmp_path)
    weights = folder / "weights.safetensors"
    state = build_mask_net(PRESETS["tiny"]).state_dict()
    torch.save(state, weights)  # a torch.save zip (a pickle inside) under the safetensors name
    with pytest.raises(CheckpointError, match=re.escape(str(weights)) + ".*pickle"):
        MaskHead.load(tmp_path)


def test_loader_refuses_a_config_lying_about_decoder_widths(tmp_path: Path) -> None:
    folder = tiny_head_folder(tmp_path)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["net"]["decoder"] = [16, 12]  # the weights were saved for (16, 8)
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "weights.safetensors")) + ".*shape"):
        MaskHead.load(tmp_path)
    config["net"]["decoder"] = [16]  # one width for two levels: refused before any weight is read
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=re.escape(str(config_path)) + ".*decoder"):
        MaskHead.load(tmp_path)


def test_loader_refuses_nan_weights_and_a_nan_rule(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tiny_head_folder(tmp_path)
    weights = folder / "weights.safetensors"
    state = load_file(str(weights))
    name = next(k for k in state if k.endswith("out.weight"))
    state[name][0, 0, 0, 0] = float("nan")
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=re.escape(str(weights)) + ".*NaN"):
        MaskHead.load(tmp_path)
    folder = tiny_head_folder(tmp_path / "other")
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["rule"]["area_threshold"] = 7  # not a share of the crop
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=re.escape(str(config_path)) + ".*area_threshold"):
        MaskHead.load(tmp_path / "other")
    config_path.write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=re.escape(str(config_path)) + ".*JSON object"):
        MaskHead.load(tmp_path / "other")


def test_fake_only_dice_does_not_pay_for_painting_reals() -> None:
    import torch

    target = torch.zeros(2, 1, 16, 16)  # two reals
    painted = torch.full((2, 1, 16, 16), 2.0)  # logits: p 0.88 everywhere
    bce = float(mask_loss(painted, target, "bce"))
    assert float(mask_loss(painted, target, "bce+fake_dice")) == pytest.approx(bce)
    assert float(mask_loss(painted, target, "bce+dice")) > bce + 0.9  # batch Dice: ~1 on an all-real batch
    target[0, 0, 4:12, 4:12] = 1.0  # one fake: Dice now counts, over that fake only
    assert float(mask_loss(painted, target, "bce+fake_dice")) > float(mask_loss(painted, target, "bce"))
    with pytest.raises(ValueError, match="mask loss"):
        mask_loss(painted, target, "dice")
