"""The scan test corpus (tests.test_scan_helpers: stills, a GIF, a PNG under a .jpg name, a faceless picture,
broken and non-media files, a short clip) scanned on both runtimes gives the same verdicts, per file and per
face or track, and the same probabilities within 1e-4; scan.json records the runtime each scan used."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from forensics.scan.pipeline import run_scan
from forensics.scan.settings import ScanSettings
from tests.onnx_util import SHIPPED, build_full_toy_bundle, copy_bundle
from tests.test_scan_helpers import make_media_folder

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # four scans of the corpus (real MTCNN, evidence on) and two exports: ~20-40 s

TOL = 1e-4 + 1e-5  # scan.json keeps 6 significant digits


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("onnx_corpus") / "case"
    make_media_folder(root)
    return root


def _scan(corpus: Path, bundle: Path, out: Path, runtime: str) -> dict:
    run_scan([str(corpus)], out, bundle, ScanSettings(every=5, runtime=runtime), progress=False, log=lambda m: None)
    return json.loads((out / "scan.json").read_text())


def _compare(a: dict, b: dict) -> int:
    """Assert equal verdicts and close probabilities; returns how many faces/tracks were compared."""
    assert [f["path"] for f in a["files"]] == [f["path"] for f in b["files"]]
    units = 0
    for fa, fb in zip(a["files"], b["files"]):
        name = fa["name"]
        assert (fa["status"], fa["verdict"], fa["reasons"]) == (fb["status"], fb["verdict"], fb["reasons"]), name
        assert (fa["probability"] is None) == (fb["probability"] is None), name
        if fa["probability"] is not None:
            assert abs(fa["probability"] - fb["probability"]) <= TOL, name
        assert len(fa["faces"]) == len(fb["faces"]), name
        for ua, ub in zip(fa["faces"], fb["faces"]):
            units += 1
            assert (ua["verdict"], ua["model_verdict"], ua["reasons"]) == (ub["verdict"], ub["model_verdict"],
                                                                           ub["reasons"]), (name, ua["id"])
            assert abs(ua["probability"] - ub["probability"]) <= TOL, (name, ua["id"])
            if ua["kind"] == "still":
                for det, da in ua["scores"]["detectors"].items():
                    db = ub["scores"]["detectors"][det]
                    assert da["verdict"] == db["verdict"] and abs(da["probability"] - db["probability"]) <= TOL
            mask_a, mask_b = ua["evidence"].get("mask", {}), ub["evidence"].get("mask", {})
            assert (mask_a.get("signal") or {}).get("stance") == (mask_b.get("signal") or {}).get("stance")
        if fa["status"] == "analysed":
            rows_a = [(r["signal"], r["stance"]) for r in fa["evidence"]["agreement"]["rows"]]
            assert rows_a == [(r["signal"], r["stance"]) for r in fb["evidence"]["agreement"]["rows"]], name
    return units


@pytest.mark.parametrize("which", ["toy", "shipped"])
def test_both_runtimes_give_the_same_verdicts_on_the_scan_corpus(which, corpus, tmp_path) -> None:
    from forensics.runtime.export import export_bundle

    if which == "toy":
        bundle = build_full_toy_bundle(tmp_path / "toy")
    else:
        if not (SHIPPED / "bundle.json").is_file():
            pytest.skip("no shipped bundle in this checkout")
        bundle = copy_bundle(SHIPPED, tmp_path / "shipped")
    export_bundle(bundle)
    torch_doc = _scan(corpus, bundle, tmp_path / "torch", "torch")
    onnx_doc = _scan(corpus, bundle, tmp_path / "onnx", "auto")  # auto picks the export
    assert torch_doc["custody"]["model"]["runtime"] == "torch"
    assert onnx_doc["custody"]["model"]["runtime"] == "onnx"
    assert onnx_doc["custody"]["settings"]["runtime"] == "auto"
    assert _compare(torch_doc, onnx_doc) >= 4  # the stills' faces and the clip's track were compared
