"""Does PIToD find a planted harmful experience group, and does switching it off help? One CLI pipeline per seed.

Per seed: `trajlab influence train --plant-group G` (the group's rewards stored x -100, as the paper plants
one), then for each influence baseline (`--baselines`: all = flipped mask against all members, the paper's; own =
against the group's own mask) `trajlab influence estimate --baseline B` and `trajlab influence amend` from that
estimate (deploys the flipped mask of the group whose removal raises the return most). Records the planted
group's rank by influence on the return (1 = most harmful), whether it is in the top 10% of groups (at least the
top one), the return before and after the amendment, and per group how many members its flipped mask shares with
the planted group's mask (0 for the planted group itself: the members that trained on it).

    python benchmarks/influence_planted.py --preset bench --seeds 0,1,2,3,4 --group 3 --baselines all,own \\
        --work /tmp/influence-planted --out benchmarks/results/influence_planted_bench.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from cli_json import cli


def ranking(estimate: dict[str, Any], group: int) -> dict[str, Any]:
    """The planted group's rank by influence on the return, and every group's influence."""
    influence = {item["group"]: item["influence"]["return"] for item in estimate["groups"]}
    ranked = sorted(influence, key=lambda g: -influence[g])
    top = max(1, math.floor(0.1 * len(ranked)))
    return {"rank": ranked.index(group) + 1, "in_top_10pct": ranked.index(group) < top,
            "influence_on_return": influence, "base_return": estimate["base"]["return"]}


def shared_members(estimate: dict[str, Any], group: int) -> dict[int, int]:
    """Members of each group's flipped mask that trained on the planted group."""
    masks = {item["group"]: item["mask"] for item in estimate["groups"]}
    return {g: sum((1 - m) * p for m, p in zip(mask, masks[group])) for g, mask in masks.items()}


def one_seed(seed: int, group: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    run = work / f"planted-seed{seed}"
    steps = [] if args.steps is None else ["--steps", args.steps]
    sets = [part for item in args.set or [] for part in ("--set", item)]
    cli("influence", "train", "--preset", args.preset, "--seed", seed, "--plant-group", group,
        "--plant-reward-scale", args.scale, "--threads", 1, *steps, *sets, "--out", run, "--overwrite")
    row: dict[str, Any] = {"seed": seed, "planted_group": group, "by_baseline": {}}
    for baseline in args.baselines.split(","):
        out = run / f"influence-{baseline}"
        estimate = cli("influence", "estimate", run, "--preset", args.preset, "--scores", "return",
                       "--baseline", baseline, "--out", out, "--overwrite")
        amended = cli("influence", "amend", run, "--estimate", out, "--out", work / f"amended-seed{seed}-{baseline}",
                      "--overwrite")
        row["groups"] = len(estimate["groups"])
        row["shared_members"] = shared_members(estimate, group)
        row["by_baseline"][baseline] = {**ranking(estimate, group), "amended_group": amended["group"],
                                        "return_before": amended["return_before"],
                                        "return_after": amended["return_after"]}
    return row


def summary_of(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    baselines = args.baselines.split(",")
    shares = {b: {"share_in_top_10pct": sum(r["by_baseline"][b]["in_top_10pct"] for r in rows) / len(rows),
                  "ranks": [r["by_baseline"][b]["rank"] for r in rows],
                  "share_amendment_raised_return": sum(r["by_baseline"][b]["return_after"]
                                                       > r["by_baseline"][b]["return_before"] for r in rows)
                  / len(rows)} for b in baselines}
    return {"preset": args.preset, "steps": args.steps, "scale": args.scale, "set": args.set or [],
            "baselines": shares}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--group", type=int, default=3)
    parser.add_argument("--scale", type=float, default=-100.0)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: the preset's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a masked SAC option for `influence train --set` (repeatable), e.g. "
                             "member_coupling=independent")
    parser.add_argument("--baselines", default="all", help="influence baselines to estimate with (all, own)")
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(seed, args.group, Path(args.work), args))
        print(json.dumps({"seed": seed, **{b: {k: v[k] for k in ("rank", "amended_group", "return_before",
                                                                 "return_after")}
                                           for b, v in rows[-1]["by_baseline"].items()}}), flush=True)
        Path(args.out).write_text(json.dumps({**summary_of(rows, args), "seeds": rows}, indent=2))
    print(json.dumps(summary_of(rows, args), indent=2))


if __name__ == "__main__":
    main()
