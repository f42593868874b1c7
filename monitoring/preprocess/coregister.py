"""Preprocess: the sub-pixel shift between two dates of the same optical scene (phase correlation).

Sentinel-2's multi-temporal co-registration met its 0.3 px specification only once the Global Reference Image
was used for geometric refinement (processing baseline 02.07 onwards, 2019); pairs processed before then can be
half a pixel or more apart, and a change test then flags every edge. `estimate_shift` measures that offset with
scikit-image's upsampled-DFT phase correlation (Guizar-Sicairos et al. 2008); the caller moves the images by
resampling through their georeference (rasterio), so no pixel is shifted by hand here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.filters import window
from skimage.registration import phase_cross_correlation

SHIFT_PRECISION_PX = 0.05
"""Resolution of the shift estimate (upsampling factor 20 of the cross-power peak). An estimate that rounds to
zero at this precision means the dates are already aligned and nothing is resampled."""


def _tapered(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The band less its median, zero outside `valid`, times a Hann window.

    The Fourier transform treats the image as periodic, so the jump between opposite edges is an edge that both
    dates share in place: without the taper it pulls the correlation peak to zero shift on small or smooth
    images. Pixels without data (and the median) carry no edge of their own either.
    """
    out = np.asarray(a, dtype="float64")
    centred = np.where(valid, out - (np.median(out[valid]) if valid.any() else 0.0), 0.0)
    return centred * window("hann", out.shape)


def estimate_shift(
    reference: Sequence[np.ndarray], moving: Sequence[np.ndarray], *, precision_px: float = SHIFT_PRECISION_PX
) -> tuple[float, float]:
    """(dy, dx) in pixels that moves `moving` onto `reference`: the median over band pairs of their phase
    correlation shift, rounded to `precision_px`.

    `reference` and `moving` hold the same bands of two dates on one grid (NaN where a date has no data; those
    pixels take the band's median); each is tapered by a Hann window first. The convention is scikit-image's: content at pixel p of `moving` belongs at
    p + (dy, dx) to line up with `reference`. The median over bands keeps one band with little texture (or a
    cloud in one date) from setting the shift; a band flat in either date is skipped. Raises ValueError when
    the inputs differ in number or shape, or no band has texture in both dates.
    """
    if len(reference) != len(moving) or not reference:
        raise ValueError(
            f"estimate_shift needs the same bands of both dates, got {len(reference)} and {len(moving)}"
        )
    shifts = []
    for ref, mov in zip(reference, moving, strict=True):
        if ref.shape != mov.shape:
            raise ValueError(f"estimate_shift needs both dates on one grid, got {ref.shape} and {mov.shape}")
        valid = np.isfinite(ref) & np.isfinite(mov)
        a, b = _tapered(ref, valid), _tapered(mov, valid)
        if not (a.any() and b.any()):  # a flat band (or no data) has no phase to correlate
            continue
        s, _, _ = phase_cross_correlation(a, b, upsample_factor=round(1 / precision_px), normalization=None)
        shifts.append(s)
    if not shifts:
        raise ValueError(
            "estimate_shift found no band with texture in both dates: give bands that see the ground"
        )
    dy, dx = np.median(np.asarray(shifts), axis=0)
    # Snap to the precision; round(., 6) drops the float noise of the product, + 0.0 turns -0.0 into 0.0.
    return (
        round(float(np.round(dy / precision_px)) * precision_px, 6) + 0.0,
        round(float(np.round(dx / precision_px)) * precision_px, 6) + 0.0,
    )
