"""The Pong attack of `trajlab critical`, end to end through the CLI: collect single-point Pong episodes from the
RAM-tracking victim, train the detector and return predictor on them (3 outcome classes), then replace the
victim's action at its top-scored steps vs at random steps over seeded points, and report the win-rate drops with
a 95% interval of their difference.

    python benchmarks/critical_attack.py --preset pong-quick --work /tmp/critical-pong \\
        --out benchmarks/results/critical_attack_pong_v2.json

Sizes not given on the command line are the preset's (configs/critical/<preset>.yaml).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli_json import cli


def given(flag: str, value: object) -> list[object]:
    """`flag value` where the value was given, else nothing (the preset's value applies)."""
    return [] if value is None else [flag, value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="pong-quick")
    parser.add_argument("--episodes", type=int)
    parser.add_argument("--test-episodes", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--attack-episodes", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work, common = args.work, ["--seed", args.seed, "--overwrite", "--preset", args.preset]
    data = cli("critical", "data", "--env", "pong", *given("--episodes", args.episodes),
               *given("--test-episodes", args.test_episodes), "--out", work / "data", *common)
    trained = cli("critical", "train", work / "data", "--out", work / "train", *given("--epochs", args.epochs),
                  "--threads", 1, *common)
    evaluated = cli("critical", "evaluate", work / "train", "--data", work / "data", "--out", work / "eval",
                    "--no-saliency", *common)
    attacked = cli("critical", "attack", work / "train", *given("--episodes", args.attack_episodes),
                   *given("--steps", args.steps), "--out", work / "attack", "--threads", 1, *common)
    result = {"settings": vars(args) | {"work": str(args.work), "out": str(args.out)},
              "data": {k: data[k] for k in ("label_counts", "frames", "mean_length", "wall_time_s", "frames_per_s")},
              "train": {k: trained[k] for k in ("updates", "frames_seen", "wall_time_s", "frames_per_s")},
              "test_majority_share": evaluated["test_majority_share"],
              "predictor_test_accuracy": evaluated["predictor_test_accuracy"], "fidelity": evaluated["fidelity"],
              "attack": {k: v for k, v in attacked.items() if k not in ("run_dir", "model")},
              "goal_critical_drop_gt_random_ci_above_0": attacked["critical_minus_random_drop_ci95"][0] > 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["attack"], indent=2))


if __name__ == "__main__":
    main()
