"""DP-SGD fine-tuning throughput against the same fine-tuning without DP, per Opacus per-sample-gradient mode.

Modes: hooks, functorch, ew (expanded weights) and ghost (ghost clipping: per-sample gradient norms without the
per-sample gradients, then a second backward pass of the clipped loss). Same model (the quick preset's
denoiser unless --width/--depth), same member data, batch size and optimiser; steps per second of the training
loop alone: each setting runs 1 and 6 epochs and the rate is the extra steps over the extra time, so Opacus's
set-up (the noise-multiplier search of make_private_with_epsilon, hooks) is not counted. Settings alternate
within each round, rounds repeat (the machine is shared and noisy); medians.

    python benchmarks/dp_throughput.py --data hopper-expert.hdf5 --rounds 3 \\
        --out benchmarks/results/dp_throughput_quick.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

SETTINGS = ("no-dp", "hooks", "functorch", "ew", "ghost")


def timed(setting: str, data, config, epochs: int, batch_size: int) -> tuple[int, float]:
    from trajlab.privacy.training import DPConfig, OptimConfig, finetune_dp, finetune_plain, new_model

    bundle = new_model([data], config, seed=0)
    dp = DPConfig(epsilon=10.0, delta=1e-6, batch_size=batch_size, epochs=epochs,
                  grad_sample_mode="hooks" if setting == "no-dp" else setting)
    started = time.perf_counter()
    if setting == "no-dp":
        losses = finetune_plain(bundle, data, dp, OptimConfig(), seed=0)
    else:
        _, losses = finetune_dp(bundle, data, dp, OptimConfig(), seed=0)
    return len(losses), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--rows", type=int, default=8192, help="member rows used")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, among " + ", ".join(SETTINGS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np
    import torch

    from trajlab.data.dataset import TransitionDataset
    from trajlab.privacy.diffusion import DiffusionConfig

    torch.set_num_threads(args.threads)
    full = TransitionDataset.load(args.data)
    data = full.subset_transitions(np.sort(full.transition_ids)[: args.rows])
    config = DiffusionConfig(width=args.width, depth=args.depth, projection=64)
    settings = args.settings.split(",")
    if "no-dp" not in settings or not set(settings) <= set(SETTINGS):
        parser.error(f"--settings: no-dp (the reference) and others among {', '.join(SETTINGS)}")
    rates: dict[str, list[float]] = {setting: [] for setting in settings}
    for setting in settings:  # warm-up: first calls pay for imports and allocator growth
        timed(setting, data, config, 1, args.batch_size)
    for round_index in range(args.rounds):
        for setting in settings:
            short_steps, short_time = timed(setting, data, config, 1, args.batch_size)
            long_steps, long_time = timed(setting, data, config, 6, args.batch_size)
            rates[setting].append((long_steps - short_steps) / (long_time - short_time))
            print(json.dumps({"round": round_index, "setting": setting, "steps_per_s": rates[setting][-1]}), flush=True)
    medians = {setting: statistics.median(values) for setting, values in rates.items()}
    summary = {"width": args.width, "depth": args.depth, "batch_size": args.batch_size, "rows": len(data),
               "threads": args.threads, "rates": rates, "median_steps_per_s": medians,
               "dp_over_non_dp": {setting: medians[setting] / medians["no-dp"] for setting in settings
                                     if setting != "no-dp"}}
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps({key: summary[key] for key in ("median_steps_per_s", "dp_over_non_dp")}, indent=2))


if __name__ == "__main__":
    main()
