"""Leave-one-out evaluation protocols: which manifest rows a detector may train on, and which it is tested on,
when one generator or one person must stay unseen.

Both protocols start from the manifest's own group splits (`split` = train / val / test, made per group so
near-duplicate frames never straddle splits, every fake in its real source's split) and only *remove* rows
from train and val; they never move a row from test into training. So the ordinary split guarantees still hold,
and a protocol's train set is a subset of the ordinary train split.

- `leave_one_generator_out(df, g)`: g's fakes never appear in train or val; the test set is the test split's
  reals plus g's fakes (the test split's by default; `held_out_fakes="all"` takes g's fakes from every split,
  which is safe because none of them is trained on).
- `leave_one_identity_out(df, x)`: no row that *contains* person x is in train or val; the test set is x's
  reals (from every split), every fake that contains x (from every split) and the test split's identity-free
  fakes. See `contains_identity` for what "contains" means.

The functions return row subsets (`ProtocolSplit(train, val, test)`, a named tuple, so
`train, val, test = leave_one_generator_out(df, "cyclegan")` works); loading images and training is the
caller's job (`forensics.evaluate.load_images`; `mask_of(loaded.rows, split.train)` picks a part out of images
already decoded). A leave-one-identity-out test set draws from every split, so load them all.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

REAL = "real"
HELD_OUT_FAKES = ("test", "all")


class ProtocolSplit(NamedTuple):
    """Rows of one protocol instance; each frame keeps the manifest's columns and index."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def _did_you_mean(name: str, options: list[str], what: str) -> ValueError:
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown {what} {name!r}.{hint} Available: {', '.join(options) or '(none)'}")


def _check_columns(df: pd.DataFrame, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing} needed by the leave-one-out protocols")
    if not df["split"].isin(("train", "val", "test")).any():
        raise ValueError("manifest has no rows with a train/val/test split; assign splits first")


def fake_generators(df: pd.DataFrame) -> list[str]:
    """Names of the generators that made the manifest's fakes, sorted."""
    return sorted(df.loc[df["label"] == 1, "generator"].astype(str).unique())


# ------------------------------------------------------------------------------------------ by generator


def leave_one_generator_out(df: pd.DataFrame, held_out: str, held_out_fakes: str = "test") -> ProtocolSplit:
    """Split for "train on every other generator, test on `held_out`".

    Rule (exact):
    - train = rows of split "train" whose generator is not `held_out` (reals and the other generators' fakes);
    - val   = the same for split "val";
    - test  = reals of split "test" + `held_out`'s fakes of split "test" (`held_out_fakes="test"`, default:
      the same reals and sources the ordinary test uses) or of every split (`"all"`: more fakes; none of them is
      in train or val, but translation fakes from training sources then share frames with training reals).
    Other generators' test fakes are left out of the test set: it measures the unseen generator alone.
    """
    _check_columns(df, ("label", "generator", "split"))
    gens = fake_generators(df)
    if held_out not in gens:
        raise _did_you_mean(held_out, gens, "held-out generator")
    if held_out_fakes not in HELD_OUT_FAKES:
        raise ValueError(f"held_out_fakes must be one of {HELD_OUT_FAKES}, got {held_out_fakes!r}")
    is_held = (df["label"] == 1) & (df["generator"] == held_out)
    train = df[(df["split"] == "train") & ~is_held]
    val = df[(df["split"] == "val") & ~is_held]
    held_fakes = is_held if held_out_fakes == "all" else is_held & (df["split"] == "test")
    test = df[((df["split"] == "test") & (df["label"] == 0)) | held_fakes]
    return ProtocolSplit(train, val, test)


def leave_one_generator_out_all(df: pd.DataFrame, held_out_fakes: str = "test") -> Iterator[tuple[str, ProtocolSplit]]:
    """(generator, split) for every fake generator of the manifest, in name order."""
    for gen in fake_generators(df):
        yield gen, leave_one_generator_out(df, gen, held_out_fakes)


# ------------------------------------------------------------------------------------------ by identity


def source_identity(df: pd.DataFrame) -> pd.Series:
    """Identity of each row's real source: the `identity` of the row named by `source_id` when that row is in
    the manifest, else the row's own `identity` (zoo fakes copy their source's identity; a face-swap video's
    `source_id` names a re-encoded copy that is not a row). Reals map to their own identity."""
    own = df["identity"].fillna("").astype(str)
    by_sample = dict(zip(df["sample_id"].astype(str), own))
    looked_up = df["source_id"].fillna("").astype(str).map(by_sample)
    return looked_up.where(looked_up.notna() & (looked_up != ""), own)


def contains_identity(df: pd.DataFrame, identity: str) -> pd.Series:
    """Boolean mask: rows whose pixels show, or were made from, person `identity`.

    - a real contains x when its `identity` is x;
    - a fake contains x when its source's identity is x (a translation or face swap keeps the source frame's
      pose, hair, background and, for a translation, much of the face; a self-blended fake is x throughout),
      or when its `target` is x (a translation to domain x paints x's appearance learned from x's reals; a face
      swap with target x pastes x's face, decoded by x's decoder, into the source frame).
    - a fake with neither (an unconditional sample, e.g. StyleGAN2) contains nobody in particular. Such a
      generator was still trained on everybody's reals, x's included; the protocol cannot undo that: it
      controls what the *detector* sees, not what the generators saw.
    """
    if not identity:
        raise ValueError("identity must be a non-empty name")
    is_real = df["label"] == 0
    own = df["identity"].fillna("").astype(str) == identity
    via_source = source_identity(df) == identity
    via_target = df["target"].fillna("").astype(str) == identity
    return (is_real & own) | (~is_real & (own | via_source | via_target))


def identity_free_fakes(df: pd.DataFrame) -> pd.Series:
    """Boolean mask: fakes with no identity, no real source and no target (unconditional samples)."""
    blank = lambda col: df[col].fillna("").astype(str) == ""  # noqa: E731
    return (df["label"] == 1) & blank("identity") & blank("source_id") & blank("target")


def identities(df: pd.DataFrame, min_reals: int = 1, media: tuple[str, ...] = ("image", "frame")) -> list[str]:
    """Identities with at least `min_reals` real rows of `media` (sorted); the candidates to hold out. Identities
    with a single still give a test set of one real: use `min_reals` to keep AUCs meaningful."""
    reals = df[(df["label"] == 0) & df["media"].isin(media)]
    counts = reals["identity"].fillna("").astype(str).value_counts()
    return sorted(name for name, n in counts.items() if name and n >= min_reals)


def leave_one_identity_out(df: pd.DataFrame, identity: str, min_val_reals: int = 0, seed: int = 0) -> ProtocolSplit:
    """Split for "person `identity` was never seen in training".

    Rule (exact), with `contains_identity(df, identity)` as "contains":
    - train = rows of split "train" that do not contain the identity;
    - val   = rows of split "val" that do not contain the identity;
    - test  = the identity's reals (every split) + every fake that contains the identity (every split) + the
      identity-free fakes of split "test" (unconditional samples, so every generator can appear in the test).
    Other identities' test reals, and fakes made from or towards other people, are left out: the real class
    of the test set is the held-out person alone, so FPR on it is the "unseen person" false-alarm rate.
    Whole groups move together (a group is one identity plus one video segment), so no group straddles
    training and test.

    When the held-out person fills most of the val split (few identities, long videos), val can be left with
    almost no reals to calibrate on. `min_val_reals` > 0 then moves whole train groups (in seeded hash order,
    with the fakes that share their group_id) to val until val holds that many reals; train and val stay
    disjoint and free of the identity, and the test set is unchanged.
    """
    _check_columns(df, ("label", "generator", "split", "identity", "source_id", "target", "sample_id"))
    known = identities(df, min_reals=1, media=tuple(df["media"].astype(str).unique()))
    if identity not in known:
        raise _did_you_mean(identity, known, "held-out identity")
    has = contains_identity(df, identity)
    train = df[(df["split"] == "train") & ~has]
    val = df[(df["split"] == "val") & ~has]
    if min_val_reals > 0:
        train, val = _refill_val(train, val, min_val_reals, seed)
    test = df[has | ((df["split"] == "test") & identity_free_fakes(df))]
    return ProtocolSplit(train, val, test)


def _refill_val(train: pd.DataFrame, val: pd.DataFrame, min_val_reals: int, seed: int
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move whole train groups that hold reals into val, in seeded hash order, until val has `min_val_reals` reals."""
    from forensics.data.manifest import _unit_hash

    need = min_val_reals - int((val["label"] == 0).sum())
    if need <= 0:
        return train, val
    reals_per_group = train[train["label"] == 0].groupby("group_id").size()
    moved = []
    for group in sorted(reals_per_group.index, key=lambda g: _unit_hash(str(g), seed)):
        if need <= 0:
            break
        moved.append(group)
        need -= int(reals_per_group[group])
    go = train["group_id"].isin(moved)
    return train[~go], pd.concat([val, train[go]])


def leave_one_identity_out_all(df: pd.DataFrame, min_reals: int = 20, min_val_reals: int = 0,
                               seed: int = 0) -> Iterator[tuple[str, ProtocolSplit]]:
    """(identity, split) for every identity with at least `min_reals` real image/frame rows, in name order."""
    for ident in identities(df, min_reals=min_reals):
        yield ident, leave_one_identity_out(df, ident, min_val_reals, seed)


# ------------------------------------------------------------------------------------------ description


def mask_of(rows: pd.DataFrame, part: pd.DataFrame) -> np.ndarray:
    """Boolean mask over `rows` (e.g. the rows of images already loaded, `SplitData.rows`) of the samples that are
    in protocol part `part`, matched by `sample_id`, so one decoded image set serves every protocol.  # [len(rows)]"""
    return rows["sample_id"].astype(str).isin(set(part["sample_id"].astype(str))).to_numpy()



def describe_protocol(split: ProtocolSplit) -> dict[str, dict[str, int]]:
    """Row counts per part and generator ("real" for reals), for logs and reports."""
    out: dict[str, dict[str, int]] = {}
    for part, rows in zip(ProtocolSplit._fields, split):
        counts = rows.groupby(np.where(rows["label"] == 0, REAL, rows["generator"].astype(str))).size()
        out[part] = {str(k): int(v) for k, v in counts.items()}
    return out
