"""Update speed of two trajlab checkouts side by side: did a change make training slower?

Each checkout is timed by its own `benchmarks/offline_vs_d3rlpy.py` (its `build_trajlab` agent with the matched
settings and its `time_steps` loop: sample a minibatch, `update`), in a fresh process per measurement, so the
two versions never share an interpreter. Rounds alternate the order (old, new / new, old), so load from
elsewhere on the machine hits both alike; each round gives one paired ratio new / old per algorithm, and the
report quotes the median over rounds.

    git worktree add /tmp/old <commit>
    python benchmarks/checkout_speed.py --old /tmp/old --new . --dataset hopper-mr.hdf5 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_JSON = Path("benchmarks/results/checkout_speed.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="root of the reference checkout")
    parser.add_argument("--new", type=Path, default=Path("."), help="root of the checkout under test")
    parser.add_argument("--dataset", type=Path, required=True, help="trajlab HDF5 dataset")
    parser.add_argument("--algos", nargs="+", default=["iql", "td3_bc"])
    parser.add_argument("--rounds", type=int, default=7, help="paired measurements per algorithm")
    parser.add_argument("--updates", type=int, default=300, help="timed updates per measurement")
    parser.add_argument("--warmup", type=int, default=30, help="untimed updates first")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or the worker's CPU time (leaves out time slices other processes take; "
                             "use with --threads 1)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--algo", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """Inside a fresh process: time one algorithm of the checkout at `args.worker`; print updates/s."""
    root = args.worker.resolve()
    sys.path[:0] = [str(root / "src"), str(root / "benchmarks")]
    import offline_vs_d3rlpy as bench
    import torch

    from trajlab.data import TransitionDataset

    torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        bench.clock = time.process_time
    dataset = TransitionDataset.load(args.dataset)
    settings = bench.Settings(hidden=tuple(args.hidden), batch_size=args.batch_size, total_updates=1_000_000)
    _, step = bench.build_trajlab(args.algo, dataset, settings, seed=0)
    for _ in range(args.warmup):
        step()
    import trajlab

    print(json.dumps({"updates_per_s": bench.time_steps(step, args.updates), "trajlab": trajlab.__file__}))


def measure(root: Path, algo: str, args: argparse.Namespace) -> float:
    command = [sys.executable, __file__, "--worker", str(root), "--algo", algo, "--old", str(args.old),
               "--dataset", str(args.dataset), "--updates", str(args.updates), "--warmup", str(args.warmup),
               "--threads", str(args.threads), "--clock", args.clock, "--batch-size", str(args.batch_size),
               "--hidden", *map(str, args.hidden)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    if not reply["trajlab"].startswith(str(root.resolve())):
        raise RuntimeError(f"{root}: the worker imported trajlab from {reply['trajlab']}")
    return float(reply["updates_per_s"])


def compare(algo: str, args: argparse.Namespace) -> dict[str, Any]:
    old, new, ratios = [], [], []
    for round_index in range(args.rounds):
        order = [("old", args.old), ("new", args.new)]
        if round_index % 2:
            order.reverse()
        speeds = {name: measure(root, algo, args) for name, root in order}
        old.append(speeds["old"])
        new.append(speeds["new"])
        ratios.append(speeds["new"] / speeds["old"])
        print(f"{algo} round {round_index}: old {speeds['old']:.1f}/s new {speeds['new']:.1f}/s "
              f"ratio {ratios[-1]:.3f}", file=sys.stderr)
    return {"old_updates_per_s": old, "new_updates_per_s": new, "ratios": ratios,
            "median_old": statistics.median(old), "median_new": statistics.median(new),
            "median_ratio": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return {}
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "old": str(args.old.resolve()),
              "new": str(args.new.resolve()), "dataset": str(args.dataset), "threads": args.threads,
              "clock": args.clock, "hidden": args.hidden, "batch_size": args.batch_size, "updates": args.updates,
              "results": {algo: compare(algo, args) for algo in args.algos}}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    for algo, result in report["results"].items():
        print(f"| {algo} | {result['median_old']:.1f} | {result['median_new']:.1f} | {result['median_ratio']:.3f} "
              f"({result['min_ratio']:.3f}-{result['max_ratio']:.3f}) |")
    return report


if __name__ == "__main__":
    main()
