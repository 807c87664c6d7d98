"""report.html: one self-contained file (every picture embedded as a data: URI, styles inline, no script, no
external reference), rendered with jinja2 (autoescaped) from scan.json and the pictures beside it.

Sections per file: identity and integrity, thumbnail with face boxes coloured by score, the video timeline and
most suspicious frames, every face or track with every detector's score and calibration and its where-maps,
then the file's evidence with the agreement table first (`forensics.scan.report_evidence`).
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from markupsafe import Markup

from forensics.calibration import INCONCLUSIVE, LIKELY_MANIPULATED, NO_SIGN
from forensics.data.media import write_bytes_atomic
from forensics.evidence.spectrum import load_spectrum_reference
from forensics.scan.assets import score_hex
from forensics.scan.report_evidence import face_evidence_html, file_evidence_html

TEMPLATES = Path(__file__).with_name("templates")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if (value != 0 and abs(value) < 10 ** -digits) else f"{value:.{digits}f}"
    return str(value)


def _clock(seconds: float) -> str:
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m):d}:{s:06.3f}"


def _verdict_class(verdict: str | None) -> str:
    classes = {LIKELY_MANIPULATED: "v-likely", INCONCLUSIVE: "v-inconclusive", NO_SIGN: "v-clean"}
    return classes.get(verdict or "", "v-none")


class _Embedder:
    """Pictures (paths relative to the scan folder) as data: URIs; a path leaving the folder is refused."""

    def __init__(self, out: Path) -> None:
        self.out = out.resolve()

    def __call__(self, rel: str | None) -> str:
        if not rel:
            return ""
        path = (self.out / rel).resolve()
        if self.out not in path.parents or path.suffix.lower() not in _MIME or not path.is_file():
            return ""
        return f"data:{_MIME[path.suffix.lower()]};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render_report(out: str | os.PathLike, doc: dict[str, Any], bundle: Any) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    meta_by_name = {e["name"]: e for e in bundle.meta["detectors"]}

    def calibration_text(name: str) -> str:
        e = meta_by_name.get(name)
        if e is None:
            return ""
        cal, band = e["calibration"], e["decision"]
        return f"{cal['method']}, ({_fmt(band['low'])}, {_fmt(band['high'])}]"

    def calibration_json(name: str) -> str:
        e = meta_by_name.get(name)
        return json.dumps(e["calibration"], sort_keys=True)[:400] if e else ""

    def band_text(name: str) -> str:
        e = meta_by_name.get(name)
        return f"({_fmt(e['decision']['low'])}, {_fmt(e['decision']['high'])}]" if e else ""

    fusion = bundle.fusion
    scorer = getattr(bundle, "scorer", "fused")
    band_edges = f"({_fmt(bundle.decision.low)}, {_fmt(bundle.decision.high)}]"
    if scorer == "fused":
        fusion_text = (f"stacked logistic over calibrated logits: intercept {_fmt(fusion.intercept)}, "
                       + ", ".join(f"{n} {_fmt(c)}" for n, c in zip(fusion.detectors, fusion.coef)))
        fused_label, fused_note = "fused", f"stacked, {band_edges}"
    else:  # the release recipe found that fusing did not beat this one detector on unseen people
        fusion_text = f"{scorer} alone: the fusion did not beat it on unseen people (see the model card)"
        fused_label, fused_note = f"verdict ({scorer})", f"{scorer} alone, worst-identity band {band_edges}"

    embed = _Embedder(Path(out))
    band = load_spectrum_reference(bundle.root)

    template = env.get_template("report.html.j2")
    return template.render(
        schema=doc["schema"], custody=doc["custody"], summary=doc["summary"], files=doc["files"],
        band=(bundle.decision.low, bundle.decision.high), fmt=_fmt, clock=_clock, colour=score_hex,
        verdict_class=_verdict_class, embed=embed, calibration_text=calibration_text,
        calibration_json=calibration_json, band_text=band_text, fusion_text=fusion_text,
        fused_note=fused_note, fused_label=fused_label,
        parent=lambda p: Path(p).parent.name + "/",
        file_evidence=lambda evidence: Markup(file_evidence_html(evidence, embed)),
        face_evidence=lambda evidence: Markup(face_evidence_html(evidence, embed, band)))


def write_report(out: str | os.PathLike, doc: dict[str, Any], bundle: Any) -> Path:
    path = Path(out) / "report.html"
    write_bytes_atomic(path, render_report(out, doc, bundle).encode("utf-8", "backslashreplace"))
    return path
