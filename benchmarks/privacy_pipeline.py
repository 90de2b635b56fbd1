"""The whole `trajlab synth` chain with public and private data from different behaviour policies, measured
side by side in one run: DP at two budgets against the non-private reference.

Public data: the random and expert datasets of one `trajlab data generate` work folder; private data: its medium
dataset (another policy). Pre-train once on the public data, then fine-tune on the private data three ways
(epsilon 10, epsilon 1, and without DP; optionally a non-DP run of many epochs, the overfitting model the
membership attack is measured against), sample each, and measure fidelity (sdmetrics), the loss attack and
downstream offline RL (real private members vs every release). DP vs non-DP fine-tuning throughput comes from
the same run (steps/s of each fine-tuning, same batch size and model).

    python benchmarks/privacy_pipeline.py --public random.h5,expert.h5 --private medium.h5 --work /tmp/privacy \\
        --out benchmarks/results/privacy_pipeline_quick.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cli_json import cli


def release(work: Path, name: str, finetune_args: list[object], args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune one way, sample, evaluate fidelity and attack the model."""
    model = work / name
    tuned = cli("synth", "finetune", work / "pre", "--private", args.private, "--out", model, "--threads", 1,
                "--overwrite", *finetune_args)
    samples = work / f"{name}.h5"
    cli("synth", "sample", model, "--n", args.samples, "--out", samples, "--threads", 1, "--overwrite")
    fidelity = cli("synth", "evaluate", samples, "--real", args.private, "--out", work / f"{name}-eval",
                   "--overwrite")
    attack = cli("synth", "attack", model, "--private", args.private, "--synthetic", samples,
                 "--out", work / f"{name}-attack", "--threads", 1, "--overwrite")
    return {"finetune": {key: tuned[key] for key in ("privacy", "steps", "steps_per_s", "wall_time_s")},
            "samples": str(samples), "column_shapes": fidelity["column_shapes"],
            "column_pair_trends": fidelity["column_pair_trends"], "attack": attack["attack"],
            "distance_to_closest_record": attack["distance_to_closest_record"]}


def pipeline_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the scripts that pre-train once, release several ways and train agents on the releases."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--public", required=True, help="comma-separated public datasets")
    parser.add_argument("--private", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--downstream-steps", type=int, default=10_000)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", required=True)
    return parser


def downstream(work: Path, releases: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Offline agents trained on the real private data and on every release (`synth downstream`)."""
    return cli("synth", "downstream", ",".join(r["samples"] for r in releases.values()), "--real", args.private,
               "--steps", args.downstream_steps, "--seeds", args.seeds, "--threads", 1,
               "--out", work / "downstream", "--overwrite")


def main() -> None:
    parser = pipeline_parser(__doc__)
    parser.add_argument("--overfit-epochs", type=int, default=50, help="epochs of the overfitting non-DP model")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pre = cli("synth", "pretrain", "--public", args.public, "--out", work / "pre", "--threads", 1, "--overwrite")
    releases = {
        "eps10": release(work, "eps10", ["--epsilon", 10], args),
        "eps1": release(work, "eps1", ["--epsilon", 1], args),
        "nodp": release(work, "nodp", ["--no-dp"], args),
        f"nodp-{args.overfit_epochs}ep": release(work, "nodp-overfit", ["--no-dp", "--epochs", args.overfit_epochs],
                                                 args),
    }
    agents = downstream(work, releases, args)
    throughput = releases["eps10"]["finetune"]["steps_per_s"] / releases["nodp"]["finetune"]["steps_per_s"]
    result = {"public": args.public, "private": args.private, "pretrain_wall_s": pre["wall_time_s"],
              "releases": releases, "downstream": agents["summary"],
              "dp_vs_nondp_finetune_throughput": throughput, "wall_time_s": time.perf_counter() - started}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({name: {k: r[k] for k in ("column_shapes", "column_pair_trends")} | r["attack"]
                      for name, r in releases.items()}, indent=2, default=str))
    print(json.dumps(agents["summary"], indent=2), "throughput DP/non-DP", round(throughput, 3))


if __name__ == "__main__":
    main()
