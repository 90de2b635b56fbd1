"""Does offline PIToD find a planted harmful group of episodes? One CLI pipeline per seed and member coupling.

Per seed: a copy of the dataset whose planted group's episodes have their rewards x `--scale` (the online
benchmark's plant, on episodes), `trajlab influence train --dataset` (a masked offline agent, masks per group of
`--group-size` episodes) once per member coupling of `--couplings`, then `trajlab influence estimate --scores
return --baseline B` per baseline. Records the planted group's rank by influence on the return (1 = most
harmful), whether it is in the top 10% of groups (at least the top one), and every group's influence.

    trajlab data generate --env Pendulum-v1 --quality medium-expert --preset quick --out pendulum-me.hdf5
    python benchmarks/influence_offline_planted.py --dataset pendulum-me.hdf5 --seeds 0,1,2,3,4,5,6,7,8,9 \\
        --work /tmp/influence-offline --out benchmarks/results/influence_offline_planted_pendulum_me.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from cli_json import cli
from influence_planted import ranking

from trajlab.data.dataset import TransitionDataset


def planted_dataset(source: Path, group: int, group_size: int, scale: float, out: Path) -> Path:
    """`source` with the rewards of the episodes of `group` (episode id // group_size) multiplied by `scale`."""
    dataset = TransitionDataset.load(source)
    planted = dataset.episode_ids // group_size == group
    if not planted.any():
        raise SystemExit(f"group {group} holds no episode of {source} (groups of {group_size} episodes)")
    return dataset.with_rewards(np.where(planted, dataset.rewards * scale, dataset.rewards)).save(out)


def masked_estimates(data: Path, run: Path, seed: int, coupling: str,
                     args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`influence train --dataset` with `coupling`, then `influence estimate --scores return` per baseline of
    `args.baselines`: (the training's result, baseline -> the estimate's result)."""
    trained = cli("influence", "train", "--dataset", data, "--algo", args.algo, "--preset", args.preset,
                  "--steps", args.steps, "--group-size", args.group_size, "--members", args.members,
                  "--seed", seed, "--threads", 1, "--set", f"member_coupling={coupling}", "--out", run,
                  "--overwrite")
    return trained, {baseline: cli("influence", "estimate", run, "--preset", args.preset, "--scores", "return",
                                   "--n-eval", args.n_eval, "--baseline", baseline, "--seed", seed,
                                   "--out", run / f"influence-{baseline}", "--overwrite")
                     for baseline in args.baselines.split(",")}


def add_masked_offline_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both offline PIToD benchmarks share (the data, the masked agent, its estimate, the output)."""
    parser.add_argument("--dataset", required=True, help="a trajlab HDF5 dataset whose env_id is known")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--algo", default="masked_td3_bc")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--steps", type=int, default=10_000, help="gradient updates")
    parser.add_argument("--group-size", type=int, default=15, help="episodes per group")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--n-eval", type=int, default=10)
    parser.add_argument("--couplings", default="mean,independent")
    parser.add_argument("--baselines", default="all,own")
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)


def one_run(data: Path, seed: int, coupling: str, args: argparse.Namespace) -> dict[str, Any]:
    trained, estimates = masked_estimates(data, Path(args.work) / f"{coupling}-seed{seed}", seed, coupling, args)
    return {"train_wall_s": trained["benchmark_wall_s"],
            "groups": len(next(iter(estimates.values()))["groups"]),
            "by_baseline": {baseline: ranking(found, args.group) for baseline, found in estimates.items()}}


def summary_of(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    found = {}
    for coupling in args.couplings.split(","):
        for baseline in args.baselines.split(","):
            picked = [row["by_coupling"][coupling]["by_baseline"][baseline] for row in rows]
            found[f"{coupling}/{baseline}"] = {"ranks": [item["rank"] for item in picked],
                                               "share_in_top_10pct": sum(item["in_top_10pct"] for item in picked)
                                               / len(picked)}
    return {"dataset": args.dataset, "algo": args.algo, "steps": args.steps, "group_size": args.group_size,
            "members": args.members, "planted_group": args.group, "scale": args.scale, "n_eval": args.n_eval,
            "results": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_masked_offline_arguments(parser)
    parser.add_argument("--group", type=int, default=12, help="the planted group")
    parser.add_argument("--scale", type=float, default=-100.0)
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    data = planted_dataset(Path(args.dataset), args.group, args.group_size, args.scale,
                           Path(args.work) / "planted.hdf5")
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append({"seed": seed, "by_coupling": {coupling: one_run(data, seed, coupling, args)
                                                   for coupling in args.couplings.split(",")}})
        print(json.dumps({"seed": seed, **{f"{c}/{b}": v["by_baseline"][b]["rank"]
                                           for c, v in rows[-1]["by_coupling"].items() for b in v["by_baseline"]}}),
              flush=True)
        Path(args.out).write_text(json.dumps({**summary_of(rows, args), "seeds": rows}, indent=2))
    print(json.dumps(summary_of(rows, args)["results"], indent=2))


if __name__ == "__main__":
    main()
