"""Frequency evidence of a face: its azimuthal spectrum against the band of real faces the bundle ships.

Up-sampling layers (transposed convolutions, PixelShuffle, nearest/bilinear resizes) leave periodic traces
that show as bumps or a raised tail in the high frequencies of the azimuthally averaged log power spectrum
(Durall et al. 2020). The curve is the spectral detector's own feature (`azimuthal_spectrum`, same bins and
normalisation), so what the analyst sees is what that detector scores. The band: per-bin 5th/50th/95th
percentiles of the starter corpus's real training faces (`benchmarks/build_spectrum_reference.py` writes
`<bundle>/reference/spectrum.json`).

Section "spectrum" fields (one section per face):
    face                    the face's name (e.g. "face-1")
    asset                   "<face>-spectrum.png": the curve over the band (only with plot=True)
    curve                   the face's curve, one value per bin (the scan report draws it over the band as SVG)
    n_bins, normalize       the curve's binning and normalisation (those of the reference)
    reference_n             how many real faces the band comes from
    high_freq_from          first bin counted as high frequency
    bins_outside            bins whose value leaves [p5, p95]
    high_freq_outside       fraction of the high-frequency bins outside the band
    max_excursion           the largest distance outside the band, in band widths (p95 - p5 of that bin)
    max_excursion_bin       its bin
    max_high_freq_excursion the largest distance outside the band among the high-frequency bins (band widths)
    error                   only on failure: "<face>: reason"

Signal: SUGGESTS_MANIPULATION when at least HIGH_FREQ_FRACTION of the high-frequency bins lie outside the band
and one of them lies MIN_EXCURSION band widths out; NO_SIGN otherwise ("no sign" is not "authentic");
NO_INFORMATION when the bundle has no reference or the curve could not be computed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

SECTION = "spectrum"
REFERENCE_FILE = "reference/spectrum.json"
REFERENCE_FORMAT = "forensics-spectrum-reference/1"
# The rule, from `benchmarks/build_spectrum_reference.py --fakes <zoo dataset>`: it flags 0.000 of the starter's
# real val crops (n=768) and 0.001 of its real test crops (n=1552); it flags none of the zoo's test fakes either
# (blend, cyclegan, faceswap, stargan_v2, stylegan2: 64 px faces that the 128 px crop enlarges, which smooths away
# their up-sampling traces), so on this corpus it is a rare alarm for strong traces, not a detector. Looser rules
# (f >= 0.25, e >= 0.5) flag 1.2% of real val and at most 1.7% of any zoo generator: no better.
HIGH_FREQ_FROM = 0.5  # high frequencies: the upper half of the bins (radius >= 0.5 of the corner)
HIGH_FREQ_FRACTION = 0.5  # at least this share of the high-frequency bins outside the band ...
MIN_EXCURSION = 1.0  # ... and one of them at least this many band widths outside


def _round(x: float) -> float:
    return float(f"{x:.6g}")


@dataclass(frozen=True)
class SpectrumReference:
    """Per-bin percentiles of real faces' azimuthal spectra.  p5/p50/p95: [n_bins] float"""

    n_bins: int
    normalize: str
    face_size: int
    p5: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    n: int
    manifest_sha256: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": REFERENCE_FORMAT, "n_bins": self.n_bins, "normalize": self.normalize,
                "face_size": self.face_size, "n": self.n, "manifest_sha256": self.manifest_sha256,
                "command": self.command, "p5": [_round(v) for v in self.p5],
                "p50": [_round(v) for v in self.p50], "p95": [_round(v) for v in self.p95]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "reference") -> SpectrumReference:
        if d.get("format") != REFERENCE_FORMAT:
            raise ValueError(f"{source}: format {d.get('format')!r}, expected {REFERENCE_FORMAT!r}")
        arrays = {k: np.asarray(d[k], np.float64) for k in ("p5", "p50", "p95")}
        n_bins = int(d["n_bins"])
        if any(a.shape != (n_bins,) or not np.isfinite(a).all() for a in arrays.values()):
            raise ValueError(f"{source}: percentiles must be {n_bins} finite values each")
        if not (arrays["p5"] <= arrays["p50"]).all() or not (arrays["p50"] <= arrays["p95"]).all():
            raise ValueError(f"{source}: percentiles out of order (p5 <= p50 <= p95 fails)")
        return cls(n_bins, str(d["normalize"]), int(d["face_size"]), arrays["p5"], arrays["p50"], arrays["p95"],
                   int(d["n"]), str(d["manifest_sha256"]), str(d["command"]))


def face_spectra(crops: np.ndarray, n_bins: int = 64, normalize: str = "minmax") -> np.ndarray:
    """The spectral detector's curve per face.  # [N,S,S,3] uint8 -> [N,n_bins] float32"""
    from forensics.detectors.spectral import azimuthal_spectrum

    return azimuthal_spectrum(crops, n_bins=n_bins, normalize=normalize)


def build_reference(crops: np.ndarray, manifest_sha256: str, command: str, n_bins: int = 64,
                    normalize: str = "minmax") -> SpectrumReference:
    """Percentile band of real faces' curves.  # crops [N,S,S,3] uint8"""
    curves = face_spectra(crops, n_bins, normalize).astype(np.float64)  # [N,n_bins]
    p5, p50, p95 = np.percentile(curves, [5, 50, 95], axis=0)
    return SpectrumReference(n_bins, normalize, int(crops.shape[1]), p5, p50, p95, len(crops), manifest_sha256,
                             command)


def load_spectrum_reference(bundle_root: str | Path) -> SpectrumReference | None:
    """The bundle's reference band; None when the bundle has none (bundles made before it existed). A file that
    is there but broken raises ValueError naming it."""
    path = Path(bundle_root) / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        return SpectrumReference.from_dict(json.loads(path.read_text()), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a spectrum reference ({type(exc).__name__}: {exc})") from exc


def excursions(curve: np.ndarray, reference: SpectrumReference) -> np.ndarray:
    """Signed distance outside the band per bin in band widths: > 0 above p95, < 0 below p5, 0 inside.
    # [n_bins] -> [n_bins]"""
    width = np.maximum(reference.p95 - reference.p5, 1e-6)
    above = np.maximum(curve - reference.p95, 0.0)
    below = np.maximum(reference.p5 - curve, 0.0)
    return (above - below) / width


def spectrum_fields(curve: np.ndarray, reference: SpectrumReference, name: str) -> dict[str, Any]:
    """Fields of one face's curve against the band (see the module docstring)."""
    exc = excursions(np.asarray(curve, np.float64), reference)
    hf = int(round(HIGH_FREQ_FROM * reference.n_bins))
    worst = int(np.argmax(np.abs(exc)))
    return {
        "face": name,
        "asset": f"{name}-spectrum.png",
        "n_bins": reference.n_bins,
        "normalize": reference.normalize,
        "reference_n": reference.n,
        "high_freq_from": hf,
        "bins_outside": [int(i) for i in np.flatnonzero(exc != 0)],
        "high_freq_outside": _round(float(np.mean(exc[hf:] != 0))),
        "max_excursion": _round(float(abs(exc[worst]))),
        "max_excursion_bin": worst,
        "max_high_freq_excursion": _round(float(np.abs(exc[hf:]).max())),
        "curve": [float(f"{v:.4g}") for v in np.asarray(curve, np.float64)],
    }


def spectrum_signal(fields: dict[str, Any]) -> Signal:
    """The conservative rule in the module docstring."""
    frac, worst = fields["high_freq_outside"], fields["max_high_freq_excursion"]
    if frac >= HIGH_FREQ_FRACTION and worst >= MIN_EXCURSION:
        return Signal(SUGGESTS_MANIPULATION,
                      f"{frac:.0%} of the high-frequency bins (from bin {fields['high_freq_from']}) lie outside the "
                      f"real-face band, up to {worst:.2g} band widths: the kind of trace up-sampling layers leave")
    return Signal(NO_SIGN, f"{frac:.0%} of the high-frequency bins outside the real-face band, at most {worst:.2g} "
                           "band widths (the rule needs "
                           f"{HIGH_FREQ_FRACTION:.0%} and {MIN_EXCURSION:g})")


def spectrum_png(curve: np.ndarray, reference: SpectrumReference, title: str = "") -> bytes:
    """Small PNG (320x200 px) of the curve (red) over the real band (blue: 5-95% shaded, median line), the
    high-frequency bins shaded grey. A fixed layout and few text items: matplotlib's automatic layout and tick
    text are most of its cost."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # never a window: the scan runs headless
    from matplotlib.figure import Figure

    bins = np.arange(reference.n_bins)
    fig = Figure(figsize=(3.2, 2.0), dpi=100)
    ax = fig.add_axes((0.1, 0.16, 0.87, 0.72))
    ax.axvspan(HIGH_FREQ_FROM * reference.n_bins, reference.n_bins - 1, color="0.92", lw=0)
    ax.fill_between(bins, reference.p5, reference.p95, color="tab:blue", alpha=0.25, lw=0)
    ax.plot(bins, reference.p50, color="tab:blue", lw=0.8)
    ax.plot(bins, curve, color="tab:red", lw=1.2)
    ax.set_xlim(0, reference.n_bins - 1)
    ax.set_xticks([0, reference.n_bins // 2, reference.n_bins - 1], ["low", "frequency", "high"], fontsize=6)
    ax.set_yticks([])
    ax.set_ylabel("log power", fontsize=6)
    ax.set_title(f"{title}: red = this face, blue = real 5-95%".lstrip(": "), fontsize=6)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version stamp: same curve, same bytes
    return buf.getvalue()


def spectrum_section(crop: np.ndarray, name: str, reference: SpectrumReference | None,
                     plot: bool = True) -> Section:
    """The "spectrum" section of one face. Never raises. plot=False skips the PNG (the curve and fields cost ~3 ms,
    the matplotlib picture ~100+ ms) and drops "asset" from the fields.  # crop [S,S,3] uint8"""
    if reference is None:
        return Section(SECTION, {"face": name, "error": f"{name}: the bundle has no real-face spectrum reference"},
                       signal=Signal(NO_INFORMATION, "no reference band in this bundle"))
    try:
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop must be RGB uint8 [S,S,3], got {crop.dtype} {crop.shape}")
        if crop.shape[:2] != (reference.face_size, reference.face_size):
            raise ValueError(f"crop is {crop.shape[1]}x{crop.shape[0]}, the reference is for "
                             f"{reference.face_size} px faces")
        curve = face_spectra(crop[None], reference.n_bins, reference.normalize)[0].astype(np.float64)  # [n_bins]
        fields = spectrum_fields(curve, reference, name)
        assets = {fields["asset"]: spectrum_png(curve, reference, title=name)} if plot else {}
        if not plot:
            del fields["asset"]
    except Exception as exc:  # noqa: BLE001 - evidence never stops a scan; the error is in the section
        return Section(SECTION, {"face": name, "error": f"{name}: {type(exc).__name__}: {exc}"},
                       signal=Signal(NO_INFORMATION, "the spectrum could not be computed"))
    return Section(SECTION, fields, assets, spectrum_signal(fields))
