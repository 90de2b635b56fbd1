"""PIToD against its ground truth and its cost, on the quick preset: one CLI pipeline per seed.

Per seed: `trajlab influence train` (masked SAC, configs/influence/<preset>.yaml), `trajlab influence estimate`
(every group's flipped mask, once per influence baseline of `--baselines`: all members, the paper's, or the
group's own mask), `trajlab influence loo` (a fresh agent per left-out group, as many updates as the masked run
made, `--repeats` independent retrainings averaged, on `--executor`), and a plain SAC run of the same length with the
same network sizes, batch and update ratio (`trajlab train-online --algo sac`) as the cost reference. Reports the
Spearman rank correlation between PIToD's and leave-one-out's influence on return (against the repeats' mean and
against each repeat), how well the leave-one-out repeats agree with each other (the ceiling of any estimate's
agreement with one repeat), and the wall-time ratios (masked training + estimate) / plain SAC and leave-one-out /
plain SAC, all measured in the same run with one thread each.

    python benchmarks/influence_vs_loo.py --seeds 0,1,2 --baselines all,own --pitod-n-eval 10 --loo-n-eval 10 \\
        --repeats 2 --executor serial --work /tmp/loo-bench --out benchmarks/results/influence_vs_loo_quick_repeats.json
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


def spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    value = float(spearmanr(a, b).statistic)
    return None if value != value else value  # NaN: one of them is constant


def estimates(run: Path, args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, float]]:
    """PIToD's return influence per group for every baseline, and each estimate's wall time."""
    found, seconds = {}, {}
    for baseline in args.baselines.split(","):
        n_eval = [] if args.pitod_n_eval is None else ["--n-eval", args.pitod_n_eval]
        result, seconds[baseline] = timed("influence", "estimate", run, "--preset", args.preset, "--scores",
                                          "return", *n_eval, "--baseline", baseline,
                                          "--out", run / f"influence-{baseline}", "--overwrite")
        found[baseline] = [group["influence"]["return"] for group in result["groups"]]
    return found, seconds


def one_seed(seed: int, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    run = work / f"pitod-seed{seed}"
    trained, train_s = timed("influence", "train", "--preset", args.preset, "--seed", seed, "--threads", 1,
                             "--out", run, "--overwrite")
    pitod, estimate_s = estimates(run, args)
    settings = masked_settings(args.preset)
    steps, starts = settings["train"]["total_steps"], settings["train"]["learning_starts"]
    updates = (steps - starts) * settings["agent"].get("utd_ratio", 1)
    loo, loo_s = timed("influence", "loo", run, "--updates", updates, "--n-eval", args.loo_n_eval, "--seed", seed,
                       "--repeats", args.repeats, "--executor", args.executor, "--out", run / "loo", "--overwrite")
    agent = settings["agent"]
    plain, plain_s = timed("train-online", "--algo", "sac", "--env", trained["env_id"], "--steps", steps,
                           "--learning-starts", starts, "--seed", seed, "--threads", 1, "--eval-every", 0,
                           "--set", f"hidden={agent['hidden']}", "--set", f"batch_size={agent['batch_size']}",
                           "--out", work / f"sac-seed{seed}", "--overwrite")
    mean_loo = [group["influence"] for group in loo["groups"]]
    per_repeat = list(zip(*[group["influence_per_repeat"] for group in loo["groups"]]))
    first = args.baselines.split(",")[0]
    return {"seed": seed, "groups": len(loo["groups"]), "loo_updates_per_group": updates,
            "pitod_influence": pitod, "loo_influence": mean_loo, "loo_influence_per_repeat": per_repeat,
            "spearman": {b: spearman(values, mean_loo) for b, values in pitod.items()},
            "spearman_per_repeat": {b: [spearman(values, list(r)) for r in per_repeat] for b, values in pitod.items()},
            "loo_repeat_agreement": loo["repeat_agreement"],
            "wall_s": {"masked_train": train_s, "estimate": estimate_s, "loo": loo_s, "plain_sac": plain_s},
            "pitod_cost_vs_plain_sac": (train_s + estimate_s[first]) / plain_s,
            "loo_cost_vs_plain_sac": loo_s / plain_s, "plain_sac_updates_per_s": plain.get("updates_per_s")}


def summary_of(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    def median(values: list[float | None]) -> float | None:
        finite = [v for v in values if v is not None]
        return float(np.median(finite)) if finite else None

    return {"preset": args.preset, "repeats": args.repeats, "pitod_n_eval": args.pitod_n_eval,
            "loo_n_eval": args.loo_n_eval,
            "median_spearman": {b: median([r["spearman"][b] for r in rows]) for b in args.baselines.split(",")},
            "median_loo_repeat_agreement": median([r["loo_repeat_agreement"] for r in rows]),
            "median_pitod_cost_vs_plain_sac": median([r["pitod_cost_vs_plain_sac"] for r in rows]),
            "median_loo_cost_vs_plain_sac": median([r["loo_cost_vs_plain_sac"] for r in rows])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--baselines", default="all", help="influence baselines to estimate with (all, own)")
    parser.add_argument("--pitod-n-eval", type=int, default=None, help="evaluation episodes per mask (default: "
                        "the preset's)")
    parser.add_argument("--loo-n-eval", type=int, default=5, help="evaluation episodes per retrained agent")
    parser.add_argument("--repeats", type=int, default=1, help="leave-one-out retrainings per group, averaged")
    parser.add_argument("--executor", default="local", help="where the retrainings run (local: a process pool)")
    parser.add_argument("--work", required=True, help="folder for the runs")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = []
    for seed in (int(text) for text in args.seeds.split(",")):
        rows.append(one_seed(seed, Path(args.work), args))
        print(json.dumps({key: rows[-1][key] for key in ("seed", "spearman", "loo_repeat_agreement",
                                                          "pitod_cost_vs_plain_sac", "loo_cost_vs_plain_sac")}),
              flush=True)
        Path(args.out).write_text(json.dumps({**summary_of(rows, args), "seeds": rows}, indent=2))
    print(json.dumps(summary_of(rows, args), indent=2))


if __name__ == "__main__":
    main()
