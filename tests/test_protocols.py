"""Leave-one-out protocols: the held-out generator / identity never reaches train or val, for every generator and
identity of a synthetic manifest shaped like the zoo's (unconditional samples, translations with a source and a
target, face swaps, self-blends), and the test sets hold both classes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forensics.data.manifest import assign_group_splits, new_row, to_frame, validate_manifest
from forensics.metrics import roc_auc
from forensics.protocols import (
    ProtocolSplit,
    contains_identity,
    describe_protocol,
    fake_generators,
    identities,
    leave_one_generator_out,
    leave_one_generator_out_all,
    leave_one_identity_out,
    leave_one_identity_out_all,
    mask_of,
    source_identity,
)

PEOPLE = ("anna", "ben", "carl", "dora")
TRANSLATORS = ("cyclegan", "stargan_v2")


def synthetic_manifest(seed: int = 0) -> pd.DataFrame:
    """Four people with 12 video segments of 10 frames each, one still-only person, and fakes of five kinds."""
    rng = np.random.default_rng(seed)
    rows = []
    for person in PEOPLE:
        for seg in range(12):
            for f in range(10):
                sid = f"{person}-s{seg}-f{f}"
                rows.append(new_row(sample_id=sid, path=f"real/{sid}.png", label=0, media="frame",
                                    group_id=f"{person}:seg{seg}", identity=person, video_id=f"{person}.mp4",
                                    frame_idx=seg * 10 + f))
    rows.append(new_row(sample_id="still-eve", path="real/eve.png", label=0, media="image", group_id="still-eve",
                        identity="eve"))
    reals = assign_group_splits(to_frame(rows), seed=seed)
    real_recs = reals.to_dict("records")
    fakes = []
    for i in range(60):  # unconditional: no source, no identity, a group of its own
        fakes.append(new_row(sample_id=f"stylegan2-{i}", path=f"fake/sg/{i}.png", label=1, generator="stylegan2",
                             group_id=f"stylegan2:{i}", seed=i))
    for gen in TRANSLATORS + ("faceswap",):
        for i in range(80):
            src = real_recs[int(rng.integers(len(real_recs)))]
            target = str(rng.choice([p for p in PEOPLE if p != src["identity"]]))
            fakes.append(new_row(sample_id=f"{gen}-{i}", path=f"fake/{gen}/{i}.png", label=1, generator=gen,
                                 source_id=src["sample_id"], group_id=src["group_id"], split=src["split"],
                                 target=target, identity=src["identity"], seed=i,
                                 media="frame" if gen == "faceswap" else "image"))
    for i in range(60):  # self-blend: source and identity are the same person, no target
        src = real_recs[int(rng.integers(len(real_recs)))]
        fakes.append(new_row(sample_id=f"blend-{i}", path=f"fake/blend/{i}.png", label=1, generator="blend",
                             source_id=src["sample_id"], group_id=src["group_id"], split=src["split"],
                             identity=src["identity"], seed=i, media="frame"))
    df = assign_group_splits(pd.concat([reals, to_frame(fakes)], ignore_index=True), seed=seed)
    validate_manifest(df)
    return df


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return synthetic_manifest()


def _auc_computable(test: pd.DataFrame) -> float:
    """AUC of a random score: NaN unless both classes are present."""
    y = test["label"].to_numpy()
    return roc_auc(y, np.random.default_rng(0).random(len(y)))


def test_synthetic_manifest_has_every_kind(manifest):
    assert fake_generators(manifest) == ["blend", "cyclegan", "faceswap", "stargan_v2", "stylegan2"]
    assert identities(manifest, min_reals=20) == sorted(PEOPLE)
    assert set(manifest["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize("held_out_fakes", ["test", "all"])
def test_leave_one_generator_out_never_trains_on_the_held_out_generator(manifest, held_out_fakes):
    seen = []
    for gen, split in leave_one_generator_out_all(manifest, held_out_fakes=held_out_fakes):
        seen.append(gen)
        assert isinstance(split, ProtocolSplit)
        for part in (split.train, split.val):
            assert gen not in set(part["generator"])
            assert set(part["split"]) <= {"train", "val"} and not part.empty
            # every other generator still trains
            assert set(fake_generators(part)) == set(fake_generators(manifest)) - {gen}
        test = split.test
        assert set(test.loc[test["label"] == 1, "generator"]) == {gen}
        assert (test.loc[test["label"] == 0, "split"] == "test").all()
        if held_out_fakes == "test":
            assert (test["split"] == "test").all()
        else:  # every one of the held-out generator's fakes, whatever its split
            assert (test["label"] == 1).sum() == ((manifest["label"] == 1) & (manifest["generator"] == gen)).sum()
        # no row is in two parts
        ids = [set(p["sample_id"]) for p in split]
        assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
        # both classes, and neither is a token handful
        n_real, n_fake = int((test["label"] == 0).sum()), int((test["label"] == 1).sum())
        assert n_real >= 10 and n_fake >= 5, (gen, n_real, n_fake)
        assert np.isfinite(_auc_computable(test))
    assert seen == fake_generators(manifest)


def test_leave_one_generator_out_errors(manifest):
    with pytest.raises(ValueError, match="Did you mean 'cyclegan'"):
        leave_one_generator_out(manifest, "cyclegna")
    with pytest.raises(ValueError, match="real"):
        leave_one_generator_out(manifest, "real")
    with pytest.raises(ValueError, match="held_out_fakes"):
        leave_one_generator_out(manifest, "blend", held_out_fakes="train")


def test_contains_identity_follows_source_and_target(manifest):
    anna = contains_identity(manifest, "anna")
    fakes = manifest[manifest["label"] == 1]
    src_ident = source_identity(manifest)
    # a translation *to* anna from someone else counts, as does one *from* anna to someone else
    to_anna = fakes[(fakes["target"] == "anna") & (src_ident[fakes.index] != "anna")]
    from_anna = fakes[(src_ident[fakes.index] == "anna") & (fakes["target"] != "anna")]
    assert len(to_anna) > 0 and len(from_anna) > 0
    assert anna[to_anna.index].all() and anna[from_anna.index].all()
    # unconditional samples contain nobody; other people's reals do not contain anna
    assert not anna[manifest["generator"] == "stylegan2"].any()
    assert not anna[(manifest["label"] == 0) & (manifest["identity"] != "anna")].any()


def test_source_identity_falls_back_to_own_identity(manifest):
    df = manifest.copy()
    i = df.index[df["generator"] == "faceswap"][0]
    df.loc[i, "source_id"] = "some-video:reencoded"  # not a row, as for a face-swap video
    assert source_identity(df)[i] == df.loc[i, "identity"]


def test_leave_one_identity_out_never_trains_on_the_person(manifest):
    seen = []
    src_ident = source_identity(manifest)
    for person, split in leave_one_identity_out_all(manifest, min_reals=20):
        seen.append(person)
        for part in (split.train, split.val):
            assert not part.empty
            assert person not in set(part.loc[part["label"] == 0, "identity"])
            fakes = part[part["label"] == 1]
            assert person not in set(src_ident[fakes.index]), "a fake made from the person was trained on"
            assert person not in set(fakes["target"]), "a fake made towards the person was trained on"
            assert person not in set(fakes["identity"])
        test = split.test
        reals = test[test["label"] == 0]
        assert set(reals["identity"]) == {person}
        # all of the person's reals, whatever their ordinary split
        assert len(reals) == ((manifest["label"] == 0) & (manifest["identity"] == person)).sum()
        # every test fake involves the person, or is an identity-free test-split sample
        fakes = test[test["label"] == 1]
        involved = contains_identity(manifest, person)[fakes.index]
        assert (involved | ((fakes["generator"] == "stylegan2") & (fakes["split"] == "test"))).all()
        assert involved.sum() > 0
        # groups never straddle training and test
        train_groups = set(split.train["group_id"]) | set(split.val["group_id"])
        assert not train_groups & set(reals["group_id"])
        n_real, n_fake = len(reals), len(fakes)
        assert n_real >= 20 and n_fake >= 20, (person, n_real, n_fake)
        assert 0.1 <= n_fake / (n_real + n_fake) <= 0.9  # balanced enough for a meaningful AUC
        assert np.isfinite(_auc_computable(test))
    assert seen == sorted(PEOPLE)  # the single-still person is below min_reals


def test_leave_one_identity_out_errors_and_description(manifest):
    with pytest.raises(ValueError, match="Did you mean 'anna'"):
        leave_one_identity_out(manifest, "ana")
    counts = describe_protocol(leave_one_identity_out(manifest, "ben"))
    assert set(counts) == {"train", "val", "test"}
    assert counts["test"]["real"] == ((manifest["label"] == 0) & (manifest["identity"] == "ben")).sum()
    assert sum(counts["train"].values()) + sum(counts["val"].values()) < len(manifest)


def test_no_split_column_is_refused(manifest):
    with pytest.raises(ValueError, match="assign splits"):
        leave_one_generator_out(manifest.assign(split=""), "blend")


def test_mask_of_selects_a_part_from_loaded_rows(manifest):
    loaded = manifest.sample(frac=1.0, random_state=0).reset_index(drop=True)  # another order, another index
    split = leave_one_identity_out(manifest, "carl")
    mask = mask_of(loaded, split.test)
    assert mask.sum() == len(split.test)
    assert set(loaded.loc[mask, "sample_id"]) == set(split.test["sample_id"])


def test_val_refill_when_the_person_fills_the_val_split(manifest):
    df = manifest.copy()
    # every val group becomes ben's: holding ben out leaves val without a single real
    val_reals = (df["split"] == "val") & (df["label"] == 0)
    df.loc[val_reals, "identity"] = "ben"
    plain = leave_one_identity_out(df, "ben")
    assert (plain.val["label"] == 0).sum() == 0
    refilled = leave_one_identity_out(df, "ben", min_val_reals=25)
    assert (refilled.val["label"] == 0).sum() >= 25
    assert set(refilled.train["sample_id"]).isdisjoint(refilled.val["sample_id"])
    assert set(refilled.train["group_id"]).isdisjoint(refilled.val["group_id"])
    assert not contains_identity(df, "ben")[refilled.val.index].any()
    assert refilled.test.equals(plain.test)
    assert len(refilled.train) + len(refilled.val) == len(plain.train) + len(plain.val)
