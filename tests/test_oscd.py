from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from monitoring.errors import BorderwatchError, ConfigError
from monitoring.oscd import BANDS, OSCDError, OSCDFileNotFoundError, evaluate_oscd, list_cities, read_city

H, W = 60, 66
RES = 1e-4  # ~10 m in degrees, EPSG:4326 like the real files
ORIGIN = (-1.6, 48.1)
COARSE = {"B05": 2, "B06": 2, "B07": 2, "B8A": 2, "B11": 2, "B12": 2, "B01": 6, "B09": 6, "B10": 6}
"""Bands stored at 20 m or 60 m: OSCD keeps them at their native size over the same footprint."""
CHANGE = (slice(10, 25), slice(20, 40))  # 300 labelled pixels


def _write(
    path: Path, arr: np.ndarray, transform: rasterio.Affine | None, crs: str | None = "EPSG:4326"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": arr.shape[0],
        "width": arr.shape[1],
        "count": 1,
        "dtype": arr.dtype,
    }
    if transform is not None:
        profile.update(transform=transform, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # OSCD labels carry no georeference
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr, 1)


def _scene(seed: int) -> dict[str, np.ndarray]:
    """13 bands of a 10 m scene (reflectance), spatially smooth so that resampling is gentle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = 0.15 + 0.05 * np.sin(yy / 7.0) * np.cos(xx / 9.0)
    return {b: base * (0.5 + i / 13) + rng.normal(scale=0.005, size=(H, W)) for i, b in enumerate(BANDS)}


def _write_date(folder: Path, scene: dict[str, np.ndarray], tile: str, extra_px: int = 0) -> None:
    for band, refl in scene.items():
        f = COARSE.get(band, 1)
        if f == 1:
            arr = refl
            if extra_px:  # imgs_2 one pixel larger: same pixel size, the footprint one pixel further
                arr = np.pad(arr, ((0, extra_px), (0, extra_px)), mode="edge")
        else:  # block mean to the native size, over the same footprint
            h, w = -(-H // f), -(-W // f)
            padded = np.pad(refl, ((0, h * f - H), (0, w * f - W)), mode="edge")
            arr = padded.reshape(h, f, w, f).mean(axis=(1, 3))
        px = RES * f if f > 1 else RES
        transform = from_origin(*ORIGIN, px, px)
        if f > 1:  # the coarse grid covers exactly the 10 m footprint, like the real files' bounds
            transform = from_origin(*ORIGIN, RES * W / arr.shape[1], RES * H / arr.shape[0])
        dn = np.clip(np.round(arr * 10000), 1, 65535).astype("uint16")
        _write(folder / f"S2A_OPER_MSI_L1C_TL_TEST_{tile}_{band}.tif", dn, transform)


CLOUD_TOA = {"B01": 0.45, "B02": 0.42, "B03": 0.40, "B04": 0.40, "B05": 0.41, "B06": 0.43, "B07": 0.44}
CLOUD_TOA |= {"B08": 0.44, "B8A": 0.45, "B09": 0.15, "B10": 0.05, "B11": 0.30, "B12": 0.18}
"""A thick cumulus at the top of the atmosphere, which s2cloudless calls cloud with near certainty."""
CLOUD = (slice(36, 60), slice(42, 66))  # 4 x 4 cells of 60 m in the corner away from the labelled change


def make_oscd(
    root: Path, cities: tuple[str, ...] = ("alpha", "beta"), *, cloudy: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """A tiny OSCD tree: 13 bands x 2 dates a city, imgs_2 one pixel larger, labels 1/2; returns labels.

    Cities in `cloudy` have a cloud over CLOUD in imgs_2.
    """
    labels = {}
    for k, city in enumerate(cities):
        before = _scene(10 * k)
        rng = np.random.default_rng(10 * k + 1)
        after = {b: v + rng.normal(scale=0.003, size=v.shape) for b, v in before.items()}
        truth = np.zeros((H, W), bool)
        truth[CHANGE] = True
        for i, b in enumerate(BANDS):  # new roofs: brighter in the visible and SWIR, darker in NIR
            after[b][truth] += -0.08 if b in ("B07", "B08", "B8A") else 0.06 + 0.005 * i
            if city in cloudy:
                after[b][CLOUD] = CLOUD_TOA[b]
        _write_date(root / "images" / city / "imgs_1", before, "T1")
        _write_date(root / "images" / city / "imgs_2", after, "T2", extra_px=1)
        (root / "images" / city / "dates.txt").write_text("date_1: 20160101\ndate_2: 20180101\n")
        _write(root / "labels" / city / f"{city}-cm.tif", np.where(truth, 2, 1).astype("uint8"), None)
        labels[city] = truth
    return labels


@pytest.fixture
def oscd(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, make_oscd(tmp_path)


def test_read_city_aligns_bands_and_dates_to_imgs_1(oscd: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, labels = oscd
    before, after, label = read_city(root, "alpha")
    assert set(before.data_vars) == set(after.data_vars) == set(BANDS)
    for ds in (before, after):
        for b in BANDS:
            assert ds[b].shape == (H, W) and ds[b].dtype == np.float32
    np.testing.assert_array_equal(label.values, labels["alpha"])
    # 10 m bands: exact DN / 10000; imgs_2's extra row and column are cut off, not squeezed in.
    with rasterio.open(next((root / "images/alpha/imgs_2").glob("*_B04.tif"))) as src:
        raw = src.read(1)
    assert raw.shape == (H + 1, W + 1)
    np.testing.assert_allclose(after["B04"].values, raw[:H, :W] / 10000.0, rtol=1e-6)
    # 20 m / 60 m bands are upsampled over the same footprint: no NaN, values in range.
    for b in ("B11", "B01"):
        v = after[b].values
        assert np.isfinite(v).all() and 0.01 < v.min() and v.max() < 0.5


def test_evaluate_oscd_scores_a_known_mask(oscd: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, _ = oscd

    def left_half(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
        m = np.zeros((before.sizes["y"], before.sizes["x"]), bool)
        m[10:25, 20:30] = True  # half of the labelled 15x20 block (150 px) ...
        m[40:45, 0:10] = True  # ... and 50 px of false alarm
        return xr.DataArray(m, dims=("y", "x"))

    res = evaluate_oscd(root, method=left_half)
    for city in ("alpha", "beta"):
        c = res["cities"][city]
        assert (c["tp"], c["fp"], c["fn"]) == (150, 50, 150)
        assert c["precision"] == pytest.approx(0.75)
        assert c["recall"] == pytest.approx(0.5)
        assert c["f1"] == pytest.approx(0.6)
        assert c["iou"] == pytest.approx(150 / 350)
        assert c["pixels"] == H * W
    assert res["pooled"]["tp"] == 300 and res["pooled"]["precision"] == pytest.approx(0.75)
    assert res["pooled"]["f1"] == pytest.approx(0.6)
    json.dumps(res)  # JSON-serialisable as is


@pytest.mark.parametrize("chunks", [None, 32])
def test_evaluate_oscd_irmad_finds_the_synthetic_change(
    oscd: tuple[Path, dict[str, np.ndarray]], chunks: int | None
) -> None:
    root, _ = oscd
    res = evaluate_oscd(root, method="irmad", chunks=chunks)
    assert set(res["cities"]) == {"alpha", "beta"}
    # The 20 m SWIR bands, upsampled, smear the change over a pixel or so around the block: precision < 1.
    assert res["pooled"]["recall"] > 0.95 and res["pooled"]["precision"] > 0.65
    assert set(res["pooled"]) >= {"precision", "recall", "f1", "iou"}


@pytest.mark.parametrize(
    "method",
    [
        *("irmad", "irmad-pixel", "irmad-shift", "irmad-window", "irmad-fdr"),
        *("irmad-texture", "irmad-segment", "irmad-coherent", "irmad-grown", "irmad-green"),
        *("irmad-shift-confirmed", "irmad-calibrated", "irmad-gated", "irmad-equicorrelated"),
        "irmad-stratified",
    ],
)
def test_numpy_and_dask_evaluations_agree(oscd: tuple[Path, dict[str, np.ndarray]], method: str) -> None:
    root, _ = oscd
    a = evaluate_oscd(root, method=method, cities=["alpha"])
    b = evaluate_oscd(root, method=method, cities=["alpha"], chunks=24)
    assert a["pooled"] == b["pooled"] and a["method"] == method
    # Every variant of the rule still finds the synthetic new roofs.
    assert a["pooled"]["recall"] > 0.9


def test_missing_band_file_raises_a_one_line_error_naming_it(
    oscd: tuple[Path, dict[str, np.ndarray]],
) -> None:
    root, _ = oscd
    next((root / "images/beta/imgs_1").glob("*_B04.tif")).unlink()
    with pytest.raises(OSCDFileNotFoundError) as err:
        evaluate_oscd(root, method="cva-otsu")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{root}/images/beta/imgs_1/*_B04.tif not found")
    assert "imgs_1/*_B01.tif" in msg and "README" in msg
    assert isinstance(err.value, BorderwatchError) and isinstance(err.value, FileNotFoundError)


def test_wrong_label_values_and_unknown_method_are_reported(oscd: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, _ = oscd
    _write(root / "labels/alpha/alpha-cm.tif", np.zeros((H, W), "uint8"), None)
    with pytest.raises(OSCDError, match=r"alpha-cm.tif holds values \[0\]: expected 1 \(no change\) and 2"):
        read_city(root, "alpha")
    with pytest.raises(ConfigError, match="Unknown OSCD method 'nope'"):
        evaluate_oscd(root, method="nope")
    assert list_cities(root) == ["alpha", "beta"]


def test_a_file_from_another_scene_cut_is_rejected(oscd: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, _ = oscd
    path = next((root / "images/alpha/imgs_2").glob("*_B03.tif"))
    _write(path, np.ones((H + 30, W), "uint16"), from_origin(*ORIGIN, RES, RES))
    with pytest.raises(OSCDError, match="does not cover the footprint of imgs_1"):
        read_city(root, "alpha")


def _streets(seed: int, moved_px: tuple[float, float]) -> dict[str, np.ndarray]:
    """13 bands of a scene with texture at 4-12 px (blocks and streets, which registration locks on), its
    ground moved by `moved_px` (rows, columns) as a misregistered date's would be, plus sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] - np.asarray(moved_px)[:, None, None]
    waves = np.random.default_rng(7).uniform(size=(12, 3))  # the same ground on both dates
    base = 0.15 + sum(
        0.01 * np.cos(2 * np.pi * (np.cos(6.3 * a) * yy + np.sin(6.3 * a) * xx) / (4 + 8 * p) + 6.3 * ph)
        for a, p, ph in waves
    )
    return {b: base * (0.5 + i / 13) + rng.normal(scale=0.003, size=(H, W)) for i, b in enumerate(BANDS)}


def test_coregister_measures_and_takes_out_a_subpixel_misregistration(tmp_path: Path) -> None:
    make_oscd(tmp_path, ("alpha",))
    moved = (0.4, -0.6)  # imgs_2's ground 0.4 px lower and 0.6 px further left than imgs_1's
    _write_date(tmp_path / "images/alpha/imgs_1", _streets(1, (0.0, 0.0)), "T1")
    _write_date(tmp_path / "images/alpha/imgs_2", _streets(2, moved), "T2", extra_px=1)
    plain_before, plain_after, _ = read_city(tmp_path, "alpha")
    before, after, label = read_city(tmp_path, "alpha", coregister=True)
    # Measured either way; the shift that brings imgs_2 onto imgs_1 is minus the move, within the 0.05 px
    # precision and the bias of bilinear-resampled 20 m / 60 m bands (the 10 m bands alone are measured).
    assert plain_before.attrs["misregistration_px"] == after.attrs["misregistration_px"]
    assert not plain_after.attrs["coregistered"] and after.attrs["coregistered"]
    dy, dx = after.attrs["misregistration_px"]
    assert dy == pytest.approx(-0.4, abs=0.1) and dx == pytest.approx(0.6, abs=0.1)
    inner = (slice(3, H - 3), slice(3, W - 3))

    def misfit(b: xr.Dataset, a: xr.Dataset) -> float:
        return float(np.abs(a["B04"].values[inner] - b["B04"].values[inner]).mean())

    # Aligned, the two dates differ by about the sensor noise; left as they are, by the pattern's slope too.
    assert misfit(before, after) < 0.5 * misfit(plain_before, plain_after)
    assert label.shape == (H, W) and np.isfinite(after["B04"].values[inner]).all()
    res = evaluate_oscd(tmp_path, coregister=True)
    assert res["coregister"] is True and res["cities"]["alpha"]["misregistration_px"] == [dy, dx]
    assert evaluate_oscd(tmp_path)["cities"]["alpha"]["misregistration_px"] == [dy, dx]


def test_a_shift_beyond_misregistration_is_not_measured_and_never_applied(
    oscd: tuple[Path, dict[str, np.ndarray]],
) -> None:
    # The fixture's scene is smooth and its labelled block changes a lot: the correlation peak lands pixels
    # away, which is no misregistration Sentinel-2 ever had.
    root, _ = oscd
    plain, _, _ = read_city(root, "alpha")
    before, after, _ = read_city(root, "alpha", coregister=True)
    assert plain.attrs["misregistration_px"] is None and not after.attrs["coregistered"]
    for b in BANDS:
        np.testing.assert_array_equal(before[b].values, plain[b].values)
    # A date whose 10 m bands hold no texture at all (here: flat) gives nothing to measure either.
    for path in (root / "images/alpha/imgs_2").glob("*_B0[2348].tif"):
        with rasterio.open(path) as src:
            shape, transform = src.shape, src.transform
        _write(path, np.full(shape, 1500, "uint16"), transform)
    _, flat, _ = read_city(root, "alpha", coregister=True)
    assert flat.attrs["misregistration_px"] is None and not flat.attrs["coregistered"]


def test_read_city_gives_each_date_its_sun_and_pixel_size(oscd: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, _ = oscd
    before, after, _ = read_city(root, "alpha")
    # 48.1 deg N: pixels of 1e-4 deg are ~11.1 m tall and ~7.4 m wide; 1 January: a low sun in the south-south-east.
    assert before.attrs["pixel_size_m"] == pytest.approx([11.12, 7.43], abs=0.01)
    assert before.attrs["date"] == "2016-01-01" and after.attrs["date"] == "2018-01-01"
    assert 160 < before.attrs["sun_azimuth"] < 175 and 70 < before.attrs["sun_zenith"] < 75
    (root / "images/alpha/dates.txt").unlink()
    before, _, _ = read_city(root, "alpha")
    assert "sun_azimuth" not in before.attrs and "pixel_size_m" in before.attrs


@pytest.mark.parametrize("chunks", [None, 24])
def test_clouds_are_unobserved_and_predicted_no_change(tmp_path: Path, chunks: int | None) -> None:
    make_oscd(tmp_path, cloudy=("alpha",))
    seen = evaluate_oscd(tmp_path, chunks=chunks)
    blind = evaluate_oscd(tmp_path, chunks=chunks, sky="none")
    assert seen["sky"] == "cloud+shadow" and blind["sky"] == "none"
    alpha, beta = seen["cities"]["alpha"], seen["cities"]["beta"]
    # The 24 x 24 px cloud grown by 120 m: about a quarter of the 60 x 66 px city, none of the labelled change.
    assert 0.2 < alpha["unobserved_fraction"] < 0.35 and alpha["unobserved_change"] == 0
    assert beta["unobserved_fraction"] == 0.0 and beta["fp"] == blind["cities"]["beta"]["fp"]
    # Unmasked, the cloud is one big false alarm; masked, alpha has no more false alarms than cloud-free beta.
    assert blind["cities"]["alpha"]["fp"] > 500 and alpha["fp"] <= beta["fp"] + 5
    assert alpha["recall"] == 1.0 and seen["pooled"]["unobserved_fraction"] > 0
    with pytest.raises(ConfigError, match="Unknown sky mask 'fog'"):
        evaluate_oscd(tmp_path, sky="fog")
