"""The benchmark scripts that have no test of their own elsewhere still run and report what they say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from tests.test_oscd import make_oscd

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oscd_pvalues_tells_the_labelled_change_from_unchanged_blocks(tmp_path: Path) -> None:
    make_oscd(tmp_path)  # two cities of 60 x 66 px, one 15 x 20 px block of new roofs each
    out = tmp_path / "pvalues.json"
    assert _script("oscd_pvalues").main(["--root", str(tmp_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["blocks"]["changed"] >= 2 and result["blocks"]["unchanged"] >= 2
    adopted = result["methods"]["adaptive quantile"]
    assert adopted["changed_below_alpha"] == 1.0 and adopted["unchanged_below_alpha"] == 0.0
    assert adopted["auc"] == 1.0
    assert set(result["methods"]) == {"smallest pixel", "2 x median", "adaptive quantile"}


def test_kernels_reports_the_median_throughput_per_number_of_dates(capsys: object) -> None:
    assert _script("kernels").main(["--mpx", "0.01", "--dates", "3,12", "--repeat", "1"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    rows = [line.split() for line in out.splitlines() if len(line.split()) == 5 and line.split()[0].isdigit()]
    assert [r[0] for r in rows] == ["3", "12"]
    assert all(float(v) > 0 for r in rows for v in r[1:4])


def test_scale_measures_each_area_in_its_own_process_next_to_the_memory_model(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    assert _script("scale").main(["--sides", "1,2", "--json", str(out)]) == 0
    small, large = json.loads(out.read_text())["areas"]
    assert 0.5 < small["km2"] < large["km2"] < 6 and small["mpx"] < large["mpx"]
    for r in (small, large):
        assert r["sar_scenes"] > 50 and r["optical_scenes"] > 0 and r["seconds"] > 0
        assert r["peak_gb"] > 0.2 and r["estimate_gb"] >= 0.5


def test_scale_measures_each_compute_alone_by_dropping_the_other_sensors_scenes(tmp_path: Path) -> None:
    scale = _script("scale")
    for part, kept, dropped in (
        ("optical", "optical_scenes", "sar_scenes"),
        ("radar", "sar_scenes", "optical_scenes"),
    ):
        out = tmp_path / f"{part}.json"
        assert scale.main(["--sides", "1", "--part", part, "--json", str(out)]) == 0
        figures = json.loads(out.read_text())
        (r,) = figures["areas"]
        assert figures["part"] == r["part"] == part
        assert r[kept] > 0 and r[dropped] == 0 and r["peak_gb"] > 0.2


def test_scale_says_what_dask_holds_at_the_peak_of_each_of_the_areas_two_computes(tmp_path: Path) -> None:
    out = tmp_path / "held.json"
    assert _script("scale").main(["--sides", "1", "--held", "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["areas"]
    optical, radar = r["held"]
    for c in (optical, radar):
        assert 0 < c["peak_gb"] < r["peak_gb"] and 0 < len(c["layers_gb"]) <= 5
        assert sum(c["layers_gb"].values()) <= c["peak_gb"] + 0.001 * len(c["layers_gb"])
