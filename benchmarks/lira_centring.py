"""Does centring each shadow's statistic on its own median over the population make LiRA's calibration robust to
an outlying shadow? Leave-one-shadow-out calibration (trajlab.audit.lira.calibrate) of the shadows that
lira_bench.py saved, raw and centred, per statistic.

    python benchmarks/lira_centring.py benchmarks/results/lira_bench_hopper_medium_neighbours_shadows.npz \\
        benchmarks/results/lira_bench_hopper_medium_neighbours_seed1_shadows.npz
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from lira_statistics import STATISTICS

from trajlab.audit.lira import LiraConfig, calibrate


def rates(values: np.ndarray, masks: np.ndarray, statistic: str) -> dict[str, float]:
    result = calibrate(values, masks, LiraConfig(statistic=statistic, num_shadows=len(masks))).to_dict()
    return {key: round(result[key], 4) for key in ("auc", "tpr_at_1pct_fpr")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shadows", nargs="+", help="shadow_statistics.npz files written by lira_bench.py")
    report = {}
    for path in parser.parse_args().shadows:
        saved = np.load(path, allow_pickle=False)
        masks = saved["masks"]
        report[path] = {name: {"raw": rates(saved[name], masks, name),
                               "centred": rates(saved[name] - np.median(saved[name], axis=1, keepdims=True),
                                                masks, name)}
                        for name in STATISTICS}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
