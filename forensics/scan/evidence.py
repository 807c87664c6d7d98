"""The scan's evidence step: every `forensics.evidence` part run on a file and its faces, as scan.json sections.

File sections (metadata, JPEG history, Content Credentials for images; container facts and Content Credentials
for videos) go under the file's `evidence`; face sections (Grad-CAM, noise residual, spectrum, predicted mask)
under each still face's or video track's `evidence` (a track's are computed on its most suspicious frame, the
crop the report shows). Then the agreement table puts every signal side by side (`evidence.agreement`).

Each section in scan.json is the part's own fields plus `signal` (its stance, or null) and `pictures` (its
PNGs, relative to the scan folder). A part that fails on a file (a bug, an unforeseen decoder error) gives a
section with an `error` and no stance, and the rest of the file's analysis stands.

Grad-CAM maps and the error-level map are drawn only for faces / images that are not clearly clean unless
`all_maps` (`forensics.scan.maps`: a map left out is a section saying `skipped` and why).
"""
from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.evidence.agreement import agreement_table
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal
from forensics.scan.timing import StageTimer


@dataclass
class EvidenceKit:
    """The parts that need a model or a reference from the bundle, loaded once per scan (None: not in it)."""

    gradcam: Any | None  # forensics.evidence.gradcam.GradCamExplainer (None: the bundle has no CNN)
    mask_head: Any | None  # forensics.evidence.mask_head.MaskHead
    spectrum_reference: Any | None  # forensics.evidence.spectrum.SpectrumReference

    @classmethod
    def load(cls, bundle: Any) -> "EvidenceKit":
        from forensics.evidence.gradcam import GradCamExplainer
        from forensics.evidence.mask_head import MaskHead
        from forensics.evidence.spectrum import load_spectrum_reference

        root = Path(bundle.root)
        explainer = GradCamExplainer.from_bundle(bundle) if "cnn" in bundle.detectors else None
        head = MaskHead.load(root)
        if head is not None:
            head.runner = getattr(bundle, "mask_runner", None)  # its ONNX file when the scan runs on onnx
        return cls(gradcam=explainer, mask_head=head, spectrum_reference=load_spectrum_reference(root))


def error_section(name: str, where: str, exc: Exception) -> Section:
    """The section of a part that failed: the error names the file; the traceback goes to stderr for a bug report."""
    traceback.print_exception(exc, file=sys.stderr)
    return Section(name, {"error": f"{where}: {name} evidence failed ({type(exc).__name__}: {exc})"},
                   signal=Signal(NO_INFORMATION, f"{name} could not be computed"))


def guarded(name: str, where: str, make: Callable[[], Section]) -> Section:
    """`make()`, or an error section naming the file: one failing part never costs the file its analysis."""
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - any failure of one evidence part is reported, not raised
        return error_section(name, where, exc)


def file_sections(path: Path, kind: str, fmt: str | None, rgb: np.ndarray | None,
                  face_boxes: np.ndarray | None, skip_ela: "Future[str | None] | None" = None) -> list[Section]:
    """Sections about the file itself. `rgb`: the decoded image (None for a video); `face_boxes` [N,4] lets the
    error-level analysis compare the faces with the rest of the image. `skip_ela`: the reason to leave out the
    error-level map (or None), decided once the faces are scored (`attach_evidence` sets it; None: never skip).
    The JPEG part runs last, so that the other parts overlap the scoring and only the map waits for the decision."""
    from forensics.evidence.container import video_container_section
    from forensics.evidence.jpeg import jpeg_history_section
    from forensics.evidence.metadata import image_metadata_section
    from forensics.evidence.provenance import content_credentials_section

    where = str(path)
    if kind == "image":
        assert rgb is not None
        parts = [("metadata", lambda: image_metadata_section(path, rgb)),
                 ("jpeg", lambda: jpeg_history_section(path, rgb, face_boxes,
                                                       skip_ela=None if skip_ela is None else skip_ela.result))]
    else:
        parts = [("container", lambda: video_container_section(path))]
    parts.append(("c2pa", lambda: content_credentials_section(path)))
    done = {name: guarded(name, where, make) for name, make in sorted(parts, key=lambda p: p[0] == "jpeg")}
    return [done[name] for name, _ in parts]


def face_sections(kit: EvidenceKit, crops: np.ndarray, names: Sequence[str], where: str,
                  maps: Sequence[bool] | None = None) -> list[list[Section]]:
    """Sections for each aligned crop ([N,S,S,3] uint8); `names` prefix their pictures ("face-1", "track-2").
    `maps`: per crop, draw its Grad-CAM map (None: all); the others get a "gradcam" section saying it was skipped."""
    from forensics.evidence.gradcam import gradcam_sections
    from forensics.evidence.mask_head import mask_section
    from forensics.evidence.noise import noise_residual_section
    from forensics.evidence.spectrum import spectrum_section

    if len(crops) == 0:
        return []
    from forensics.scan.maps import SKIPPED_FACE

    out: list[list[Section]] = [[] for _ in names]
    draw = [True] * len(names) if maps is None else [bool(m) for m in maps]
    if kit.gradcam is not None:
        chosen = [i for i, d in enumerate(draw) if d]
        for i, d in enumerate(draw):
            if not d:
                out[i].append(Section("gradcam", {"face": names[i], "skipped": SKIPPED_FACE}))
        try:
            if chosen:
                for i, section in zip(chosen, gradcam_sections(kit.gradcam, crops[chosen], [names[i] for i in chosen])):
                    out[i].append(section)
        except Exception as exc:  # noqa: BLE001
            failed = error_section("gradcam", where, exc)
            for i in chosen:
                out[i].append(failed)
    masks: np.ndarray | Exception | None = None
    if kit.mask_head is not None:
        try:
            masks = kit.mask_head.predict(crops)  # [N,S,S]
        except Exception as exc:  # noqa: BLE001
            masks = exc
    for i, (crop, name) in enumerate(zip(crops, names)):
        out[i].append(guarded("noise", where, lambda: noise_residual_section(crop, name)))
        if kit.spectrum_reference is not None:
            # plot=False: the report draws the curve over the band as SVG (a matplotlib PNG costs ~100 ms a face)
            out[i].append(guarded("spectrum", where,
                                  lambda: spectrum_section(crop, name, kit.spectrum_reference, plot=False)))
        if isinstance(masks, Exception):
            out[i].append(error_section("mask", where, masks))
        elif masks is not None:
            out[i].append(guarded("mask", where, lambda: mask_section(crop, masks[i], name, kit.mask_head.rule)))
    return out


def section_json(section: Section, asset_dir: str) -> dict[str, Any]:
    """The section as scan.json holds it: its fields, its stance, its pictures' paths."""
    return {**section.fields, "signal": None if section.signal is None else section.signal.to_dict(),
            "pictures": [f"{asset_dir}/{n}" for n in sorted(section.assets)]}


def add_assets(assets: dict[str, bytes], sections: Sequence[Section]) -> None:
    for s in sections:
        for name, data in s.assets.items():
            if name in assets:
                raise ValueError(f"evidence picture {name!r} of section {s.name!r} would overwrite another picture")
            assets[name] = data


def faces_signal(name: str, per_unit: Sequence[tuple[str, Section]]) -> Signal | None:
    """One face-level section over a file's faces: any face suggesting manipulation speaks for the file."""
    signals = [(unit, s.signal) for unit, s in per_unit if s.name == name and s.signal is not None]
    if not signals:
        return None
    for stance in (SUGGESTS_MANIPULATION, NO_SIGN):
        hits = [(unit, sig) for unit, sig in signals if sig.stance == stance]
        if hits:
            unit, sig = hits[0]
            more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
            named = sig.reason.startswith(unit.replace(" ", "-"))  # some parts name the face already
            return Signal(stance, f"{sig.reason if named else f'{unit}: {sig.reason}'}{more}")
    return Signal(NO_INFORMATION, signals[0][1].reason)


def start_file_sections(path: Path, kind: str, fmt: str | None, rgb: np.ndarray | None,
                        face_boxes: np.ndarray | None, skip_ela: "Future[str | None] | None" = None
                        ) -> Future[list[Section]]:
    """`file_sections` in a worker thread, started before the faces are scored: the file sections need only the
    file and its pixels, and scoring a few 128 px crops leaves a core idle (their heavy parts, libjpeg, zlib,
    numpy and c2pa, run without the GIL)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-evidence")
    try:
        return pool.submit(file_sections, path, kind, fmt, rgb, face_boxes, skip_ela)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def attach_evidence(fields: dict[str, Any], assets: dict[str, bytes], asset_dir: str, kit: EvidenceKit,
                    path: Path, on_file: Future[list[Section]], unit_crops: np.ndarray, detectors: Sequence[str],
                    timer: StageTimer, all_maps: bool = True, skip_ela: "Future[str | None] | None" = None) -> None:
    """Run the face parts, collect the file sections (`start_file_sections`), and put every section into `fields`
    (the file's and each unit's `evidence`) and `assets`, with the agreement table.

    `unit_crops`: one crop per entry of fields["faces"] (a still face, or a video track's peak frame). `all_maps`
    False: Grad-CAM and the error-level map only where `forensics.scan.maps` says so; `skip_ela` is the decision the
    file sections wait for (set here)."""
    from forensics.scan.maps import SKIPPED_ELA, face_maps, file_ela

    units = fields["faces"]
    if skip_ela is not None and not skip_ela.done():
        skip_ela.set_result(None if file_ela(units, all_maps) else SKIPPED_ELA)
    with timer.stage("evidence"):
        per_unit = face_sections(kit, unit_crops, [u["id"].replace(" ", "-") for u in units], str(path),
                                 face_maps(units, all_maps))
        flat: list[tuple[str, Section]] = []
        for unit, sections in zip(units, per_unit):
            add_assets(assets, sections)
            unit["evidence"] = {s.name: section_json(s, asset_dir) for s in sections}
            flat.extend((unit["id"], s) for s in sections)
        try:
            file_parts = on_file.result()
        except Exception as exc:  # noqa: BLE001 - file_sections guards each part; this is a last resort
            file_parts = [error_section("file evidence", str(path), exc)]
        add_assets(assets, file_parts)
        evidence = {s.name: section_json(s, asset_dir) for s in file_parts}
        signals: dict[str, Signal | None] = {s.name: s.signal for s in file_parts}
        for name in dict.fromkeys(s.name for _, s in flat):
            signals[name] = faces_signal(name, flat)
        evidence["agreement"] = agreement_table(fields, detectors, signals)
        fields["evidence"] = evidence
