"""Evaluate: how an alert's optical p-value behaves on real Sentinel-2 pairs (OSCD), for three ways to cite one.

    python benchmarks/oscd_pvalues.py [--root DIR] [--json FILE]

An alert cites one no-change p-value for its region from IR-MAD's per-pixel p-values
(monitoring.detect.multivariate.change_p_values). This asks which region statistic tells labelled change from
unchanged land on real imagery, where the per-pixel model is only approximate. Each city is cut into 14 x 14 px
blocks (~0.2 ha, the alert mapping unit) wholly observed (clouds and shadows excluded as in evaluate oscd):

- *changed*: at least half of the block is labelled change;
- *unchanged*: no labelled change within 5 px of the block (OSCD labels urban change only, so "unchanged"
  blocks still hold fields, water and vegetation that did change: a real-data false-positive rate here is an
  upper bound on the test's own).

For each block three region p-values, each adjusted for the area's blocks (pixels tested / block pixels):

- `smallest pixel`: the smallest pixel p-value, Bonferroni over all pixels tested (the first version);
- `2 x median`: twice the median pixel p-value (valid under any dependence), Bonferroni over the blocks;
- `adaptive quantile`: monitoring.detect.multivariate.region_p_value (Meinshausen, Meier & Bühlmann 2009),
  Bonferroni over the blocks: what alerts cite.

It prints, per method, the share of changed and of unchanged blocks with p < 0.05 and the AUC of -log10 p
between the two (Mann-Whitney). The first two were measured first, the third added after seeing them, with the
paper's default gamma_min and nothing tuned; the figures are from these seven cities only. The tests run this
script on a synthetic OSCD tree; ../shared/data/oscd is never needed by them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

import numpy as np  # noqa: E402
from scipy import ndimage, stats  # noqa: E402

from monitoring.detect.multivariate import change_p_values, region_p_value  # noqa: E402
from monitoring.oscd import list_cities, observed_mask, read_city  # noqa: E402

DEFAULT_ROOT = Path("/work/shared/data/oscd")
BLOCK = 14
"""Block side in pixels: 196 px, about the 0.2 ha alert mapping unit at 10 m."""
CLEARANCE_PX = 5
"""An unchanged block has no labelled change within this many pixels."""
ALPHA = 0.05

RegionP = Callable[[np.ndarray, int], float]
"""(block's pixel p-values, pixels tested in the city) -> the block's adjusted p-value."""
METHODS: dict[str, RegionP] = {
    "smallest pixel": lambda p, n: min(1.0, float(np.nanmin(p)) * n),
    "2 x median": lambda p, n: min(1.0, 2.0 * float(np.nanmedian(p)) * n / p.size),
    "adaptive quantile": lambda p, n: region_p_value(p, regions=n / p.size),
}


def city_blocks(root: Path, city: str) -> tuple[list[int], dict[str, list[float]]]:
    """Labels (1 changed, 0 unchanged) and each method's p-value of one city's usable blocks."""
    before, after, label = read_city(root, city)
    seen = np.asarray(observed_mask(before, after).compute().values, dtype=bool)
    p = np.asarray(change_p_values(before.where(seen), after.where(seen)).values, dtype="float64")
    tested = int(np.isfinite(p).sum())
    truth = np.asarray(label.values, dtype=bool)
    clear = ~ndimage.binary_dilation(truth, iterations=CLEARANCE_PX) & seen
    ys: list[int] = []
    ps: dict[str, list[float]] = {m: [] for m in METHODS}
    rows, cols = truth.shape
    for r in range(0, rows - BLOCK + 1, BLOCK):
        for c in range(0, cols - BLOCK + 1, BLOCK):
            block = np.s_[r : r + BLOCK, c : c + BLOCK]
            if not (seen[block].all() and np.isfinite(p[block]).all()):
                continue
            if clear[block].all():
                ys.append(0)
            elif truth[block].mean() >= 0.5:
                ys.append(1)
            else:
                continue
            for name, fn in METHODS.items():
                ps[name].append(fn(p[block].ravel(), tested))
    return ys, ps


def summarise(ys: list[int], ps: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    y = np.asarray(ys, dtype=bool)
    out: dict[str, dict[str, float]] = {}
    for name, values in ps.items():
        v = np.asarray(values)
        score = -np.log10(np.clip(v, 1e-300, 1.0))
        auc = stats.mannwhitneyu(score[y], score[~y]).statistic / (y.sum() * (~y).sum())
        out[name] = {
            "changed_below_alpha": round(float((v[y] < ALPHA).mean()), 4),
            "unchanged_below_alpha": round(float((v[~y] < ALPHA).mean()), 4),
            "auc": round(float(auc), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="OSCD folder with images/ and labels/")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ys: list[int] = []
    ps: dict[str, list[float]] = {m: [] for m in METHODS}
    for city in list_cities(args.root):
        y, p = city_blocks(args.root, city)
        ys += y
        for m in METHODS:
            ps[m] += p[m]
        print(f"{city:12s} {sum(y):4d} changed, {len(y) - sum(y):5d} unchanged blocks", flush=True)
    result = summarise(ys, ps)
    print(f"\n{'region p-value':20s} {'changed p<0.05':>15s} {'unchanged p<0.05':>17s} {'AUC':>6s}")
    for name, r in result.items():
        print(
            f"{name:20s} {r['changed_below_alpha']:15.1%} {r['unchanged_below_alpha']:17.1%} {r['auc']:6.3f}"
        )
    print(f"\n{sum(ys)} changed and {len(ys) - sum(ys)} unchanged blocks; {time.perf_counter() - t0:.1f} s")
    if args.json:
        blocks = {"changed": sum(ys), "unchanged": len(ys) - sum(ys)}
        args.json.write_text(json.dumps({"blocks": blocks, "methods": result}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
