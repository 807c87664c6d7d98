"""The report renders every section, its plots and the saturation verdict from a toy benchmark."""
from __future__ import annotations

import json

import pytest

from forensics.detectors.toydata import write_toy_dataset
from forensics.evaluate import BenchConfig, run_benchmark
from forensics.report import Results, saturated_cells, write_report


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    manifest = write_toy_dataset(root / "data", n_real=50, n_fake_per_generator=40, size=32,
                                 generators=("transposed", "bilinear"), seed=1)
    cfg = BenchConfig(detectors=("spectral", "dct"), perturbations=("jpeg75", "resize0.5"), n_boot=30)
    run_benchmark(manifest, root / "bench", cfg, log=lambda m: None)
    return root / "bench"


def test_report_sections_and_plots(bench_dir, tmp_path):
    md = write_report(bench_dir, tmp_path / "r", html=True)
    text = md.read_text()
    for heading in ("Headline", "Per-generator AUC", "Cross-generator matrix", "Robustness", "ROC curves",
                    "Saturation", "Provenance", "manifest_sha256", "config_sha256", "jpeg75"):
        assert heading in text, heading
    for png in ("per_generator_auc.png", "cross_generator.png", "robustness.png", "roc.png"):
        path = tmp_path / "r" / png
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in text
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<table>" in html and 'src="roc.png"' in html


def test_saturation_names_trivially_separable_generator(bench_dir):
    metrics = json.loads((bench_dir / "metrics.json").read_text())
    res = Results(metrics)
    cells = saturated_cells(res)
    for gen, pert in cells:
        assert all(res.auc(d, pert, gen) >= 0.99 for d in res.detectors)
    assert ("transposed", "none") in cells  # both classics nail the checkerboard on clean data
    text = write_report(bench_dir, html=False).read_text()
    assert "**transposed** fakes are still trivially separable" in text


def test_saturation_says_so_when_nothing_saturates(bench_dir, tmp_path):
    metrics = json.loads((bench_dir / "metrics.json").read_text())
    for rec in metrics["results"]:
        for m in rec["metrics"].values():
            m["auc"] = 0.8
    metrics["cross_generator"] = {}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "scores.parquet").write_bytes((bench_dir / "scores.parquet").read_bytes())
    text = write_report(tmp_path, html=False).read_text()
    assert "No saturated cell" in text and "Not computed" in text


def test_video_level_section_shows_counts_or_says_why_it_is_empty():
    from forensics.report import _video_blocks

    both = {"all": {"auc": 0.75, "auc_ci": [0.5, 1.0], "n_real": 2, "n_fake": 3}}
    one_class = {"all": {"auc": None, "n_real": 4, "n_fake": 0}}
    (table,) = _video_blocks([("cnn", "all", "none", both), ("cnn", "stylegan2", "none", one_class)], "all")
    assert table.rows == (("cnn", "none", "2", "3", "0.750 [0.500, 1.000]"),)
    (sentence,) = _video_blocks([("cnn", "all", "none", one_class)], "all")
    assert "4 real and 0 fake videos" in sentence.text
