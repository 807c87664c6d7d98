"""Evidence beyond the detectors' scores, each part usable on its own and as a section of a scan.

    metadata.py     EXIF/XMP/IPTC of images, the EXIF thumbnail against the image (Pillow)
    container.py    a video's container and stream facts, keyframes included, by demuxing only (PyAV)
    provenance.py   Content Credentials (C2PA) manifests, read offline, never fetched (c2pa-python)
    jpeg.py         JPEG history: tables and quality (jpeg_tables.py), double compression (double_jpeg.py + its
                    JSON model), error level analysis (ela.py)
    gradcam.py      Grad-CAM of the bundle's CNN on a face (pytorch-grad-cam)
    noise.py        noise-residual map of a face, face vs border energy
    mask_head.py    predicted blend mask, Face X-ray style (network: mask_model.py, training: mask_train.py)
    spectrum.py     a face's azimuthal spectrum against the bundle's real-face reference band
    overlay.py      heat maps over aligned crops, and where the face's parts sit on them
    agreement.py    every signal of a file side by side, conflicts flagged

Every part returns a `Section` (`section.py`): JSON fields for scan.json, pictures for beside the report, and a
`Signal`, what the part says about manipulation, for the agreement table.
"""
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

__all__ = ["Section", "Signal", "SUGGESTS_MANIPULATION", "NO_SIGN", "NO_INFORMATION"]
