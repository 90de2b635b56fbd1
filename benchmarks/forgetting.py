"""Trajectory forgetting benchmark: every unlearning method on every chosen algorithm, judged by the environment,
by TrajAuditor and by the clock.

For each algorithm: train on the dataset with `trajlab train`'s code, choose a random forget set, fit
TrajAuditor's shadows once (fine-tunings of the original on the remaining data), then for each method unlearn,
measure the return in the environment, the share of forget trajectories TrajAuditor judges forgotten and the
wall time relative to retraining (retrain is one of the methods, timed in the same run). The auditor's own
efficacy (the paper's RQ1) is scored on the original agent (members) and the retrained one (non-members).

    trajlab data generate --env Hopper-v5 --quality medium-replay --preset quick --out hopper-mr.hdf5
    python benchmarks/forgetting.py --dataset hopper-mr.hdf5 --algos td3_bc,iql --train-steps 20000 \
        --fraction 0.05 --out bench-forgetting

Writes <out>/results.json and prints a Markdown table (the one in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos import start_from_checkpoint
from trajlab.algos.base import save_agent
from trajlab.audit import TrajAuditor, efficacy_evaluation
from trajlab.audit.lira import STATISTICS, LiraConfig, auc, tpr_at_fpr, trajectory_statistics
from trajlab.audit.trajauditor import with_shadow_steps
from trajlab.commands.forget import load_forget_config, method_config, value_summary
from trajlab.core.config import to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import derive_seed
from trajlab.data import TransitionDataset
from trajlab.eval import evaluate
from trajlab.training.offline import TrainConfig
from trajlab.training.offline import run as train
from trajlab.unlearning import METHODS
from trajlab.unlearning.base import method_updates, select_fraction

METHOD_ORDER = ("trajdeleter", "finetune", "random-reward", "retrain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--algos", default="td3_bc,iql")
    parser.add_argument("--methods", default=",".join(METHOD_ORDER))
    parser.add_argument("--train-steps", type=int, default=20_000)
    parser.add_argument("--agent-preset", default="quick")
    parser.add_argument("--preset", default="quick", help="forget preset (configs/forget/<preset>.yaml)")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--selection", choices=("random", "last"), default="random",
                        help="forget a random fraction of the episodes, or the last ones (the paper's protocol: "
                             "in a replay dataset, those of the latest behaviour policy)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--originals", default=None,
                        help="folder of an earlier call's <algo>_original runs (same dataset, steps, agent preset "
                             "and seed) to reuse instead of training the originals again")
    parser.add_argument("--out", default="bench-forgetting")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [benchmark_algorithm(algo, args, out) for algo in args.algos.split(",")]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


def benchmark_algorithm(algo: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    dataset = TransitionDataset.load(args.dataset)
    trained = reused_original(algo, args) if args.originals else train(TrainConfig(
        algo=algo, dataset=args.dataset, steps=args.train_steps, preset=args.agent_preset, seed=args.seed,
        out=str(out / f"{algo}_original"), overwrite=True, progress=False, threads=args.threads))
    original = start_from_checkpoint(trained["checkpoint"])
    settings = load_forget_config(args.preset, agent=trained["checkpoint"], dataset=args.dataset, out="unused",
                                  seed=args.seed)
    forget = forget_set(dataset, args)
    remaining = dataset.without(forget)
    started = time.perf_counter()
    # one auditor for every method: its shadows fine-tune as long as TrajDeleter runs (the quick preset's
    # fine-tuning and random reward run as many updates)
    trajdeleter_updates = method_updates("trajdeleter", to_dict(settings.trajdeleter), trained["steps"])
    auditor = TrajAuditor(original, remaining, with_shadow_steps(settings.auditor, trajdeleter_updates)).fit()
    shadow_seconds = time.perf_counter() - started
    # the auditor's control group (as many remaining episodes as forgotten ones, seeded) doubles as the members
    # of the efficacy evaluation
    original_audit = auditor.audit(original, dataset, forget)
    members = np.array([verdict.episode_id for verdict in original_audit.control])
    env_id = dataset.metadata["env_id"]
    eval_seed = derive_seed(args.seed, "forget-eval") % 2**31

    def env_return(agent: Any) -> float:
        result = evaluate(agent, env_id, episodes=args.eval_episodes, seed=eval_seed, metadata=dataset.metadata)
        return result.mean_return

    row: dict[str, Any] = {"algo": algo, "selection": args.selection, "train_steps": args.train_steps,
                           "train_wall_time_s": trained["wall_time_s"],
                           "forget_episodes": len(forget), "forget_transitions": int(np.isin(dataset.episode_ids,
                                                                                             forget).sum()),
                           "shadow_seconds": shadow_seconds, "original_return": env_return(original),
                           "original_audit": _audit_summary(original_audit), "methods": {}}
    unlearned_agents = {}
    for method in args.methods.split(","):
        started = time.perf_counter()
        unlearned = METHODS.get(method).function(original, dataset, forget, method_config(settings, method))
        seconds = time.perf_counter() - started
        unlearned_agents[method] = unlearned
        save_agent(out / f"{algo}_{method}.safetensors", unlearned, {"method": method, "algo": algo})
        row["methods"][method] = {
            "wall_time_s": seconds, "updates": _updates(method, settings, trained["steps"]),
            "return": env_return(unlearned),
            **_audit_summary(auditor.audit(unlearned, dataset, forget)),
            "values": value_summary(original, unlearned, dataset, forget)}
        print(json.dumps({"algo": algo, "method": method, **row["methods"][method]}), flush=True)
    if "retrain" in unlearned_agents:
        retrain_time = row["methods"]["retrain"]["wall_time_s"]
        retrain_updates = row["methods"]["retrain"]["updates"]
        for entry in row["methods"].values():
            entry["relative_time"] = entry["wall_time_s"] / retrain_time
            # the cost of one of this method's updates in units of one training update
            entry["cost_per_update"] = entry["relative_time"] * retrain_updates / entry["updates"]
            entry["return_ratio"] = entry["return"] / row["original_return"] if row["original_return"] else None
        row["auditor_efficacy"] = efficacy_evaluation(auditor, original, unlearned_agents["retrain"], dataset,
                                                      forget, np.sort(members))
        # the same shadows, every policy scored by the original's critic (the paper code's variant)
        by_original = TrajAuditor(original, remaining, replace(auditor.config, value_critic="original"),
                                  shadows=auditor.shadows)
        row["auditor_efficacy_original_critic"] = efficacy_evaluation(
            by_original, original, unlearned_agents["retrain"], dataset, forget, np.sort(members))
        for method, agent in unlearned_agents.items():
            row["methods"][method]["forgotten_rate_original_critic"] = \
                by_original.audit(agent, dataset, forget).forgotten_rate
        row["two_model_separation"] = two_model_separation(original, unlearned_agents["retrain"], dataset, forget,
                                                           members, args.seed)
    return row


def two_model_separation(original: Any, retrained: Any, dataset: TransitionDataset, forget: np.ndarray,
                         controls: np.ndarray, seed: int) -> dict[str, Any]:
    """How well each LiRA statistic tells the original (which trained on the forget set) from the retrained agent
    (which did not) on the same trajectories, with no shadows: one IN and one OUT model, so an upper bound on what
    a calibrated test can see, not a test. The controls, which both trained on, are the null: AUC near 0.5."""
    separation: dict[str, Any] = {}
    for statistic in STATISTICS:
        config = LiraConfig(statistic=statistic, seed=seed)
        try:
            separation[statistic] = {group: _separation(*(trajectory_statistics(agent, dataset, ids, config)
                                                           for agent in (original, retrained)))
                                     for group, ids in (("forget", forget), ("controls", controls))}
        except TrajlabError as error:  # an agent without the capability the statistic needs
            separation[statistic] = {"error": str(error)}
    return separation


def _separation(member: np.ndarray, non_member: np.ndarray) -> dict[str, float]:
    return {"auc": auc(member, non_member), "tpr_at_1pct_fpr": tpr_at_fpr(member, non_member, 0.01),
            "original_fits_better_share": float((member > non_member).mean())}


def reused_original(algo: str, args: argparse.Namespace) -> dict[str, Any]:
    """The result.json of `<originals>/<algo>_original`, refused unless it was trained as this call would."""
    result = json.loads((Path(args.originals) / f"{algo}_original" / "result.json").read_text())
    wanted = {"algo": algo, "dataset": str(Path(args.dataset).resolve()), "steps": args.train_steps,
              "preset": args.agent_preset, "seed": args.seed}
    differing = sorted(key for key, value in wanted.items() if result.get(key) != value)
    if differing:
        raise SystemExit(f"{args.originals}: its {algo} original differs in {', '.join(differing)}")
    return result


def forget_set(dataset: TransitionDataset, args: argparse.Namespace) -> np.ndarray:
    if args.selection == "random":
        return select_fraction(dataset, args.fraction, args.seed)
    ids = dataset.episode_id_list  # in recording order
    return np.sort(ids[-max(1, int(round(args.fraction * len(ids)))):])


def _audit_summary(audit: Any) -> dict[str, Any]:
    return {"forgotten_rate": audit.forgotten_rate, "control_judged_forgotten": audit.control_forgotten_rate,
            **audit.specificity()}


def _updates(method: str, settings: Any, train_steps: int) -> int:
    config = method_config(settings, method)
    if method == "trajdeleter":
        return config.forget_steps + config.convergence_steps
    return train_steps if method == "retrain" else config.steps


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| algorithm | method | updates | return (original) | return (unlearned) | forget set judged forgotten "
             "(own / original critic) | controls judged forgotten | specificity (p) | time vs retrain | "
             "cost per update |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for row in results:
        own = row["original_audit"]
        lines.append(f"| {row['algo']} | none (the original) | 0 | {row['original_return']:.1f} | "
                     f"{row['original_return']:.1f} | {own['forgotten_rate']:.0%} | "
                     f"{own['control_judged_forgotten']:.0%} | {own['specificity']} "
                     f"({own['specificity_p_value']:.2g}) | | |")
        for method, entry in row["methods"].items():
            by_original = entry.get("forgotten_rate_original_critic", float("nan"))
            lines.append(f"| {row['algo']} | {method} | {entry['updates']} | {row['original_return']:.1f} | "
                         f"{entry['return']:.1f} | {entry['forgotten_rate']:.0%} / {by_original:.0%} | "
                         f"{entry['control_judged_forgotten']:.0%} | "
                         f"{entry['specificity']} ({entry['specificity_p_value']:.2g}) | "
                         f"{entry.get('relative_time', float('nan')):.1%} | "
                         f"{entry.get('cost_per_update', float('nan')):.2f} |")
    lines += ["", "| algorithm | auditor precision | recall | F1 | retained: full/forget | full/remaining | "
                  "retrained/forget | retrained/remaining |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in results:
        for key, critic in (("auditor_efficacy", "own"), ("auditor_efficacy_original_critic", "original")):
            if key not in row:
                continue
            e = row[key]
            rates = e["retained_rate"]
            lines.append(f"| {row['algo']} ({critic} critic) | {e['precision']:.2f} | {e['recall']:.2f} | "
                         f"{e['f1']:.2f} | "
                         f"{rates.get('full_agent/forget_set', float('nan')):.0%} | "
                         f"{rates.get('full_agent/remaining', float('nan')):.0%} | "
                         f"{rates.get('retrained_agent/forget_set', float('nan')):.0%} | "
                         f"{rates.get('retrained_agent/remaining', float('nan')):.0%} |")
    lines += ["", "| algorithm | statistic | forget set: AUC | TPR at 1% FPR | original fits better | controls: AUC | "
                  "original fits better |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in results:
        for statistic, entry in row.get("two_model_separation", {}).items():
            if "error" in entry:
                continue
            forget, controls = entry["forget"], entry["controls"]
            lines.append(f"| {row['algo']} | {statistic} | {forget['auc']:.2f} | {forget['tpr_at_1pct_fpr']:.0%} | "
                         f"{forget['original_fits_better_share']:.0%} | {controls['auc']:.2f} | "
                         f"{controls['original_fits_better_share']:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
