"""The planted groups of `influence_planted.py` checked two more ways on its runs: is the group harmful by
leave-one-out, and does PIToD's influence on the Q-estimation bias find it?

Per seed, on the run `influence_planted.py --work W` left in W/planted-seed<S>: `trajlab influence loo RUN
--groups G` (a fresh agent trained on the whole buffer and one without the planted group, as many updates as the
masked run made, `--repeats` times), and `trajlab influence estimate RUN --scores bias --baseline B` for each
baseline. Records the planted group's leave-one-out influence on the return (positive: the agent is better
without it) and its rank by influence on the bias (1 = its removal lowers the bias most).

    python benchmarks/influence_planted_loo.py --work /tmp/influence-planted --seeds 0,1,2,3,4 --group 3 \\
        --out benchmarks/results/influence_planted_bench_loo.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli_json import cli
from influence_vs_loo import masked_settings


def bias_rank(run: Path, group: int, baseline: str, preset: str) -> dict[str, Any]:
    estimate = cli("influence", "estimate", run, "--preset", preset, "--scores", "bias", "--baseline", baseline,
                   "--out", run / f"influence-bias-{baseline}", "--overwrite")
    influence = {item["group"]: item["influence"]["bias"] for item in estimate["groups"]}
    ranked = sorted(influence, key=lambda g: influence[g])  # lowest first: removal lowers the bias most
    return {"rank": ranked.index(group) + 1, "base_bias": estimate["base"]["bias"], "influence_on_bias": influence}


def one_seed(seed: int, args: argparse.Namespace, updates: int) -> dict[str, Any]:
    run = Path(args.work) / f"planted-seed{seed}"
    loo = cli("influence", "loo", run, "--groups", args.group, "--updates", updates, "--n-eval", args.n_eval,
              "--seed", seed, "--repeats", args.repeats, "--executor", "serial", "--out", run / "loo-planted",
              "--overwrite")
    planted = loo["groups"][0]
    return {"seed": seed, "planted_group": args.group, "loo_reference_return": loo["reference_return"],
            "loo_return_without_planted": planted["return"], "loo_influence": planted["influence"],
            "loo_influence_per_repeat": planted["influence_per_repeat"],
            "bias": {b: bias_rank(run, args.group, b, args.preset) for b in args.baselines.split(",")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="the --work folder of influence_planted.py")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--group", type=int, default=3)
    parser.add_argument("--preset", default="bench")
    parser.add_argument("--baselines", default="all,own")
    parser.add_argument("--n-eval", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = masked_settings(args.preset)
    updates = (settings["train"]["total_steps"] - settings["train"]["learning_starts"]) * \
        settings["agent"].get("utd_ratio", 1)
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(seed, args, updates))
        print(json.dumps({"seed": seed, "loo_influence": rows[-1]["loo_influence"],
                          **{b: v["rank"] for b, v in rows[-1]["bias"].items()}}), flush=True)
        Path(args.out).write_text(json.dumps({"preset": args.preset, "updates": updates, "seeds": rows}, indent=2))


if __name__ == "__main__":
    main()
