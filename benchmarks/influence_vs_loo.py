"""PIToD against its ground truth and its cost, on the quick preset: one CLI pipeline per seed.

Per seed: `trajlab influence train` (masked SAC, configs/influence/<preset>.yaml), `trajlab influence estimate`
(every group's flipped mask), `trajlab influence loo` (a fresh agent per left-out group, as many updates as the
masked run made), and a plain SAC run of the same length with the same network sizes, batch and update ratio
(`trajlab train-online --algo sac`) as the cost reference. Reports the Spearman rank correlation between PIToD's
and leave-one-out's influence on return, and the wall-time ratios (masked training + estimate) / plain SAC and
leave-one-out / plain SAC, all measured in the same run with one thread each.

    python benchmarks/influence_vs_loo.py --seeds 0,1,2 --work /tmp/influence-bench \\
        --out benchmarks/results/influence_vs_loo_quick.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli_json import cli


def masked_settings(preset: str) -> dict[str, Any]:
    """The masked SAC preset's training and network settings, to give the plain SAC the same."""
    import yaml

    from trajlab.core.config import preset_path

    influence = yaml.safe_load(preset_path("influence", preset).read_text())
    return yaml.safe_load(preset_path("online/masked_sac", influence["train_preset"]).read_text())


def timed(*args: object) -> tuple[dict[str, Any], float]:
    result = cli(*args)
    return result, result["benchmark_wall_s"]


def one_seed(seed: int, work: Path, preset: str) -> dict[str, Any]:
    run = work / f"pitod-seed{seed}"
    trained, train_s = timed("influence", "train", "--preset", preset, "--seed", seed, "--out", run, "--overwrite")
    estimated, estimate_s = timed("influence", "estimate", run, "--overwrite")
    settings = masked_settings(preset)
    steps, starts = settings["train"]["total_steps"], settings["train"]["learning_starts"]
    updates = (steps - starts) * settings["agent"].get("utd_ratio", 1)
    loo, loo_s = timed("influence", "loo", run, "--updates", updates, "--n-eval", 5, "--seed", seed, "--overwrite")
    agent = settings["agent"]
    plain, plain_s = timed("train-online", "--algo", "sac", "--env", trained["env_id"], "--steps", steps,
                         "--learning-starts", starts, "--seed", seed, "--threads", 1, "--eval-every", 0,
                         "--set", f"hidden={agent['hidden']}", "--set", f"batch_size={agent['batch_size']}",
                         "--out", work / f"sac-seed{seed}", "--overwrite")
    return {"seed": seed, "spearman": loo["spearman"], "groups": len(loo["groups"]),
            "pitod_influence": loo["pitod_influence"], "loo_influence": [g["influence"] for g in loo["groups"]],
            "wall_s": {"masked_train": train_s, "estimate": estimate_s, "loo": loo_s, "plain_sac": plain_s},
            "pitod_cost_vs_plain_sac": (train_s + estimate_s) / plain_s, "loo_cost_vs_plain_sac": loo_s / plain_s,
            "loo_updates_per_group": updates, "estimate_result": estimated.get("run_dir"),
            "plain_sac_updates_per_s": plain.get("updates_per_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--work", required=True, help="folder for the runs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import numpy as np

    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(seed, Path(args.work), args.preset))
        print(json.dumps({key: rows[-1][key] for key in ("seed", "spearman", "pitod_cost_vs_plain_sac",
                                                          "loo_cost_vs_plain_sac")}), flush=True)
    correlations = [row["spearman"] for row in rows if row["spearman"] is not None]
    summary = {"preset": args.preset, "seeds": rows,
               "median_spearman": float(np.median(correlations)) if correlations else None,
               "median_pitod_cost_vs_plain_sac": float(np.median([r["pitod_cost_vs_plain_sac"] for r in rows])),
               "median_loo_cost_vs_plain_sac": float(np.median([r["loo_cost_vs_plain_sac"] for r in rows]))}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({key: value for key, value in summary.items() if key != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
