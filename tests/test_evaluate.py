"""The benchmark pipeline end to end on a toy manifest (classic detectors: seconds), the detect CLI, and a
slow run that includes the CNN."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forensics.detectors.toydata import write_toy_dataset
from forensics.evaluate import SCORE_COLUMNS, BenchConfig, config_hash, read_scores, run_benchmark

GENS = ("nearest", "transposed", "bilinear")
PERTS = ("jpeg75", "blur1")


@pytest.fixture(scope="module")
def toy_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return write_toy_dataset(root / "data", n_real=60, n_fake_per_generator=40, size=32, generators=GENS, seed=0)


@pytest.fixture(scope="module")
def bench(toy_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(detectors=("spectral", "dct"), perturbations=PERTS, n_boot=50, seed=0)
    return out, run_benchmark(toy_manifest, out, cfg, log=lambda m: None)


def test_scores_table(bench, toy_manifest):
    out, metrics = bench
    scores = read_scores(out)
    assert tuple(scores.columns) == SCORE_COLUMNS
    n_test = metrics["counts"]["test"]["n"]
    # per detector: the all-generator model clean + 2 perturbations, plus 3 per-generator models clean;
    # and the fused detector on clean + 2 perturbations
    assert len(scores) == (2 * (1 + len(PERTS) + len(GENS)) + (1 + len(PERTS))) * n_test
    assert set(scores["perturbation"]) == {"none", *PERTS}
    assert scores["score"].between(0, 1).all()
    csv = pd.read_csv(out / "scores.csv", keep_default_na=False)
    assert len(csv) == len(scores)
    test_ids = set(pd.read_parquet(toy_manifest).query("split == 'test'")["sample_id"])
    assert set(scores["sample_id"]) == test_ids


def test_metrics_json(bench):
    out, metrics = bench
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["generators"] == sorted(GENS)
    prov = on_disk["provenance"]
    assert len(prov["manifest_sha256"]) == 64 and prov["config_sha256"] == config_hash(on_disk["config"])
    assert "numpy" in prov["versions"]
    rec = {(r["detector"], r["train_generators"], r["perturbation"]): r["metrics"] for r in on_disk["results"]}
    all_tag = on_disk["all_generators"]
    for det in ("spectral", "dct"):
        m = rec[(det, all_tag, "none")]
        assert set(m) == {"all", *GENS}
        assert m["transposed"]["auc"] >= 0.97  # in-distribution: the classics nail the checkerboard
        lo, hi = m["all"]["auc_ci"]
        assert lo <= m["all"]["auc"] <= hi
        cross = on_disk["cross_generator"][det]
        assert np.array(cross["auc"]).shape == (3, 3)
        assert cross["mean_diagonal"] > cross["mean_off_diagonal"]  # the known failure to generalise
    assert on_disk["skipped"] == []
    assert (out / "models" / "dct__all" / "config.json").exists()
    assert (out / "models" / "spectral__nearest" / "weights.safetensors").exists()
    att = on_disk["attribution"]  # which generator made each test fake: the toy generators leave clear traces
    assert att["n"] == on_disk["counts"]["test"]["n"] and att["accuracy"] > 0.6
    assert set(att["confusion"]["rows"]) == {"real", *GENS}
    assert (out / "models" / "attribution" / "config.json").exists()


def test_rerun_is_deterministic_and_resumes(bench, toy_manifest, tmp_path):
    out, _ = bench
    logs = []
    cfg = BenchConfig(detectors=("spectral", "dct"), perturbations=PERTS, n_boot=50, seed=0)
    run_benchmark(toy_manifest, out, cfg, resume=True, log=logs.append)
    assert any("loaded dct__all" in m for m in logs)
    fresh = tmp_path / "fresh"
    run_benchmark(toy_manifest, fresh, cfg, resume=False, log=lambda m: None)
    pd.testing.assert_frame_equal(read_scores(out), read_scores(fresh))


def test_resume_refits_a_model_whose_hyperparameters_changed(toy_manifest, tmp_path):
    out = tmp_path / "b"
    base = dict(detectors=("dct",), perturbations=(), cross_generator=False, n_boot=20, seed=0)
    run_benchmark(toy_manifest, out, BenchConfig(**base), log=lambda m: None)
    logs = []
    changed = BenchConfig(**base, detector_params={"dct": {"C": 0.5}})
    metrics = run_benchmark(toy_manifest, out, changed, resume=True, log=logs.append)
    assert any("refitting dct__all" in m and "'C': 0.5" in m for m in logs)
    assert metrics["training"]["dct/" + ",".join(sorted(GENS))].get("resumed") is None


def test_bad_file_is_reported_not_fatal(toy_manifest, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_manifest.parent, data)
    df = pd.read_parquet(data / "manifest.parquet")
    victim = df[(df["split"] == "test") & (df["label"] == 1)].iloc[0]
    (data / victim["path"]).write_bytes(b"")
    cfg = BenchConfig(detectors=("dct",), perturbations=(), cross_generator=False, n_boot=10)
    metrics = run_benchmark(data / "manifest.parquet", tmp_path / "b", cfg, log=lambda m: None)
    assert [s["sample_id"] for s in metrics["skipped"]] == [victim["sample_id"]]
    assert victim["sample_id"] not in set(read_scores(tmp_path / "b")["sample_id"])


def test_config_validation():
    with pytest.raises(ValueError, match="Did you mean"):
        BenchConfig(detectors=("dtc",)).validate()
    with pytest.raises(ValueError, match="jpeg75"):
        BenchConfig(perturbations=("jpg75",)).validate()


def test_cli_train_eval_predict(toy_manifest, tmp_path):
    from forensics.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["detect", "list"])
    assert r.exit_code == 0 and "spectral" in r.output
    model = tmp_path / "m"
    r = runner.invoke(app, ["detect", "train", "dct", "--data", str(toy_manifest), "--out", str(model),
                            "--generators", "transposed"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["detect", "eval", str(model), "--data", str(toy_manifest), "--out", str(tmp_path / "e"),
                            "--perturb", "jpeg75", "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    scores = read_scores(tmp_path / "e")
    assert set(scores["perturbation"]) == {"none", "jpeg75"} and set(scores["train_generators"]) == {"transposed"}
    assert "results" in json.loads((tmp_path / "e" / "metrics.json").read_text())
    df = pd.read_parquet(toy_manifest)
    paths = [str(toy_manifest.parent / p) for p in df["path"][:2]] + [str(tmp_path / "missing.png")]
    r = runner.invoke(app, ["detect", "predict", str(model), *paths])
    assert r.exit_code == 0
    assert r.output.count("\t") >= 4 and "missing.png" in r.output
    r = runner.invoke(app, ["detect", "train", "dct", "--data", str(toy_manifest), "--out", str(model),
                            "--epochs", "2"])
    assert r.exit_code != 0  # --epochs is a CNN option


@pytest.mark.slow
def test_cli_bench_with_cnn(toy_manifest, tmp_path):
    from forensics.cli import app

    params = json.dumps({"cnn": {"epochs": 1, "batch_size": 32, "device": "cpu"}})
    r = CliRunner().invoke(app, ["detect", "bench", "--data", str(toy_manifest), "--out", str(tmp_path / "b"),
                                 "--detectors", "spectral,cnn", "--perturb", "jpeg75", "--cross-detectors",
                                 "spectral", "--params", params, "--n-boot", "20"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "b" / "report.md").read_text()
    assert "cnn" in text and (tmp_path / "b" / "report.html").exists()
    training = json.loads((tmp_path / "b" / "metrics.json").read_text())["training"]
    assert training["cnn/bilinear,nearest,transposed"]["best_epoch"] == 1


@pytest.fixture(scope="module")
def logo_bench(toy_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("logo")
    cfg = BenchConfig(detectors=("spectral", "dct"), perturbations=PERTS, cross_generator=False,
                      logo_detectors=("dct",), n_boot=50, seed=0)
    return out, run_benchmark(toy_manifest, out, cfg, log=lambda m: None)


def test_leave_one_generator_out_never_trains_on_the_held_out_generator(logo_bench, toy_manifest):
    out, metrics = logo_bench
    df = pd.read_parquet(toy_manifest)
    train = df[df["split"] == "train"]
    logo = metrics["leave_one_generator_out"]
    assert set(logo) == {"dct"}  # only the detector asked for
    assert set(logo["dct"]["held_out"]) == set(GENS)
    for g in GENS:
        fitted = json.loads((out / "models" / f"dct__logo-{g}" / "config.json").read_text())["fitted"]
        trained_on = fitted["trained_on_"].split(",")
        assert g not in trained_on and set(trained_on) == set(GENS) - {g}
        expected = int((train["label"] == 0).sum() + (train["label"].eq(1) & train["generator"].isin(trained_on)).sum())
        assert fitted["n_train_"] == expected
        m = logo["dct"]["held_out"][g]
        assert m["n_fake"] == int(((df["split"] == "test") & (df["generator"] == g)).sum())
        assert 0.0 <= m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1] <= 1.0


def test_calibrated_decisions_cover_every_perturbation_and_the_fused_detector(logo_bench):
    out, metrics = logo_bench
    recs = {(r["detector"], r["perturbation"]): r for r in metrics["calibrated_decisions"]}
    assert set(recs) == {(d, p) for d in ("spectral", "dct", "fused") for p in ("none", *PERTS)}
    for r in recs.values():
        assert 0.0 <= r["ece"] <= 1.0
        assert r["fpr"] + r["inconclusive_real"] <= 1.0 + 1e-9
    # The fused detector on clean toy data: calibrated, and its band keeps the reals' FPR near the 5% target.
    assert recs[("fused", "none")]["ece"] < 0.15 and recs[("fused", "none")]["fpr"] <= 0.15
    cal = json.loads((out / "calibration.json").read_text())
    assert set(cal["detectors"]) == {"spectral", "dct"} and cal["fitted_on"]["perturbations"] == ["none", *PERTS]


def test_bundle_from_benchmark_scores_like_the_benchmark(logo_bench, toy_manifest, tmp_path):
    from forensics.bundle import load_bundle
    from forensics.bundle.build import bundle_from_benchmark
    from forensics.data.media import read_image

    out, metrics = logo_bench
    bundle = load_bundle(bundle_from_benchmark(out, tmp_path / "bundle", face={"size": 32, "margin": 0.25}))
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "Leave one generator out" in card and "Known failure modes" in card
    df = pd.read_parquet(toy_manifest).query("split == 'test'").head(20)
    images = np.stack([read_image(toy_manifest.parent / p) for p in df["path"]])
    scores = read_scores(out).query("detector == 'fused' and perturbation == 'none'").set_index("sample_id")
    np.testing.assert_allclose(bundle.score(images).fused, scores.loc[df["sample_id"], "probability"].to_numpy(),
                               rtol=1e-9)
