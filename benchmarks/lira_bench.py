"""Does the likelihood-ratio test tell members from non-members on bench data, and does it find canaries?

One seeded pipeline, every agent scored by the same shadows:

1. plant `--canaries` canary trajectories in a copy of the dataset (trajlab.audit.canaries): the population;
2. train the original on the whole population (`--algo`, `--agent-preset`, `--train-steps` updates);
3. the forget set: the last `--fraction` of the dataset's own episodes (the TrajDeleter paper's protocol) and
   every canary; unlearn it with retraining (the non-member reference) and TrajDeleter (the forget preset's;
   with `--neighbours` also its `forget_actions=neighbours` variant, the backdoor section's);
4. `--shadows` shadows trained from scratch like the original, each on a balanced random half of the
   population (lira_statistics.shadow: the library's seeds), every shadow scoring every trajectory with each
   statistic; per statistic the library's leave-one-shadow-out calibration gives the test's own error rates;
5. per statistic, LiraAuditor (its calibration from these shadows) scores the original, retrained and
   TrajDeleter agents on the forget set, the canaries and a control group the three all trained on, and audits
   each as `trajlab audit --test lira` would.

    python benchmarks/lira_bench.py --dataset hopper-m-bench.hdf5 --algo td3_bc --agent-preset paper \\
        --train-steps 30000 --shadows 16 --canaries 20 --work /tmp/lira-bench \\
        --out benchmarks/results/lira_bench_hopper_medium.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lira_statistics import STATISTICS, shadow

from trajlab.algos import start_from_checkpoint
from trajlab.algos.base import save_agent
from trajlab.audit.canaries import canary_ids, plant_canaries
from trajlab.audit.lira import (
    LiraAuditor,
    LiraConfig,
    auc,
    calibrate,
    control_ids,
    membership_masks,
    tpr_at_fpr,
    uses_global_variance,
)
from trajlab.commands.forget import load_forget_config, method_config
from trajlab.core.seeding import derive_seed
from trajlab.data import TransitionDataset
from trajlab.eval import evaluate
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train
from trajlab.unlearning import METHODS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--algo", default="td3_bc")
    parser.add_argument("--agent-preset", default="paper")
    parser.add_argument("--forget-preset", default="paper")
    parser.add_argument("--train-steps", type=int, default=30_000)
    parser.add_argument("--shadows", type=int, default=16)
    parser.add_argument("--canaries", type=int, default=20)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--controls", type=int, default=40)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seeds the canaries, every agent, the shadows' halves")
    parser.add_argument("--neighbours", action="store_true",
                        help="also unlearn with TrajDeleter's forget_actions=neighbours variant")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    report = run(args)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary(report), indent=1))


def run(args: argparse.Namespace) -> dict[str, Any]:
    dataset = TransitionDataset.load(args.dataset)
    population = plant_canaries(dataset, args.canaries, seed=args.seed)
    population_path = str(population.save(args.work / "population.hdf5"))
    trained = train(TrainConfig(algo=args.algo, dataset=population_path, steps=args.train_steps,
                                preset=args.agent_preset, seed=args.seed, out=str(args.work / "original"),
                                overwrite=True, progress=False, threads=1))
    original = start_from_checkpoint(trained["checkpoint"])
    groups = audit_groups(dataset, population, args.fraction, args.controls, args.seed)
    latest, canaries, controls = groups.values()
    forget = np.concatenate([latest, canaries])
    agents, timings = {"original": original}, {"original": trained["wall_time_s"]}
    settings = load_forget_config(args.forget_preset, agent=trained["checkpoint"], dataset=population_path,
                                  out="unused", seed=args.seed)
    for name, (method, config) in unlearning_arms(settings, args.neighbours).items():
        started = time.perf_counter()
        agents[name] = METHODS.get(method).function(original, population, forget, config)
        timings[name] = time.perf_counter() - started
        save_agent(args.work / f"{name}.safetensors", agents[name], {"method": method})
    statistics, masks, timings["shadows"] = shadows(trained["checkpoint"], population_path, population, args)
    np.savez(args.work / "shadow_statistics.npz", masks=masks, **statistics)
    returns = {name: evaluate(agent, dataset.metadata["env_id"], episodes=args.eval_episodes,
                              seed=derive_seed(args.seed, "forget-eval") % 2**31, metadata=dataset.metadata).mean_return
               for name, agent in agents.items()}
    return {"dataset": args.dataset, "algo": args.algo, "agent_preset": args.agent_preset,
            "forget_preset": args.forget_preset, "train_steps": args.train_steps, "shadows": args.shadows,
            "population": int(len(population.episode_id_list)), "forget_latest": int(len(latest)),
            "canaries": int(len(canaries)), "controls": int(len(controls)), "returns": returns,
            "wall_time_s": timings, "statistics": {
                name: score_statistic(name, statistics[name], masks, original, population, agents, groups, forget,
                                      controls, args.shadows, args.seed)
                for name in STATISTICS}}


def audit_groups(dataset: TransitionDataset, population: TransitionDataset, fraction: float, controls: int,
                 seed: int) -> dict[str, np.ndarray]:
    """The forget set's two parts (the last `fraction` of the dataset's own episodes, the paper's protocol, and
    the canaries) and `controls` trajectories outside it that every agent trained on."""
    own = dataset.episode_id_list  # in recording order: the last ones are the latest behaviour's
    latest = np.sort(own[-max(1, int(round(fraction * len(own)))):])
    canaries = np.array(canary_ids(population))
    forget = np.concatenate([latest, canaries]).tolist()
    chosen = np.array(control_ids(population.episode_id_list, forget, controls, controls, seed))
    return {"forget (latest episodes)": latest, "canaries": canaries, "controls": chosen}


def unlearning_arms(settings: Any, neighbours: bool) -> dict[str, tuple[str, Any]]:
    """Agent name -> (registered method, its config): retraining, the paper's TrajDeleter, and the variant."""
    arms = {method: (method, method_config(settings, method)) for method in ("retrain", "trajdeleter")}
    if neighbours:
        arms["trajdeleter-neighbours"] = ("trajdeleter", replace(arms["trajdeleter"][1], forget_actions="neighbours"))
    return arms


def shadows(checkpoint: str, population_path: str, population: TransitionDataset, args: argparse.Namespace
            ) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Every shadow's statistics [K, N] per statistic, and the IN masks [K, N]."""
    ids = population.episode_id_list
    masks = membership_masks(args.shadows, len(ids), args.seed)
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(shadow, [checkpoint] * args.shadows, [population_path] * args.shadows,
                                range(args.shadows), [ids[mask].tolist() for mask in masks],
                                [args.train_steps] * args.shadows, [args.seed] * args.shadows))
    values = {name: np.array([result[name] for result in results]) for name in STATISTICS}
    return values, masks, time.perf_counter() - started


def score_statistic(name: str, values: np.ndarray, masks: np.ndarray, original: Any, population: TransitionDataset,
                    agents: dict[str, Any], groups: dict[str, np.ndarray], forget: np.ndarray, controls: np.ndarray,
                    num_shadows: int, seed: int, centre: bool = False) -> dict[str, Any]:
    config = LiraConfig(statistic=name, num_shadows=num_shadows, seed=seed, centre=centre)
    auditor = LiraAuditor(original, population, config)
    auditor.statistics, auditor.calibration = values, calibrate(values, masks, config)  # these shadows, not new
    rates = auditor.calibration.to_dict()
    scores = {agent: {group: auditor.scores(model, ids.tolist())[1] for group, ids in groups.items()}
              for agent, model in agents.items()}
    threshold = auditor.calibration.threshold
    return {
        "variance": "global" if uses_global_variance(config, num_shadows) else "per-trajectory",
        "calibration": {key: rates[key] for key in ("auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "threshold")},
        "member_rate_at_1pct_fpr": {agent: {group: float((s >= threshold).mean()) for group, s in by_group.items()}
                                    for agent, by_group in scores.items()},
        "original_vs_retrained": {group: {"auc": auc(scores["original"][group], scores["retrain"][group]),
                                          "tpr_at_1pct_fpr": tpr_at_fpr(scores["original"][group],
                                                                        scores["retrain"][group], 0.01)}
                                  for group in groups},
        "audits": {agent: _audit(auditor, model, forget, controls) for agent, model in agents.items()},
        "scores": {agent: {group: s.tolist() for group, s in by_group.items()} for agent, by_group in scores.items()},
    }


def _audit(auditor: LiraAuditor, agent: Any, forget: np.ndarray, controls: np.ndarray) -> dict[str, Any]:
    result = auditor.audit(agent, forget.tolist(), controls.tolist()).to_dict()
    return {key: result[key] for key in ("verdict", "p_value", "control_p_value", "member_rate",
                                         "control_member_rate")}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"returns": report["returns"], "wall_time_s": report["wall_time_s"],
            **{name: {key: entry[key] for key in ("calibration", "member_rate_at_1pct_fpr", "original_vs_retrained")}
               | {"verdicts": {agent: audit["verdict"] for agent, audit in entry["audits"].items()}}
               for name, entry in report["statistics"].items()}}


if __name__ == "__main__":
    main()
