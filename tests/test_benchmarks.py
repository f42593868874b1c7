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
