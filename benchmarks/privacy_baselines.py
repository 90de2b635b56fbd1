"""PrivTranR's baselines beside its DP diffusion release, on the privacy pipeline's split, at one epsilon: DP
fine-tuning of the pre-trained denoiser (the system), the same DP fine-tuning from a randomly initialised
denoiser (DP without pre-training), and the DP tabular synthesizers MST and AIM (smartnoise-synth) on transitions
binned with public edges. Each release: fidelity against the private data (sdmetrics) and, unless
--downstream-steps is 0, downstream offline RL (real private members vs every release).

Public data: the random and medium datasets of one `trajlab data generate` work folder; private: its expert one.
The diffusion models fine-tune on the private data's 80% members; MST and AIM see the same rows
(`synth baseline`'s member_fraction and seed are finetune's). Needs the optional smartnoise-synth install.

    python benchmarks/privacy_baselines.py --public random.h5,medium.h5 --private expert.h5 --work /tmp/baselines \\
        --out benchmarks/results/privacy_baselines_quick.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cli_json import cli


def evaluate(work: Path, name: str, samples: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fidelity of one release against the private data."""
    scores = cli("synth", "evaluate", samples, "--real", args.private, "--out", work / f"{name}-eval", "--overwrite")
    return {"samples": str(samples), "column_shapes": scores["column_shapes"],
            "column_pair_trends": scores["column_pair_trends"], "epsilon": scores["epsilon"],
            "per_column": scores["fidelity"]["per_column"]}


def diffusion(work: Path, name: str, start: Path, args: argparse.Namespace) -> dict[str, Any]:
    """DP fine-tuning at --epsilon from `start` (pre-trained or untrained), then a release and its fidelity."""
    tuned = cli("synth", "finetune", start, "--private", args.private, "--out", work / name, "--epsilon",
                args.epsilon, "--threads", 1, "--overwrite")
    samples = work / f"{name}.h5"
    cli("synth", "sample", work / name, "--n", args.samples, "--out", samples, "--threads", 1, "--overwrite")
    return {"finetune": {key: tuned[key] for key in ("privacy", "steps", "steps_per_s", "wall_time_s")},
            **evaluate(work, name, samples, args)}


def tabular(work: Path, method: str, args: argparse.Namespace) -> dict[str, Any]:
    """MST or AIM at --epsilon on the binned private members, a release and its fidelity."""
    extra = ["--aim-rounds", args.aim_rounds] if method == "aim" else []
    samples = work / f"{method}.h5"
    made = cli("synth", "baseline", "--method", method, "--private", args.private, "--public", args.public,
               "--epsilon", args.epsilon, "--n", args.samples, "--bins", args.bins, "--binning", args.binning,
               "--threads", 1, "--out", samples, "--overwrite", *extra)
    fit = {key: made[key] for key in ("members", "cardinalities", "wall_time_s", "accountant")}
    return {"fit": {**fit, "bins": args.bins, "binning": args.binning,
                    "aim_rounds": args.aim_rounds if method == "aim" else None,
                    "process_wall_s": made["benchmark_wall_s"]}, **evaluate(work, method, samples, args)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", required=True, help="comma-separated public datasets")
    parser.add_argument("--private", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--bins", type=int, default=32, help="bins per continuous column for MST and AIM")
    parser.add_argument("--binning", default="uniform", choices=("quantile", "uniform"))
    parser.add_argument("--aim-rounds", type=int, default=40, help="AIM's rounds (smartnoise's default: 16 per "
                                                                   "column, 432 here)")
    parser.add_argument("--methods", default="diffusion,scratch,mst,aim",
                        help="comma-separated subset of diffusion, scratch, mst, aim")
    parser.add_argument("--downstream-steps", type=int, default=10_000, help="0: fidelity only")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--merge", action="store_true", help="add to the releases already in --out (run the "
                                                                 "methods one at a time, downstream last)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work, methods = Path(args.work), [name for name in args.methods.split(",") if name]
    work.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(Path(args.out).read_text()) if args.merge and Path(args.out).is_file() else {}
    started, releases = time.perf_counter(), dict(earlier.get("releases", {}))
    wall = {key: value for key, value in earlier.items() if key.endswith("_s") and key != "wall_time_s"}
    if "diffusion" in methods:
        wall["pretrain_s"] = cli("synth", "pretrain", "--public", args.public, "--out", work / "pre", "--threads", 1,
                                 "--overwrite")["wall_time_s"]
        releases["dp-diffusion"] = diffusion(work, "dp-diffusion", work / "pre", args)
    if "scratch" in methods:
        cli("synth", "pretrain", "--public", args.public, "--out", work / "scratch", "--steps", 0, "--threads", 1,
            "--overwrite")
        releases["dp-no-pretraining"] = diffusion(work, "dp-no-pretraining", work / "scratch", args)
    for method in ("mst", "aim"):
        if method in methods:
            releases[method] = tabular(work, method, args)
    result = {"public": args.public, "private": args.private, "epsilon": args.epsilon, "samples": args.samples,
              "releases": releases, **wall}
    if args.downstream_steps > 0:
        result["downstream"] = downstream(work, releases, args)
        result["downstream_settings"] = {"steps": args.downstream_steps, "seeds": args.seeds}
    elif "downstream" in earlier:
        result["downstream"], result["downstream_settings"] = earlier["downstream"], earlier["downstream_settings"]
    result["wall_time_s"] = earlier.get("wall_time_s", 0.0) + time.perf_counter() - started
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({name: {k: r[k] for k in ("column_shapes", "column_pair_trends")}
                      for name, r in releases.items()}, indent=2))
    if "downstream" in result:
        print(json.dumps(result["downstream"], indent=2))


def downstream(work: Path, releases: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """IQL and TD3+BC on the real private data and on every release; the summary keyed by release name (the
    command labels releases by epsilon, which MST and AIM share)."""
    paths = [release["samples"] for release in releases.values()]
    ran = cli("synth", "downstream", ",".join(paths), "--real", args.private, "--steps", args.downstream_steps,
              "--seeds", args.seeds, "--threads", 1, "--out", work / "downstream", "--overwrite")
    names = {label: next(name for name, release in releases.items() if release["samples"] == path)
             for label, path in ran["synthetic"].items() if label != "real"}
    return {algo: {names.get(label, label): scores for label, scores in by_data.items()}
            for algo, by_data in ran["summary"].items()}


if __name__ == "__main__":
    main()
