"""Spectral detector after Durall et al. 2020 ("Watch your up-convolution: CNN based generative deep neural
networks are failing to reproduce spectral distributions"): the azimuthally averaged log power spectrum of the
grayscale image is a 1-D profile in which up-sampling layers leave a tell-tale high-frequency tail; a linear
classifier (logistic regression, or a linear SVM) separates real from fake profiles.

Vectorised: one real FFT per cache-sized slice of the batch, then a single matrix product maps the half-plane spectrum onto
`n_bins` radial bins (bin averaging and resampling folded into one precomputed matrix).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from forensics.detectors.base import grayscale, map_in_chunks
from forensics.detectors.linear import LinearFeatureDetector

_LOG_EPS = 1e-8


@lru_cache(maxsize=16)
def radial_matrix(height: int, width: int, n_bins: int) -> np.ndarray:
    """Matrix mapping a flattened rfft2 half-plane `[H*(W//2+1)]` to the azimuthal mean at `n_bins` radii.

    Each frequency (ky, kx) falls into integer radius round(sqrt(ky^2 + kx^2)) (Durall's binning, from the
    spectrum centre out to the corner); columns of the half-plane that stand for two conjugate frequencies
    count twice, so the averages equal those over the full plane. The per-radius means are then linearly
    resampled to `n_bins` points between radius 0 and the corner, which makes the profile length independent
    of the image size.  # -> [H*(W//2+1), n_bins] float64
    """
    ky = np.fft.fftfreq(height) * height  # [H] integer frequencies
    kx = np.fft.rfftfreq(width) * width  # [W//2+1]
    radius = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)  # [H,Wr]
    weight = np.full(kx.shape, 2.0)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0  # Nyquist column has no separate conjugate
    weight = np.broadcast_to(weight, radius.shape).ravel()
    r = radius.ravel()
    n_radii = int(r.max()) + 1
    counts = np.bincount(r, weights=weight, minlength=n_radii)  # [R]
    onehot = np.zeros((r.size, n_radii))
    onehot[np.arange(r.size), r] = weight / counts[r]  # each row averages into its radius bin
    # Linear interpolation from radii 0..R-1 onto n_bins evenly spaced positions.
    pos = np.linspace(0.0, n_radii - 1, n_bins)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_radii - 1)
    frac = pos - lo
    interp = np.zeros((n_radii, n_bins))
    np.add.at(interp, (lo, np.arange(n_bins)), 1.0 - frac)
    np.add.at(interp, (hi, np.arange(n_bins)), frac)
    return onehot @ interp


def azimuthal_spectrum(images: np.ndarray, n_bins: int = 64, normalize: str = "minmax") -> np.ndarray:
    """Azimuthally averaged log power spectrum of each image's luma.  # [N,H,W,3] uint8 -> [N,n_bins] float32

    normalize: "minmax" scales each profile to [0, 1] as Durall et al. do (removes overall brightness and
    contrast), "none" keeps raw log power."""
    if normalize not in ("minmax", "none"):
        raise ValueError(f"normalize must be 'minmax' or 'none', got {normalize!r}")
    return map_in_chunks(lambda chunk: _azimuthal_spectrum(chunk, n_bins, normalize), images)


def _azimuthal_spectrum(images: np.ndarray, n_bins: int, normalize: str) -> np.ndarray:
    from scipy import fft as sfft

    n, h, w = images.shape[:3]
    # float64 FFT: the DC term is ~1e5 times the weakest high-frequency terms, float32 would blur the latter.
    spec = sfft.rfft2(grayscale(images).astype(np.float64), axes=(1, 2), workers=-1)  # [N,H,W//2+1] complex128
    log_power = spec.real * spec.real  # [N,H,Wr]; in place from here on: this is the memory-bound part
    log_power += spec.imag * spec.imag
    log_power += _LOG_EPS
    np.log(log_power, out=log_power)
    prof = log_power.reshape(n, -1) @ radial_matrix(h, w, n_bins)  # [N,n_bins]
    if normalize == "minmax":
        lo = prof.min(axis=1, keepdims=True)
        span = np.maximum(prof.max(axis=1, keepdims=True) - lo, 1e-12)
        prof = (prof - lo) / span
    return prof.astype(np.float32)


class SpectralDetector(LinearFeatureDetector):
    """Azimuthal log power spectrum -> standardiser -> logistic regression (or linear SVM)."""

    name = "spectral"

    def __init__(
        self,
        n_bins: int = 64,
        normalize: str = "minmax",
        classifier: str = "logreg",
        C: float = 1.0,
        augment: str = "none",
        target_fpr: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.n_bins = n_bins
        self.normalize = normalize
        self.classifier = classifier
        self.C = C
        self.augment = augment
        self.target_fpr = target_fpr
        self.seed = seed

    def features(self, images: np.ndarray) -> np.ndarray:
        return azimuthal_spectrum(images, self.n_bins, self.normalize)
