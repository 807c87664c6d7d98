"""Evidence beyond the detectors' scores, each part usable on its own and as a section of a scan.

    metadata.py     EXIF/XMP/IPTC of images, the EXIF thumbnail against the image
    container.py    a video's container and stream facts (PyAV)
    jpeg.py         JPEG history: quantization tables, quality, double compression, error level analysis
    provenance.py   Content Credentials (C2PA) manifests, read offline (c2pa-python)
    gradcam.py      Grad-CAM of the bundle's CNN on a face (pytorch-grad-cam)
    noise.py        noise-residual map of a face
    mask_head.py    predicted manipulation mask (Face X-ray style head trained on blend masks)
    spectrum.py     a face's azimuthal spectrum against the bundle's real-face reference band
    agreement.py    every signal of a file side by side, conflicts flagged

Every part returns a `Section` (`section.py`): JSON fields for scan.json, pictures for beside the report, and a
`Signal`, what the part says about manipulation, for the agreement table.
"""
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

__all__ = ["Section", "Signal", "SUGGESTS_MANIPULATION", "NO_SIGN", "NO_INFORMATION"]
