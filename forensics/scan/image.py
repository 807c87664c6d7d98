"""One still image: decode by content, find and align every face, score, quality, verdicts, pictures."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.data.faces import Face
from forensics.data.media import read_image_by_content
from forensics.scan.assets import BoxLabel, crop_png, encode_jpeg, thumbnail
from forensics.scan.context import Analysis, ScanContext
from forensics.scan.faces import align_crops
from forensics.scan.quality import face_pixels, jpeg_quality, sharpness
from forensics.scan.timing import StageTimer
from forensics.scan.verdict import face_verdict, file_verdict


def sig(x: float, digits: int = 6) -> float:
    """A float rounded to `digits` significant digits: stable, compact JSON (raw scores can be 1e-19)."""
    return float(f"{float(x):.{digits}g}")


def rounded_record(record: dict[str, Any]) -> dict[str, Any]:
    """A `FaceScores.face(i)` record with its floats at 6 significant digits."""
    out = {"detectors": {n: {"score": sig(d["score"]), "probability": sig(d["probability"]), "verdict": d["verdict"]}
                         for n, d in record["detectors"].items()},
           "probability": sig(record["probability"]), "verdict": record["verdict"],
           "detectors_disagree": record["detectors_disagree"]}
    if "ood" in record:
        ood = record["ood"]
        out["ood"] = {k: (v if k == "flagged" else sig(v)) for k, v in ood.items()}
    if "attribution" in record:
        att = record["attribution"]
        out["attribution"] = {"generator": att["generator"], "probability": sig(att["probability"]),
                              "probabilities": {c: sig(v) for c, v in att["probabilities"].items()}}
    return out


@dataclass
class DecodedImage:
    """An image decoded, its JPEG quality read and its faces found: what `analyse_image` starts from. Made per
    file here, or ahead of time for a batch of photos (`forensics.scan.batching`: decode in a thread pool, one
    MTCNN pass per batch)."""

    rgb: np.ndarray  # [H,W,3] uint8
    jpeg: dict[str, Any] | None
    faces: list[Face] | None = None  # None: not searched yet


def decode_image(path: str | os.PathLike, timer: StageTimer, fmt: str | None, max_pixels: int) -> DecodedImage:
    """Decode by content (MediaError for a bad file) and read the JPEG quality; no face search yet."""
    with timer.stage("decode"):
        rgb = read_image_by_content(path, max_pixels)  # [H,W,3]
    with timer.stage("quality"):
        jpeg = jpeg_quality(Path(path)) if fmt == "jpeg" else None
    return DecodedImage(rgb, jpeg)


def analyse_image(path: str | os.PathLike, ctx: ScanContext, asset_dir: str, fmt: str | None,
                  decoded: DecodedImage | None = None) -> Analysis:
    """`asset_dir`: the file's asset folder relative to the scan folder (what scan.json points at); `decoded`:
    the image already decoded (and its faces found), else done here."""
    from concurrent.futures import Future

    path = Path(path)
    decoded = decoded or decode_image(path, ctx.timer, fmt, ctx.settings.max_pixels)
    if decoded.faces is None:
        with ctx.timer.stage("detect"):
            decoded.faces = ctx.finder.detect([decoded.rgb])[0]
    rgb, jpeg = decoded.rgb, decoded.jpeg
    faces = sorted(decoded.faces, key=lambda f: (float(f.box[0]), float(f.box[1])))  # face 1 is the leftmost
    on_file = None
    skip_ela: Future[str | None] = Future()  # decided once the faces are scored (forensics.scan.maps)
    if ctx.evidence is not None:  # metadata, JPEG history, C2PA: computed in a thread while the faces are scored
        from forensics.scan.evidence import start_file_sections

        boxes = np.stack([f.box for f in faces]) if faces else None  # [N,4]
        on_file = start_file_sections(path, "image", fmt, rgb, boxes, skip_ela)
    try:
        return _finish(path, ctx, asset_dir, rgb, jpeg, faces, on_file, skip_ela)
    finally:
        if not skip_ela.done():  # an error before the decision: the file-evidence thread must not wait forever
            skip_ela.set_result(None)


def _finish(path: Path, ctx: ScanContext, asset_dir: str, rgb: np.ndarray, jpeg: dict[str, Any] | None,
            faces: list[Face], on_file: Any, skip_ela: Any) -> Analysis:
    size, margin = ctx.bundle.face_size, ctx.bundle.face_margin
    with ctx.timer.stage("align"):
        crops = align_crops(rgb, faces, size, margin)  # [N,S,S,3]
    scores = ctx.score(crops) if faces else None
    out_faces, assets, labels = [], {}, []
    jq = jpeg["quality"] if jpeg else None
    for i, face in enumerate(faces):
        assert scores is not None
        record = rounded_record(scores.face(i))
        px = face_pixels(face.box)
        verdict, reasons = face_verdict(record, px, jq, ctx.rules, ctx.band)
        name = f"face-{i + 1}.png"
        assets[name] = crop_png(crops[i])
        out_faces.append({
            "id": f"face {i + 1}", "kind": "still", "box": [round(float(v), 2) for v in face.box],
            "landmarks": np.round(face.landmarks, 2).tolist(), "detection_score": sig(face.score),
            "quality": {"face_px": round(px, 1), "sharpness": sig(sharpness(crops[i]), 4), "jpeg_quality": jq},
            "scores": record, "probability": record["probability"], "model_verdict": record["verdict"],
            "verdict": verdict, "reasons": reasons, "crop": f"{asset_dir}/{name}",
        })
        labels.append(BoxLabel(face.box, f"{i + 1}: {record['probability']:.2f}", record["probability"]))
    verdict, probability, reasons = file_verdict(out_faces, "no face found in the image (the search covers faces "
                                                 f"of {ctx.settings.min_face} px and more)")
    with ctx.timer.stage("report"):
        assets["thumb.jpg"] = encode_jpeg(thumbnail(rgb, labels, ctx.settings.thumb_side))
    media = {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "jpeg": jpeg}
    fields = {"media": media, "faces": out_faces, "video": None, "verdict": verdict,
              "probability": None if probability is None else sig(probability), "reasons": reasons,
              "thumbnail": f"{asset_dir}/thumb.jpg", "evidence": {}}
    if ctx.evidence is not None:
        from forensics.scan.evidence import attach_evidence

        attach_evidence(fields, assets, asset_dir, ctx.evidence, path, on_file, crops, ctx.detector_names, ctx.timer,
                        all_maps=ctx.settings.all_maps, skip_ela=skip_ela)
    return Analysis(fields, assets)
