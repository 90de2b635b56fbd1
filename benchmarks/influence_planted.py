"""Does PIToD find a planted harmful experience group, and does switching it off help? One CLI pipeline per seed.

Per seed: `trajlab influence train --plant-group G` (the group's rewards stored x -100, as the paper plants
one), `trajlab influence estimate`, then `trajlab influence amend` (deploys the flipped mask of the group whose
removal raises the return most). Records the planted group's rank by influence on the return (1 = most
harmful), whether it is in the top 10% of groups (at least the top one), and the return before and after the
amendment.

    python benchmarks/influence_planted.py --seeds 0,1,2,3,4 --group 3 --work /tmp/influence-planted \\
        --out benchmarks/results/influence_planted_quick.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cli_json import cli


def one_seed(seed: int, group: int, scale: float, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    run = work / f"planted-seed{seed}"
    steps = [] if args.steps is None else ["--steps", args.steps]
    cli("influence", "train", "--preset", args.preset, "--seed", seed, "--plant-group", group,
        "--plant-reward-scale", scale, *steps, "--out", run, "--overwrite")
    estimate = cli("influence", "estimate", run, "--overwrite")
    influence = {item["group"]: item["influence"]["return"] for item in estimate["groups"]}
    ranked = sorted(influence, key=lambda g: -influence[g])
    amended = cli("influence", "amend", run, "--out", work / f"amended-seed{seed}", "--overwrite")
    top = max(1, math.floor(0.1 * len(ranked)))
    return {"seed": seed, "planted_group": group, "rank": ranked.index(group) + 1, "groups": len(ranked),
            "in_top_10pct": ranked.index(group) < top, "influence_on_return": influence,
            "amended_group": amended["group"], "return_before": amended["return_before"],
            "return_after": amended["return_after"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--group", type=int, default=3)
    parser.add_argument("--scale", type=float, default=-100.0)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: the preset's)")
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(seed, args.group, args.scale, Path(args.work), args))
        print(json.dumps({key: rows[-1][key] for key in ("seed", "rank", "in_top_10pct", "amended_group",
                                                          "return_before", "return_after")}), flush=True)
    summary = {"preset": args.preset, "steps": args.steps, "scale": args.scale, "seeds": rows,
               "share_in_top_10pct": sum(row["in_top_10pct"] for row in rows) / len(rows),
               "share_amendment_raised_return": sum(row["return_after"] > row["return_before"] for row in rows)
               / len(rows)}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({key: value for key, value in summary.items() if key != "seeds"}))


if __name__ == "__main__":
    main()
