"""Which TrajDeleter settings remove a backdoor? Many unlearning configs on one poisoned agent.

Takes a `trajlab poison` run (its poisoned agent, RUN/agent, and its poisoned dataset, RUN/poisoned.hdf5, whose
metadata names the poisoned episodes and the trigger), unlearns the poisoned episodes with each variant, and
measures the normal and the triggered return with the same seeds as `trajlab poison`. Retraining's triggered
return is read from RUN/result.json when the run had `retrain` among its methods.

    python benchmarks/backdoor_variants.py --run /work/bench/poison/paper-s0 \\
        --out benchmarks/results/backdoor_variants_quick_s0.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},
    "paper-balance0": {"balance": 0.0},
    "neighbours": {"forget_actions": "neighbours"},
    "neighbours-2x-forget-steps": {"forget_actions": "neighbours", "forget_steps": 8000},
    "neighbours-no-convergence": {"forget_actions": "neighbours", "convergence_steps": 0},
}


def evaluate_pair(agent: Any, env_id: str, offsets: Any, episodes: int, seed: int, metadata: dict) -> dict:
    from trajlab.eval import evaluate
    from trajlab.poison.poison import TriggeredAgent

    normal = evaluate(agent, env_id, episodes=episodes, seed=seed, metadata=metadata)
    triggered = evaluate(TriggeredAgent(agent, offsets), env_id, episodes=episodes, seed=seed, metadata=metadata)
    return {"normal_return": normal.mean_return, "triggered_return": triggered.mean_return}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a trajlab poison run directory")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--seeds", default="0", help="comma-separated unlearning seeds (sampler and torch)")
    parser.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default: the run's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import numpy as np
    import torch
    import yaml

    from trajlab.algos.base import start_from_checkpoint
    from trajlab.core.seeding import derive_seed, seed_everything
    from trajlab.data.dataset import TransitionDataset
    from trajlab.unlearning import TrajDeleterConfig, unlearn

    torch.set_num_threads(1)
    run = Path(args.run)
    stored = json.loads((run / "result.json").read_text())
    run_config = yaml.safe_load((run / "config.yaml").read_text())
    poisoned = TransitionDataset.load(run / "poisoned.hdf5")
    offsets = np.asarray(stored["trigger_offsets"], dtype=np.float32)
    agent = start_from_checkpoint(run / "agent" / "checkpoints" / "final.safetensors")  # as trajlab poison
    seed, episodes = int(run_config["seed"]), args.episodes or int(run_config["eval_episodes"])
    env_id, metadata = stored["env_id"], dict(poisoned.metadata)
    base = {**run_config["trajdeleter"], "seed": seed}  # the run's own TrajDeleter settings, then each variant's
    results = {"run": str(run), "poisoned_agent": stored["poisoned_agent"],
               "retrain": stored["methods"].get("retrain"), "variants": {}}
    for name in args.variants.split(","):
        rows = []
        for unlearn_seed in (int(text) for text in args.seeds.split(",")):
            settings = {**base, **VARIANTS[name], "seed": unlearn_seed}
            seed_everything(derive_seed(unlearn_seed, "backdoor-variants"))  # the same for every variant
            started = time.perf_counter()
            unlearned = unlearn(agent, poisoned, stored["poisoned_episode_ids"], TrajDeleterConfig(**settings))
            returns = evaluate_pair(unlearned, env_id, offsets, episodes, seed, metadata)
            rows.append({**returns, "seed": unlearn_seed, "wall_time_s": time.perf_counter() - started})
            print(name, unlearn_seed, {key: round(value, 1) for key, value in returns.items()}, flush=True)
        triggered = [row["triggered_return"] for row in rows]
        results["variants"][name] = {"settings": {**base, **VARIANTS[name]}, "runs": rows,
                                     "median_triggered_return": float(np.median(triggered)),
                                     "mean_triggered_return": float(np.mean(triggered))}
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
