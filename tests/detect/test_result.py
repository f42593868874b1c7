"""Detect: the Detection every detector returns; its arrays by key, and replaced by key."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import xarray as xr

from monitoring.detect import Detection


def _detection(p_value: bool) -> Detection:
    like = xr.DataArray(np.zeros((3, 4), "float32"), dims=("y", "x"))
    return Detection(
        method="m",
        sensor="sentinel-2",
        change_type=None,
        mask=like.astype(bool),
        score=like + 1,
        count=(like + 2).astype("int16"),
        first=(like + 3).astype("int32"),
        last=(like + 4).astype("int32"),
        before=(like + 5).astype("int32"),
        times=np.array(["2025-12-10"], "datetime64[ns]"),
        scene_ids=("s",),
        p_value=like + 6 if p_value else None,
        extra={"rbr": like + 7},
    )


@pytest.mark.parametrize("p_value", [True, False])
def test_map_layers_replaces_every_array_of_layers_by_its_key_and_keeps_the_rest(p_value: bool) -> None:
    det = _detection(p_value)
    seen: list[str] = []

    def mark(key: str, layer: xr.DataArray) -> xr.DataArray:
        seen.append(key)
        return layer + 100

    out = det.map_layers(mark)
    assert seen == list(det.layers())  # each array once, by the key layers() gives it
    assert list(out.layers()) == list(det.layers())
    for key, layer in out.layers().items():
        np.testing.assert_array_equal(layer.values, det.layers()[key].values + 100, err_msg=key)
    kept = ("method", "sensor", "change_type", "scene_ids")
    assert all(getattr(out, k) == getattr(det, k) for k in kept)
    assert out.times is det.times
    # Every DataArray field of Detection is one of layers(): none is left unmapped.
    arrays = [f.name for f in dataclasses.fields(Detection) if "DataArray" in str(f.type)]
    assert {f"m.{a}" for a in arrays if a not in ("extra",)} <= set(_detection(True).layers())
