"""Which faces and files get the costly where-maps (Grad-CAM per face, the error-level map per image).

By default only those that are not clearly clean: a face or video track is clearly clean when its own verdict is
*no sign of manipulation* (calibrated probability below the band, no detector saying the opposite, not out of the
bundle's distribution, large and uncompressed enough to judge; `forensics.scan.verdict`); an image is clearly
clean when it has faces and every one of them is. An image without a face is not. `--all-maps`
(`ScanSettings.all_maps`) draws every map. A map left out is still a section: its fields say `skipped` and why,
so the report and scan.json show that it was not drawn rather than leaving a gap. The other face parts (noise
residual, spectrum, predicted mask) and the rest of the JPEG history (tables, double compression) always run:
they are cheap, and the mask and JPEG sections take stances in the agreement table (Grad-CAM and ELA take none).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forensics.calibration import NO_SIGN

SKIPPED_FACE = ("not drawn: this face is clearly clean (verdict: no sign of manipulation); "
                "`forensics scan --all-maps` draws it")
SKIPPED_ELA = ("not computed: every face in the image is clearly clean (verdict: no sign of manipulation); "
               "`forensics scan --all-maps` computes it")


def clearly_clean(unit: dict[str, Any]) -> bool:
    """A still face's or a video track's scan.json record whose verdict is *no sign of manipulation*."""
    return unit.get("verdict") == NO_SIGN


def face_maps(units: Sequence[dict[str, Any]], all_maps: bool) -> list[bool]:
    """Per unit: draw its Grad-CAM map?"""
    return [all_maps or not clearly_clean(u) for u in units]


def file_ela(units: Sequence[dict[str, Any]], all_maps: bool) -> bool:
    """Compute the image's error-level map?"""
    return all_maps or not units or not all(clearly_clean(u) for u in units)
