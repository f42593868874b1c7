"""Property tests for the simulator: fields are pointwise in world position, schedules keep their windows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.sources.simulator.landcover import render_ground
from monitoring.sources.simulator.noise import gamma_grid, value_noise
from monitoring.sources.simulator.scenario import CloudSettings
from monitoring.sources.simulator.schedule import optical_scenes, sar_scenes
from monitoring.sources.simulator.spectra import paddy_weights
from monitoring.sources.simulator.world import PIXEL_M, Window, World

X0, Y0 = 465_000.0, 1_590_000.0  # near Preah Vihear, UTM 48N


def _window(col: int, row: int, nx: int, ny: int) -> Window:
    xs = X0 + (np.arange(col, col + nx) + 0.5) * PIXEL_M
    ys = Y0 - (np.arange(row, row + ny) + 0.5) * PIXEL_M
    return Window(xs, ys)


@settings(max_examples=40, deadline=None)
@given(
    col=st.integers(0, 40),
    row=st.integers(0, 40),
    nx=st.integers(1, 30),
    ny=st.integers(1, 30),
    scale=st.sampled_from([15.0, 120.0, 3000.0]),
    octaves=st.integers(1, 4),
)
def test_noise_of_a_sub_window_is_the_crop_of_the_noise(
    col: int, row: int, nx: int, ny: int, scale: float, octaves: int
) -> None:
    big = _window(0, 0, 80, 80)
    sub = _window(col, row, nx, ny)
    a = value_noise(17, big.xs, big.ys, scale, octaves=octaves)[row : row + ny, col : col + nx]
    b = value_noise(17, sub.xs, sub.ys, scale, octaves=octaves)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(b) <= 1.0)
    np.testing.assert_array_equal(
        gamma_grid(3, big.cols, big.rows, 4.4)[row : row + ny, col : col + nx],
        gamma_grid(3, sub.cols, sub.rows, 4.4),
    )


@settings(max_examples=8, deadline=None)
@given(col=st.integers(0, 30), row=st.integers(0, 30), nx=st.integers(1, 25), ny=st.integers(1, 25))
def test_ground_of_a_sub_window_is_the_crop_of_the_ground(col: int, row: int, nx: int, ny: int) -> None:
    world = World(2025, 32648)
    big, sub = render_ground(world, _window(0, 0, 60, 60)), render_ground(world, _window(col, row, nx, ny))
    crop = (slice(row, row + ny), slice(col, col + nx))
    for name in ("cls", "elev", "dzdx", "tex", "harvest_doy", "plot_u"):
        np.testing.assert_array_equal(getattr(big, name)[crop], getattr(sub, name))


@settings(max_examples=40, deadline=None)
@given(
    start=st.dates(date(2024, 1, 1), date(2026, 6, 1)), days=st.integers(0, 90), lon=st.floats(102.3, 105.6)
)
def test_schedules_stay_in_the_window_sorted_and_regular(start: date, days: int, lon: float) -> None:
    end = start + timedelta(days=days)
    opt = optical_scenes(lon, 14.0, start, end, seed=1, clouds=CloudSettings())
    opt_days = [s.day for s in opt]
    assert opt_days == sorted(set(opt_days)) and all(start <= d <= end for d in opt_days)
    assert all((b - a).days == 5 for a, b in zip(opt_days, opt_days[1:], strict=False))
    assert len(opt) >= days // 5
    assert all(0.0 <= s.cloud_fraction <= 1.0 for s in opt)
    sar = sar_scenes(lon, 14.0, start, end, seed=1)
    keys = [(s.day, s.relative_orbit) for s in sar]
    assert len(set(keys)) == len(keys) and [s.time for s in sar] == sorted(s.time for s in sar)
    assert all(start <= s.day <= end for s in sar) and len(sar) >= 2 * (days // 12)


@settings(max_examples=60, deadline=None)
@given(doy=st.floats(1.0, 365.0), harvest=st.floats(314.0, 359.0), burn=st.floats(0.0, 1.0))
def test_paddy_states_are_a_partition(doy: float, harvest: float, burn: float) -> None:
    h = np.array([harvest], np.float32)
    w = paddy_weights(h, h - 150.0, np.array([0.3], np.float32), doy, burn_fraction=burn)
    assert np.all(w >= -1e-6) and abs(float(w.sum()) - 1.0) < 1e-5
