"""Offline PIToD against leave-one-out on fixed data: one masked run per coupling against a retraining per group.

Offline, leave-one-out is well defined (the data does not depend on the agent), so it is a reference with one
source of noise only: the retraining's seed. Per seed: `trajlab influence train --dataset` (masked TD3+BC, masks
per group of `--group-size` episodes) once per member coupling, `trajlab influence estimate --scores return` per
baseline; then for leave-one-out, `--repeats` times with independent seeds, a plain TD3+BC of one member's size
(`trajlab train --algo td3_bc`) on the whole dataset and on the dataset without each group, every one evaluated
on the same `--n-eval` reset seeds (`trajlab eval --seed 1000`). Reports the Spearman correlation of each PIToD
variant with the repeats' mean, and of the repeats with each other (the ceiling of any estimate's agreement).

    python benchmarks/influence_offline_vs_loo.py --dataset pendulum-me.hdf5 --seeds 0 --work /tmp/offline-loo \\
        --out benchmarks/results/influence_offline_vs_loo_pendulum_me.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from cli_json import cli
from influence_offline_planted import add_masked_offline_arguments, masked_estimates
from influence_vs_loo import spearman

from trajlab.data.dataset import TransitionDataset

EVAL_SEED = 1000


def pitod(data: Path, seed: int, coupling: str, args: argparse.Namespace) -> dict[str, list[float]]:
    _, estimates = masked_estimates(data, Path(args.work) / f"pitod-{coupling}-seed{seed}", seed, coupling, args)
    return {baseline: [group["influence"]["return"] for group in found["groups"]]
            for baseline, found in estimates.items()}


def retrained_return(data: Path, seed: int, run: Path, args: argparse.Namespace) -> float:
    cli("train", "--algo", "td3_bc", "--dataset", data, "--preset", "quick", "--steps", args.steps,
        "--seed", seed, "--threads", 1, "--eval-every", 0, "--checkpoint-every", args.steps,
        "--set", f"actor_hidden=[{args.hidden},{args.hidden}]", "--set", f"critic_hidden=[{args.hidden},{args.hidden}]",
        "--out", run, "--overwrite")
    return float(cli("eval", run, "--episodes", args.n_eval, "--seed", EVAL_SEED)["mean_return"])


def leave_one_out(dataset: TransitionDataset, source: Path, seed: int, args: argparse.Namespace) -> list[float]:
    """Influence per group: return without the group minus the return on everything (same training seed)."""
    work = Path(args.work) / f"loo-seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    reference = retrained_return(source, seed, work / "all", args)
    influences = []
    for group in range(int(dataset.episode_id_list.max()) // args.group_size + 1):
        episodes = [e for e in dataset.episode_id_list.tolist() if e // args.group_size == group]
        data = dataset.without(episodes).save(work / f"without-{group}.hdf5")
        influences.append(retrained_return(data, seed, work / f"without-{group}", args) - reference)
    return influences


def one_seed(dataset: TransitionDataset, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    source = Path(args.dataset)
    estimates = {coupling: pitod(source, seed, coupling, args) for coupling in args.couplings.split(",")}
    repeats = [leave_one_out(dataset, source, seed + 100 * repeat, args) for repeat in range(args.repeats)]
    reference = np.mean(repeats, axis=0).tolist()
    agreement = {f"{c}/{b}": spearman(values, reference) for c, found in estimates.items()
                 for b, values in found.items()}
    ceiling = [spearman(repeats[i], repeats[j]) for i in range(len(repeats)) for j in range(i + 1, len(repeats))]
    return {"seed": seed, "spearman_vs_loo_mean": agreement, "loo_repeat_vs_repeat": ceiling,
            "pitod": estimates, "loo_repeats": repeats, "loo_mean": reference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_masked_offline_arguments(parser)
    parser.add_argument("--hidden", type=int, default=32, help="width of the leave-one-out agents' layers")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    dataset = TransitionDataset.load(args.dataset)
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(dataset, seed, args))
        print(json.dumps({key: rows[-1][key] for key in ("seed", "spearman_vs_loo_mean", "loo_repeat_vs_repeat")}),
              flush=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "seeds": rows}, indent=2))


if __name__ == "__main__":
    main()
