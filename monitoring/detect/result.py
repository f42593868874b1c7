"""Detect: the result every detector returns, lazy until the pipeline computes it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from monitoring.results import ChangeType


@dataclass(frozen=True)
class Detection:
    """Per-pixel evidence of one method on one sensor. All arrays are (y, x) on the AOI grid.

    `first`, `last` and `before` index `times` (-1 = none): the first and last observation that showed the
    change, and the latest clear observation before it (-1 when that was in the baseline window).
    """

    method: str
    """Short method name, e.g. 'dnbr', 'soil-exposure', 'cva', 's1-welch-t'."""
    sensor: str
    """'sentinel-2' or 'sentinel-1'."""
    change_type: ChangeType | None
    """The change this method speaks for; None where a later step decides (soil exposure, SAR change)."""
    mask: xr.DataArray
    """bool: the method says 'changed' (at the latest observation, for optical methods)."""
    score: xr.DataArray
    """float32 change magnitude (dNBR, dNDVI, CVA magnitude, dB change)."""
    count: xr.DataArray
    """int: how many independent observations showed the change."""
    first: xr.DataArray
    last: xr.DataArray
    before: xr.DataArray
    times: np.ndarray
    """datetime64[ns] of the observations the indices refer to."""
    scene_ids: tuple[str, ...] = ()
    p_value: xr.DataArray | None = None
    """Corrected p-value of the test, where the method has one."""
    extra: dict[str, xr.DataArray] = field(default_factory=dict)

    def layers(self) -> dict[str, xr.DataArray]:
        """Every array, keyed '<method>.<name>', for one joint compute."""
        out = {
            f"{self.method}.mask": self.mask,
            f"{self.method}.score": self.score,
            f"{self.method}.count": self.count,
            f"{self.method}.first": self.first,
            f"{self.method}.last": self.last,
            f"{self.method}.before": self.before,
        }
        if self.p_value is not None:
            out[f"{self.method}.p_value"] = self.p_value
        out.update({f"{self.method}.{k}": v for k, v in self.extra.items()})
        return out

    def map_layers(self, fn: Callable[[str, xr.DataArray], xr.DataArray]) -> Detection:
        """This detection with every array of `layers` replaced by fn(its key there, the array): e.g. by its
        computed values. Keep the two in step when Detection gains an array."""

        def f(name: str, layer: xr.DataArray) -> xr.DataArray:
            return fn(f"{self.method}.{name}", layer)

        return dataclasses.replace(
            self,
            mask=f("mask", self.mask),
            score=f("score", self.score),
            count=f("count", self.count),
            first=f("first", self.first),
            last=f("last", self.last),
            before=f("before", self.before),
            p_value=None if self.p_value is None else f("p_value", self.p_value),
            extra={k: f(k, v) for k, v in self.extra.items()},
        )
