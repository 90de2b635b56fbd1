"""DP fine-tuning budget: fidelity and downstream return at epsilon 10 as the DP epochs (and learning rate) grow.

At the paper's 5 epochs the pre-trained denoiser hardly moves towards the private data, with or without DP
(docs/benchmarks.md, "public and private data from different policies"). Here the same epsilon is spent over
more epochs (more noise per step, the accountant picks the noise multiplier), against the non-private 50-epoch
model as the ceiling. One pre-training, one member split, every fine-tuning from the same public model.

    python benchmarks/privacy_dp_epochs.py --public hopper-random.hdf5,hopper-medium.hdf5 \\
        --private hopper-expert.hdf5 --work /tmp/dp-epochs --out benchmarks/results/privacy_dp_epochs_quick.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cli_json import cli
from privacy_pipeline import downstream, pipeline_parser, release

# name: (DP?, epochs, learning rate); the quick preset's fine-tuning is DP, 5 epochs, 3e-4
SETTINGS: dict[str, tuple[bool, int, float]] = {
    "dp-5ep-lr3e-4": (True, 5, 3e-4),
    "dp-25ep-lr3e-4": (True, 25, 3e-4),
    "dp-25ep-lr1e-3": (True, 25, 1e-3),
    "dp-100ep-lr1e-3": (True, 100, 1e-3),
    "nodp-50ep-lr3e-4": (False, 50, 3e-4),
}


def finetune_args(dp: bool, epochs: int, learning_rate: float) -> list[object]:
    privacy = ["--epsilon", 10] if dp else ["--no-dp"]
    return [*privacy, "--epochs", epochs, "--set", f"optim.learning_rate={learning_rate}"]


def main() -> None:
    parser = pipeline_parser(__doc__)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names of SETTINGS")
    args = parser.parse_args()
    unknown = sorted(set(args.settings.split(",")) - set(SETTINGS))
    if unknown:
        parser.error(f"--settings: unknown {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pre = cli("synth", "pretrain", "--public", args.public, "--out", work / "pre", "--threads", 1, "--overwrite")
    releases = {}
    for name in args.settings.split(","):
        releases[name] = release(work, name, finetune_args(*SETTINGS[name]), args)
        releases[name]["setting"] = dict(zip(("dp", "epochs", "learning_rate"), SETTINGS[name]))
        print(json.dumps({name: {key: releases[name][key] for key in ("column_shapes", "column_pair_trends")}}),
              flush=True)
    agents = downstream(work, releases, args) if args.downstream_steps else None
    result = {"public": args.public, "private": args.private, "pretrain_wall_s": pre["wall_time_s"],
              "releases": releases, "downstream": agents and agents["summary"],
              "wall_time_s": time.perf_counter() - started}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result["downstream"], indent=2, default=str))


if __name__ == "__main__":
    main()
