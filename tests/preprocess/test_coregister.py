from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from monitoring.preprocess.coregister import SHIFT_PRECISION_PX, estimate_shift


def _texture(seed: int, shape: tuple[int, int] = (96, 112)) -> np.ndarray:
    """A field-and-roof-like texture: smoothed noise at two scales (an image phase correlation can lock on)."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), 3) + 0.3 * ndimage.gaussian_filter(
        rng.normal(size=shape), 1
    )


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.5), (-0.65, 0.2), (1.25, 0.0)])
def test_estimate_shift_recovers_a_known_subpixel_shift(shift: tuple[float, float]) -> None:
    bands = [_texture(s) for s in range(3)]
    # The other date: each band's content moved by `shift` (spline interpolation), plus a little sensor noise.
    rng = np.random.default_rng(9)
    moved = [
        ndimage.shift(b, shift, order=3, mode="nearest") + rng.normal(scale=0.01, size=b.shape) for b in bands
    ]
    dy, dx = estimate_shift(bands, moved)
    # The shift that registers `moved` onto the reference is minus the one applied.
    assert dy == pytest.approx(-shift[0], abs=0.1) and dx == pytest.approx(-shift[1], abs=0.1)
    # Snapped to the precision, with no float noise and no negative zero.
    for v in (dy, dx):
        assert v == round(round(v / SHIFT_PRECISION_PX) * SHIFT_PRECISION_PX, 6)
        assert str(v) != "-0.0"


def test_estimate_shift_ignores_nan_and_one_textureless_band() -> None:
    bands = [_texture(s) for s in range(3)]
    moved = [ndimage.shift(b, (0.0, 0.5), order=3, mode="nearest") for b in bands]
    moved[0][10:40, 20:60] = np.nan  # a cloud in one date
    bands.append(np.full_like(bands[0], 0.1))  # a flat band: it has no phase to correlate and is skipped
    moved.append(np.full_like(bands[0], 0.1))
    dy, dx = estimate_shift(bands, moved)
    assert dy == pytest.approx(0.0, abs=0.1) and dx == pytest.approx(-0.5, abs=0.1)


def test_estimate_shift_needs_matching_bands_on_one_grid() -> None:
    a = _texture(0)
    with pytest.raises(ValueError, match="same bands of both dates"):
        estimate_shift([a, a], [a])
    with pytest.raises(ValueError, match="both dates on one grid"):
        estimate_shift([a], [a[:-1]])
    with pytest.raises(ValueError, match="no band with texture"):
        estimate_shift([np.full_like(a, 0.2)], [a])
