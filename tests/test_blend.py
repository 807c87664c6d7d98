"""Self-blended fakes (`blend`): the mask is exactly where pixels changed, seeded replay, a face-shaped feathered
mask on aligned crops and on whole frames, and `forensics synth --generator blend` end to end on real crops."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import generators
from forensics.data.manifest import read_manifest, validate_manifest
from forensics.data.media import read_image
from forensics.data.starter import ASSETS, build_starter
from generators.blend import (BlendConfig, apply_blend, crop_landmarks_of, landmarks_after_resize, mask_to_uint8,
                              sample_blend_params, self_blend)
from generators.config import config_to_dict
from generators.synthesize import SynthOptions, synthesize

STILLS = ("grace_hopper.jpg", "multi_face.jpg", "astronaut.png")  # 7 faces in three groups: train, val and test
SEEDS = range(12)  # covers every frequency kind and blend ratio of the default config


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real starter subset: MTCNN crops with their landmarks and alignment matrices."""
    root = tmp_path_factory.mktemp("blend_starter")
    build_starter(root, only=STILLS)
    return root / "manifest.parquet"


def _faces(manifest: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_manifest(manifest).to_dict("records")}


def _crop(manifest: Path, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A 128 px aligned crop [128,128,3] and its five landmarks in crop pixels [5,2]."""
    row = _faces(manifest)[sample_id]
    return read_image(manifest.parent / row["path"]), crop_landmarks_of(row)


def _frame(manifest: Path, sample_id: str, file: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole original photo [H,W,3] and the face's MTCNN landmarks in its pixels [5,2]."""
    row = _faces(manifest)[sample_id]
    return read_image(ASSETS / file), np.asarray(json.loads(row["postproc"])["landmarks"], np.float64)


def _check_mask_is_where_pixels_changed(image: np.ndarray, fake: np.ndarray, mask: np.ndarray) -> float:
    """Exact: bytes equal wherever mask == 0; every changed pixel has mask > 0. Returns the share of changed
    pixels where the weight is at least half its peak (a mask far bigger than the change would make it small)."""
    assert fake.shape == image.shape and fake.dtype == np.uint8 and mask.shape == image.shape[:2]
    changed = (fake != image).any(axis=2)  # [H,W]
    assert np.array_equal(fake[mask == 0], image[mask == 0])
    assert not (changed & (mask == 0)).any()
    return float(changed[mask >= 0.5 * mask.max()].mean())


@pytest.mark.parametrize("seed", SEEDS)
def test_an_aligned_crop_changes_exactly_under_its_mask(starter: Path, seed: int) -> None:
    image, landmarks = _crop(starter, "grace_hopper:face0")
    fake, mask, params = self_blend(image, landmarks, seed)
    assert _check_mask_is_where_pixels_changed(image, fake, mask) > 0.8, params
    assert params["derived"]["changed_fraction"] == pytest.approx((fake != image).any(axis=2).mean(), abs=1e-6)


@pytest.mark.parametrize("sample_id, file", [("grace_hopper:face0", "grace_hopper.jpg"),
                                             ("multi_face:face3", "multi_face.jpg")])
def test_a_whole_frame_changes_only_around_the_face(starter: Path, sample_id: str, file: str) -> None:
    frame, landmarks = _frame(starter, sample_id, file)
    box = np.asarray(json.loads(_faces(starter)[sample_id]["postproc"])["landmarks"])
    for seed in range(4):
        fake, mask, params = self_blend(frame, landmarks, seed)
        assert _check_mask_is_where_pixels_changed(frame, fake, mask) > 0.8
        ys, xs = np.nonzero(mask)
        # the blend stays on this face: within two eye-to-mouth spans of the landmarks, far from the frame's size
        span = float(np.ptp(box, axis=0).max())
        assert xs.min() > box[:, 0].min() - 2 * span and xs.max() < box[:, 0].max() + 2 * span
        assert ys.min() > box[:, 1].min() - 2 * span and ys.max() < box[:, 1].max() + 2 * span
        assert params["derived"]["mask_fraction"] < 0.5


def test_same_seed_same_bytes_and_recorded_params_replay_them(starter: Path) -> None:
    image, landmarks = _crop(starter, "multi_face:face1")
    fake, mask, params = self_blend(image, landmarks, 7)
    again, mask_again, params_again = self_blend(image, landmarks, 7)
    assert np.array_equal(fake, again) and np.array_equal(mask, mask_again) and params == params_again
    other, _, other_params = self_blend(image, landmarks, 8)
    assert not np.array_equal(fake, other) and other_params["source"] != params["source"]
    # the parameters are JSON and hold every random choice: a JSON round trip replays the same bytes
    replay, replay_mask, _ = apply_blend(image, landmarks, json.loads(json.dumps(params)))
    assert np.array_equal(replay, fake) and np.array_equal(replay_mask, mask)
    assert sample_blend_params(7) == {k: v for k, v in params.items() if k != "derived"}


def test_mask_is_feathered_face_shaped_and_saved_exactly(starter: Path) -> None:
    image, landmarks = _crop(starter, "astronaut:face0")
    for seed in SEEDS:
        _, mask, params = self_blend(image, landmarks, seed)
        assert mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
        assert mask.max() == pytest.approx(params["mask"]["blend_ratio"], abs=1 / 255)
        assert ((mask > 0) & (mask < mask.max())).sum() > 50  # a feathered edge, not a hard cut-out
        x, y = np.round(landmarks).astype(int).T
        assert (mask[y, x] > 0.5 * mask.max()).all()  # eyes, nose and mouth are inside
        assert (mask[[0, 0, -1, -1], [0, -1, 0, -1]] == 0).all()  # corners (background) are not
        assert 0.15 < (mask > 0).mean() < 0.7
        assert np.array_equal(mask_to_uint8(mask).astype(np.float32) / 255, mask)  # the PNG label is the weight


def test_bad_inputs_are_clear_errors(starter: Path) -> None:
    image, landmarks = _crop(starter, "grace_hopper:face0")
    with pytest.raises(ValueError, match="RGB uint8"):
        self_blend(image.astype(np.float32), landmarks, 0)
    with pytest.raises(ValueError, match="five finite"):
        self_blend(image, landmarks[:3], 0)
    with pytest.raises(ValueError, match="outside"):
        self_blend(image, landmarks + 1000, 0)
    with pytest.raises(ValueError, match="degenerate"):
        self_blend(image, np.repeat(landmarks[:1], 5, axis=0), 0)  # all five points on one spot
    with pytest.raises(ValueError, match="frequency"):
        BlendConfig(frequency=("wavelet",))


def test_landmarks_follow_the_resize_of_the_reals(starter: Path) -> None:
    from generators.data import resize_square

    image, landmarks = _crop(starter, "grace_hopper:face0")
    small = resize_square(image, 64)
    moved = landmarks_after_resize(landmarks, image.shape[:2], 64)
    # an area resize by 2 averages 2x2 blocks: the point lands on the block it came from
    assert np.allclose(moved, (landmarks + 0.5) / 2 - 0.5)
    # a bright dot drawn at each landmark is brightest where the mapping says
    dots = np.zeros((128, 128), np.float32)
    for x, y in np.round(landmarks).astype(int):
        dots[y - 1:y + 2, x - 1:x + 2] = 1
    dots = cv2.resize(dots, (64, 64), interpolation=cv2.INTER_AREA)
    for x, y in np.round(moved).astype(int):
        assert dots[y, x] > 0.2
    assert small.shape == (64, 64, 3)


def test_zoo_lists_blend_and_training_is_refused() -> None:
    from forensics.cli import app

    assert "blend" in generators.list()
    result = CliRunner().invoke(app, ["zoo", "list"])
    assert result.exit_code == 0 and any(line.startswith("blend ") for line in result.output.splitlines())
    with pytest.raises(ValueError, match="needs no training"):
        generators.get_spec("blend").build_task(generators.resolve_config("blend", "small"))


def test_synth_writes_blend_fakes_with_masks_in_their_sources_split(starter: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    df = synthesize([], starter, out, SynthOptions(n=10, size=64, seed=3, training_free=("blend",)), progress=False)
    validate_manifest(read_manifest(out / "manifest.parquet"), out)
    reals, fakes = df[df.label == 0], df[df.label == 1]
    assert len(reals) == 7 and len(fakes) == 10 and set(fakes.generator) == {"blend"}
    assert sorted(fakes.seed) == list(range(3, 13)) and (df.width == 64).all()
    by_id = {r["sample_id"]: r for r in reals.to_dict("records")}
    assert len({by_id[s]["split"] for s in fakes.source_id}) >= 2  # the sample spans splits ...
    for row in fakes.to_dict("records"):
        src = by_id[row["source_id"]]
        assert (row["split"], row["group_id"], row["identity"]) == (src["split"], src["group_id"], src["identity"])
        post = json.loads(row["postproc"])
        assert post["resize"] == json.loads(src["postproc"])["resize"]  # ... and went through the reals' resize
        assert json.loads(row["generator_config"])["model"] == config_to_dict(BlendConfig())
        fake, real = read_image(out / row["path"]), read_image(out / src["path"])
        mask = cv2.imread(str(out / post["mask_path"]), cv2.IMREAD_UNCHANGED)  # [64,64] uint8, lossless
        assert mask.dtype == np.uint8 and mask.shape == (64, 64) and post["mask_path"].endswith(".png")
        _check_mask_is_where_pixels_changed(real, fake, mask.astype(np.float32) / 255)
        # the row alone replays the fake: the real copy, the landmarks used and every parameter
        replay, replay_mask, _ = apply_blend(real, np.asarray(post["landmarks"]), post["blend"])
        assert np.array_equal(replay, fake) and np.array_equal(mask_to_uint8(replay_mask), mask)
        assert post["blend"]["seed"] == row["seed"] and post["mask_fraction"] > 0.1

    # resumable: a re-run redoes only a deleted fake (and its mask), byte-identically
    files = {p: p.read_bytes() for p in sorted(out.rglob("*.png"))}
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    victim = fakes.iloc[0]
    (out / victim["path"]).unlink()
    again = synthesize([], starter, out, SynthOptions(n=10, size=64, seed=3, training_free=("blend",)), progress=False)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == files
    rewritten = {p.relative_to(out).as_posix() for p, t in mtimes.items() if p.stat().st_mtime_ns != t}
    assert rewritten == {victim["path"], json.loads(victim["postproc"])["mask_path"]}
    assert again.equals(df)


def test_synth_cli_routes_generator_blend(starter: Path, tmp_path: Path) -> None:
    from forensics.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["synth", "--generator", "blend", "--data", str(starter), "--n", "3",
                                 "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    df = read_manifest(tmp_path / "ds" / "manifest.parquet")
    assert (df.generator == "blend").sum() == 3 and (df.width == 128).all()  # no --size: the reals' own size
    bad = runner.invoke(app, ["synth", "--generator", "blnd", "--data", str(starter), "--n", "3",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "only 'blend'" in bad.output
