"""Identity folds for out-of-fold scores: no person is ever in the training data of the model that scores them.

Every identity of train+val with at least `min_crops` real crops is a fold of its own (on the starter corpus:
franck, webcam_man, pexels_woman, carphone_man), so its out-of-fold scores are leave-one-identity-out scores;
the small identities (people seen in one or a few stills) are spread over those folds by a seeded hash, and so
are the identity-free fakes (StyleGAN2 samples) by their group. A fake goes with the identity it was made from.
Rows of the test split get fold -1: no fold model trains on them and the final models never see them.

A fold's model must also not train on fakes that *carry* its person's appearance without being in its fold
(`carried_identities`): a translation or swap made into them, and a sample of an unconditional GAN that learned
from them. The zoo's StyleGAN2 learned the corpus's train-split people, and its samples are mostly the Pexels
woman's hair, face and background: the fold that held her out, trained on those samples as fakes and on none of
her reals, called 99.8% of her reals fake (`benchmarks/release_fold_probe.py`; 0.0% without them).
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection

import numpy as np
import pandas as pd

HELD_OUT = -1


def _unit(text: str, seed: int) -> float:
    return int(hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()[:12], 16) / float(1 << 48)


def fold_identities(df: pd.DataFrame, min_crops: int = 50) -> list[str]:
    """The identities of train+val with at least `min_crops` real image/frame crops, largest first."""
    reals = df[(df["label"] == 0) & df["split"].isin(("train", "val")) & df["media"].isin(("image", "frame"))
               & (df["identity"].astype(str) != "")]
    counts = reals.groupby("identity").size()
    counts = counts[counts >= min_crops].sort_index().sort_values(ascending=False, kind="stable")
    return counts.index.tolist()


def assign_folds(df: pd.DataFrame, min_crops: int = 50, seed: int = 0) -> pd.Series:
    """Fold number per row (index aligned with `df`): one fold per large identity, -1 for the test split."""
    big = fold_identities(df, min_crops)
    if len(big) < 2:
        raise ValueError(f"identity folds need >= 2 train/val identities with >= {min_crops} real crops, "
                         f"found {big}")
    fold_of = {name: k for k, name in enumerate(big)}

    def fold(row: pd.Series) -> int:
        if row["split"] == "test":
            return HELD_OUT
        identity = str(row["identity"])
        if identity in fold_of:
            return fold_of[identity]
        key = identity or str(row["group_id"])
        return int(_unit(key, seed) * len(big))

    return df.apply(fold, axis=1).astype(np.int64)


def check_folds(df: pd.DataFrame, folds: pd.Series) -> None:
    """Fail if an identity (or, for identity-free rows, a group) is in two folds, or a test row is in one."""
    frame = df.assign(fold=folds.to_numpy())
    keyed = frame.assign(key=np.where(frame["identity"].astype(str) != "", "id:" + frame["identity"].astype(str),
                                      "group:" + frame["group_id"].astype(str)))
    kept = keyed[keyed["fold"] != HELD_OUT]
    spread = kept.groupby("key")["fold"].nunique()
    if (spread > 1).any():
        raise ValueError(f"identities in several folds: {spread[spread > 1].index.tolist()[:5]}")
    if (frame.loc[frame["split"] == "test", "fold"] != HELD_OUT).any():
        raise ValueError("a test-split row was given a training fold")


def carried_identities(df: pd.DataFrame, learned_from: Collection[str]) -> pd.Series:
    """Per row, the "|"-joined people whose fold model must not train on it: a fake's target (the person a
    translation or swap was made into), and for identity-free fakes every person their generator learned from."""
    free = (df["label"] == 1) & (df["identity"].astype(str) == "")
    learned = "|".join(sorted(learned_from))
    return df["target"].astype(str).where(~free, learned).where(df["label"] == 1, "")


def carries(carried: pd.Series, identity: str) -> np.ndarray:
    """Rows whose carried identities include `identity`."""
    return carried.astype(str).str.split("|").map(lambda names: identity in names).to_numpy(bool)


def generator_training_people(df: pd.DataFrame) -> set[str]:
    """The people the zoo's checkpoints learned from: those with real train-split crops (the zoo trains on the
    corpus's train split, `generators.data.load_image_tensor`)."""
    reals = df[(df["label"] == 0) & (df["split"] == "train") & (df["identity"].astype(str) != "")]
    return set(reals["identity"].astype(str))
