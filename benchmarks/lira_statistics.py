"""Which LiRA statistic separates members from non-members at a given scale? One set of shadows, all statistics.

Trains K shadows from scratch like a reference agent (its algorithm and config, as many updates as `--steps`),
each on a balanced random half of the dataset's trajectories (trajlab.audit.lira.membership_masks), two at a
time with one thread each; every shadow scores every trajectory with each statistic (critic_loss, action_error,
value_gap), and each statistic is calibrated leave-one-shadow-out (trajlab.audit.lira.calibrate) with a global
and a per-trajectory variance. Prints and writes AUC and TPR at 1% / 0.1% FPR per statistic.

    python benchmarks/lira_statistics.py --agent runs/quickstart/agent/checkpoints/final.safetensors \\
        --dataset ~/.cache/trajlab/datasets/Hopper-v5-medium-replay-quick-seed0.hdf5 --shadows 8 --steps 20000 \\
        --out benchmarks/results/lira_statistics_quick.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

STATISTICS = ("critic_loss", "action_error", "value_gap")


def shadow(agent_path: str, dataset_path: str, index: int, member_ids: list[int], steps: int,
           seed: int = 0) -> dict[str, list]:
    """One shadow's statistics on every trajectory, for every statistic (seeded as trajlab's own shadows)."""
    import torch

    from trajlab.algos.base import load_agent
    from trajlab.audit.lira import LiraConfig, trajectory_statistics
    from trajlab.core.seeding import derive_seed
    from trajlab.data.dataset import TransitionDataset
    from trajlab.training.offline import prepare_training
    from trajlab.training.steps import batch_size_of, train_steps

    torch.set_num_threads(1)  # two one-thread shadows at a time: the fastest layout on 2 cores
    reference, dataset = load_agent(agent_path), TransitionDataset.load(dataset_path)
    agent, sampler = prepare_training(type(reference), reference.config, dataset.subset(member_ids),
                                      seed=derive_seed(seed, "lira-shadow", index), device="cpu", spec=reference.spec)
    train_steps(agent, sampler, steps, batch_size_of(agent, None))
    ids = dataset.episode_id_list.tolist()
    return {name: trajectory_statistics(agent, dataset, ids, LiraConfig(statistic=name)).tolist()
            for name in STATISTICS}


def measure(agent: str, dataset: str, shadows: int, steps: int, workers: int) -> dict[str, Any]:
    from trajlab.audit.lira import LiraConfig, calibrate, membership_masks
    from trajlab.data.dataset import TransitionDataset

    ids = TransitionDataset.load(dataset).episode_id_list
    masks = membership_masks(shadows, len(ids), 0)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = list(pool.map(shadow, [agent] * shadows, [dataset] * shadows, range(shadows),
                                [ids[mask].tolist() for mask in masks], [steps] * shadows))
    report: dict[str, Any] = {"agent": agent, "dataset": dataset, "shadows": shadows, "steps": steps,
                              "trajectories": int(len(ids)), "shadow_wall_time_s": time.perf_counter() - started}
    for name in STATISTICS:
        values = np.array([result[name] for result in results])
        for variance in ("global", "per-trajectory"):
            rates = calibrate(values, masks, LiraConfig(statistic=name, variance=variance)).to_dict()
            report[f"{name}/{variance}"] = {key: rates[key] for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr")}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True, help="checkpoint of the reference agent")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--shadows", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = measure(args.agent, args.dataset, args.shadows, args.steps, args.workers)
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
