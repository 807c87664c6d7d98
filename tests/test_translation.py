"""Shared image-to-image machinery (generators.translation) and its synthesis path: domains from a manifest column,
target parsing, translation plans that keep every fake in its source's split, mixed datasets that validate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import generators
from forensics.data.manifest import new_row, read_manifest, to_frame, validate_manifest, write_manifest
from forensics.data.media import write_image
from generators.checkpoint import load_generator, save_generator
from generators.data import DataError
from generators.translation import (
    balanced_indices,
    domain_counts,
    fit_domain_classifier,
    classify,
    load_domain_images,
    plan_translations,
    resolve_domains,
    target_indices,
)

# identity -> (colour, {split: number of groups}); 3 frames per group
IDENTITIES = {
    "anna": ((220, 60, 60), {"train": 2, "val": 1, "test": 1}),
    "bert": ((60, 200, 60), {"train": 2, "test": 1}),
    "cleo": ((60, 60, 220), {"train": 2}),
    "dora": ((200, 200, 200), {"train": 1}),  # too few for the default threshold used in the tests (5)
}


def make_domain_manifest(root: Path, size: int = 40) -> Path:
    """A tiny corpus: per identity a base colour plus noise, groups of 3 frames, splits per group."""
    rng = np.random.default_rng(0)
    rows = []
    for ident, (colour, splits) in IDENTITIES.items():
        for split, n_groups in splits.items():
            for g in range(n_groups):
                for f in range(3):
                    img = np.clip(np.array(colour)[None, None] + rng.normal(0, 25, (size, size, 3)), 0, 255)
                    img[size // 4:3 * size // 4, size // 4:3 * size // 4] = 180  # a "face"
                    rel = f"crops/{ident}/{split}{g}_{f}.png"
                    write_image(root / rel, img.astype(np.uint8))
                    rows.append(new_row(sample_id=f"{ident}:{split}{g}:{f}", path=rel, label=0, media="frame",
                                        group_id=f"{ident}:{split}{g}", split=split, identity=ident,
                                        width=size, height=size, frame_idx=f))
    path = root / "manifest.parquet"
    write_manifest(to_frame(rows), path)
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return make_domain_manifest(tmp_path / "data")


def test_domains_are_the_biggest_identities_or_the_named_ones(manifest: Path) -> None:
    df = read_manifest(manifest)
    counts = domain_counts(df, "identity")
    assert counts.to_dict() == {"anna": 6, "bert": 6, "cleo": 6, "dora": 3}
    assert resolve_domains(df, "identity", (), 3, min_images=5) == ("anna", "bert", "cleo")
    assert resolve_domains(df, "identity", ("dora", "anna"), 2, min_images=5) == ("dora", "anna")
    with pytest.raises(DataError, match="need 4 values"):
        resolve_domains(df, "identity", (), 4, min_images=5)
    with pytest.raises(DataError, match="no real train images"):
        resolve_domains(df, "identity", ("anna", "zed"), 2, min_images=5)
    with pytest.raises(DataError, match="no column"):
        resolve_domains(df, "colour", (), 2, min_images=5)


def test_domain_images_are_resized_labelled_and_balanced(manifest: Path) -> None:
    data = load_domain_images(manifest, 16, "identity", ("cleo", "anna"))
    assert data.images.shape == (12, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.source_resolution == (40,)
    assert sorted(data.domain.tolist()) == [0] * 6 + [1] * 6
    assert all(s.startswith("anna") for s, d in zip(data.sample_ids, data.domain.tolist()) if d == 1)
    idx = balanced_indices(torch.tensor([0, 0, 0, 0, 1]), seed=0)
    assert len(idx) == 8 and (torch.tensor([0, 0, 0, 0, 1])[idx] == 1).sum() == 4


def test_target_parsing() -> None:
    names = ("anna", "bert")
    assert target_indices("bert", 3, names, 2).tolist() == [1, 1, 1]
    assert target_indices(["anna", 1], 2, names, 2).tolist() == [0, 1]
    assert target_indices(torch.tensor(1), 2, names, 2).tolist() == [1, 1]
    with pytest.raises(ValueError, match="did you mean 'bert'"):
        target_indices("berta", 1, names, 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        target_indices(2, 1, names, 2)
    with pytest.raises(ValueError, match="needs a target"):
        target_indices(None, 1, names, 2)


def test_domain_classifier_separates_the_toy_identities(manifest: Path) -> None:
    data = load_domain_images(manifest, 16, "identity", ("anna", "bert", "cleo"))
    clf = fit_domain_classifier(data.images, data.domain, 3, steps=60)
    assert (classify(clf, data.images) == data.domain).float().mean() > 0.9


def _checkpoint(tmp_path: Path, name: str, manifest: Path) -> Path:
    """A tiny untrained translator whose config carries domains resolved from the manifest."""
    torch.manual_seed(0)
    task = generators.get_spec(name).build_task(generators.resolve_config(name, "tiny"))
    task.load_data(manifest)
    return save_generator(tmp_path / f"ck_{name}", name, task.config, task.sampling_network(), {"steps": 0, "seed": 0})


@pytest.mark.parametrize("name", ["cyclegan", "stargan_v2"])
def test_plans_keep_sources_split_and_references_in_that_split(tmp_path: Path, manifest: Path, name: str) -> None:
    ck = load_generator(_checkpoint(tmp_path, name, manifest))
    df = read_manifest(manifest)
    plans = plan_translations(ck.model, df, 40, seed=3)
    assert [p.seed for p in plans] == list(range(3, 43))
    for p in plans:
        assert p.target in ck.model.domains and p.target != p.source["identity"]
        if p.ref is not None:
            assert p.mode == "reference" and p.ref["split"] == p.source["split"] and p.ref["identity"] == p.target
    modes = {p.mode for p in plans}
    assert modes == ({"none"} if name == "cyclegan" else {"latent", "reference"})
    again = plan_translations(ck.model, df, 5, seed=5)
    assert [(p.source["sample_id"], p.target) for p in again] == [(p.source["sample_id"], p.target) for p in plans[2:7]]


@pytest.mark.slow
def test_mixed_dataset_validates_and_records_how_each_fake_was_made(tmp_path: Path, manifest: Path) -> None:
    from generators.synthesize import SynthOptions, synthesize

    cks = [_checkpoint(tmp_path, "cyclegan", manifest), _checkpoint(tmp_path, "stargan_v2", manifest)]
    torch.manual_seed(0)
    sg = generators.create("stylegan2", "tiny")
    cks.append(save_generator(tmp_path / "ck_sg", "stylegan2", sg.config, sg, {"steps": 0, "seed": 0}))
    out = tmp_path / "synth"
    df = synthesize(cks, manifest, out, SynthOptions(n=6, size=32, batch=4), progress=False)
    validate_manifest(df, out)
    assert df.groupby("generator").size().to_dict() == {"cyclegan": 6, "real": 30, "stargan_v2": 6, "stylegan2": 6}
    split_of = dict(zip(df["sample_id"], df["split"]))
    group_of = dict(zip(df["sample_id"], df["group_id"]))
    for row in df[df["generator"].isin(["cyclegan", "stargan_v2"])].to_dict("records"):
        assert row["source_id"] in split_of and row["split"] == split_of[row["source_id"]]
        assert row["group_id"] == group_of[row["source_id"]] and row["target"]
        cfg = json.loads(row["generator_config"])
        assert cfg["target"] == row["target"] and cfg["style"]["mode"] in ("none", "latent", "reference")
        if cfg["style"]["mode"] == "reference":
            assert split_of[cfg["style"]["ref_id"]] == row["split"]
        post = json.loads(row["postproc"])
        assert post["source_resize"] == {"from": [40, 40], "to": [32, 32], "interp": "area"} and "resize" not in post
        assert len(row["checkpoint_sha256"]) == 64 and row["seed"] >= 0
    # same inputs, same bytes (a second run into a fresh folder)
    df2 = synthesize(cks, manifest, tmp_path / "synth2", SynthOptions(n=6, size=32, batch=4), progress=False)
    merged = pd.merge(df, df2, on="sample_id")
    assert (merged["sha256_x"] == merged["sha256_y"]).all()


def test_cli_train_with_named_domains(tmp_path: Path, manifest: Path) -> None:
    from typer.testing import CliRunner

    from forensics.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["zoo", "train", "stargan_v2", "--data", str(manifest), "--config", "tiny",
                                   "--steps", "1", "--out", str(out), "--device", "cpu",
                                   "--domains", "cleo,anna,bert"])
    assert res.exit_code == 0, res.output
    ck = load_generator(out / "ckpt-00000001")
    assert ck.config.domains == ("cleo", "anna", "bert") and ck.config.num_domains == 3
    bad = CliRunner().invoke(app, ["zoo", "train", "stylegan2", "--data", str(manifest), "--config", "tiny",
                                   "--steps", "1", "--out", str(tmp_path / "r2"), "--domains", "a,b"])
    assert bad.exit_code != 0 and "does not translate" in bad.output


@pytest.mark.parametrize("name", ["cyclegan", "stargan_v2"])
def test_committed_small_checkpoint_loads_translates_and_beat_step0(name: str) -> None:
    root = Path(__file__).resolve().parents[1]
    folder = root / "generators" / "checkpoints" / f"{name}_small"
    if not (folder / "model.json").exists():
        pytest.skip("no committed checkpoint")
    assert sum(f.stat().st_size for f in folder.iterdir()) < 20 * 2**20 and (folder / "MODEL_CARD.md").exists()
    ck = load_generator(folder)
    assert ck.config == dataclasses_replace_domains(generators.resolve_config(name, "small"), ck.config.domains)
    assert "pexels_woman" in ck.model.domains and ck.train_steps > 0
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = ck.model.translate(x, target=ck.model.domains[1], seed=[0, 1])
    assert y.shape == x.shape and torch.equal(y, ck.model.translate(x, target=1, seed=[0, 1]))
    report = json.loads((root / "reports" / "zoo" / f"{name}_small_quality.json").read_text())
    assert report["checkpoint_sha256"] == ck.sha256
    assert report["after"]["domain_accuracy"] > report["before"]["domain_accuracy"]
    assert report["after"]["cycle_l1"] < report["before"]["cycle_l1"]
    assert report["after"]["swd_x1e3"]["mean"] < report["before"]["swd_x1e3"]["mean"]


def dataclasses_replace_domains(cfg, domains):  # the preset with the domains resolved at training time
    import dataclasses

    return dataclasses.replace(cfg, domains=domains)
