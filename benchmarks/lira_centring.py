"""Does centring each model's statistic on its own median over the population (LiraConfig.centre) make LiRA robust
to an outlying shadow? For each `lira_bench.py` work folder: the leave-one-shadow-out calibration of its saved
shadows, raw and centred, and, with `--dataset`, the audits of its saved agents by both tests (no training).

    python benchmarks/lira_centring.py --dataset hopper-m-bench.hdf5 --work /tmp/lb/run /tmp/lb/run1 \\
        --seeds 0 1 --out benchmarks/results/lira_centring.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from lira_bench import audit_groups, score_statistic
from lira_statistics import STATISTICS

from trajlab.algos.base import load_agent
from trajlab.audit.lira import LiraConfig, calibrate
from trajlab.data import TransitionDataset

AGENTS = ("original", "retrain", "trajdeleter", "trajdeleter-neighbours")


def rates(values: np.ndarray, masks: np.ndarray, statistic: str, centre: bool) -> dict[str, float]:
    config = LiraConfig(statistic=statistic, num_shadows=len(masks), centre=centre)
    result = calibrate(values, masks, config).to_dict()
    return {key: round(result[key], 4) for key in ("auc", "tpr_at_1pct_fpr")}


def audits(work: Path, dataset: TransitionDataset, saved: Any, seed: int, fraction: float = 0.05,
           controls: int = 40) -> dict[str, Any]:
    """Both tests' verdicts on the saved agents, the forget set and controls as lira_bench.py drew them."""
    population = TransitionDataset.load(work / "population.hdf5")
    files = {"original": work / "original" / "checkpoints" / "final.safetensors"} | {
        name: work / f"{name}.safetensors" for name in AGENTS[1:]}
    agents = {name: load_agent(path) for name, path in files.items() if path.exists()}
    groups = audit_groups(dataset, population, fraction, controls, seed)
    forget = np.concatenate([groups["forget (latest episodes)"], groups["canaries"]])
    chosen, masks = groups["controls"], saved["masks"]
    report = {}
    for name in STATISTICS:
        for centre in (False, True):
            entry = score_statistic(name, saved[name], masks, agents["original"], population, agents, groups, forget,
                                    chosen, len(masks), seed, centre=centre)
            report[f"{name}, {'centred' if centre else 'raw'}"] = {
                key: entry[key] for key in ("calibration", "member_rate_at_1pct_fpr", "audits")}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, nargs="+", required=True, help="lira_bench.py --work folders")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="their --seed, in the same order")
    parser.add_argument("--dataset", help="the dataset lira_bench.py planted its canaries in (for the audits)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = {}
    for work, seed in zip(args.work, args.seeds, strict=True):
        saved = np.load(work / "shadow_statistics.npz", allow_pickle=False)
        entry = {"calibration": {name: {"raw": rates(saved[name], saved["masks"], name, False),
                                        "centred": rates(saved[name], saved["masks"], name, True)}
                                 for name in STATISTICS}}
        if args.dataset:
            entry["audits"] = audits(work, TransitionDataset.load(args.dataset), saved, seed)
        report[f"seed {seed}"] = entry
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({seed: entry["calibration"] for seed, entry in report.items()}, indent=1))


if __name__ == "__main__":
    main()
