"""Variants of concept unlearning from one unsafe expert: each a preset file (benchmarks/presets/safe/*.yaml).

Trains (or reuses) the bench preset's unsafe expert for one seed, fine-tunes it with each variant, and reports
each run's last 10 training iterations (return and cost per episode, rollout cost rate, multiplier) and an
evaluation of every policy on the same env seeds. A variant is PRESET or PRESET@UPDATES.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_concept_variants.py --seed 0 \
        --variants bench benchmarks/presets/safe/concept-std.yaml benchmarks/presets/safe/concept-std.yaml@75 \
        --root runs/safe_variants --out benchmarks/results/safety_bench_concept_variants.json
    (--reuse keeps the expert and the variant runs a previous invocation finished)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from pathlib import Path

from trajlab.commands.safe import SafeEvalConfig, SafeTrainConfig, SafeUnlearnConfig, evaluate, train, unlearn
from trajlab.core.io import write_json_atomic

LAST = 10
CURVE_KEYS = ("episode_return", "episode_cost", "rollout_cost_rate", "lagrange")


def parse_variant(spec: str, default_updates: int) -> tuple[str, str, int]:
    """(run name, preset, updates) of PRESET or PRESET@UPDATES."""
    preset, _, updates = spec.partition("@")
    count = int(updates) if updates else default_updates
    return f"{Path(preset).stem}-{count}", preset, count


def _finished(run: Path) -> dict | None:
    path = run / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def last_iterations(curve: list[dict]) -> dict:
    """Mean of each curve key over the last LAST iterations; an iteration in which no episode ended has NaN there."""
    tail = curve[-LAST:]
    summary = {}
    for key in CURVE_KEYS:
        values = [row[key] for row in tail if row.get(key) is not None and not math.isnan(row[key])]
        summary[key] = statistics.fmean(values) if values else None
    return summary


def last_entropy(run: Path) -> float | None:
    """Mean policy entropy over the last LAST rows of the run's metrics.csv."""
    with open(run / "metrics.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("entropy")]
    return statistics.fmean(float(row["entropy"]) for row in rows[-LAST:]) if rows else None


def expert_run(root: Path, seed: int, reuse: bool) -> tuple[Path, dict]:
    run = root / "unsafe"
    done = _finished(run) if reuse else None
    if done is None:
        started = time.perf_counter()
        done = train(SafeTrainConfig(role="unsafe", preset="bench", seed=seed, out=str(run), overwrite=True),
                     progress=False)
        done["train_wall_time_s"] = time.perf_counter() - started
    return run, {"updates": done["updates"], "wall_time_s": done.get("train_wall_time_s"),
                 "last_iterations": {**last_iterations(done["curve"]), "entropy": last_entropy(run)}}


def variant_run(expert: Path, root: Path, spec: str, seed: int, default_updates: int, reuse: bool) -> dict:
    name, preset, updates = parse_variant(spec, default_updates)
    run = root / name
    done = _finished(run) if reuse else None
    if done is None:
        done = unlearn(SafeUnlearnConfig(agent=str(expert), method="concept", preset=preset, seed=seed,
                                         updates=updates, out=str(run), overwrite=True), progress=False)
    return {"name": name, "preset": preset, "updates": updates, "run": str(run), "wall_time_s": done["wall_time_s"],
            "last_iterations": {**last_iterations(done["curve"]), "entropy": last_entropy(run)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", required=True, help="PRESET or PRESET@UPDATES")
    parser.add_argument("--updates", type=int, default=50, help="iterations of a variant without @UPDATES")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per policy")
    parser.add_argument("--root", type=Path, default=Path("runs/safe_variants"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/safety_bench_concept_variants.json"))
    parser.add_argument("--reuse", action="store_true", help="keep the runs a previous invocation finished")
    args = parser.parse_args()
    expert, expert_summary = expert_run(args.root, args.seed, args.reuse)
    result = {"seed": args.seed, "expert": expert_summary, "variants": [], "evaluation": None,
              "eval_seed": 1000 + args.seed, "eval_episodes": args.episodes}
    for spec in args.variants:
        result["variants"].append(variant_run(expert, args.root, spec, args.seed, args.updates, args.reuse))
        write_json_atomic(args.out, result)
    runs = (str(expert), *(entry["run"] for entry in result["variants"]))
    suite = evaluate(SafeEvalConfig(runs=runs, preset="bench", episodes=args.episodes, seed=1000 + args.seed,
                                    out=str(args.root / "eval"), overwrite=True, gifs=False))
    result["evaluation"] = suite["policies"]
    write_json_atomic(args.out, result)
    print(json.dumps({name: {k: policy.get(k) for k in ("return", "cost", "cost_rate")}
                      for name, policy in suite["policies"].items()}, indent=1))


if __name__ == "__main__":
    main()
